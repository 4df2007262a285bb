"""Hypothesis strategies and exact (mpmath) softmax rows shared by the reference tests.

The strategies draw small inputs (mpmath is slow) whose logits range from ordinary values
to +-1e30 and +-3e38, with rows where the target dominates so that losses go down to
1e-300. The exact helpers compute a softmax row in mpmath at a working precision chosen so
that even ``1 - p`` of a dominant class is exact to far beyond float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
from hypothesis import strategies as st

from tests.reference.oracle import mpf, ulp64, ulp_distance
from xentcheck.reference.arguments import REDUCTIONS as REDUCTIONS  # for the tests

MAX_ULP = 4.0
# the rounding error of a float64 in the subnormal range (an mpf: as a float it is 0)
SUBNORMAL_HALF_ULP = mpmath.mpf(2) ** -1075

# ------------------------------------------------------------------------- checking

#: set to a dict by a one-off survey: ``check`` then records the worst ULP distance per
#: label (and the number of failures under ``label + " FAIL"``) instead of asserting
SURVEY: dict[str, float] | None = None

_OVERFLOW = mpf(2.0**1023) * (2 - mpf(2.0**-53))  # exact values from here on round to inf


def _exact_float(x):
    """``x`` as a float where it is infinite, NaN or rounds to an infinity; else unchanged."""
    if isinstance(x, float) or not mpmath.isfinite(x):
        return float(x)
    return math.copysign(math.inf, x) if abs(x) >= _OVERFLOW else x


def check(what: str, actual, exact, scale=None, slack=0.0) -> None:
    """Assert each element of ``actual`` within ``MAX_ULP`` ULP of its ``exact`` value.

    ``scale``: per element, the magnitude whose ULP is the unit (the larger term of a
    cancelling difference, the sum of absolute terms of a reduction); default the exact
    value. ``slack``: an absolute allowance on top (a number, or one per element), for
    the subnormal range: a float64 that underflows has an absolute rounding error up to
    ``SUBNORMAL_HALF_ULP`` whatever its size, and factors applied after it (weights, the
    cotangent) or sums of such terms scale that error (see :func:`underflow_slack`).
    Infinite and NaN exact values (and values that overflow) must match exactly.
    """
    flat = np.asarray(actual, dtype=np.float64).ravel()
    exact = list(exact)
    assert flat.size == len(exact), f"{what}: size {flat.size} != {len(exact)}"
    scale = [None] * len(exact) if scale is None else list(scale)
    slack = [slack] * len(exact) if np.isscalar(slack) else list(slack)
    for k, (a, e, s, extra) in enumerate(zip(flat, exact, scale, slack, strict=True)):
        e = _exact_float(e)
        s = None if isinstance(e, float) or s is None else s
        d = ulp_distance(a, e, s)
        unit = ulp64(float(e if s is None else s))
        allowed = MAX_ULP + (float(extra / mpf(unit)) if extra and math.isfinite(unit) else 0.0)
        if SURVEY is not None:  # worst ULP; where the slack counts, also what exceeds it
            key = what if allowed - MAX_ULP < 0.01 else what + " [with slack]"
            SURVEY[key] = max(SURVEY.get(key, 0.0), d)
            if key != what:
                over = key + " beyond slack"
                SURVEY[over] = max(SURVEY.get(over, 0.0), d - (allowed - MAX_ULP))
            if not d <= allowed:
                SURVEY[key + " FAIL"] = SURVEY.get(key + " FAIL", 0) + 1
            continue
        assert d <= allowed, (
            f"{what}[{k}]: got {a!r}, exact {mpmath.nstr(e, 25)}, {d:.2f} ULP > {allowed:.2f}"
        )


def underflow_slack(terms: float, factor: float = 1.0) -> mpmath.mpf:
    """The absolute slack for a quantity made of ``terms`` float64 terms that may each
    underflow, multiplied afterwards by factors up to ``factor``."""
    return terms * max(1.0, factor) * SUBNORMAL_HALF_ULP


# ------------------------------------------------------------------ float strategies


def logit_values() -> st.SearchStrategy[float]:
    """Finite logits: ordinary, exp-range, 1e30-scale, float32-max-scale, special."""
    return st.one_of(
        st.floats(-30.0, 30.0),
        st.floats(-800.0, 800.0),
        st.floats(-1e30, 1e30),
        st.floats(-3e38, 3e38),
        st.sampled_from([0.0, -0.0, 1e-300, -5e-324, 709.5, -745.0, 1e30, -3e38, 3e38]),
    )


def prob_values() -> st.SearchStrategy[float]:
    """Probabilities in [0, 1], with exact 0 and 1 and tiny values."""
    return st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 1.0, 0.5, 0.1, 1e-300, 5e-324, 1.0 - 2**-53]),
    )


def weight_values() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, 1.0, 0.5, 3.0]))


def smoothing_values() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, 0.0, 0.1, 0.25, 1.0]), st.floats(0.0, 1.0))


@st.composite
def class_shapes(draw, max_rows: int = 8, max_classes: int = 6) -> tuple[int, ...]:
    """``[N, C, d1, ...]`` with ``N * d1 * ... <= max_rows`` (``N`` may be 0)."""
    c = draw(st.integers(1, max_classes))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    n = draw(st.integers(0, 4))
    while n * int(np.prod(extra, dtype=np.int64)) > max_rows:
        extra.pop()
        n = min(n, max_rows)
    return (n, c, *extra)


def float_arrays(shape, elements) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def logits_and_labels(draw, shape: tuple[int, ...], axis: int = 1):
    """Logits of ``shape`` and class indices (``shape`` without ``axis``).

    Half the time each row's target logit is lifted above the row's maximum by a margin
    drawn up to 800, so -log p of the target reaches 1e-300 and below.
    """
    z = draw(float_arrays(shape, logit_values()))
    classes = shape[axis]
    label_shape = shape[:axis] + shape[axis + 1 :]
    t = draw(hnp.arrays(np.int64, label_shape, elements=st.integers(0, classes - 1)))
    if draw(st.booleans()):
        zm = np.moveaxis(z, axis, -1).copy()
        rows = zm.reshape(-1, classes)
        margins = draw(float_arrays(rows.shape[0], st.floats(0.0, 800.0)))
        tr = t.ravel()
        for i in range(rows.shape[0]):
            lifted = rows[i].max() + margins[i]
            if math.isfinite(lifted):
                rows[i, tr[i]] = lifted
        z = np.moveaxis(rows.reshape(zm.shape), -1, axis)
    return np.ascontiguousarray(z), t


# ------------------------------------------------------------- exact softmax rows


@dataclass
class ExactRow:
    """An exact softmax row: per class ``p``, ``1 - p`` (``q``) and ``-log p``.

    ``lse`` is the log-sum-exp. ``q_c`` is the other classes' share, formed from their sum
    so that it keeps its relative accuracy however close ``p_c`` is to 1 (no working
    precision would: ``p`` can be ``1 - e**-1e30``). Arithmetic on these numbers runs at
    ``prec`` bits.
    """

    prec: int
    p: list
    q: list
    neg_log_p: list
    lse: mpmath.mpf
    amax: int


def exact_row(z) -> ExactRow:
    """The softmax of a finite float64 row ``z`` in mpmath, at 300 bits."""
    zs = [mpf(v) for v in z]
    m = max(zs)
    prec = 300
    with mpmath.workprec(prec):
        e = [mpmath.exp(v - m) for v in zs]
        amax = zs.index(m)
        r = mpmath.fsum(x for k, x in enumerate(e) if k != amax)
        log_s = mpmath.log1p(r)
        s = 1 + r
        p = [x / s for x in e]
        # 1 - p_c = (sum of the others) / s: r for the maximum, at least 1 for the rest
        q = [(r if c == amax else s - x) / s for c, x in enumerate(e)]
        neg_log_p = [log_s + (m - v) for v in zs]
        lse = m + log_s
    return ExactRow(prec, p, q, neg_log_p, lse, amax)


def rows_last(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with ``axis`` moved last, as rows ``[M, C]``."""
    n_rows = int(np.prod(x.shape[:axis] + x.shape[axis + 1 :], dtype=np.int64))
    return np.moveaxis(np.asarray(x), axis, -1).reshape(n_rows, x.shape[axis])


def rows_back(rows: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Inverse of :func:`rows_last` (object arrays allowed)."""
    moved = (*shape[:axis], *shape[axis + 1 :], shape[axis])
    return np.moveaxis(np.asarray(rows, dtype=object).reshape(moved), -1, axis)


def max_abs(*xs):
    return max(abs(x) for x in xs)
