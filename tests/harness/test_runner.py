"""Runner helpers: fault rows, exit statuses, sharding, the part-file reader."""

import json

from xentcheck.harness.plan import interleave, shard_counts
from xentcheck.harness.progress import Progress
from xentcheck.harness.results import REQUIRED_KEYS
from xentcheck.harness.runner import exit_status
from xentcheck.harness.supervisor import describe_exit, fault_row, read_parts


def test_fault_row_without_an_instance_has_every_required_key():
    r = fault_row("torch", None, None, "crash", "worker exit status 3 before running any instance")
    assert set(REQUIRED_KEYS) <= set(r)
    assert r["status"] == "crash" and r["framework"] == "torch" and r["instance"] == "*"


def test_describe_exit_names_the_signal():
    assert describe_exit(-11) == "killed by signal 11 (SIGSEGV)"
    assert describe_exit(7) == "exit status 7"


def test_exit_status_follows_fail_on():
    known = [{"framework": "torch", "status": "known"}, {"framework": "torch", "status": "pass"}]
    bad = [*known, {"framework": "jax", "status": "mismatch"}]
    assert exit_status(known, "unexplained") == 0
    assert exit_status(known, "any") == 1
    assert exit_status(bad, "unexplained") == 1
    assert exit_status(bad, "never") == 0
    wrong_reference = [{"framework": "reference", "status": "mismatch"}]
    assert exit_status(wrong_reference, "never") == 1


def test_jobs_beyond_frameworks_become_interleaved_shards():
    assert shard_counts(3, 2) == [1, 1, 1]
    assert shard_counts(2, 5) == [3, 2]
    shards = interleave(list(range(7)), 3)
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert interleave([4], 3) == [[4]]


def test_read_parts_keeps_closed_instances_and_drops_a_torn_tail(tmp_path):
    lines = [
        {"kind": "run", "framework": "torch", "frameworks": {"torch": {}}},
        {"instance": "a", "status": "pass"},
        {"kind": "done", "framework": "torch", "index": 0, "stats": {"api_s": 1.5}},
        {"instance": "b", "status": "pass"},  # written, but its instance never finished
    ]
    text = "".join(json.dumps(x) + "\n" for x in lines) + '{"instance": "b", "sta'
    (tmp_path / "torch.1.jsonl").write_text(text)
    parts = read_parts(tmp_path)
    assert list(parts.blocks) == [("torch", 0)]
    rows, stats = parts.blocks[("torch", 0)]
    assert rows == [{"instance": "a", "status": "pass"}] and stats == {"api_s": 1.5}
    assert len(parts.headers) == 1


def test_progress_is_one_redrawn_line_on_a_terminal_and_plain_lines_otherwise():
    import io

    tty = io.StringIO()
    p = Progress({"torch": 4, "jax": 4}, {"jax": 2}, stream=tty, tty=True)
    p.interval = 0
    p.advance("torch")
    p.message("xentcheck: a note")
    p.advance("torch")
    p.close()
    text = tty.getvalue()
    # drawn, cleared for the note, drawn, drawn at close: each in place, then a newline
    assert text.count("\r\033[K") == 4 and text.endswith("\n")
    assert "\r\033[Kxentcheck: a note\n" in text
    last = text.rstrip("\n").split("\r\033[K")[-1]
    assert last.startswith("xentcheck: [############------------] 4/8 instances  50%")
    assert last.endswith("| torch 2/4  jax 2/4")

    log = io.StringIO()
    p = Progress({"torch": 10}, stream=log, tty=False, interval=0)
    p.advance("torch", 3)
    (line,) = log.getvalue().splitlines()
    assert line.startswith("xentcheck: 3/10 instances  30%") and "ETA" in line and "[" not in line

    quiet = io.StringIO()
    p = Progress({"torch": 10}, stream=quiet, tty=True, quiet=True)
    p.interval = 0
    p.advance("torch")
    p.message("x")
    p.close()
    assert quiet.getvalue() == ""
