"""Merging results files and marking changes against a baseline (report/model.py), no browser.

The files are real-format results files (a run header, then rows with every required key)
read back with the same reader the report uses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.report import synthetic as syn
from xentcheck.harness.results import read_results
from xentcheck.report import load
from xentcheck.report.model import changes, merge
from xentcheck.report.page import page_data

#: the installed command line, run in a child process as a user runs it
CLI = "import sys; from xentcheck.cli import main; sys.exit(main())"


def _merge(*paths: Path):
    return merge([(str(p), *read_results(p)) for p in paths])


def _ref(case: str) -> dict:
    return syn.row(case, "reference", dtype="float64", api="xentcheck.reference.evaluate")


@pytest.fixture
def per_framework(tmp_path):
    """One file per framework; each carries the same reference rows, as real runs do."""
    files = []
    for fw in ("torch", "jax"):
        rows = [_ref("a/one"), _ref("a/two")]
        rows += [syn.row("a/one", fw), syn.row("a/two", fw, "mismatch", "float16")]
        head = syn.header({fw: syn.FRAMEWORKS[fw]}, framework=fw)
        files.append(syn.write(tmp_path / f"{fw}.jsonl", head, rows))
    return files


def test_files_of_several_frameworks_merge_into_one_set(per_framework):
    m = _merge(*per_framework)
    assert len(m.headers) == 2
    fws = sorted(r["framework"] for r in m.rows)
    # 2 torch + 2 jax + the 2 reference rows once: every file carries them, so the second
    # copies are dropped without counting as replaced results
    assert fws == ["jax", "jax", "reference", "reference", "torch", "torch"]
    assert m.replaced == 0
    assert set(m.variant_of) == {""}  # nothing to tell apart: no variant labels
    assert [Path(f).name for f in m.files] == ["torch.jsonl", "jax.jsonl"]
    # each row remembers the run (header) it came from
    for r, run in zip(m.rows, m.run_of, strict=True):
        if r["framework"] != "reference":
            assert m.headers[run]["framework"] == r["framework"]
    headers, rows = load(per_framework)
    assert len(headers) == 2 and len(rows) == 6


def test_two_versions_of_one_framework_stay_side_by_side(tmp_path):
    rows = [syn.row("a/one", "torch"), syn.row("a/two", "torch", "mismatch")]
    old = syn.write(tmp_path / "old.jsonl", syn.header({"torch": "2.12.0"}), rows)
    new = syn.write(tmp_path / "new.jsonl", syn.header({"torch": "2.13.0"}), rows)
    m = _merge(old, new)
    assert len(m.rows) == 4 and m.replaced == 0
    variants = sorted(set(m.variant_of))
    assert len(variants) == 2
    assert any("torch 2.12.0" in v for v in variants)
    assert any("torch 2.13.0" in v for v in variants)
    # same identity, two variants: one of each per result
    per_case = {}
    for r, v in zip(m.rows, m.variant_of, strict=True):
        per_case.setdefault(r["case"], set()).add(v)
    assert all(len(v) == 2 for v in per_case.values())


def test_the_same_run_given_twice_is_not_doubled(tmp_path):
    rows = [syn.row("a/one", "torch"), syn.row("a/two", "torch")]
    a = syn.write(tmp_path / "a.jsonl", syn.header({"torch": "2.13.0"}), rows)
    b = syn.write(tmp_path / "b.jsonl", syn.header({"torch": "2.13.0"}), rows)
    m = _merge(a, b)
    assert len(m.rows) == 2 and m.replaced == 2 and set(m.variant_of) == {""}


def _baseline_pair(tmp_path):
    old = [
        syn.row("c/fixed", "torch", "mismatch"),
        syn.row("c/regressed", "torch", "pass"),
        syn.row("c/same", "torch", "mismatch"),
        syn.row("c/same-pass", "jax", "pass"),
        syn.row("c/gone", "torch", "error"),
        syn.row("c/gone2", "jax", "pass"),
    ]
    new = [
        syn.row("c/fixed", "torch", "pass"),
        syn.row("c/regressed", "torch", "nonfinite"),
        syn.row("c/same", "torch", "mismatch"),
        syn.row("c/same-pass", "jax", "pass"),
        syn.row("c/new", "torch", "pass"),
        # same case, other dtype: a different identity, so new
        syn.row("c/same", "torch", "mismatch", "float16"),
    ]
    head = syn.header()
    return (
        syn.write(tmp_path / "new.jsonl", head, new),
        syn.write(tmp_path / "old.jsonl", head, old),
    )


def test_baseline_marks_new_fixed_changed_unchanged_and_counts_gone(tmp_path):
    new, old = _baseline_pair(tmp_path)
    rows = _merge(new).rows
    marks, gone = changes(rows, _merge(old).rows)
    got = {(r["case"], r["dtype"]): m for r, m in zip(rows, marks, strict=True)}
    assert got == {
        ("c/fixed", "float32"): "fixed",
        ("c/regressed", "float32"): "changed",
        ("c/same", "float32"): "unchanged",
        ("c/same-pass", "float32"): "unchanged",
        ("c/new", "float32"): "new",
        ("c/same", "float16"): "new",
    }
    assert gone == 2
    # the page carries the same marks and counts
    data = page_data(_merge(new), _merge(old).rows, [str(old)], with_inputs=False, with_repro=False)
    assert data["baseline"]["counts"] == {"new": 2, "fixed": 1, "changed": 1, "unchanged": 2}
    assert data["baseline"]["gone"] == 2
    assert data["baseline"]["files"] == ["old.jsonl"]
    change = data["cols"]["change"]
    assert [change["v"][c] for c in change["c"]] == marks


def test_a_discrepancy_that_becomes_known_is_fixed_and_one_that_becomes_error_changed(tmp_path):
    head = syn.header()
    old = syn.write(tmp_path / "old.jsonl", head, [
        syn.row("k/a", "torch", "mismatch"), syn.row("k/b", "torch", "mismatch"),
    ])  # fmt: skip
    new = syn.write(tmp_path / "new.jsonl", head, [
        syn.row("k/a", "torch", "known", known_id="x", explanation="doc", link=""),
        syn.row("k/b", "torch", "error"),
    ])  # fmt: skip
    marks, gone = changes(_merge(new).rows, _merge(old).rows)
    assert marks == ["fixed", "changed"] and gone == 0


def test_same_status_with_other_errors_is_changed(tmp_path):
    head = syn.header()
    old = syn.write(tmp_path / "old.jsonl", head, [syn.row("e/a", "torch", "mismatch")])
    worse = syn.row("e/a", "torch", "mismatch", max_ulp=5000.0, max_abs_err=0.5, max_rel_err=0.2)
    new = syn.write(tmp_path / "new.jsonl", head, [worse])
    marks, _ = changes(_merge(new).rows, _merge(old).rows)
    assert marks == ["changed"]
    # a small wobble of the same status stays unchanged
    same = syn.row("e/a", "torch", "mismatch")
    marks, _ = changes(
        _merge(syn.write(tmp_path / "same.jsonl", head, [same])).rows, _merge(old).rows
    )
    assert marks == ["unchanged"]


def test_cli_report_with_baseline_writes_the_page(tmp_path, per_framework):
    new, old = _baseline_pair(tmp_path)
    out = tmp_path / "page.html"
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "report", *map(str, per_framework), str(new),
         "-o", str(out), "--baseline", str(old)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!") and "</html>" in text


def test_cli_report_names_a_missing_baseline(tmp_path, per_framework):
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "report", str(per_framework[0]),
         "-o", str(tmp_path / "p.html"), "--baseline", str(tmp_path / "nope.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "nope.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def _zero_golden(ulp: float) -> dict:
    """A float64 pass whose worst element has a golden of 0 (as a real softmax gradient row)."""
    return syn.row("z/a", "torch", "pass", "float64", max_ulp=ulp, max_abs_err=1.8e-16,
                   max_rel_err=None, expected=[0.0], actual=[1.8e-16])  # fmt: skip


def test_a_zero_golden_has_no_ulp_error_and_its_wobble_is_no_change(tmp_path):
    head = syn.header()
    old = syn.write(tmp_path / "old.jsonl", head, [_zero_golden(3.66e307)])
    new = syn.write(tmp_path / "new.jsonl", head, [_zero_golden(8.1e306), syn.row("p/a", "torch")])
    data = page_data(_merge(new), _merge(old).rows, [str(old)], with_inputs=False, with_repro=False)
    assert data["cols"]["ulp"] == [None, 0.0]  # not 8e306: a ULP at 0 means nothing
    assert data["cols"]["abs"][0] == 1.8e-16 and data["cols"]["z"] == [0]
    # a factor of 4 in a meaningless number is no change
    assert data["cols"]["change"]["v"][data["cols"]["change"]["c"][0]] == "unchanged"
    # a golden of 0 that the result matches exactly keeps its ULP error (0)
    exact = syn.row("z/b", "torch", "pass", "float64", max_rel_err=None, expected=[0.0])
    assert page_data(_merge(syn.write(tmp_path / "e.jsonl", head, [exact])), with_inputs=False,
                     with_repro=False)["cols"]["ulp"] == [0.0]  # fmt: skip


def test_findings_point_at_their_rows_in_every_variant(tmp_path):
    """A finding's row keys become positions of the page's rows (both torch versions of a
    merged pair); a key that no row has (a fixed finding's) is counted, not drawn."""
    bad = syn.row("f/a", "torch", "mismatch", "float16")
    old = syn.write(
        tmp_path / "a.jsonl", syn.header({"torch": "2.12.0"}), [bad, syn.row("p/a", "torch")]
    )
    new = syn.write(tmp_path / "b.jsonl", syn.header({"torch": "2.13.0"}), [bad])
    merged = _merge(old, new)
    gone = ["f/zz", "f/zz[x]", "torch.loss", "cpu", "float16", "value"]
    found = syn.finding([bad], "precision", 4, "torch.loss: <b>2 digits</b> lost")
    found["row_keys"].append(gone)
    data = page_data(merged, with_inputs=False, with_repro=False, findings=[found])
    (f,) = data["findings"]
    assert f["r"] == [0, 2] and f["gone"] == 1 and f["w"] == 0
    assert f["summary"] == found["summary"] and f["repro"] == found["repro"]
    assert f["severity"] == 4 and f["rows"] == 1 and f["apis"] == ["torch.loss"]
    # with no findings package result the page says why instead of drawing an empty list
    none = page_data(merged, with_inputs=False, with_repro=False, findings_note="not installed")
    assert none["findings"] is None and none["findingsNote"] == "not installed"
