"""tools/merge.py (``tox -e merge``): one report and its findings from every results file
under a folder, with the ``--fail-on new`` gate of the merge job.

The results come from real runs of the naive NumPy kernel of examples/ (no framework
needed), whose overflow makes findings: the full run, and a run of its one passing case
as an older baseline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "naive_numpy"
TOOL = ROOT / "tools" / "merge.py"

_spec = importlib.util.spec_from_file_location("xentcheck_merge_tool", TOOL)
assert _spec is not None and _spec.loader is not None
merge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(merge)


def _run(cases: Path, out: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}
    command = [sys.executable, "-m", "xentcheck", "run", "--adapter", "naive_numpy_xent:adapter"]
    command += ["--cases", str(cases), "--out", str(out), "--no-cache", "--quiet", "--jobs", "1"]
    command += ["--fail-on", "never"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A folder of results (two runs, one in a subfolder, and a .jsonl that is no results
    file), and a baseline folder holding a run of the one case that passes."""
    base = tmp_path_factory.mktemp("merge")
    results = base / "runs"
    (results / "versions").mkdir(parents=True)
    _run(EXAMPLE / "cases", results / "results-naive.jsonl")
    _run(EXAMPLE / "cases", results / "versions" / "naive-again.jsonl")
    (results / "notes.jsonl").write_text('{"kind": "note"}\n')
    doc = yaml.safe_load((EXAMPLE / "cases" / "large_logits.yaml").read_text())
    cases = doc["cases"] if isinstance(doc, dict) else doc
    passing = [c for c in cases if c["id"] == "small-logits"]
    assert passing, "the example's passing case is gone: pick another"
    one = base / "one" / "large_logits.yaml"
    one.parent.mkdir()
    one.write_text(yaml.safe_dump({**doc, "cases": passing} if isinstance(doc, dict) else passing))
    baseline = base / "baseline"
    baseline.mkdir()
    _run(one.parent, baseline / "results-naive.jsonl")
    return results, baseline


def _merge(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *argv], capture_output=True, text=True, timeout=300
    )


def test_the_results_files_of_a_folder_are_found_and_others_named(runs) -> None:
    results, _ = runs
    found, others = merge.results_files(results)
    assert [p.relative_to(results).as_posix() for p in found] == [
        "results-naive.jsonl",
        "versions/naive-again.jsonl",
    ]
    assert others == [results / "notes.jsonl"]
    assert merge.results_files(results, exclude=results / "versions")[0] == [
        results / "results-naive.jsonl"
    ]


def test_one_page_and_its_findings_from_every_file(runs, tmp_path: Path) -> None:
    results, _ = runs
    out = tmp_path / "site"
    done = _merge(str(results), str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"merge: {results / 'notes.jsonl'}: not a results file (no run header), left out" in (
        done.stdout
    )
    assert f"merge: 2 results files from {results} into {out}" in done.stdout
    for name in ("index.html", "differences.md", "findings.json", "findings.md"):
        assert (out / name).stat().st_size > 0, name
    findings = json.loads((out / "findings.json").read_text())
    assert findings, "the naive kernel's overflow makes findings"
    page = (out / "index.html").read_text()
    assert "results-naive.jsonl" in page and "naive-again.jsonl" in page


def test_the_gate_fails_on_findings_new_against_the_baseline(runs, tmp_path: Path) -> None:
    results, baseline = runs
    gated = _merge(
        str(results), str(tmp_path / "a"), "--baseline", str(baseline), "--fail-on", "new"
    )
    assert gated.returncode == 1, gated.stdout + gated.stderr
    new = [line for line in gated.stdout.splitlines() if line.startswith("merge: new: ")]
    stopped = merge.new_unexplained(json.loads((tmp_path / "a" / "findings.json").read_text()))
    assert len(new) == len(stopped) > 0
    same = _merge(str(results), str(tmp_path / "b"), "--baseline", str(results), "--fail-on", "new")
    assert same.returncode == 0, same.stdout + same.stderr
    never = _merge(str(results), str(tmp_path / "c"), "--baseline", str(baseline))
    assert never.returncode == 0, never.stdout + never.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["{tmp}/nowhere"], "{tmp}/nowhere: no such file or folder"),
        (["{tmp}"], "{tmp}: no results files"),
        (["{results}", "--fail-on", "new"], "--fail-on new: needs --baseline OLD"),
        (["{results}", "--baseline", "{tmp}"], "{tmp}: no results files in the baseline"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path: Path, argv, said) -> None:
    results, _ = runs
    fill = {"tmp": str(tmp_path), "results": str(results)}
    done = _merge(*(a.format(**fill) for a in argv))
    assert done.returncode == 2
    assert done.stderr.startswith(f"merge: error: {said.format(**fill)}")
    assert len(done.stderr.splitlines()) == 1
