"""Shared plumbing of the element-wise reference losses (binary family and KL; private).

Those losses compute each element's value and gradients as double-doubles (see
:mod:`xentcheck.reference._dd`) on inputs where every quantity is finite, compute the
same quantities in plain float64 with the extended-real conventions for the elements
that are not (infinite logits, probabilities 0 and 1, NaN, overflow), and meet here to
be patched together, reduced and scaled by the cotangent.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from xentcheck.reference import _dd
from xentcheck.reference._cotangent import cotangent
from xentcheck.reference._reduce import exact_sum


def zmul(a, b) -> np.ndarray:
    """``a * b`` with ``0 * inf = 0``: an exactly-zero factor annihilates, NaN propagates."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    zero = ((a == 0) & ~np.isnan(b)) | ((b == 0) & ~np.isnan(a))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(zero, 0.0, a * b)


def patch(ok: np.ndarray, accurate: _dd.DD, fallback: np.ndarray) -> _dd.DD:
    """Take ``accurate`` where ``ok`` and it is finite, else the float ``fallback``."""
    good = ok & np.isfinite(accurate[0]) & np.isfinite(accurate[1])
    return np.where(good, accurate[0], fallback), np.where(good, accurate[1], 0.0)


_RESCALE_BELOW = 2.0**-968  # a sum this small may be short of digits lost to subnormals
_RESCALE_TO = 1000  # scaled per-element values stay below 2**1000


def reduce_value(
    per: _dd.DD,
    reduction: str,
    denominator: float | None = None,
    rescale: Callable[[int], _dd.DD] | None = None,
) -> np.ndarray:
    """``none``: the per-element values; ``sum``; ``mean``: the sum over ``denominator``.

    The sum is the correctly rounded sum of the double-double per-element values
    (``math.fsum`` of their parts); the mean divides that sum, carried as a
    double-double, once. ``0/0`` (an empty mean) is NaN.

    Per-element values in the subnormal range have been rounded to its coarse grid, and
    a sum of many such roundings can be several units off; so where the sum is tiny and
    ``rescale`` is given, ``rescale(k)`` must return the per-element values times
    ``2**k`` (computed as such, not scaled afterwards), and the sum is taken of those
    and scaled back once.
    """
    if reduction == "none":
        return _dd.to_float(per)
    total, resid = _exact_sum_dd(per)
    scale = 0
    if rescale is not None and math.isfinite(total) and abs(total) < _RESCALE_BELOW:
        biggest = float(np.max(np.abs(per[0]), initial=0.0))
        scale = _RESCALE_TO - (math.frexp(biggest)[1] if biggest > 0 else 0)
        scale = min(max(scale, 0), _RESCALE_TO)
        if scale:
            scaled = _exact_sum_dd(rescale(scale))
            # (per-element values that cancel may have terms too large to scale)
            total, resid = scaled if math.isfinite(scaled[0]) else (total, resid)
            scale = scale if math.isfinite(scaled[0]) else 0
    if reduction == "sum":
        return np.asarray(math.ldexp(total, -scale) if scale else total)
    d = float(per[0].size if denominator is None else denominator)
    if not math.isfinite(total) or d == 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.float64(total) / np.float64(d))
    q = _dd.div((np.asarray(total), np.asarray(resid)), _dd.dd(d))
    q = (np.ldexp(q[0], -scale), np.ldexp(q[1], -scale)) if scale else q
    return np.asarray(_dd.to_float(q))


def _exact_sum_dd(per: _dd.DD) -> tuple[float, float]:
    """The sum of double-doubles as a correctly rounded float and its rounded residual."""
    parts = np.concatenate([np.ravel(per[0]), np.ravel(per[1])])
    total = exact_sum(parts)
    if not math.isfinite(total):
        return total, 0.0
    return total, math.fsum([*parts.tolist(), -total])


def scale_grad(g: _dd.DD, reduction: str, denominator: float | None = None) -> np.ndarray:
    """The gradient of the reduced value from per-element derivatives ``g``, rounded once.

    ``none``: times the fixed cotangent; ``sum``: as is; ``mean``: over ``denominator``.
    """
    shape = np.shape(g[0])
    with np.errstate(all="ignore"):
        if reduction == "none":
            ct = cotangent(shape)
            out = _dd.to_float(_dd.mul_f(g, ct))
            naive = zmul(g[0], ct)
        elif reduction == "sum":
            return np.asarray(_dd.to_float(g), dtype=np.float64).reshape(shape)
        else:
            d = float(np.prod(shape, dtype=np.float64) if denominator is None else denominator)
            out = _dd.to_float(_dd.div(g, _dd.dd(np.full(shape, d))))
            naive = g[0] / d
    out = np.where(np.isfinite(g[0]) & ~np.isnan(out), out, naive)
    return np.asarray(out, dtype=np.float64).reshape(shape)


def finish(
    ok: np.ndarray,
    reduction: str,
    losses: Callable[[int], _dd.DD],
    loss: tuple[_dd.DD, np.ndarray],
    grads: dict[str, tuple[_dd.DD, np.ndarray]],
    w: np.ndarray | None = None,
    denominator: float | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(value, grads)`` of an element-wise loss: its double-double results where ``ok``
    (and finite), their float64 fallbacks elsewhere, reduced and scaled.

    ``loss`` and each of ``grads`` (input name -> pair) are ``(accurate, fallback)``;
    ``losses(k)`` recomputes the accurate losses times ``2**k`` (see
    :func:`reduce_value`); a weight ``w`` multiplies the fallbacks (the accurate results
    hold it already); ``denominator`` is the mean's (see :func:`reduce_value`).
    """
    accurate, fallback = loss
    with np.errstate(all="ignore"):
        if w is not None:
            fallback = zmul(w, fallback)
            grads = {k: (g, zmul(w, n)) for k, (g, n) in grads.items()}
        per = patch(ok, accurate, fallback)
        patched = {k: patch(ok, g, n) for k, (g, n) in grads.items()}

    def rescale(scale: int) -> _dd.DD:
        with np.errstate(all="ignore"):
            return patch(ok, losses(scale), np.ldexp(fallback, scale))

    value = reduce_value(per, reduction, denominator, rescale)
    return value, {k: scale_grad(g, reduction, denominator) for k, g in patched.items()}
