"""No lost results: a real torch run SIGKILLed at random moments and resumed, or stopped
with Ctrl-C and resumed, ends with exactly the rows of an uninterrupted run, row by row.

The moments come from a generator seeded by the test's id (the ``seed`` fixture), so a
failure names a seed that picks the same fractions of the run again. Every test runs
torch: without it, they skip.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from xentcheck.harness.results import read_results

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["softmax_cross_entropy/basic.yaml", "nll/basic.yaml", "log_softmax/basic.yaml"]
#: fields that legitimately differ between two runs of the same rows
TIMING = ("elapsed_s", "compile_s")
pytestmark = pytest.mark.torch


def _cmd(cases: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "xentcheck.cli", "run", "--framework", "torch", "--cases", str(cases),
            "--out", str(out), "--fail-on", "never", "--quiet", "--no-cache", *extra]  # fmt: skip


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_results(out)[1]]


def _key(r: dict) -> tuple:
    return tuple(str(r[k]) for k in ("framework", "instance", "api", "device", "dtype", "quantity"))


def _workers_alive(tag: str) -> list[int]:
    """Pids of processes whose command line mentions ``tag`` (this test's folder)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if tag in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    for rel in SHIPPED:
        (d / "cases" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "cases" / rel, d / "cases" / rel)
    ref = d / "uninterrupted.jsonl"
    t0 = time.monotonic()
    subprocess.run(
        _cmd(d / "cases", ref, "--jobs", "1"), check=True, timeout=600, capture_output=True
    )
    return d, _rows(ref), time.monotonic() - t0


def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(suite, seed):
    d, expected, seconds = suite
    out = d / "killed.jsonl"
    rng = random.Random(seed)
    kills = resumes = 0
    for attempt in range(4):  # three runs killed at a random moment, then one to the end
        resumes += bool(attempt)
        args = ("--jobs", "2", *(("--resume",) if attempt else ()))
        proc = subprocess.Popen(_cmd(d / "cases", out, *args), stderr=subprocess.DEVNULL)
        if attempt < 3:
            # a kill before the run wrote its manifest leaves nothing to resume (and --resume
            # says so, exit 2: tested below), so the random moment falls after it
            manifest = out.with_name(out.name + ".parts") / "run.json"
            deadline = time.monotonic() + 120
            while not manifest.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.8) * seconds)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                deadline = time.monotonic() + 10
                while _workers_alive(str(out)) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not _workers_alive(str(out)), "workers outlived the killed runner"
                continue
        assert proc.wait(timeout=600) == 0
        break
    got = _rows(out)
    lost = sum((Counter(map(_key, expected)) - Counter(map(_key, got))).values())
    duplicated = sum((Counter(map(_key, got)) - Counter(map(_key, expected))).values())
    print(f"\nseed {seed}: {kills} SIGKILLs of the runner, {resumes} --resume runs, "
          f"{len(expected)} rows; lost {lost}, duplicated {duplicated}")  # fmt: skip
    assert (lost, duplicated) == (0, 0)
    assert got == expected  # same rows, same order, same values
    assert not out.with_name(out.name + ".parts").exists()


def test_ctrl_c_merges_what_finished_and_resume_completes_it(suite):
    d, expected, _ = suite
    out = d / "interrupted.jsonl"
    parts = out.with_name(out.name + ".parts")
    proc = subprocess.Popen(_cmd(d / "cases", out), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any('"kind":"done"' in f.read_text() for f in parts.glob("torch.*.jsonl")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    partial = _rows(out)
    torch_rows = [r for r in partial if r["framework"] == "torch"]
    assert torch_rows and len(torch_rows) < sum(r["framework"] == "torch" for r in expected)
    assert partial == [r for r in expected if r in partial]  # finished instances, in order
    assert parts.is_dir() and not _workers_alive(str(out))
    subprocess.run(_cmd(d / "cases", out, "--resume"), check=True, timeout=600)
    assert _rows(out) == expected


def test_resume_with_other_options_is_one_line_and_exit_2(suite, tmp_path):
    d, _, _ = suite
    out = tmp_path / "r.jsonl"
    proc = subprocess.run(
        _cmd(d / "cases", out, "--resume"), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(
        "xentcheck: error: --resume: no interrupted run to resume"
    )
    parts = tmp_path / "r.jsonl.parts"
    parts.mkdir()
    (parts / "run.json").write_text('{"frameworks": ["jax"]}')
    proc = subprocess.run(
        _cmd(d / "cases", out, "--resume"), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "\n" not in err and "different frameworks (['jax'], now ['torch'])" in err


def test_a_sigkilled_worker_costs_only_its_instance_which_becomes_a_crash_row(suite):
    d, expected, _ = suite
    out = d / "worker-killed.jsonl"
    parts = out.with_name(out.name + ".parts")
    proc = subprocess.Popen(_cmd(d / "cases", out), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and not workers:
        if any('"kind":"done"' in f.read_text() for f in parts.glob("torch.*.jsonl")):
            workers = [p for p in _workers_alive(str(parts)) if p != proc.pid]
        time.sleep(0.05)
    if not workers:
        proc.kill()
        pytest.skip("the run finished before a worker could be killed")
    os.kill(workers[0], signal.SIGKILL)
    assert proc.wait(timeout=600) == 0
    got = _rows(out)
    crashed = [r for r in got if r["status"] == "crash"]
    assert len(crashed) == 1
    assert crashed[0]["message"].startswith("worker killed by signal 9 (SIGKILL)")
    lost = crashed[0]["instance"]
    assert [r for r in got if r["instance"] != lost] == [
        r for r in expected if r["instance"] != lost
    ]
