"""Hypothesis strategies and mpmath-checking helpers for the binary-family and KL tests.

Inputs mix ordinary values with the extremes the reference must get right to the last
bit: logits up to +-1e30 and +-3e38, logits near the under/overflow of ``exp``
(+-700, +-745), probabilities 0 and 1, ``1e-300`` and ``1 - 2**-53``, soft targets,
weights and positive-class weights.

The helpers compare a float64 result with exact mpmath values (see ``oracle.py``) and
return the error in ULPs, so the same code serves the tests (which assert a bound) and
one-off measurement runs (which record the worst case).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.reference.oracle import ulp_distance
from tests.reference.strategies import MAX_ULP
from tests.reference.strategies import REDUCTIONS as REDUCTIONS  # for the tests
from xentcheck.reference import cotangent

FLOAT_MAX = mpmath.mpf(np.finfo(np.float64).max)

EXTREME_LOGITS = (
    0.0,
    -0.0,
    5e-324,
    -1e-300,
    1e-8,
    -0.5,
    36.7,
    -36.7,
    700.0,
    -700.0,
    708.5,
    745.0,
    -745.0,
    746.0,
    -746.0,
    1e30,
    -1e30,
    3e38,
    -3e38,
)
SPECIAL_PROBS = (
    0.0,
    1.0,
    0.5,
    0.25,
    0.75,
    5e-324,
    2.2250738585072014e-308,
    1e-300,
    2.0**-53,
    1.0 - 2.0**-53,
    1.0 - 2.0**-52,
    0.5 + 2.0**-53,
    0.5 - 2.0**-54,
)


def logits() -> st.SearchStrategy[float]:
    """Logits: ordinary, moderate, huge (up to +-3e38) and hand-picked extremes."""
    return st.one_of(
        st.floats(-30.0, 30.0),
        st.floats(-800.0, 800.0),
        st.sampled_from(EXTREME_LOGITS),
        st.floats(-3e38, 3e38),
        st.floats(-60.0, -20.0),
        st.floats(20.0, 60.0),
    )


def probabilities(open_interval: bool = False) -> st.SearchStrategy[float]:
    """Probabilities in [0, 1] (in (0, 1) with ``open_interval``), dense near 0 and 1."""
    s = st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from(SPECIAL_PROBS),
        st.floats(-323.0, 0.0).map(lambda e: 10.0**e),
        st.floats(-16.0, -0.31).map(lambda e: 1.0 - 10.0**e),
    )
    if open_interval:
        s = s.filter(lambda p: 0.0 < p < 1.0)
    return s


def targets() -> st.SearchStrategy[float]:
    """Binary and soft targets in [0, 1]."""
    return st.one_of(
        st.sampled_from((0.0, 1.0)),
        st.floats(0.0, 1.0),
        st.sampled_from((0.5, 1e-300, 1.0 - 2.0**-53, 0.25, 0.9)),
    )


def weights() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(0.0, 10.0), st.sampled_from((0.0, 1.0, 2.5, 1e-3)))


def pos_weights() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(0.0, 20.0), st.sampled_from((1.0, 0.0, 3.0, 0.1)))


def log_probabilities() -> st.SearchStrategy[float]:
    """KL ``input`` values: log-probabilities, plus positive and extreme values."""
    return st.one_of(
        st.floats(-50.0, 0.0),
        st.floats(-800.0, 5.0),
        st.sampled_from((0.0, -1e-300, -745.0, -1e30, 1e-8)),
    )


def kl_targets() -> st.SearchStrategy[float]:
    """KL probability targets: [0, 1] with extremes, and a few above 1."""
    return st.one_of(probabilities(), st.floats(1.0, 5.0))


def log_targets() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(-50.0, 0.0),
        st.floats(-800.0, 5.0),
        st.sampled_from((0.0, -1e-300, -700.0, -745.0, -746.0, 700.0)),
    )


shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4)


def array(draw, shape, elements) -> np.ndarray:
    return draw(hnp.arrays(np.float64, shape, elements=elements))


def broadcast_shape_for(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: the full shape, its last axis, or a scalar."""
    return draw(st.sampled_from([shape, shape[-1:], ()]))


# --- comparing with exact values ------------------------------------------------------


def to_exact(e):
    """An mpmath value as ``ulp_distance`` wants it: non-finite and overflowing as float."""
    if isinstance(e, float):
        return e
    if mpmath.isnan(e):
        return math.nan
    if mpmath.isinf(e) or abs(e) > FLOAT_MAX * (1 + mpmath.mpf(2) ** -54):
        return math.inf if e > 0 else -math.inf
    return e


def worst_ulp(actual, exact: list, scale: list | None = None) -> float:
    """The largest ULP distance of the elements of ``actual`` from ``exact``.

    ``scale`` (per element, or None) measures in ULPs of a larger quantity: the largest
    term of a difference that cancels.
    """
    flat = np.asarray(actual, dtype=np.float64).ravel()
    assert flat.size == len(exact), f"size {flat.size} != {len(exact)}"
    worst = 0.0
    for k, (a, e) in enumerate(zip(flat, exact, strict=True)):
        e = to_exact(e)
        s = None
        if scale is not None and not isinstance(e, float):
            s = max(abs(mpmath.mpf(e)), scale[k])
            s = None if s > FLOAT_MAX else s
        worst = max(worst, ulp_distance(a, e, s))
    return worst


def check(actual, exact: list, scale: list | None = None, what: str = "") -> float:
    """Assert ``actual`` within ``MAX_ULP`` of ``exact`` (of ``scale`` where given)."""
    w = worst_ulp(actual, exact, scale)
    assert w <= MAX_ULP, (
        f"{what}: {w:.3g} ULP > {MAX_ULP}\nactual {np.asarray(actual).ravel().tolist()}\n"
        f"exact  {[mpmath.nstr(mpmath.mpf(to_exact(e)), 20) for e in exact]}"
    )
    return w


def upstream(shape: tuple[int, ...], reduction: str, denominator: int | None = None) -> list:
    """The exact factor of each element's derivative in the reduced gradient."""
    n = int(np.prod(shape)) if denominator is None else denominator
    if reduction == "none":
        return [mpmath.mpf(float(c)) for c in cotangent(shape).ravel()]
    if reduction == "sum":
        return [mpmath.mpf(1)] * int(np.prod(shape))
    return [mpmath.mpf(1) / n] * int(np.prod(shape))


def times(factor, e):
    """``factor * e`` for mpmath ``e`` that may be infinite (factor > 0)."""
    if isinstance(e, float) and not math.isfinite(e):
        return e
    return factor * e


def reduced_exact(per: list, reduction: str, denominator: int | None = None, scale_terms=None):
    """Exact reduced value and the scale it is judged against: the sum of the absolute
    per-element values, or of their larger terms where those cancel (``scale_terms``)."""
    n = len(per) if denominator is None else denominator
    if any(isinstance(v, float) and not math.isfinite(v) for v in per):
        total = float(sum(float(v) for v in per))
        return (total if reduction == "sum" else total / n), None
    total = mpmath.fsum(per)
    scale_terms = scale_terms or [0] * len(per)
    size = mpmath.fsum(max(abs(v), s) for v, s in zip(per, scale_terms, strict=True))
    if reduction == "sum":
        return total, size
    return total / n, size / n


def check_value(value, per: list, reduction: str, scale_terms=None, denominator=None, what=""):
    """Check a loss value: per-element (``none``) or reduced against exact terms."""
    if reduction == "none":
        return check(value, per, scale_terms, what)
    exact, size = reduced_exact(per, reduction, denominator, scale_terms)
    assert np.ndim(value) == 0, f"{what}: reduced value must be 0-d, got shape {np.shape(value)}"
    return check(value, [exact], None if size is None else [size], what)


def check_grad(grad, per: list, shape, reduction, scale_terms=None, denominator=None, what=""):
    """Check a gradient against exact per-element derivatives times the upstream factor."""
    assert np.shape(grad) == tuple(shape), f"{what}: shape {np.shape(grad)} != {shape}"
    up = upstream(tuple(shape), reduction, denominator)
    exact = [times(u, g) for u, g in zip(up, per, strict=True)]
    scale = None if scale_terms is None else [u * s for u, s in zip(up, scale_terms, strict=True)]
    return check(grad, exact, scale, what)
