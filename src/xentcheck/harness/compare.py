"""Comparing a framework's output with the golden: tolerances, errors, NaN/Inf patterns.

``compare(expected, actual, dtype, tolerance)`` returns a :class:`Comparison` with the
status (``pass``, ``mismatch`` or ``nonfinite``) and the errors of the worst element:
absolute, relative and in ULPs of the dtype under test.

Default tolerances are torch.testing's table (``assert_close``): an element passes when
``|actual - expected| <= atol + rtol * |expected|``. Non-finite values must match exactly:
NaN where the golden is NaN, +inf where it is +inf, -inf where it is -inf; otherwise the
status is ``nonfinite`` whatever the finite elements do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xentcheck.dtypes import ulp

#: dtype -> (rtol, atol), torch.testing.assert_close defaults
DEFAULT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}

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


def tolerance_for(dtype: str, case_tolerance: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``: the case's per-dtype or global override, else the default."""
    rtol, atol = DEFAULT_TOLERANCE[dtype]
    for key in ("*", dtype):
        t = case_tolerance.get(key, {})
        rtol, atol = t.get("rtol", rtol), t.get("atol", atol)
    return rtol, atol


def compare(
    expected: np.ndarray, actual: np.ndarray, dtype: str, rtol: float, atol: float
) -> Comparison:
    """Compare ``actual`` with ``expected`` (both float64 arrays) at the tolerance."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
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
    if expected.size and np.isfinite(expected).all() and np.isfinite(actual).all():
        return _compare_finite(expected, actual, dtype, rtol, atol, note)
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
    if not same_pattern:
        bad = ~((np.isnan(expected) & np.isnan(actual)) | (expected == actual) | both)
        idx = np.unravel_index(int(np.argmax(bad)), expected.shape) if expected.size else ()
        c = _result("nonfinite", expected, actual, abs_err, rel_err, ulp_err, idx, note)
        c.note = (note + "; " if note else "") + "NaN/Inf pattern differs from the reference"
        return c
    bad = abs_err > atol + rtol * np.abs(np.where(both, expected, 0.0))
    if expected.size == 0:
        return Comparison("pass", 0.0, 0.0, 0.0, note=note)
    worst = int(np.argmax(np.where(bad, ulp_err, -1.0))) if bad.any() else int(np.argmax(ulp_err))
    idx = np.unravel_index(worst, expected.shape)
    return _result(
        "mismatch" if bad.any() else "pass", expected, actual, abs_err, rel_err, ulp_err, idx, note
    )


def _compare_finite(expected, actual, dtype, rtol, atol, note) -> Comparison:
    """:func:`compare` where every element of both arrays is finite (the common case)."""
    abs_err = np.abs(actual - expected)
    mag = np.abs(expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(abs_err == 0, 0.0, abs_err / mag)
    ulp_err = abs_err / ulp(expected, dtype)
    bad = abs_err > atol + rtol * mag
    worst = int(np.argmax(np.where(bad, ulp_err, -1.0))) if bad.any() else int(np.argmax(ulp_err))
    idx = np.unravel_index(worst, expected.shape)
    status = "mismatch" if bad.any() else "pass"
    return _result(status, expected, actual, abs_err, rel_err, ulp_err, idx, note)


def _result(status, expected, actual, abs_err, rel_err, ulp_err, idx, note) -> Comparison:
    flat = int(np.ravel_multi_index(idx, expected.shape)) if expected.size else 0
    lo = max(0, flat - 1)
    return Comparison(
        status,
        max_abs_err=_finite_or_none(abs_err.max() if abs_err.size else 0.0),
        max_rel_err=_finite_or_none(rel_err.max() if rel_err.size else 0.0),
        max_ulp=_finite_or_none(ulp_err.max() if ulp_err.size else 0.0),
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
