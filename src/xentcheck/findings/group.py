"""Grouping result rows into findings: one per framework behaviour.

A *finding* is one thing a framework does differently from the reference, however many
rows show it. The rule (docs/findings.md gives the reasons):

1. Every non-passing row (status ``mismatch``, ``nonfinite``, ``error``, ``crash``,
   ``timeout`` or ``known``; not ``pass`` or ``unsupported``) gets a **kind**
   (:func:`row_kind`) and a **behaviour signature** (:func:`signature`): the known entry's
   id, the exception type, what was returned instead of raising, the NaN/Inf pattern.
2. Rows are grouped by (framework, API, loss, kind, signature, quantity) — the quantity
   only for the numeric kinds (``wrong``, ``precision``, ``nonfinite``): a wrong value and
   a wrong gradient come from different kernels (forward and backward) and are two
   findings; the other kinds describe the call as a whole, so value and gradients of one
   behaviour are one finding. Cases, sweep points, dtypes and devices collapse.
3. Groups of one framework with the same (loss, kind, signature, quantity) whose point
   sets ``{(case, dtype, device, quantity)}`` are identical merge: APIs that fail in
   exactly the same cases, dtypes and devices share an implementation
   (``F.cross_entropy`` and ``nn.CrossEntropyLoss``). The sweep point (instance) is left
   out of the point: API variants that differ only by a parameter the cases sweep
   (``optax...+sum`` and ``optax...+mean`` around one kernel) run at different sweep
   points of the same cases, and are one behaviour of that kernel.

A finding's ``id`` is a digest of its key (framework, loss, kind, signature, quantity
and the sorted APIs): the same behaviour has the same id in every run and version, so a
baseline's findings compare with a new run's whatever the row order or counts.

Rows of a framework that merged files hold at several version sets carry a label
(``variant``, :mod:`xentcheck.harness.merge`): the label is part of every grouping key,
so the rows of ``jax 0.9.2`` and ``jax 0.10.2`` never share a finding; the id leaves it
out, so one behaviour at both version sets is two findings with one id (how an
upgrade's findings are compared: :mod:`xentcheck.findings.versions`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

#: statuses a finding is made of (``pass`` and ``unsupported`` are not findings)
FINDING_STATUSES = ("mismatch", "nonfinite", "error", "crash", "timeout", "known")

#: kind -> severity (1 most severe). Silent before loud: a wrong finite number looks like a
#: right one; a NaN/Inf is silent but visible downstream; error behaviour (a value returned
#: for an invalid input, or a raise on a valid one) is half silent, half loud; a crash is
#: loud; lost precision is the right formula with fewer digits; a semantic difference is a
#: documented definition of its own.
SEVERITY: dict[str, int] = {
    "wrong": 1,
    "nonfinite": 2,
    "error-behaviour": 3,
    "crash": 4,
    "precision": 5,
    "semantic": 6,
}
KINDS = tuple(SEVERITY)
#: kinds whose findings are per quantity (value, each gradient)
PER_QUANTITY = frozenset({"wrong", "precision", "nonfinite"})


def row_kind(row: Mapping[str, Any]) -> str | None:
    """The finding kind of a row, None for a row that is no finding (pass, unsupported)."""
    status = row.get("status")
    if status not in FINDING_STATUSES:
        return None
    if status == "known":
        return "semantic"
    if status in ("crash", "timeout"):
        return "crash"
    if status == "error" or row.get("expect_error"):
        return "error-behaviour"
    if status == "nonfinite":
        return "nonfinite"
    return "precision" if row.get("accuracy") == "precision" else "wrong"


def _classify(x: Any) -> str:
    if isinstance(x, str):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(x, "finite")
    if x is None:
        return "none"
    f = float(x)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return "finite"


def index_in_sample(row: Mapping[str, Any]) -> int | None:
    """The position of the row's worst element (``index``) in its ``expected``/``actual``
    samples (they start one element before it), None when the row has no index."""
    index, shape = row.get("index"), row.get("shape")
    if index is None or shape is None:
        return None
    flat = 0
    for i, n in zip(index, shape, strict=False):
        flat = flat * int(n) + int(i)
    return flat - max(0, flat - 1)


def nonfinite_pattern(row: Mapping[str, Any]) -> str:
    """``expected -> actual`` classes at the first element whose NaN/Inf pattern differs
    (``finite -> NaN``, ``+Inf -> finite`` ...)."""
    k = index_in_sample(row)
    exp, act = row.get("expected") or [], row.get("actual") or []
    if k is None or k >= len(exp) or k >= len(act):
        return "NaN/Inf pattern"
    return f"{_classify(exp[k])} -> {_classify(act[k])}"


def exception_type(message: str | None) -> str:
    """``ValueError`` of ``"ValueError: ..."`` (the worker's form), else ``exception``."""
    head = (message or "").split(":", 1)[0].strip()
    return (
        head
        if head.replace(".", "").replace("_", "").isalnum() and " " not in head
        else "exception"
    )


def signature(row: Mapping[str, Any], kind: str) -> str:
    """What a row's behaviour is, beyond its kind: rows with one signature behave alike."""
    if kind == "semantic":
        return str(row.get("known_id") or "")
    if kind == "crash":
        return str(row.get("status"))
    if kind == "nonfinite":
        return nonfinite_pattern(row)
    if kind == "error-behaviour":
        behaviour = str(row.get("behaviour") or "")
        if behaviour.startswith("returned") or str(row.get("message", "")).startswith("returned"):
            return behaviour or "returned a value"
        if row.get("status") == "error":
            return f"raised {exception_type(row.get('message'))}"
        return behaviour or "error"
    if row.get("index") is None and row.get("max_ulp") is None:  # a shape that differs
        return "shape"
    return ""


def point(row: Mapping[str, Any]) -> tuple[str, ...]:
    """Where a row is, for merging APIs: (case, dtype, device, quantity)."""
    return tuple(str(row.get(k, "")) for k in ("case", "dtype", "device", "quantity"))


def row_key(row: Mapping[str, Any]) -> list[str]:
    """The ``row_keys`` entry of a row: [case, instance, api, device, dtype, quantity]."""
    return [str(row.get(k, "")) for k in ("case", "instance", "api", "device", "dtype", "quantity")]


def badness(row: Mapping[str, Any]) -> float:
    """How bad a row is within its finding: ``excess`` (error / allowance) when the row has
    it, else its ULP error; non-numeric rows count 0."""
    for key in ("excess", "max_ulp"):
        v = row.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v) if math.isfinite(v) else math.inf
    return 0.0


@dataclass
class Group:
    """Rows of one behaviour: the key and the rows."""

    framework: str
    loss: str
    kind: str
    signature: str
    quantity: str  # "" for the kinds that are not per quantity
    apis: set[str] = field(default_factory=set)
    rows: list[Row] = field(default_factory=list)
    variant: str = ""  # the rows' label when the framework has several version sets

    @property
    def points(self) -> frozenset[tuple[str, ...]]:
        return frozenset(point(r) for r in self.rows)

    @property
    def severity(self) -> int:
        return SEVERITY[self.kind]

    @property
    def id(self) -> str:
        return finding_id(
            self.framework, self.loss, self.kind, self.signature, self.quantity, self.apis
        )

    def worst(self) -> Row:
        """The worst row (largest excess or ULP error; the first in key order of equals)."""
        ordered = sorted(self.rows, key=lambda r: json.dumps(row_key(r)))
        return max(ordered, key=badness)


def finding_id(
    framework: str, loss: str, kind: str, sig: str, quantity: str, apis: Iterable[str]
) -> str:
    """The stable id of a finding: ``<framework>:<kind>:<10 hex digits>``, a SHA-256 digest
    of the key fields (never of counts or order)."""
    key = json.dumps([framework, loss, kind, sig, quantity, sorted(apis)])
    return f"{framework}:{kind}:{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def group_rows(rows: Iterable[Row], kinds: Mapping[int, str] | None = None) -> list[Group]:
    """The findings' groups of ``rows`` (rule in the module docstring), sorted by severity,
    framework and id. ``kinds``: ``id(row) -> kind`` overrides (rows a user entry explains)."""
    by_api: dict[tuple[str, ...], Group] = {}
    for r in rows:
        kind = (kinds or {}).get(id(r)) or row_kind(r)
        if kind is None:
            continue
        sig = signature(r, kind)
        quantity = str(r.get("quantity", "value")) if kind in PER_QUANTITY else ""
        fw, api, loss = str(r.get("framework", "")), str(r.get("api", "")), str(r.get("loss", ""))
        variant = str(r.get("variant") or "")
        key = (fw, variant, api, loss, kind, sig, quantity)
        g = by_api.get(key)
        if g is None:
            g = by_api[key] = Group(fw, loss, kind, sig, quantity, {api}, variant=variant)
        g.rows.append(r)
    merged: dict[tuple[Any, ...], Group] = {}
    for g in sorted(by_api.values(), key=lambda g: sorted(g.apis)):
        key = (g.framework, g.variant, g.loss, g.kind, g.signature, g.quantity, g.points)
        if key in merged:
            merged[key].apis |= g.apis
            merged[key].rows += g.rows
        else:
            merged[key] = g
    return sorted(merged.values(), key=lambda g: (g.severity, g.framework, g.variant, g.id))


def sorted_unique(values: Iterable[Any]) -> list[str]:
    """Sorted distinct non-empty strings of ``values``."""
    return sorted({str(v) for v in values if v not in (None, "")})


def with_status(
    current: Sequence[dict[str, Any]],
    baseline: Sequence[dict[str, Any]] | None,
    current_rows: Iterable[Row],
) -> list[dict[str, Any]]:
    """Findings with ``status`` against a baseline's findings.

    ``new``: not in the baseline (every finding when there is none); ``unchanged``: its id
    is in the baseline; ``fixed``: a baseline finding whose id is not found now, though
    the current run ran at least one of its (framework, API, point)s (a finding whose
    points did not run at all is left out: nothing says it is fixed).
    """
    if baseline is None:
        return [{**f, "status": "new"} for f in current]
    old = {f["id"]: f for f in baseline}
    out = [{**f, "status": "unchanged" if f["id"] in old else "new"} for f in current]
    now = {f["id"] for f in current}
    ran = {(str(r.get("framework")), *row_key(r)) for r in current_rows}
    for fid, f in old.items():
        if fid in now:
            continue
        if any((f["framework"], *k) in ran for k in f.get("row_keys", [])):
            fixed = {**f, "status": "fixed", "repro": None}
            fixed["repro_note"] = "fixed: the current run no longer shows this behaviour"
            out.append(fixed)
    return out


# ---------- ULP errors as the report shows them, and when one moved ----------


def ulp_moved(old: Any, new: Any) -> bool:
    """Whether a worst ULP error moved by more than a factor of 2 and more than 1 ULP (or
    appeared or vanished): the report's "changed" result and an upgrade's changed finding."""
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
