"""The command line: exit statuses, one-line errors, case listing, ``python -m xentcheck``.

Tests that run a framework carry its marker, so they skip, with the reason, where it is
not installed; the others need none (an input check fails before any framework loads).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xentcheck.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: the child processes find the test adapters (tests.harness.faulty_adapter)
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _xentcheck(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m xentcheck ARGV`` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "xentcheck", *argv],
        capture_output=True, text=True, check=False, env=CHILD_ENV, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_cases_lists_and_counts(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(
        textwrap.dedent("""\
        cases:
          - id: s
            loss: sigmoid
            inputs: {x: [0.0, 1.0]}
          - id: ce
            loss: softmax_cross_entropy
            inputs: {logits: [[0.2, 0.3, 0.5]], target: [2]}
            params: {reduction: [none, sum, mean]}
        """)
    )
    assert main(["cases", "--cases", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a/s  sigmoid  1 instance(s) x 4 dtype(s)" in out
    assert "2 cases, 4 instances" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--framework", "caffe", "--out", "x.jsonl"], "unknown framework 'caffe'"),
        (["report", "nope.jsonl", "-o", "x.html"], "no such results file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err


def test_broken_case_file_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [[1.0], [2.0, 3.0]]}\n")
    proc = _xentcheck(
        "run", "--framework", "torch", "--cases", str(bad), "--out", str(tmp_path / "r.jsonl")
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"xentcheck: error: {bad}:4: ragged literal: every row must have the same length"
    )
    assert not (tmp_path / "r.jsonl").exists()


TAGGED = """\
cases:
  - id: picked
    loss: sigmoid
    inputs: {x: [0.5, -0.5]}
    dtypes: [float64]
    tags: [picked]
  - id: plain
    loss: sigmoid
    inputs: {x: [0.25]}
    dtypes: [float64]
  - id: huge
    loss: sigmoid
    inputs: {x: [0.75]}
    dtypes: [float64]
    tags: [large-vocab, picked]
  - id: rejected
    loss: softmax_cross_entropy
    inputs: {logits: [[0.1, 0.2, 0.3]], target: [7]}
    dtypes: [float32]
    expect_error: true
"""


@pytest.mark.torch  # skipped, with the reason, where torch is not installed (tests/conftest.py)
def test_case_tags_skip_tag_case_files_and_behaviour(tmp_path):
    from xentcheck.harness.results import read_results

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "t.yaml").write_text(TAGGED)
    out = tmp_path / "r.jsonl"
    proc = _xentcheck("run", "--cases", str(tmp_path / "cases"), "--out", str(out),
                      "--framework", "torch", "--adapter", "tests.harness.faulty_adapter:PICKY",
                      "--skip-tag", "large-vocab", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (header,), rows = read_results(out)
    assert header["case_files"] == {"t.yaml": TAGGED}
    assert header["cases_root"] == str(tmp_path / "cases")
    assert header["skip_tags"] == ["large-vocab"]
    seen = {(r["framework"], r["case"]) for r in rows}
    # --skip-tag drops t/huge everywhere; picky runs only its tagged case
    assert seen == {
        ("torch", "t/picked"),
        ("torch", "t/plain"),
        ("torch", "t/rejected"),
        ("picky", "t/picked"),
        ("reference", "t/rejected"),  # expect_error: the reference's rejection is checked too
    }
    rejected = [r for r in rows if r["case"] == "t/rejected" and r["framework"] == "torch"]
    assert rejected and all(r["behaviour"] == "raised IndexError" for r in rejected), rejected
    assert all("behaviour" not in r for r in rows if r["case"] != "t/rejected")


def test_bad_adapter_spec_and_bad_timeout_are_one_line_errors(capsys):
    assert main(["run", "--adapter", "no_such_module_xyz:F", "--out", "x.jsonl"]) == 2
    assert main(["run", "--adapter", "nocolon", "--out", "x.jsonl"]) == 2
    assert main(["run", "--framework", "torch", "--timeout", "0", "--out", "x.jsonl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "xentcheck: error: --adapter no_such_module_xyz:F: no module 'no_such_module_xyz' on the Python path",
        "xentcheck: error: --adapter nocolon: write it as MODULE:ATTRIBUTE",
        "xentcheck: error: --timeout must be a positive number of seconds",
    ]


ONE_CASE = "cases:\n  - id: s\n    loss: sigmoid\n    inputs: {x: [0.5]}\n    dtypes: [float64]\n"


@pytest.mark.parametrize(
    ("option", "target", "reason"),
    [
        ("--out", "adir", "--out names a folder (name a file in it)"),
        ("--out", "afile/r.jsonl", "--out: {tmp}/afile is a file, not a folder (choose another path)"),
        ("--out", "afile/deeper/r.jsonl", "--out: {tmp}/afile is a file, not a folder (choose another path)"),
        ("--golden-cache", "afile", "--golden-cache names a file (name a folder)"),
        ("--golden-cache", "afile/goldens", "--golden-cache: {tmp}/afile is a file, not a folder (choose another path)"),
    ],
)  # fmt: skip
def test_run_checks_its_output_paths_before_any_work(option, target, reason, tmp_path):
    """A bad --out or --golden-cache is one line naming it, exit 2, and nothing is left behind:
    no ``.tmp``, no ``.parts``, no goldens (the run did not start)."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "one.yaml").write_text(ONE_CASE)
    before = sorted(tmp_path.rglob("*"))
    paths = {"--out": str(tmp_path / "r.jsonl"), "--golden-cache": str(tmp_path / "goldens")}
    paths[option] = str(tmp_path / target)
    proc = _xentcheck("run", "--adapter", "tests.harness.faulty_adapter:FRAMEWORK",
                      "--cases", str(tmp_path / "one.yaml"), "--quiet",
                      *(a for kv in paths.items() for a in kv))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"xentcheck: error: {tmp_path / target}: {reason.format(tmp=tmp_path)}\n"
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "afile").read_text() == "keep me\n"


def test_run_checks_out_before_reading_cases(tmp_path, capsys):
    """--out is checked before the case files are read: the first error is the output's."""
    (tmp_path / "bad.yaml").write_text("cases: [")
    assert main(["run", "--framework", "torch", "--cases", str(tmp_path / "bad.yaml"),
                 "--out", str(tmp_path)]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"xentcheck: error: {tmp_path}: --out names a folder (name a file in it)\n"
    )
    assert sorted(tmp_path.iterdir()) == [tmp_path / "bad.yaml"]


def test_python_dash_m_xentcheck_is_the_command(tmp_path):
    (tmp_path / "one.yaml").write_text(ONE_CASE)
    helped = _xentcheck("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: xentcheck "), helped.stderr
    listed = _xentcheck("cases", "--cases", str(tmp_path / "one.yaml"))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1] == "1 cases, 1 instances: sigmoid 1"
    # exit statuses propagate: 2 for bad input and for a missing command
    missing = _xentcheck("report", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "i.html"))
    assert missing.returncode == 2 and "no such results file" in missing.stderr
    assert _xentcheck().returncode == 2


def test_cases_without_cases_lists_the_shipped_suite_from_anywhere(tmp_path):
    """No --cases: the suite that ships with xentcheck, not ./cases of the working folder."""
    proc = _xentcheck("cases", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "worked_examples/" in proc.stdout


def test_schema_prints_the_case_schema_as_json(capsys):
    import json

    pytest.importorskip("xentcheck.harness.schema")
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert isinstance(schema, dict) and schema


# ------------------------------------------------ --known, --baseline, --fail-on new


def test_fail_on_new_needs_a_baseline(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["run", "--framework", "torch", "--fail-on", "new", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "xentcheck: error: --fail-on new needs --baseline OLD.jsonl (the run to compare with)\n"
    )
    assert not out.exists()


def _bad_known_rows():
    from tests.known.test_user import BAD

    return pytest.mark.parametrize(("name", "text", "line", "words"), [b[1:] for b in BAD],
                                   ids=[b[0] for b in BAD])  # fmt: skip


@_bad_known_rows()
def test_a_bad_known_file_stops_run_and_report_before_any_work(
    tmp_path, capsys, name, text, line, words
):
    """Every kind of bad --known file is one line ``file:line: reason``, exit 2, and no
    output is written (the known files are read before the cases and results)."""
    from tests.known.test_user import bad_file

    path = bad_file(tmp_path, name, text)
    out, html = tmp_path / "r.jsonl", tmp_path / "i.html"
    where = f"{path}:{line}: " if line else f"{path}: "
    for argv in (
        ["run", "--framework", "torch", "--cases", str(tmp_path / "absent.yaml"),
         "--known", str(path), "--out", str(out)],
        ["report", str(tmp_path / "absent.jsonl"), "--known", str(path), "-o", str(html)],
    ):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"xentcheck: error: {where}") and err.count("\n") == 1, err
        assert words.format(path=path) in err
    assert not out.exists() and not html.exists()


def test_a_bad_baseline_stops_run_before_any_work(tmp_path, capsys):
    (tmp_path / "old.jsonl").write_text('{"kind": "row"}\n')
    out = tmp_path / "r.jsonl"
    argv = ["run", "--framework", "torch", "--cases", str(tmp_path / "absent.yaml"),
            "--fail-on", "new", "--baseline", str(tmp_path / "old.jsonl"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"xentcheck: error: {tmp_path / 'old.jsonl'}:1: ") and err.count("\n") == 1
    )
    assert not out.exists()


#: torch.logsumexp returns a value for axis 0 of a 0-d input, which the reference rejects:
#: an ``error`` row, explained by no built-in entry
