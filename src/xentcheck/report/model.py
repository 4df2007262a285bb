"""What the HTML report shows, as data: merged runs, row identities, baseline changes.

Several results files (one per framework, per GPU box, per shard, per framework version)
merge into one set of rows (:mod:`xentcheck.harness.merge`). A row's identity is
case/instance/framework/api/device/dtype/quantity, plus a *variant* label naming the
run's framework versions (and machine) when the merged runs hold that framework at
several (so torch 2.12 and torch 2.13 rows stay side by side).
``--baseline`` files are matched on the identity without the variant: each current row
is ``new``, ``fixed``, ``changed`` or ``unchanged`` against the earlier run.

The page data is columnar (:func:`columnar`): each categorical field becomes a table of
distinct values plus one small integer per row, so 100,000 rows stay a few megabytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xentcheck.findings.group import shown_ulp, ulp_moved
from xentcheck.harness.merge import Merged as Combined
from xentcheck.harness.merge import combine

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
    replaced: int = 0  # results two files held alike, kept once
    files: list[str] = field(default_factory=list)
    header_file: list[int] = field(default_factory=list)  # index into files, per header
    combined: Combined | None = None  # the sources and runs of the merge


def merge(files: Sequence[tuple[str, list[Row], list[Row]]]) -> Merged:
    """Merge ``(path, headers, rows)`` of several files into one identity-keyed set
    (:func:`xentcheck.harness.merge.combine`: shards of a run as one, a framework at
    several version sets or machines labelled per run, a result two files hold alike kept
    once, two files claiming one result differently an error naming both)."""
    return wrap(combine(files))


def wrap(m: Combined) -> Merged:
    """The report's view of a merge (:func:`xentcheck.harness.merge.read`'s result)."""
    return Merged(m.headers, m.rows, m.run_of, [m.variant(i) for i in range(len(m.rows))],
                  m.duplicates, m.files, list(range(len(m.headers))), m)  # fmt: skip


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
            out.append("changed" if ulp_moved(old_ulp, shown_ulp(r)) else "unchanged")
        elif is_bad(old) and not is_bad(r.get("status")):
            out.append("fixed")
        else:
            out.append("changed")
    return out, sum(1 for k in before if k not in present)


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
