"""What each upgrade changed: a framework's findings at consecutive version sets compared.

When merged results hold a framework at two or more version sets
(:mod:`xentcheck.harness.merge` labels its rows and header entries), its version sets
are ordered by version (:func:`~xentcheck.harness.merge.version_order`) and each
consecutive pair, older A and newer B, is compared with the baseline statuses of
:func:`~xentcheck.findings.group.with_status`, applied both ways:

- **fixed** in B: a finding of A whose id B lacks, where B ran at least one of its results
  (``with_status(B, A, rows of B)`` calls it ``fixed``);
- **new** in B: a finding of B whose id A lacks, where A ran at least one of its results
  (``with_status(A, B, rows of A)`` calls it ``fixed``: gone when going back);
- **not compared**: a finding of B whose id A lacks and none of whose results A ran (a
  GPU box, an API or case only B's run has): nothing says the upgrade brought it;
- **changed**: a finding with the same id in both whose results *both version sets ran*
  (the same case instance, API, device, dtype and quantity) differ: it shows in results
  where it did not, or no longer in some (``results``); its worst ULP error over those
  results moved by more than a factor of 2 and more than 1 ULP, or appeared or vanished
  (``worst error``: :func:`~xentcheck.findings.group.ulp_moved`, the report's rule for a
  changed result; no ULP where a golden is 0); or what its rows did differs, as the set of
  each row's status, the status a known entry explained and the behaviour on an input to
  be rejected (``behaviour``: ``mismatch`` -> ``nonfinite``, ``known (mismatch)`` ->
  ``known (nonfinite)``, ``raised ValueError`` -> ``returned NaN``);
- **unchanged**: the same id, none of the above.

When one version set ran on several machines (labels differing by machine), its findings
and rows are pooled, each result taken once. :func:`compare_versions` writes the outcome
into the findings (``version_set``, ``upgrade``, ``fixed_in``); :func:`upgrades` reads it
back per pair for the renderers and the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from xentcheck.findings.group import row_key, shown_ulp, ulp_moved, with_status
from xentcheck.harness.merge import version_order, versions_of

Row = dict[str, Any]
#: an upgrade's status of a finding of the newer version set
STATUSES = ("new", "changed", "unchanged", "not compared")


@dataclass
class VersionSet:
    """One version set of a framework in merged results."""

    framework: str
    name: str  # "jax 0.10.2 (jaxlib 0.10.2)": the label without the machine
    versions: dict[str, str]
    variants: set[str] = field(default_factory=set)  # the row labels it covers


def version_sets(headers: Iterable[Mapping[str, Any]]) -> dict[str, list[VersionSet]]:
    """Framework -> its version sets, oldest first, for every framework that the headers'
    labels (``frameworks[name]["version_set"]``) show at two or more."""
    found: dict[str, dict[str, VersionSet]] = {}
    for h in headers:
        for fw, info in (h.get("frameworks") or {}).items():
            if not isinstance(info, dict) or not info.get("version_set"):
                continue
            name = str(info["version_set"])
            vs = found.setdefault(fw, {}).setdefault(name, VersionSet(fw, name, versions_of(h, fw)))
            vs.variants.add(str(info.get("variant") or name))
    return {
        fw: sorted(sets.values(), key=lambda v: (version_order(fw, v.versions), v.name))
        for fw, sets in sorted(found.items())
        if len(sets) > 1
    }


def outcome(row: Mapping[str, Any]) -> str:
    """What a row did, for ``behaviour``: its status, the status a known entry explained,
    and its behaviour on an input to be rejected (``known (mismatch)``, ``error: raised
    ValueError``)."""
    text = str(row.get("status"))
    if row.get("unexplained_status"):
        text += f" ({row['unexplained_status']})"
    if row.get("behaviour"):
        text += f": {row['behaviour']}"
    return text


def _ulp_text(x: float | None) -> str:
    return "none" if x is None else f"{x:g} ULP"


def differences(
    old_rows: Sequence[Row], new_rows: Sequence[Row], old_ran: set[tuple], new_ran: set[tuple]
) -> list[str]:
    """How one finding changed between two version sets (rule in the module docstring):
    ``old_rows``/``new_rows`` its rows at each, ``old_ran``/``new_ran`` the row keys each
    version set ran. [] when unchanged."""
    old = {tuple(row_key(r)): r for r in old_rows if tuple(row_key(r)) in new_ran}
    new = {tuple(row_key(r)): r for r in new_rows if tuple(row_key(r)) in old_ran}
    out = []
    gained, lost = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    if gained or lost:
        out.append(f"results: {gained} more, {lost} fewer (of those both version sets ran)")
    ulp = [max((u for r in rs.values() if (u := shown_ulp(r)) is not None), default=None)
           for rs in (old, new)]  # fmt: skip
    if old and new and ulp_moved(*ulp):
        out.append(f"worst error: {_ulp_text(ulp[0])} -> {_ulp_text(ulp[1])}")
    before = sorted({outcome(r) for r in old.values()})
    after = sorted({outcome(r) for r in new.values()})
    if old and new and before != after:
        out.append(f"behaviour: {', '.join(before)} -> {', '.join(after)}")
    return out


def _pool(found: Sequence[dict[str, Any]], vs: VersionSet) -> dict[str, dict[str, Any]]:
    """The current findings of ``vs`` by id (one per id; row keys of its labels joined)."""
    out: dict[str, dict[str, Any]] = {}
    for f in found:
        if f.get("framework") != vs.framework or f.get("status") == "fixed":
            continue
        if (f.get("variant") or "") not in vs.variants:
            continue
        pooled = out.setdefault(
            f["id"], {"id": f["id"], "framework": f["framework"], "row_keys": []}
        )
        pooled["row_keys"] += [k for k in f.get("row_keys") or [] if k not in pooled["row_keys"]]
    return out


def _rows_of(rows: Iterable[Row], vs: VersionSet) -> list[Row]:
    """The rows of ``vs`` (each result once, the first label's, when it ran on several)."""
    seen: set[tuple] = set()
    out = []
    for r in rows:
        if r.get("framework") != vs.framework or (r.get("variant") or "") not in vs.variants:
            continue
        k = tuple(row_key(r))
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def compare_versions(
    found: list[dict[str, Any]], rows: Sequence[Row], headers: Sequence[Mapping[str, Any]]
) -> None:
    """Compare each framework's consecutive version sets (module docstring) and write it
    into ``found``: a finding of a framework with several version sets gets
    ``version_set`` (its name); one of a newer set ``upgrade`` (``{from, to, status,
    changes}``, status one of :data:`STATUSES`); one fixed in the next set ``fixed_in``
    (that set's name). Findings of frameworks with one version set are left alone."""
    sets = version_sets(headers)
    if not sets:
        return
    by_variant = {(vs.framework, v): vs for vss in sets.values() for vs in vss for v in vs.variants}
    for f in found:
        vs = by_variant.get((f.get("framework"), f.get("variant") or ""))
        if vs is not None and f.get("status") != "fixed":
            f["version_set"] = vs.name
    for vss in sets.values():
        for a, b in pairwise(vss):
            _compare(found, rows, a, b)


def _compare(
    found: list[dict[str, Any]], rows: Sequence[Row], a: VersionSet, b: VersionSet
) -> None:
    rows_a, rows_b = _rows_of(rows, a), _rows_of(rows, b)
    fa, fb = _pool(found, a), _pool(found, b)
    forward = with_status(list(fb.values()), list(fa.values()), rows_b)
    backward = with_status(list(fa.values()), list(fb.values()), rows_a)
    fixed = {f["id"] for f in forward if f["status"] == "fixed"}
    new = {f["id"] for f in backward if f["status"] == "fixed"}
    ran_a = {tuple(row_key(r)) for r in rows_a}
    ran_b = {tuple(row_key(r)) for r in rows_b}
    members_a = _members(rows_a, found, a)
    members_b = _members(rows_b, found, b)
    for f in found:
        if f.get("framework") != b.framework or f.get("status") == "fixed":
            continue
        variant = f.get("variant") or ""
        if variant in b.variants:
            fid = f["id"]
            changes: list[str] = []
            if fid in fa:
                changes = differences(members_a.get(fid, []), members_b.get(fid, []), ran_a, ran_b)
                status = "changed" if changes else "unchanged"
            else:
                status = "new" if fid in new else "not compared"
            f["upgrade"] = {"from": a.name, "to": b.name, "status": status, "changes": changes}
        elif variant in a.variants and f["id"] in fixed:
            f["fixed_in"] = b.name


def _members(
    rows: Sequence[Row], found: Sequence[dict[str, Any]], vs: VersionSet
) -> dict[str, list[Row]]:
    """Finding id -> its rows among ``rows`` (the version set's), by the findings' row keys."""
    owner: dict[tuple, str] = {}
    for f in found:
        if (
            f.get("framework") == vs.framework
            and f.get("status") != "fixed"
            and (f.get("variant") or "") in vs.variants
        ):
            for k in f.get("row_keys") or []:
                owner.setdefault(tuple(k), f["id"])
    out: dict[str, list[Row]] = {}
    for r in rows:
        fid = owner.get(tuple(row_key(r)))
        if fid is not None:
            out.setdefault(fid, []).append(r)
    return out


def upgrades(
    found: Sequence[Mapping[str, Any]], headers: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each compared pair, read back from ``found`` after :func:`compare_versions`, in
    framework and version order: ``framework``, ``from``/``to`` (names),
    ``from_versions``/``to_versions``, ``new``, ``fixed``, ``changed`` (the findings
    themselves, ``changed`` ones with their ``upgrade.changes``), ``unchanged`` and
    ``not_compared`` (counts)."""
    out = []
    for fw, vss in version_sets(headers).items():
        for a, b in pairwise(vss):
            mine = [f for f in found if f.get("framework") == fw]
            newer = [f for f in mine if (f.get("upgrade") or {}).get("from") == a.name
                     and f["upgrade"].get("to") == b.name]  # fmt: skip
            of = {s: [f for f in newer if f["upgrade"]["status"] == s] for s in STATUSES}
            out.append({
                "framework": fw, "from": a.name, "to": b.name,
                "from_versions": a.versions, "to_versions": b.versions,
                "new": _unique(of["new"]), "changed": _unique(of["changed"]),
                "fixed": _unique([f for f in mine if f.get("fixed_in") == b.name
                                  and f.get("version_set") == a.name]),
                "unchanged": len({f["id"] for f in of["unchanged"]}),
                "not_compared": len({f["id"] for f in of["not compared"]}),
            })  # fmt: skip
    return out


def _unique(found: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One finding per id (a version set that ran on two machines has two)."""
    seen: set[str] = set()
    out = []
    for f in found:
        if f["id"] not in seen:
            seen.add(f["id"])
            out.append(f)
    return out
