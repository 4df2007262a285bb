"""Kullback-Leibler divergence, exactly, in PyTorch's ``kl_div`` convention."""

from __future__ import annotations

import mpmath
from mpmath import mpf

from xentcheck.exact.arguments import check_range, check_reduction, floats, same_shape
from xentcheck.exact.reals import INF, NAN, ZERO, finite, isnan, to_mp, total
from xentcheck.exact.result import Exact, elementwise

__all__ = ["kl_divergence"]

KL_REDUCTIONS = ("none", "sum", "mean", "batchmean")


def kl_divergence(input, target, *, log_target=False, reduction="mean") -> Exact:
    r"""Pointwise :math:`\mathrm{KL}(p \,\|\, q)` with ``input`` :math:`= \log q`.

    .. math::
        \ell = p\,(\log p - \mathrm{input}), \qquad
        \frac{\partial \ell}{\partial\,\mathrm{input}} = -p, \qquad
        \frac{\partial \ell}{\partial p} = \log p + 1 - \mathrm{input};

    with ``log_target`` (``target`` :math:`= t = \log p`):

    .. math::
        \ell = e^t (t - \mathrm{input}), \qquad
        \frac{\partial \ell}{\partial\,\mathrm{input}} = -e^t, \qquad
        \frac{\partial \ell}{\partial t} = e^t (t - \mathrm{input} + 1).

    :math:`\ell = 0` where :math:`p = 0` (:math:`t = -\infty`) whatever a non-NaN input,
    and there :math:`\partial/\partial p = -\infty`, :math:`\partial/\partial t \to 0`
    (finite input; undefined for an infinite one). NaN makes the element undefined.
    Probability targets are ``>= 0``. Reductions ``none``, ``sum``, ``mean`` (over the
    elements) and ``batchmean`` (over ``input.shape[0]``, 1 for a 0-d input).
    """
    q = floats(input, "input")
    t = floats(target, "target")
    same_shape(q, t, "target")
    check_reduction(reduction, KL_REDUCTIONS)
    if not log_target:
        check_range(t, 0.0, None, "kl_divergence: probability targets")
    denominator = None
    if reduction == "batchmean":
        denominator = mpf(q.shape[0] if q.ndim else 1)
        reduction = "mean"
    element = _log_target if log_target else _probability
    elements = [element(qv, tv) for qv, tv in zip(to_mp(q), to_mp(t), strict=True)]
    return elementwise(q.shape, elements, ("input", "target"), reduction, denominator)


_UNDEFINED = (NAN, None, {"input": (None, None), "target": (None, None)})


def _probability(q, p):
    if isnan(q) or isnan(p):
        return _UNDEFINED
    if p == 0:
        gp = None if q == -INF else -INF
        return ZERO, None, {"input": (ZERO, None), "target": (gp, None)}
    log_p = mpmath.log(p)
    loss = p * (log_p - q)
    gp = total([log_p, mpf(1), -q])
    scale = p * (abs(log_p) + abs(q)) if finite(loss) else None
    gp_scale = abs(log_p) + 1 + abs(q) if finite(gp) else None
    return loss, scale, {"input": (-p, None), "target": (gp, gp_scale)}


def _log_target(q, t):
    if isnan(q) or isnan(t):
        return _UNDEFINED
    if t == -INF:
        gt = ZERO if finite(q) else None
        return ZERO, None, {"input": (ZERO, None), "target": (gt, None)}
    e = mpmath.exp(t)
    d = total([t, -q])
    loss = e * d
    gt = e * total([t, -q, mpf(1)])
    ok = finite(loss) and finite(gt)
    scale = e * (abs(t) + abs(q)) if ok else None
    gt_scale = e * (abs(t) + abs(q) + 1) if ok else None
    return loss, scale, {"input": (-e, None), "target": (gt, gt_scale)}
