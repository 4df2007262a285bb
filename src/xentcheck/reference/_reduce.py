"""Reductions shared by the reference losses.

``reduce(per_element, reduction, denominator)`` applies ``none``/``sum``/``mean``; the
matching cotangent factor for the gradient of the per-element losses is returned with it,
so every loss writes ``dL/dx = factor * d(per_element)/dx``.
"""

from __future__ import annotations

import math

import numpy as np

from xentcheck.reference._cotangent import cotangent
from xentcheck.reference.arguments import check_reduction


def reduce(
    per_element: np.ndarray, reduction: str, denominator: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce ``per_element`` losses and return ``(value, upstream)``.

    ``value``: the per-element array for ``none``; ``sum(l)`` for ``sum``;
    ``sum(l) / denominator`` for ``mean`` (``denominator`` defaults to the element count;
    0/0 is NaN, never an exception).

    ``upstream``: the cotangent of ``per_element``, an array of its shape, so that the
    gradient of the reduced value against the fixed cotangent is
    ``sum over elements of upstream * d(per_element)/dinput``.
    """
    check_reduction(reduction)
    per_element = np.asarray(per_element, dtype=np.float64)
    if reduction == "none":
        return per_element, cotangent(per_element.shape)
    if reduction == "sum":
        return np.asarray(exact_sum(per_element)), np.ones_like(per_element)
    d = float(per_element.size if denominator is None else denominator)
    total = exact_sum(per_element)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.float64(total) / np.float64(d)
        up = np.full(per_element.shape, np.float64(1.0) / np.float64(d))
    return np.asarray(value), up


def exact_sum(a: np.ndarray) -> float:
    """The correctly rounded sum of ``a`` (``math.fsum``); NumPy's sum where non-finite.

    ``math.fsum`` raises on ``inf + -inf``; a non-finite sum follows IEEE rules instead.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0
    if not np.all(np.isfinite(a)):
        return float(np.sum(a))
    return math.fsum(a)
