"""Kullback-Leibler divergence of the reference, in PyTorch's ``F.kl_div`` convention.

Returns ``(value, grads)`` like every reference loss: ``value`` a float64 array (0-d
when reduced), ``grads`` the vector-Jacobian products with the fixed cotangent of
:mod:`xentcheck.reference._cotangent`. Values and gradients are computed in
double-double arithmetic (:mod:`xentcheck.reference._dd`) and rounded once.
"""

from __future__ import annotations

import numpy as np

from xentcheck.reference import _dd
from xentcheck.reference._elementwise import finish
from xentcheck.reference.arguments import (
    KL_REDUCTIONS,
    as_float,
    check_kl_target,
    check_reduction,
    check_same_shape,
)

__all__ = ["kl_divergence"]


def kl_divergence(input, target, *, log_target=False, reduction="mean"):
    r"""Pointwise KL divergence ``KL(p || q)`` with ``input = log q`` (PyTorch's ``kl_div``).

    ``input`` holds log-probabilities :math:`\log q` (not probabilities: PyTorch's
    convention); ``target`` holds probabilities :math:`p`, or log-probabilities
    :math:`t = \log p` with ``log_target=True``. Pointwise:

    .. math::
        \ell = p\,(\log p - \mathrm{input}) \qquad\text{or, with log\_target,}\qquad
        \ell = e^{t}\,(t - \mathrm{input})

    with :math:`\ell = 0` where :math:`p = 0` (``t = -inf``), whatever the input,
    ``-inf`` included (the divergence sums over the support of ``p``; PyTorch computes
    ``0 * inf = NaN`` there); ``input = -inf`` where ``p > 0`` gives ``+inf``; NaN in
    either input of an element makes its value and gradients NaN.

    Values and gradients are computed in double-double arithmetic and rounded once.
    ``log p - input`` is formed from a double-double ``log p``, so the value is within
    about ``2**-104`` of ``p * max(|log p|, |input|)``, and correctly rounded unless
    ``input`` agrees with ``log p`` to some 50 bits (a divergence near 0, where it is
    still far closer than any float64 formula). ``exp(t) * (t - input)`` is evaluated
    as ``sign * exp(t + log|t - input|)``, so it neither overflows nor underflows
    unless the result does.

    Reductions: ``"none"``; ``"sum"``; ``"mean"`` (sum over the number of elements);
    ``"batchmean"`` (sum over ``input.shape[0]``, the true KL per sample for ``[N, C]``
    input; NaN for an empty batch; a 0-d input divides by 1, as PyTorch does).

    Gradients (before the cotangent):

    .. math::
        \frac{\partial\ell}{\partial\,\mathrm{input}} = -p, \qquad
        \frac{\partial\ell}{\partial p} = \log p + 1 - \mathrm{input}, \qquad
        \frac{\partial\ell}{\partial t} = e^{t}\,(t - \mathrm{input} + 1)

    At ``p = 0`` the derivative in ``p`` is ``-inf`` (one-sided, for finite input; NaN
    for ``input = -inf``), while ``d/dt`` tends to 0 as ``t -> -inf``.

    Args:
      input: log-probabilities, any shape ``[N, ...]``.
      target: probabilities (``>= 0``; values above 1 are allowed, the formula is
        defined) or, with ``log_target``, log-probabilities; same shape as ``input``.
      log_target: whether ``target`` holds log-probabilities.
      reduction: ``"none"``, ``"sum"``, ``"mean"`` or ``"batchmean"``.

    Returns:
      ``(value, grads)`` with ``grads["input"]`` and ``grads["target"]``.

    Raises:
      ValueError: on mismatched shapes (no broadcasting), a negative probability
        target (its logarithm is undefined) or an unknown reduction.

    References:
      ``torch.nn.KLDivLoss`` / ``torch.nn.functional.kl_div``;
      ``keras.losses.KLDivergence``; Kullback & Leibler, *On Information and
      Sufficiency*, Ann. Math. Statist. 22 (1951).
    """
    q = as_float(input, "input")
    t = as_float(target, "target")
    check_same_shape(q, t, "input", "target")
    check_reduction(reduction, KL_REDUCTIONS)
    check_kl_target(t, log_target)
    denominator = None
    if reduction == "batchmean":
        denominator = float(q.shape[0]) if q.ndim > 0 else 1.0
        reduction = "mean"

    with np.errstate(all="ignore"):
        if log_target:
            ok = np.isfinite(q) & np.isfinite(t)
            ts = np.where(ok, t, 0.0)
            qs = np.where(ok, q, 0.0)
            d = _dd.two_sum(ts, -qs)

            def losses(scale: int = 0) -> _dd.DD:
                return _dd.exp_times(ts, d, scale)

            loss = losses()
            gt = _dd.exp_times(ts, _dd.add_f(d, 1.0))
            gi = _dd.neg(_dd.exp(ts))

            p = np.exp(t)
            gone = (t == -np.inf) & ~np.isnan(q)
            n_loss = np.where(gone, 0.0, p * (t - q))
            n_gt = np.where(gone & np.isfinite(q), 0.0, p * (t - q + 1.0))
            n_gi = np.where(np.isnan(q), np.nan, -p)
        else:
            ok = np.isfinite(q) & np.isfinite(t) & (t > 0)
            ts = np.where(ok, t, 1.0)
            qs = np.where(ok, q, 0.0)
            d = _dd.add_f(_dd.log(ts), -qs)  # log p - input

            def losses(scale: int = 0) -> _dd.DD:
                return _dd.prod(2.0**scale, ts, d)

            loss = losses()
            gt = _dd.add_f(d, 1.0)
            gi = _dd.dd(-ts)

            gone = (t == 0) & ~np.isnan(q)
            n_loss = np.where(gone, 0.0, t * (np.log(t) - q))
            n_gt = np.log(t) + 1.0 - q
            n_gi = np.where(np.isnan(q), np.nan, -t)
    grads = {"input": (gi, n_gi), "target": (gt, n_gt)}
    return finish(ok, reduction, losses, (loss, n_loss), grads, denominator=denominator)
