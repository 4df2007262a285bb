"""Many results files, one report: shards merged into their run, two version sets of one
framework side by side, every source listed, conflicting files refused.

Real torch runs over four shipped case files: the whole run, its three shards
(``--shard I/3``, each copied into a folder of its own as a CI job's artifact would be,
all named ``results-torch.jsonl``), and a second whole run whose header is then made to
record torch 2.14.0. Two torch versions cannot be installed side by side in one test
environment (the other builds are CUDA wheels of gigabytes), so the second version is a
real run whose header differs from the first's only in the recorded version: the merge,
the labels, the report and the upgrade comparison see two version sets, and the rows,
being the same, must compare as unchanged. The pages open in a real headless Chromium
(skipped without one, unless XENTCHECK_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.harness.test_shard import TIMING, make_cases, rows_of, run_args, same_rows, xentcheck
from tests.report.chromium import chromium
from xentcheck.harness.merge import read
from xentcheck.harness.results import read_results

pytestmark = pytest.mark.torch
OLD, NEW = "2.13.0+cpu", "2.14.0"


def relabel(src: Path, dst: Path, version: str) -> Path:
    """``src`` with its header recording torch ``version``: nothing else changes."""
    lines = src.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    header["frameworks"]["torch"]["versions"]["torch"] = version
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def merged_runs(tmp_path_factory):
    """(folder, whole run, folder of artifacts: three shards and the other version)."""
    d = tmp_path_factory.mktemp("merge")
    cases = make_cases(d / "cases")
    cache = ["--cache-dir", str(d / "cache")]
    whole = d / "whole.jsonl"
    xentcheck(*run_args(cases, whole, *cache, frameworks=("torch",)))
    assert read_results(whole)[0][0]["frameworks"]["torch"]["versions"]["torch"] == OLD
    runs = d / "runs"
    for i in (1, 2, 3):
        out = runs / f"results-torch-{i}" / "results-torch.jsonl"
        xentcheck(*run_args(cases, out, "--shard", f"{i}/3", *cache, frameworks=("torch",)))
    again = d / "again.jsonl"
    xentcheck(*run_args(cases, again, *cache, frameworks=("torch",)))
    relabel(again, runs / "results-torch-2.14" / "results-torch.jsonl", NEW)
    (runs / "results-torch-1" / "results-torch.jsonl.parts").mkdir()  # an unfinished run's
    (runs / "results-torch-1" / "results-torch.jsonl.parts" / "torch.0.jsonl").write_text("{}\n")
    return d, whole, runs


def _plain(rows):
    return [{k: v for k, v in r.items() if k not in (*TIMING, "variant")} for r in rows]


def test_a_folder_of_shards_and_versions_merges_into_runs_and_labels(merged_runs):
    _, whole, runs = merged_runs
    m = read([runs])
    files = [Path(s.path).relative_to(runs).as_posix() for s in m.sources]
    # sorted by path: "results-torch-2.14/" before "results-torch-2/" ("." before "/")
    assert files == [f"results-torch-{v}/results-torch.jsonl" for v in ("1", "2.14", "2", "3")]
    sharded = next(r for r in m.runs if r.count == 3)
    assert sharded.shards == [1, 2, 3] and sharded.missing == [] and len(m.runs) == 2
    assert {s.labels["torch"] for s in m.sources} == {f"torch {OLD}", f"torch {NEW}"}
    # every torch row is labelled, and each label's rows are exactly one whole run
    full = rows_of(whole)
    for label in (f"torch {OLD}", f"torch {NEW}"):
        mine = [r for r in m.rows if r.get("variant") == label]
        assert same_rows(_plain(mine), [r for r in full if r["framework"] == "torch"]), label
    assert not [r for r in m.rows if r["framework"] == "torch" and not r.get("variant")]
    assert sum(r["framework"] == "reference" for r in m.rows) == sum(
        r["framework"] == "reference" for r in full
    )  # the reference rows every run carries: once
    assert m.duplicates == 0


def test_a_missing_shard_is_named_and_a_file_given_twice_is_not_doubled(merged_runs):
    _, _, runs = merged_runs
    one, three = (runs / f"results-torch-{i}" / "results-torch.jsonl" for i in (1, 3))
    m = read([one, three, three])
    (run,) = m.runs
    assert run.shards == [1, 3] and run.missing == [2]
    again = [r for r in read_results(three)[1] if r["framework"] != "reference"]
    assert len(m.rows) == len(read([one, three]).rows) and m.duplicates == len(again)


def test_two_files_claiming_one_result_differently_is_one_line_naming_both(merged_runs, tmp_path):
    _, _, runs = merged_runs
    shard = runs / "results-torch-2" / "results-torch.jsonl"
    lines = shard.read_text(encoding="utf-8").splitlines()
    n, row = next(
        (n, json.loads(x)) for n, x in enumerate(lines) if n and '"framework":"torch"' in x
    )
    row["status"] = "pass" if row["status"] != "pass" else "mismatch"
    lines[n] = json.dumps(row)
    rerun = tmp_path / "rerun" / "results-torch.jsonl"
    rerun.parent.mkdir()
    rerun.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for command in (["report", str(runs), str(rerun), "-o", str(tmp_path / "x.html")],
                    ["findings", str(runs), str(rerun)]):  # fmt: skip
        done = xentcheck(*command, check=False)
        err = done.stderr
        assert done.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"xentcheck: error: {rerun}: claims torch {OLD} {row['instance']}")
        assert str(shard) in err and "the two files disagree on one result" in err
    assert not (tmp_path / "x.html").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    done = xentcheck("findings", str(empty), check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"{empty}: a folder, not a results file (and no *.jsonl under it" in done.stderr


def test_the_merged_report_opens_with_every_source_and_the_upgrade(merged_runs):
    d, _, runs = merged_runs
    page = d / "site" / "index.html"
    done = xentcheck("report", str(runs), "-o", str(page))
    assert "Traceback" not in done.stderr
    found = json.loads(xentcheck("findings", str(runs), "--format", "json").stdout)
    labels = {f["label"] for f in found if f["framework"] == "torch"}
    assert labels == {f"torch {OLD}", f"torch {NEW}"}
    newer = [f for f in found if f["label"] == f"torch {NEW}"]
    assert newer and all(f["upgrade"]["status"] == "unchanged" for f in newer)
    assert all(f["versions"]["torch"] == NEW for f in newer)
    with chromium() as s:
        s.page.goto(page.as_uri())
        s.page.wait_for_selector("html[data-ready='1']")
        table = s.page.locator("#sources-table")
        files = table.locator("tr.source td.mono").all_inner_texts()
        listed = {f for f in files if f.endswith(".jsonl")}
        assert listed == {f"results-torch-{v}/results-torch.jsonl" for v in ("1", "2", "3", "2.14")}
        text = table.inner_text()
        assert "run 1: shards 1, 2, 3 of 3 (complete)" in text
        for shard in ("1/3", "2/3", "3/3"):
            assert shard in text
        assert f"torch {OLD}" in text and f"torch {NEW}" in text
        upgrades = s.page.locator("#upgrades-section")
        assert upgrades.is_visible()
        (box,) = upgrades.locator(".upgrade").all()
        assert box.locator("h3").inner_text() == f"torch {OLD} → torch {NEW}"
        n = len({f["id"] for f in newer})
        assert f"0 new, 0 fixed, 0 changed, {n} unchanged" in box.inner_text()
        # findings and matrix columns keep the two versions apart
        groups = s.page.locator("#findings section.fgroup h3").all_inner_texts()
        assert any(g.startswith(f"torch {OLD} (") for g in groups)
        assert any(g.startswith(f"torch {NEW} (") for g in groups)
        heads = s.page.locator("#matrix").inner_text()
        assert f"torch {OLD}" in heads and f"torch {NEW}" in heads
        total = len(read([runs]).rows)
        assert s.page.locator("#shown").inner_text().startswith(f"{total:,} of {total:,}")
        assert s.errors == [] and s.blocked == []


def test_a_page_with_a_missing_shard_says_so(merged_runs, tmp_path):
    _, _, runs = merged_runs
    partial = tmp_path / "partial"
    for i in (1, 3):
        shutil.copytree(runs / f"results-torch-{i}", partial / f"results-torch-{i}")
    page = tmp_path / "index.html"
    xentcheck("report", str(partial), "-o", str(page))
    with chromium() as s:
        s.page.goto(page.as_uri())
        s.page.wait_for_selector("html[data-ready='1']")
        text = s.page.locator("#sources-table").inner_text()
        assert "shards 1, 3 of 3 (missing: 2)" in text
        assert s.page.locator("#sources-table tr.incomplete").count() >= 2
        assert s.page.locator(
            "#upgrades-section"
        ).is_hidden()  # one version set: nothing to compare
        assert s.errors == [] and s.blocked == []


def test_labelled_rows_keep_their_scripts_and_versions(merged_runs):
    """Lookups by framework name still work on labelled rows: the known registry, the
    adapter that writes a finding's script, and the long script's header names the
    version of the row's own run."""
    from xentcheck.findings import build
    from xentcheck.report.repro import script

    _, _, runs = merged_runs
    m = read([runs])
    found = build(m.rows, m.headers)
    torch = [f for f in found if f["framework"] == "torch"]
    assert torch and all(f["repro"] for f in torch), [f["repro_note"] for f in torch]
    new_row = next(
        r for r in m.rows if r.get("variant") == f"torch {NEW}" and r["status"] != "pass"
    )
    old_row = next(
        r for r in m.rows if r.get("variant") == f"torch {OLD}" and r["status"] != "pass"
    )
    assert f"# The run used: torch {NEW}" in script(new_row, m.headers)
    assert f"# The run used: torch {OLD}" in script(old_row, m.headers)
