"""Findings: from result rows to a short list of distinct discrepancies, each ready to file.

``build(rows, headers)`` groups a run's non-passing rows into findings, one per framework
behaviour (:mod:`~xentcheck.findings.group` states the rule), and gives each a kind and
severity, a bug-title summary (:mod:`~xentcheck.findings.summary`), a short reproduction
script (:mod:`~xentcheck.findings.repro`), an upstream issue draft
(:mod:`~xentcheck.findings.draft`) and, against a baseline, a status. ``render`` writes
them as text, Markdown or JSON; ``xentcheck findings`` is :mod:`~xentcheck.findings.command`.
docs/findings.md describes all of it for users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xentcheck.findings.draft import draft
from xentcheck.findings.group import (
    KINDS,
    SEVERITY,
    Group,
    badness,
    group_rows,
    row_key,
    sorted_unique,
    with_status,
)
from xentcheck.findings.instances import CaseSources, Rebuilt, input_elements, rebuild
from xentcheck.findings.render import render
from xentcheck.findings.scripts import write_all
from xentcheck.findings.summary import summary
from xentcheck.findings.versions import compare_versions
from xentcheck.harness.cache import ResultCache
from xentcheck.harness.merge import framework_info
from xentcheck.known import Finding, Known

__all__ = ["KINDS", "SEVERITY", "build", "render"]

Row = dict[str, Any]
UNEXPLAINED = ("mismatch", "nonfinite", "error")


def build(
    rows: Sequence[Row],
    headers: Sequence[Row],
    *,
    baseline: tuple[Sequence[Row], Sequence[Row]] | None = None,
    known: Sequence[Known] = (),
    scripts: bool = True,
    per_case: bool = False,
    cache: ResultCache | None = None,
) -> list[dict[str, Any]]:
    """The findings of a run (``headers``, ``rows`` as :func:`xentcheck.report.load` reads
    them), sorted by severity, framework and id.

    baseline: ``(headers, rows)`` of an older run: each finding's ``status`` is ``new`` or
              ``unchanged``, and the baseline's findings gone now are added as ``fixed``
              (without one, every finding is ``new``).
    known:    user entries applied to the rows no entry explained at run time.
    scripts:  False leaves ``repro`` null (a baseline's findings need none).
    per_case: group each case's rows on their own, as a run of that case alone would
              (``fuzz``: every case file it writes stands for one finding).
    cache:    where the scripts are kept between calls (written once for unchanged rows:
              :func:`~xentcheck.findings.scripts.write_all`); None writes every one anew.

    Rows labelled with a version set (``variant``: merged files holding a framework at
    several) make findings of that label (``label``, ``variant``, ``versions``), and the
    findings of each framework's consecutive version sets are compared
    (:func:`~xentcheck.findings.versions.compare_versions`: ``upgrade``, ``fixed_in``).
    """
    sources = CaseSources(headers)
    rows = apply_known(rows, headers, known, sources) if known else list(rows)
    if per_case:
        by_case: dict[str, list[Row]] = {}
        for r in rows:
            by_case.setdefault(str(r.get("case")), []).append(r)
        groups = [g for part in by_case.values() for g in group_rows(part)]
    else:
        groups = group_rows(rows)
    found = [finding(g) for g in groups]
    if scripts:
        jobs: dict[str, list[tuple[Row, str]]] = {}
        for g, f in zip(groups, found, strict=True):
            jobs.setdefault(g.framework, []).append((example_row(g, sources), f["summary"]))
        written = write_all(jobs, headers, cache)
        for g, f in zip(groups, found, strict=True):
            f["repro"], f["repro_note"] = written[g.framework].pop(0)
    else:
        for f in found:
            f["repro"], f["repro_note"] = None, "scripts not written"
    old = None
    if baseline is not None:
        old_headers, old_rows = baseline
        old = build(old_rows, old_headers, known=known, scripts=False)
    found = with_status(found, old, rows)
    for f in found:
        if f["status"] != "fixed":  # a baseline's finding keeps the versions of its own run
            f["versions"] = _versions(headers, f["framework"], f["variant"])
        f["draft"] = draft(f, headers)
    compare_versions(found, rows, headers)
    return sorted(found, key=lambda f: (f["severity"], f["framework"], f["label"], f["id"]))


def finding(g: Group) -> dict[str, Any]:
    """The finding of a group, without script, draft or status (:func:`build` adds them)."""
    worst = g.worst()
    f: dict[str, Any] = {
        "id": g.id,
        "kind": g.kind,
        "severity": g.severity,
        "signature": g.signature,
        "framework": g.framework,
        "label": g.variant or g.framework,
        "variant": g.variant,
        "apis": sorted(g.apis),
        "loss": g.loss,
        "quantity": g.quantity or ", ".join(sorted_unique(r.get("quantity") for r in g.rows)),
        "dtypes": sorted_unique(r.get("dtype") for r in g.rows),
        "devices": sorted_unique(r.get("device") for r in g.rows),
        "cases": sorted_unique(r.get("case") for r in g.rows),
        "rows": len(g.rows),
        "known": worst.get("known_id") if g.kind == "semantic" else None,
        "explanation": worst.get("explanation") if g.kind == "semantic" else None,
        "link": worst.get("link") if g.kind == "semantic" else None,
        "worst": worst,
        "row_keys": sorted(row_key(r) for r in g.rows),
    }
    f["summary"] = summary(f)
    return f


def _size(row: Row, sources: CaseSources) -> int:
    inst = sources.instance(row)
    if isinstance(inst, str):
        return int(np.prod(row.get("shape") or [1])) if row.get("shape") is not None else 1 << 62
    return input_elements(inst)


def example_row(g: Group, sources: CaseSources) -> Row:
    """The finding's example for its script: the fewest input elements; of those, the
    worst row (:func:`~xentcheck.findings.group.badness`); then the first in key order."""
    ordered = sorted(g.rows, key=lambda r: row_key(r))
    return min(ordered, key=lambda r: (_size(r, sources), -badness(r)))


def _versions(headers: Sequence[Row], framework: str, variant: str = "") -> dict[str, str]:
    """The recorded versions of ``framework`` in the run of label ``variant`` (the first
    run naming it when the framework has one label)."""
    versions = framework_info(headers, framework, variant).get("versions")
    if versions:
        return dict(versions)
    for h in headers:  # a run whose header entry has no versions: another's
        info = (h.get("frameworks") or {}).get(framework) or {}
        if info.get("versions"):
            return dict(info["versions"])
    return {}


def _array(values: Any) -> np.ndarray | None:
    if not values:
        return None
    return np.asarray([float(v) for v in values], dtype=np.float64)


def row_finding(
    row: Mapping[str, Any], rebuilt: Rebuilt | None, versions: Mapping[str, str]
) -> Finding:
    """The :class:`~xentcheck.known.Finding` a user entry judges for a results row: the
    rebuilt inputs (empty when the case cannot be rebuilt), and as ``expected``/``actual``
    the row's samples (the few elements around the worst one: a row keeps no more)."""
    raised = row.get("status") == "error" and not str(row.get("message", "")).startswith("returned")
    return Finding(
        framework=str(row.get("framework")),
        api=str(row.get("api")),
        loss=str(row.get("loss")),
        params=dict(row.get("params") or {}),
        inputs=rebuilt.inputs if rebuilt is not None else {},
        dtype=str(row.get("dtype")),
        device=str(row.get("device")),
        quantity=str(row.get("quantity", "value")),
        status=str(row.get("status")),
        expected=_array(row.get("expected")),
        actual=None if raised else _array(row.get("actual")),
        error=str(row.get("message")) if raised else None,
        expect_error=bool(row.get("expect_error")),
        versions=versions,
    )


def apply_known(
    rows: Sequence[Row],
    headers: Sequence[Row],
    known: Sequence[Known],
    sources: CaseSources | None = None,
) -> list[Row]:
    """``rows`` with the user entries ``known`` applied to the unexplained ones: a row an
    entry explains becomes ``known`` (``known_id``, ``explanation``, ``link``,
    ``unexplained_status``), as the worker marks it. The first matching entry wins."""
    sources = sources or CaseSources(headers)
    cache: dict[tuple[str, str], Rebuilt | None] = {}
    out = []
    for r in rows:
        if r.get("status") not in UNEXPLAINED:
            out.append(r)
            continue
        fw, api = str(r.get("framework")), str(r.get("api"))
        candidates = [k for k in known if k.framework == fw and k.covers_api(api)]
        if not candidates:
            out.append(r)
            continue
        key = (str(r.get("instance")), str(r.get("dtype")))
        if key not in cache:
            got = rebuild(sources, r)
            cache[key] = None if isinstance(got, str) else got
        f = row_finding(r, cache[key], _versions(headers, fw, str(r.get("variant") or "")))
        entry = next((k for k in candidates if k.matches(f)), None)
        if entry is None:
            out.append(r)
        else:
            out.append({**r, "status": "known", "known_id": entry.id, "explanation": entry.explanation,
                        "link": entry.link, "unexplained_status": r["status"]})  # fmt: skip
    return out
