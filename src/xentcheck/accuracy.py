"""The accuracy criterion: when a framework's array agrees with the golden.

An element agrees when both are finite and ``|actual - expected| <= atol + rtol *
|expected|``, or when both are the same non-finite value (NaN and NaN, +inf and +inf,
-inf and -inf). Arrays agree when every element does. The default ``(rtol, atol)`` per
dtype is torch.testing's table (``assert_close``).

This module sits below the harness, the adapters and ``known/``: the harness's
:func:`xentcheck.harness.compare.compare` applies the criterion to a result row (and
measures the errors), and the known-difference predicates ask it where a finding
differs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from xentcheck.floats import FLOAT_FORMATS, float_ulp

#: dtype -> (rtol, atol), torch.testing.assert_close defaults
DEFAULT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}


def disagreeing(expected, actual, rtol: float, atol: float) -> np.ndarray | None:
    """Where ``actual`` fails the criterion against ``expected``, element by element.

    Returns a bool array of ``expected``'s shape (``actual`` of the same size is read in
    that shape), or None when their sizes differ (no element-wise answer).
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        if e.size != a.size:
            return None
        a = a.reshape(e.shape)
    both = np.isfinite(e) & np.isfinite(a)
    same_special = (np.isnan(e) & np.isnan(a)) | (~np.isfinite(e) & (e == a))
    with np.errstate(invalid="ignore", over="ignore"):
        close = both & (np.abs(a - e) <= atol + rtol * np.abs(np.where(both, e, 0.0)))
    return ~(close | same_special)


def agrees(expected, actual, rtol: float, atol: float) -> bool:
    """True when every element of ``actual`` agrees with ``expected`` (the status
    ``pass`` of :func:`xentcheck.harness.compare.compare`); False for different sizes."""
    d = disagreeing(expected, actual, rtol, atol)
    return d is not None and not d.any()


# ---------------------------------------------------------------- the ULP criterion

#: the criteria a run can judge with: ``ulp`` (default) and ``tolerance`` (the table above)
CRITERIA: tuple[str, ...] = ("ulp", "tolerance")
#: R: ULPs of the output dtype allowed at every element (rounding the result costs 1/2)
ROUNDING_ULP = 8.0
#: K: multiples of the sensitivity D (a backward error of K unit roundoffs per input)
BACKWARD_FACTOR = 16.0
#: dtype -> (name, significand bits) of the lower precision a failing row is judged at for
#: ``accuracy: precision``: the next format down where there is one, else two thirds of
#: the dtype's own bits (see docs/accuracy.md)
LOWER_PRECISION: dict[str, tuple[str, int]] = {
    "float64": ("float32", 24),
    "float32": ("16 bits", 16),
    "float16": ("bfloat16", 8),
    "bfloat16": ("5 bits", 5),
}


def unit_roundoff(dtype: str) -> float:
    """u = 2**-(m + 1) of ``dtype`` (m explicit fraction bits): half its ULP at 1."""
    return 2.0 ** -(FLOAT_FORMATS[dtype][0] + 1)


def reduction_terms(sizes: Iterable[int], last: int, quantity_size: int) -> int:
    """n: the most terms one element of a quantity can sum, as the criterion counts it.

    ``sizes``: the sizes of the floating inputs; ``last``: the length of the largest one's
    last axis (the class axis of the softmax family); ``quantity_size``: the size of the
    compared array. A reduced value sums ``max(sizes) / quantity_size`` terms; every
    element of the softmax family sums over its class axis.
    """
    biggest = max(sizes, default=1)
    return max(1, biggest // max(1, quantity_size), last)


def rounding_allowance(expected: np.ndarray, dtype: str, terms: int = 1) -> np.ndarray:
    """The cheap bound: ``(R + log2 n) * ulp(expected)`` in ``dtype`` (n = ``terms``).

    What rounding the result, and summing n terms pairwise, costs a correct computation
    of a well-conditioned quantity. Non-finite ``expected`` elements get NaN (they are
    judged by their pattern, not by an allowance).
    """
    return (ROUNDING_ULP + math.log2(max(1, terms))) * float_ulp(expected, dtype)


def allowance(
    expected: np.ndarray, dtype: str, sensitivity: np.ndarray | None = None, terms: int = 1
) -> np.ndarray:
    """The error a correct ``dtype`` computation may make at each element of ``expected``.

    ``(R + log2 n) * ulp(expected) + K * D``: ``D`` (``sensitivity``, same shape, float64)
    is how far the exact function moves when every floating input moves by a relative
    ``u`` of ``dtype`` (see :mod:`xentcheck.harness.sensitivity`); None means 0.
    """
    a = rounding_allowance(expected, dtype, terms)
    if sensitivity is not None:
        a = a + BACKWARD_FACTOR * np.nan_to_num(np.asarray(sensitivity, dtype=np.float64))
    return a


def lower_allowance(
    expected: np.ndarray, dtype: str, bits: int, sensitivity: np.ndarray | None, terms: int = 1
) -> np.ndarray:
    """:func:`allowance` of a computation carrying ``bits`` significand bits.

    The ULP is that of ``bits`` without an exponent range (a tiny result is not excused by
    a lower format's underflow: this asks about digits, not range), except below
    ``dtype``'s smallest normal number, where anything within it passes (a subnormal
    flushed to zero); ``D``, measured at ``dtype``'s unit roundoff, is scaled to
    ``2**-bits`` (first order).
    """
    e = np.abs(np.asarray(expected, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        binade = np.where(e > 0, np.exp2(np.floor(np.log2(np.where(e > 0, e, 1.0)))), 0.0)
    lower_u = 2.0**-bits
    scale = lower_u / unit_roundoff(dtype)
    a = (ROUNDING_ULP + math.log2(max(1, terms))) * binade * 2.0 * lower_u
    a = np.maximum(a, float_ulp(e, dtype))  # never stricter than the row's own ULP
    # a subnormal result flushed to zero (or read as zero: FTZ/DAZ, XLA's CPU default) is
    # digits lost, not a wrong formula: below the smallest normal, anything within it
    smallest_normal = 2.0 ** FLOAT_FORMATS[dtype][1]
    a = np.where(e < smallest_normal, np.maximum(a, smallest_normal), a)
    if sensitivity is not None:
        a = a + BACKWARD_FACTOR * scale * np.nan_to_num(np.asarray(sensitivity, dtype=np.float64))
    return a


def digits_lost(excess: float | None) -> float | None:
    """Decimal digits lost beyond the allowance: ``log10(excess)`` (0 when within it)."""
    if excess is None or not math.isfinite(excess):
        return None
    return round(max(0.0, math.log10(excess)) if excess > 0 else 0.0, 3)
