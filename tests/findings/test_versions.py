"""What each upgrade changed: a framework's findings at consecutive version sets, compared
(xentcheck.findings.versions), in every format of ``xentcheck findings``.

Real torch runs over four shipped case files, made into three version sets. Only one
torch can be installed in a test environment (the other builds are CUDA wheels of
gigabytes), so two of the three are real runs whose headers are made to record another
torch version afterwards (:func:`tests.report.test_merge.relabel`); what differs between
the sets is what a run of each really did:

- ``torch 2.9.0``: a run with ``--skip-tag edge``: its cases are missing, so the
  findings shown only there cannot be compared (``not compared``);
- ``torch 2.13.0+cpu``: the installed torch on every case, as recorded;
- ``torch 2.14.0``: a run with a user known entry (``--known``) that documents the flushed
  gradients of float16/32/64: an upgrade that turns those rows into a documented
  behaviour. A finding all of whose rows it explains is fixed, one that keeps some rows
  is changed (fewer results), the documented behaviour is a new finding.

2.9.0 sorts before 2.13.0 as a version, after it as text: the pairs follow the versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.test_shard import make_cases, run_args, xentcheck
from tests.report import synthetic as syn
from tests.report.test_merge import relabel
from xentcheck.findings import build
from xentcheck.findings.group import row_key, ulp_moved
from xentcheck.findings.versions import differences, upgrades
from xentcheck.harness.merge import read, version_order

pytestmark = pytest.mark.torch
OLD, MID, NEW = "torch 2.9.0", "torch 2.13.0+cpu", "torch 2.14.0"
ENTRY = "upgrade-flushes-subnormal-gradients"
KNOWN = f"""entries:
  - id: {ENTRY}
    framework: torch
    apis: [torch.sigmoid, torch.nn.Sigmoid]
    explanation: The gradient of a subnormal result is flushed to zero (a test entry).
    link: https://example.org/xentcheck-test
    statuses: [mismatch]
    when:
      quantity: "grad:*"
      dtype: [float16, float32, float64]
"""


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """The three version sets' results files, and their merged findings."""
    d = tmp_path_factory.mktemp("versions")
    cases = make_cases(d / "cases")
    cache = ["--cache-dir", str(d / "cache")]
    mid = d / "mid.jsonl"
    xentcheck(*run_args(cases, mid, *cache, frameworks=("torch",)))
    xentcheck(*run_args(cases, d / "old.raw", *cache, "--skip-tag", "edge", frameworks=("torch",)))
    (d / "upgrade.yaml").write_text(KNOWN, encoding="utf-8")
    xentcheck(*run_args(cases, d / "new.raw", *cache, "--known", str(d / "upgrade.yaml"),
                        frameworks=("torch",)))  # fmt: skip
    files = [relabel(d / "old.raw", d / "old.jsonl", "2.9.0"), mid,
             relabel(d / "new.raw", d / "new.jsonl", "2.14.0")]  # fmt: skip
    m = read(files)
    return d, files, m, build(m.rows, m.headers, scripts=False)


def _of(found, label):
    return {f["id"]: f for f in found if f["label"] == label}


def test_the_pairs_follow_the_versions_and_each_version_set_keeps_its_findings(three):
    _, _, m, found = three
    pairs = [(u["from"], u["to"]) for u in upgrades(found, m.headers)]
    assert pairs == [(OLD, MID), (MID, NEW)]
    assert {f["label"] for f in found if f["framework"] == "torch"} == {OLD, MID, NEW}
    for f in found:  # a finding's rows are of its own label: never two versions mixed
        if f["framework"] == "torch":
            assert f["variant"] == f["label"] and f["version_set"] == f["label"]
            assert f["versions"]["torch"] == f["label"].split()[1]
    assert version_order("torch", {"torch": "2.9.0"}) < version_order(
        "torch", {"torch": "2.13.0+cpu"}
    )


def test_findings_an_older_set_never_ran_are_not_compared(three):
    _, _, m, found = three
    (first,) = [u for u in upgrades(found, m.headers) if u["to"] == MID]
    assert first["new"] == first["fixed"] == first["changed"] == []
    old = _of(found, OLD)
    mid = _of(found, MID)
    skipped = {r["case"] for r in m.rows if "edge" in (r.get("tags") or [])}
    only_new = [f for fid, f in mid.items() if fid not in old]
    assert only_new, "the skipped cases show findings of their own"
    assert first["not_compared"] == len(only_new)
    for f in only_new:
        assert f["upgrade"]["status"] == "not compared"
        assert {k[0] for k in f["row_keys"]} <= skipped
    assert first["unchanged"] == len(set(mid) & set(old)) > 0


def test_an_upgrade_that_documents_a_behaviour_fixes_changes_and_adds_findings(three):
    _, _, m, found = three
    explained = {tuple(row_key(r)) for r in m.rows
                 if r.get("variant") == NEW and r.get("known_id") == ENTRY}  # fmt: skip
    assert explained
    mid, new = _of(found, MID), _of(found, NEW)
    want_fixed = {fid for fid, f in mid.items() if {tuple(k) for k in f["row_keys"]} <= explained}
    want_changed = {fid for fid, f in mid.items()
                    if fid not in want_fixed and {tuple(k) for k in f["row_keys"]} & explained}  # fmt: skip
    want_new = {fid for fid, f in new.items() if f["known"] == ENTRY}
    assert want_fixed and want_changed and len(want_new) == 1
    (second,) = [u for u in upgrades(found, m.headers) if u["to"] == NEW]
    assert {f["id"] for f in second["fixed"]} == want_fixed
    assert {f["id"] for f in second["changed"]} == want_changed
    assert {f["id"] for f in second["new"]} == want_new
    assert second["unchanged"] == len(set(mid) - want_fixed - want_changed) > 0
    for fid in want_changed:
        lost = len({tuple(k) for k in mid[fid]["row_keys"]} & explained)
        assert (
            f"results: 0 more, {lost} fewer (of those both version sets ran)"
            in new[fid]["upgrade"]["changes"]
        )
    for fid in want_fixed:
        assert mid[fid]["fixed_in"] == NEW
    # the documented behaviour's finding names the entry; its rows are the explained ones
    (doc,) = [new[fid] for fid in want_new]
    assert {tuple(k) for k in doc["row_keys"]} == explained and doc["kind"] == "semantic"


def test_every_format_of_the_findings_command_shows_the_upgrades(three, tmp_path):
    _, files, _, found = three
    names = [str(f) for f in files]
    text = xentcheck("findings", *names).stdout
    (second,) = [u for u in upgrades(found, read(files).headers) if u["to"] == NEW]
    counts = (f"{len(second['new'])} new, {len(second['fixed'])} fixed, "
              f"{len(second['changed'])} changed, {second['unchanged']} unchanged")  # fmt: skip
    assert "== What each upgrade changed" in text
    assert f"{MID} -> {NEW}: {counts}" in text
    assert f"{OLD} -> {MID}: 0 new, 0 fixed, 0 changed" in text
    for f in second["fixed"]:
        assert f"  fixed   {f['id']}  {f['summary']}" in text
    assert f"== {NEW}: " in text and f"== {MID}: " in text and f"== {OLD}: " in text
    md = xentcheck("findings", *names, "--format", "md").stdout
    assert "## What each upgrade changed" in md and f"### torch: {MID} -> {NEW}: {counts}" in md
    for f in second["changed"]:
        assert f"- **changed** `{f['id']}`" in md
    listed = json.loads(xentcheck("findings", *names, "--format", "json").stdout)
    assert isinstance(listed, list)
    statuses = {(f["label"], f["id"]): (f.get("upgrade") or {}).get("status") for f in listed}
    assert {s for (label, _), s in statuses.items() if label == NEW} >= {
        "new",
        "changed",
        "unchanged",
    }
    assert {f["id"] for f in listed if f.get("fixed_in") == NEW} == {
        f["id"] for f in second["fixed"]
    }
    assert all(f.get("upgrade") is None for f in listed if f["label"] == OLD)


def test_fail_on_new_gates_on_findings_new_against_a_baseline(three, tmp_path):
    d, files, _, _ = three
    old_raw, mid = str(d / "old.raw"), str(files[1])
    done = xentcheck("findings", mid, "--baseline", old_raw, "--fail-on", "new", check=False)
    assert done.returncode == 1, done.stderr
    assert "new and unexplained" in done.stderr and "xentcheck: new: torch:" in done.stderr
    done = xentcheck("findings", mid, "--baseline", mid, "--fail-on", "new", check=False)
    assert done.returncode == 0 and "0 new and unexplained" in done.stderr
    done = xentcheck("findings", mid, "--fail-on", "new", check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


# ---------------------------------------------------------------- the rule, on made rows


def _row(case, status="mismatch", ulp=12.0, **extra):
    return syn.row(case, "torch", status, max_ulp=ulp, **extra)


def test_changed_is_results_worst_error_or_behaviour_on_what_both_ran():
    a = [_row("c/1"), _row("c/2")]
    ran = {tuple(row_key(r)) for r in a}
    assert differences(a, a, ran, ran) == []
    # a row the other version set never ran does not count
    extra = _row("c/3")
    assert differences(a, [*a, extra], ran, {*ran, tuple(row_key(extra))}) == []
    assert differences(a, a[:1], ran, ran) == [
        "results: 0 more, 1 fewer (of those both version sets ran)"
    ]
    worse = [_row("c/1", ulp=40.0), a[1]]
    assert differences(a, worse, ran, ran) == ["worst error: 12 ULP -> 40 ULP"]
    assert differences(a, [_row("c/1", ulp=20.0), a[1]], ran, ran) == []  # within a factor of 2
    now = [_row("c/1", status="known", unexplained_status="mismatch"), a[1]]
    assert differences(a, now, ran, ran) == ["behaviour: mismatch -> known (mismatch), mismatch"]
    raised = [_row("c/1", behaviour="raised ValueError")]
    nan = [_row("c/1", behaviour="returned NaN")]
    one = {tuple(row_key(raised[0]))}
    assert differences(raised, nan, one, one) == [
        "behaviour: mismatch: raised ValueError -> mismatch: returned NaN"
    ]
    assert ulp_moved(0.4, 1.0) is False  # more than twice, but not more than 1 ULP apart
    assert ulp_moved(None, 3.0) is True and ulp_moved(None, None) is False


def test_labels_name_the_packages_that_differ_and_the_machine_only_where_needed(tmp_path):
    """Labels from run headers alone (made files: no framework runs)."""

    def head(versions, cpu="test CPU", **extra):
        h = syn.header({"jax": versions["jax"]}, **extra)
        h["frameworks"]["jax"]["versions"].update(versions)
        h["frameworks"]["jax"]["devices"]["cpu"] = cpu
        return h

    rows = [syn.row("a/1", "jax")]
    a = syn.write(
        tmp_path / "a.jsonl", head({"jax": "0.9.2", "jaxlib": "0.9.2", "optax": "0.2.6"}), rows
    )
    b = syn.write(
        tmp_path / "b.jsonl", head({"jax": "0.10.2", "jaxlib": "0.10.2", "optax": "0.2.6"}), rows
    )
    c = syn.write(tmp_path / "c.jsonl", head({"jax": "0.10.2", "jaxlib": "0.10.2", "optax": "0.2.6"},
                                             cpu="other CPU"), rows)  # fmt: skip
    labels = [s.labels["jax"] for s in read([a, b]).sources]
    assert labels == ["jax 0.9.2 (jaxlib 0.9.2)", "jax 0.10.2 (jaxlib 0.10.2)"]
    labels = [s.labels["jax"] for s in read([a, b, c]).sources]
    assert labels == ["jax 0.9.2 (jaxlib 0.9.2)", "jax 0.10.2 (jaxlib 0.10.2) · test CPU",
                      "jax 0.10.2 (jaxlib 0.10.2) · other CPU"]  # fmt: skip
    assert [s.labels["jax"] for s in read([b, c, c]).sources] == [
        "jax 0.10.2 · test CPU", "jax 0.10.2 · other CPU", "jax 0.10.2 · other CPU"]  # fmt: skip
    assert [s.labels["jax"] for s in read([b, b]).sources] == ["jax", "jax"]  # one set: its name
    # an empty shard records no versions (nothing ran): it joins its run, and sets nothing apart
    first = head(
        {"jax": "0.10.2", "jaxlib": "0.10.2", "optax": "0.2.6"}, shard={"index": 1, "count": 2}
    )
    empty = head({"jax": "0.10.2"}, shard={"index": 2, "count": 2})
    del empty["frameworks"]["jax"]["versions"]
    s1 = syn.write(tmp_path / "s1.jsonl", first, rows)
    s2 = syn.write(tmp_path / "s2.jsonl", empty, [])
    m = read([s1, s2])
    assert len(m.runs) == 1 and m.runs[0].shards == [1, 2]
    assert [s.labels["jax"] for s in m.sources] == ["jax", "jax"]
    m = read([s1, s2, a])
    assert len(m.runs) == 2 and [s.labels["jax"] for s in m.sources] == [
        "jax 0.10.2 (jaxlib 0.10.2)", "jax 0.10.2 (jaxlib 0.10.2)", "jax 0.9.2 (jaxlib 0.9.2)"]  # fmt: skip
    assert (
        json.loads(Path(a).read_text().splitlines()[0])["frameworks"]["jax"].get("variant") is None
    )
