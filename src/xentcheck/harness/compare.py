"""Comparing a framework's output with the golden: tolerances, errors, NaN/Inf patterns.

``compare(expected, actual, dtype, tolerance)`` returns a :class:`Comparison` with the
status (``pass``, ``mismatch`` or ``nonfinite``) and the errors of the worst element:
absolute, relative and in ULPs of the dtype under test.

The criterion is :mod:`xentcheck.accuracy`'s (its ``DEFAULT_TOLERANCE`` is torch.testing's
table): an element passes when ``|actual - expected| <= atol + rtol * |expected|``.
Non-finite values must match exactly: NaN where the golden is NaN, +inf where it is +inf,
-inf where it is -inf; otherwise the status is ``nonfinite`` whatever the finite elements
do. ``compare`` passes exactly when :func:`xentcheck.accuracy.agrees` holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from xentcheck.accuracy import DEFAULT_TOLERANCE
from xentcheck.dtypes import ulp
from xentcheck.floats import float_ulp_one

SAMPLES = 4  # elements of expected/actual kept in a result row


@dataclass
class Comparison:
    status: str
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    max_ulp: float | None = None
    index: list[int] | None = (
        None  # multi-index of the worst (or first non-finite-differing) element
    )
    expected: list = field(default_factory=list)
    actual: list = field(default_factory=list)
    note: str = ""
    #: the error allowed at the worst element, in ULPs of the dtype (None: no element)
    allowed_ulp: float | None = None
    #: max over the finite elements of error / error allowed (> 1 fails; None: no element,
    #: or an error where nothing is allowed)
    excess: float | None = None


def tolerance_for(dtype: str, case_tolerance: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``: the case's per-dtype or global override, else the default."""
    rtol, atol = DEFAULT_TOLERANCE[dtype]
    for key in ("*", dtype):
        t = case_tolerance.get(key, {})
        rtol, atol = t.get("rtol", rtol), t.get("atol", atol)
    return rtol, atol


def compare(
    expected: np.ndarray, actual: np.ndarray, dtype: str, rtol: float, atol: float,
    *, allowance: np.ndarray | None = None,
) -> Comparison:  # fmt: skip
    """Compare ``actual`` with ``expected`` (both float64 arrays) at the tolerance.

    An element passes when its error is at most ``atol + rtol * |expected|`` or, when
    ``allowance`` is given (an array of ``expected``'s shape, or a scalar), at most its
    element of ``allowance``: the larger of the two bounds holds.
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if allowance is not None:
        allowance = np.broadcast_to(np.asarray(allowance, dtype=np.float64), expected.shape)
    note = ""
    if expected.shape != actual.shape:
        if expected.size != actual.size:
            return Comparison(
                "mismatch",
                note=f"shape {list(actual.shape)} where the reference has {list(expected.shape)}",
                expected=sample(expected.ravel()[:SAMPLES]),
                actual=sample(actual.ravel()[:SAMPLES]),
            )
        note = f"shape {list(actual.shape)} where the reference has {list(expected.shape)}"
        actual = actual.reshape(expected.shape)
    if 0 < expected.size <= FEW:  # loss values: most comparisons, cheapest without arrays
        e, a = expected.ravel().tolist(), actual.ravel().tolist()
        if all(map(math.isfinite, e)) and all(map(math.isfinite, a)):
            allowed = None if allowance is None else allowance.ravel().tolist()
            return _compare_few(e, a, expected.shape, dtype, rtol, atol, note, allowed)
    if expected.size:
        c = _compare_finite(expected, actual, dtype, rtol, atol, note, allowance)
        if c is not None:
            return c
    e_fin = np.isfinite(expected)
    a_fin = np.isfinite(actual)
    same_pattern = (
        np.array_equal(np.isnan(expected), np.isnan(actual))
        and np.array_equal(expected == np.inf, actual == np.inf)
        and np.array_equal(expected == -np.inf, actual == -np.inf)
    )
    both = e_fin & a_fin
    with np.errstate(divide="ignore", invalid="ignore"):
        abs_err = np.where(both, np.abs(actual - expected), 0.0)
        rel_err = np.where(both, abs_err / np.abs(expected), 0.0)
        rel_err = np.where(both & (abs_err == 0), 0.0, rel_err)
        ulp_err = np.where(both, abs_err / ulp(np.where(both, expected, 1.0), dtype), 0.0)
    maxima = [x.max() if x.size else 0.0 for x in (abs_err, rel_err, ulp_err)]
    bound = atol + rtol * np.abs(np.where(both, expected, 0.0))
    if allowance is not None:
        bound = np.fmax(bound, np.where(both, allowance, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(both & (abs_err > 0), abs_err / bound, 0.0)
    excess = ratio.max() if ratio.size else None
    if not same_pattern:
        bad = ~((np.isnan(expected) & np.isnan(actual)) | (expected == actual) | both)
        idx = np.unravel_index(int(np.argmax(bad)), expected.shape) if expected.size else ()
        c = _result("nonfinite", expected, actual, *maxima, idx, note)
        c.note = (note + "; " if note else "") + "NaN/Inf pattern differs from the reference"
        c.excess = _finite_or_none(excess) if excess is not None else None
        return c
    bad = abs_err > bound
    if expected.size == 0:
        return Comparison("pass", 0.0, 0.0, 0.0, note=note)
    worst = int(np.argmax(np.where(bad, ulp_err, -1.0))) if bad.any() else int(np.argmax(ulp_err))
    idx = np.unravel_index(worst, expected.shape)
    c = _result("mismatch" if bad.any() else "pass", expected, actual, *maxima, idx, note)
    return _with_bound(c, expected.ravel()[worst], bound.ravel()[worst], excess, dtype)


def _with_bound(c: Comparison, expected: float, bound: float, excess, dtype: str) -> Comparison:
    """``c`` with ``allowed_ulp`` (``bound`` at the worst element, whose golden is
    ``expected``) and ``excess`` filled in."""
    if math.isfinite(expected):
        with np.errstate(over="ignore"):
            c.allowed_ulp = _finite_or_none(
                np.float64(bound) / float_ulp_one(float(expected), dtype)
            )
    c.excess = None if excess is None else _finite_or_none(excess)
    return c


#: arrays up to this many elements are compared in Python floats (see :func:`_compare_few`)
FEW = 16


def _compare_few(
    e: list[float], a: list[float], shape, dtype, rtol, atol, note, allowed=None
) -> Comparison:
    """:func:`compare` of a few finite elements (flat lists of Python floats, the arrays of
    ``shape``; ``allowed`` the allowance's elements, or None): loss values, mostly. Python
    floats are IEEE doubles as NumPy's are, so the numbers are the same; what is saved is
    some twenty NumPy calls on tiny arrays."""
    max_abs = max_rel = max_ulp = excess = 0.0
    worst_ulp, worst, failing = -1.0, 0, False
    bounds = []
    for i, (x, y) in enumerate(zip(e, a, strict=True)):
        abs_err = abs(y - x)  # inf where the difference overflows, as NumPy's
        mag = abs(x)
        ulp_err = abs_err / float_ulp_one(x, dtype)
        max_abs = max(max_abs, abs_err)
        max_rel = max(max_rel, 0.0 if abs_err == 0 else abs_err / mag if mag else math.inf)
        max_ulp = max(max_ulp, ulp_err)
        bound = atol + rtol * mag
        if allowed is not None and allowed[i] > bound:  # NaN allows nothing, as np.fmax's
            bound = allowed[i]
        bounds.append(bound)
        if abs_err > 0:
            excess = max(excess, abs_err / bound if bound else math.inf)
        bad = abs_err > bound
        if bad and not failing:  # from the first failing element on, only those count
            failing, worst_ulp, worst = True, ulp_err, i
        elif bad == failing and ulp_err > worst_ulp:  # the first of equal ones stays
            worst_ulp, worst = ulp_err, i
    lo = max(0, worst - 1)
    c = Comparison(
        "mismatch" if failing else "pass",
        max_abs_err=_finite_or_none(max_abs),
        max_rel_err=_finite_or_none(max_rel),
        max_ulp=_finite_or_none(max_ulp),
        index=[int(i) for i in np.unravel_index(worst, shape)],
        expected=e[lo : lo + SAMPLES],
        actual=a[lo : lo + SAMPLES],
        note=note,
    )
    return _with_bound(c, e[worst], bounds[worst], excess, dtype)


#: elements per block of :func:`_compare_finite`: its temporaries stay in the CPU's caches
BLOCK = 1 << 16


def _compare_finite(expected, actual, dtype, rtol, atol, note, allowance=None) -> Comparison | None:
    """:func:`compare` of two non-empty arrays of one shape whose elements are all finite
    (the common case); None when one is not (the general path takes it).

    Block by block, so that a large array costs one read of each input rather than a
    dozen passes through fresh buffers in memory; the maxima and the worst element (the
    first of the largest ULP error, among the failing elements if any) are those of the
    whole arrays, element for element the numbers of the general path.
    """
    e_all, a_all = expected.reshape(-1), actual.reshape(-1)
    w_all = None if allowance is None else allowance.reshape(-1)
    max_abs = max_ulp = excess = 0.0
    worst_bound = 0.0
    max_rel = np.nan
    worst_ulp, worst = -1.0, 0  # over every element, or over the failing ones once one fails
    failing = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for lo in range(0, e_all.size, BLOCK):
            e, a = e_all[lo : lo + BLOCK], a_all[lo : lo + BLOCK]
            abs_err = np.subtract(a, e)
            np.abs(abs_err, out=abs_err)
            top = abs_err.max()  # NaN or inf unless both are finite (or a difference overflows)
            if not np.isfinite(top) and not (np.isfinite(e).all() and np.isfinite(a).all()):
                return None
            mag = np.abs(e)
            scratch = np.divide(abs_err, mag)  # relative errors; NaN at 0 / 0, which is none
            max_rel = np.fmax(max_rel, np.fmax.reduce(scratch))
            np.multiply(mag, rtol, out=scratch)
            scratch += atol
            if w_all is not None:
                np.fmax(scratch, w_all[lo : lo + BLOCK], out=scratch)
            bad = abs_err > scratch  # beyond the bound
            ratio = np.divide(abs_err, scratch, out=mag)  # mag is not needed any more
            ratio[abs_err == 0] = 0.0
            excess = max(excess, ratio.max())
            ulp_err = ulp(e, dtype)
            np.divide(abs_err, ulp_err, out=ulp_err)
            i = int(np.argmax(ulp_err))
            max_abs, max_ulp = max(max_abs, top), max(max_ulp, ulp_err[i])
            if bad.any():
                if not failing:
                    failing, worst_ulp = True, -1.0
                i = int(np.argmax(np.where(bad, ulp_err, -1.0)))
            elif failing:
                continue
            if ulp_err[i] > worst_ulp:  # the first of equal ones stays
                worst_ulp, worst, worst_bound = ulp_err[i], lo + i, scratch[i]
    idx = np.unravel_index(worst, expected.shape)
    max_rel = 0.0 if np.isnan(max_rel) else max_rel
    status = "mismatch" if failing else "pass"
    c = _result(status, expected, actual, max_abs, max_rel, max_ulp, idx, note)
    return _with_bound(c, e_all[worst], worst_bound, excess, dtype)


def _result(status, expected, actual, max_abs, max_rel, max_ulp, idx, note) -> Comparison:
    flat = int(np.ravel_multi_index(idx, expected.shape)) if expected.size else 0
    lo = max(0, flat - 1)
    return Comparison(
        status,
        max_abs_err=_finite_or_none(max_abs),
        max_rel_err=_finite_or_none(max_rel),
        max_ulp=_finite_or_none(max_ulp),
        index=[int(i) for i in idx],
        expected=sample(expected.ravel()[lo : lo + SAMPLES]),
        actual=sample(actual.ravel()[lo : lo + SAMPLES]),
        note=note,
    )


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def sample(a: np.ndarray) -> list:
    """JSON-safe list of floats: non-finite values as the strings 'nan', 'inf', '-inf'."""
    return [to_json_number(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def to_json_number(x: float) -> float | str:
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x
