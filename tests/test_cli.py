"""The command line: exit statuses, one-line errors, case listing."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
"""


def test_case_tags_skip_tag_case_files_and_behaviour(tmp_path):
    from xentcheck.harness.results import read_results

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "t.yaml").write_text(TAGGED)
    out = tmp_path / "r.jsonl"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "xentcheck.cli", "run", "--cases", str(tmp_path / "cases"), "--out", str(out),
         "--framework", "torch", "--adapter", "tests.harness.faulty_adapter:PICKY", "--skip-tag", "large-vocab",
         "--quiet"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(root)}, timeout=600,
    )  # fmt: skip
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
    }
    rejected = [r for r in rows if r["case"] == "t/rejected"]
    assert rejected and all(r["behaviour"] == "raised IndexError" for r in rejected), rejected
    assert all("behaviour" not in r for r in rows if r["case"] != "t/rejected")


def test_bad_adapter_spec_and_bad_timeout_are_one_line_errors(capsys):
    assert main(["run", "--adapter", "no_such_module_xyz:F", "--out", "x.jsonl"]) == 2
    assert main(["run", "--adapter", "nocolon", "--out", "x.jsonl"]) == 2
    assert main(["run", "--framework", "torch", "--timeout", "0", "--out", "x.jsonl"]) == 2
    assert main(["run", "--framework", "torch", "--cases", "cases/worked_examples.yaml",
                 "--out", "/proc/no/x.jsonl", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "xentcheck: error: --adapter no_such_module_xyz:F: no module 'no_such_module_xyz' on the Python path",
        "xentcheck: error: --adapter nocolon: write it as MODULE:ATTRIBUTE",
        "xentcheck: error: --timeout must be a positive number of seconds",
        "xentcheck: error: cannot write /proc/no: No such file or directory",
    ]


def test_schema_prints_the_case_schema_as_json(capsys):
    import json

    pytest.importorskip("xentcheck.harness.schema")
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert isinstance(schema, dict) and schema
