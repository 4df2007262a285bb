"""What the HTML report shows, as data: merged runs, row identities, baseline changes.

Several results files (one per framework, per GPU box, per framework version) merge into
one set of rows. A row's identity is case/instance/framework/api/device/dtype/quantity,
plus a *variant* label naming the run's framework versions and device name when those
differ between the merged files (so torch 2.12 and torch 2.13 rows stay side by side).
``--baseline`` files are matched on the identity without the variant: each current row
is ``new``, ``fixed``, ``changed`` or ``unchanged`` against the earlier run.

The page data is columnar (:func:`columnar`): each categorical field becomes a table of
distinct values plus one small integer per row, so 100,000 rows stay a few megabytes.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

#: worst first (the order of the status filter and of "worst status" in a matrix cell)
SEVERITY = ("crash", "timeout", "error", "nonfinite", "mismatch", "known", "unsupported", "pass")
#: statuses that are a discrepancy (have a drill-down with a reproduction script)
DISCREPANT = ("crash", "timeout", "error", "nonfinite", "mismatch", "known")
#: baseline change labels, in display order
CHANGES = ("new", "fixed", "changed", "unchanged")
#: rows a drill-down exists for: everything that is not a plain pass
DETAILED = (*DISCREPANT, "unsupported")

IDENTITY = ("case", "instance", "framework", "api", "device", "dtype", "quantity")


def base_key(row: Row) -> tuple:
    """The identity of a result without the run variant (what a baseline is matched on)."""
    return tuple(row.get(k) for k in IDENTITY)


def severity(status: str) -> int:
    """Rank of ``status``: 0 is the worst; unknown statuses rank after all known ones."""
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


def worst(statuses: Iterable[str]) -> str:
    """The worst of ``statuses`` (``pass`` for none)."""
    ranked = sorted(set(statuses), key=severity)
    return ranked[0] if ranked else "pass"


@dataclass
class Merged:
    """Rows of several results files, each tagged with its run and variant."""

    headers: list[Row]
    rows: list[Row]
    run_of: list[int]  # index into headers, per row
    variant_of: list[str]  # "" unless the framework's runs differ between files
    replaced: int = 0  # rows dropped because a later file had the same identity
    files: list[str] = field(default_factory=list)
    header_file: list[int] = field(default_factory=list)  # index into files, per header


def _descriptor(header: Row, framework: str, device: str) -> str:
    """How a run of ``framework`` on ``device`` is told apart from another run of it."""
    info = (header.get("frameworks") or {}).get(framework) or {}
    versions = info.get("versions") or {}
    main = [f"{k} {v}" for k, v in versions.items() if k not in ("python", "numpy")]
    dev = (info.get("devices") or {}).get(device)
    return " · ".join([*main, *([str(dev)] if dev else [])])


def merge(files: Sequence[tuple[str, list[Row], list[Row]]]) -> Merged:
    """Merge ``(path, headers, rows)`` of several files into one identity-keyed set.

    The variant of a row is its run's framework versions and device name, set only where
    the merged runs of that framework and device disagree on them. A row whose identity
    (variant included) repeats in a later file replaces the earlier one, so the reference
    rows that every per-framework file carries appear once.
    """
    headers: list[Row] = []
    header_file: list[int] = []
    tagged: list[tuple[int, Row]] = []
    for n, (_, hs, rs) in enumerate(files):
        first = len(headers)
        headers += hs or [{}]
        header_file += [n] * len(hs or [{}])
        tagged += [(first, r) for r in rs]
    # which (framework, device) pairs have differing run descriptors
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for run, r in tagged:
        fw, dev = r.get("framework", ""), r.get("device", "")
        seen[(fw, dev)].add(_descriptor(headers[run], fw, dev))
    ambiguous = {k for k, v in seen.items() if len(v) > 1}
    by_key: dict[tuple, int] = {}
    out_rows: list[Row] = []
    run_of: list[int] = []
    variant_of: list[str] = []
    replaced = 0
    for run, r in tagged:
        fw, dev = r.get("framework", ""), r.get("device", "")
        variant = _descriptor(headers[run], fw, dev) if (fw, dev) in ambiguous else ""
        key = (*base_key(r), variant)
        if key in by_key:
            i = by_key[key]
            out_rows[i], run_of[i] = r, run
            replaced += fw != "reference"  # every per-framework file carries those
            continue
        by_key[key] = len(out_rows)
        out_rows.append(r)
        run_of.append(run)
        variant_of.append(variant)
    return Merged(
        headers, out_rows, run_of, variant_of, replaced, [f for f, _, _ in files], header_file
    )


def is_bad(status: str | None) -> bool:
    """A discrepancy that is not explained (fails ``--fail-on unexplained``)."""
    return status in ("crash", "timeout", "error", "nonfinite", "mismatch")


def changes(rows: Sequence[Row], baseline: Sequence[Row]) -> tuple[list[str], int]:
    """Each row's change against ``baseline`` and the number of baseline rows now gone.

    ``new``: no earlier result with that identity; ``fixed``: it was a discrepancy and is
    not any more; ``changed``: another status (a regression included), or the same
    status with a worst ULP error (:func:`shown_ulp`: none where a golden is 0) that moved
    by more than a factor of 2 (or appeared or vanished); ``unchanged``.
    """
    before: dict[tuple, tuple[str, Any]] = {
        base_key(r): (r.get("status", ""), shown_ulp(r)) for r in baseline
    }
    out = []
    present = set()
    for r in rows:
        k = base_key(r)
        present.add(k)
        if k not in before:
            out.append("new")
            continue
        old, old_ulp = before[k]
        if old == r.get("status"):
            out.append("changed" if _ulp_moved(old_ulp, shown_ulp(r)) else "unchanged")
        elif is_bad(old) and not is_bad(r.get("status")):
            out.append("fixed")
        else:
            out.append("changed")
    return out, sum(1 for k in before if k not in present)


def _ulp_moved(old: Any, new: Any) -> bool:
    """Whether a worst ULP error moved by more than a factor of 2 (or appeared/vanished)."""
    a, b = short_float(old), short_float(new)
    if a is None or b is None:
        return (a is None) != (b is None)
    lo, hi = sorted((a, b))
    return hi > 2 * lo and hi - lo > 1


def shown_ulp(row: Row) -> float | None:
    """The worst ULP error the report shows for ``row``: ``max_ulp`` (rounded as
    :func:`short_float`), or None where it is absent or not defined.

    A ULP is the spacing of the dtype's numbers at the golden value. Where the golden is 0
    that spacing is the smallest subnormal (5e-324 in float64, 1e-45 in float32), so a
    harmless rounding error of 1e-16 reads as 4e307 ULP. A row keeps no golden per
    element, but such an element shows in it: its relative error is infinite, so
    ``max_rel_err`` is null while ``max_abs_err`` is a positive number. There the ULP is
    not defined: the page shows a dash and the absolute error stands for it.
    """
    ulp = short_float(row.get("max_ulp"))
    if ulp is None or not zero_golden(row):
        return ulp
    return None


def zero_golden(row: Row) -> bool:
    """Whether ``row`` has an element whose golden is 0 and whose actual is not (see
    :func:`shown_ulp`)."""
    abs_err = short_float(row.get("max_abs_err"))
    return row.get("max_rel_err") is None and abs_err is not None and abs_err > 0


def short_float(x: Any) -> float | None:
    """A float rounded to 4 significant digits (for sorting and display), None if absent."""
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return None
    return float(f"{x:.4g}")


class Column:
    """A categorical column: distinct values in first-seen order, one code per row."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.codes: list[int] = []
        self._index: dict[Any, int] = {}

    def add(self, value: Any) -> int:
        key = value if isinstance(value, str | int | float | type(None)) else repr(value)
        code = self._index.get(key)
        if code is None:
            code = self._index[key] = len(self.values)
            self.values.append(value)
        self.codes.append(code)
        return code

    def to_json(self) -> dict[str, list]:
        return {"v": self.values, "c": self.codes}


def status_counts(rows: Iterable[Row]) -> dict[str, int]:
    counts = Counter(r.get("status", "") for r in rows)
    return {s: counts[s] for s in sorted(counts, key=severity)}
