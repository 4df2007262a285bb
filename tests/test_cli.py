"""The command line: exit statuses, one-line errors, case listing."""

import subprocess
import sys
import textwrap

import pytest

from xentcheck.cli import main


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
    proc = subprocess.run(
        [sys.executable, "-m", "xentcheck.cli", "run", "--framework", "torch", "--cases", str(bad), "--out", str(tmp_path / "r.jsonl")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"xentcheck: error: {bad}:4: ragged literal: every row must have the same length"
    )
    assert not (tmp_path / "r.jsonl").exists()
