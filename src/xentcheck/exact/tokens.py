r"""Token losses, exactly: the vocabulary is the LAST axis.

With logits :math:`z` ``[..., V]``, token ids :math:`t` (``z``'s shape without the last
axis), the kept tokens :math:`K` (``mask`` nonzero and :math:`t \ne` ``ignore_index``):

.. math::
    \mathrm{CE} = \frac{1}{|K|} \sum_{K} -\log p_{t}, \qquad \mathrm{PPL} = e^{\mathrm{CE}},

NaN when nothing is kept. Only kept labels must lie in ``[0, V)``; rows that are not
kept are never looked at.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from xentcheck.exact.arguments import axis_rows, check_labels, floats, labels
from xentcheck.exact.reals import NAN, ZERO, finite, isnan, to_mp, total
from xentcheck.exact.result import Exact, finish
from xentcheck.exact.softmax import softmax_row

__all__ = ["perplexity", "token_cross_entropy"]

#: The allowance of a perplexity gradient grows with the magnitudes of the two terms of
#: its exponent (``CE`` and ``-log p_c``): ``2**-100`` of them, relative.
_EXPONENT_SCALE = mpf(2) ** -60


def _token_rows(logits, target, mask, ignore_index):
    """(logits as mpmath rows [M, V], row index map, labels [M], kept rows)."""
    z = floats(logits, "logits")
    if z.ndim == 0:
        raise ValueError("logits: a vocabulary axis is needed, got a 0-d array")
    target = np.asarray(target)
    if target.shape != z.shape[:-1]:
        raise ValueError(f"target shape {target.shape}, expected {z.shape[:-1]}")
    t = labels(target).ravel()
    kept = np.ones(t.shape, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {mask.shape}, expected {target.shape}")
        kept = mask.ravel() != 0
    if ignore_index is not None:
        kept &= t != ignore_index
    check_labels(t, kept, z.shape[-1])
    return z, axis_rows(z.shape, z.ndim - 1), t, kept


def _mean_loss(logits, target, mask, ignore_index):
    """(CE, |K|, the kept rows' :class:`~xentcheck.exact.softmax.Row` or None, ...)."""
    z, rows, t, kept = _token_rows(logits, target, mask, ignore_index)
    zs = to_mp(z)
    stats = {}
    for i in np.flatnonzero(kept):
        stats[int(i)] = softmax_row([zs[c] for c in rows[i]])
    n = len(stats)
    losses = [NAN if row is None else row.nl[t[i]] for i, row in stats.items()]
    ce = total(losses) / n if n else NAN
    return z, rows, t, stats, ce, n


def token_cross_entropy(logits, target, mask=None, *, ignore_index=None) -> Exact:
    r"""Mean next-token cross-entropy over the kept tokens (a 0-d value).

    .. math::
        \mathrm{CE} = \frac{1}{|K|} \sum_K -\log p_{t}, \qquad
        \frac{\partial\, \mathrm{CE}}{\partial z} = \frac{p - \mathrm{onehot}(t)}{|K|}

    at kept tokens (0 elsewhere; undefined in a kept row whose softmax is).
    """
    z, rows, t, stats, ce, n = _mean_loss(logits, target, mask, ignore_index)
    g = [ZERO] * z.size
    for i, row in stats.items():
        d = [None] * len(rows[i]) if row is None else row.minus_onehot(int(t[i]))
        for c, v in zip(rows[i], d, strict=True):
            g[c] = None if v is None else v / n
    return finish((), [ce], {"logits": g})


def perplexity(logits, target, mask=None, *, ignore_index=None) -> Exact:
    r"""Perplexity, ``exp`` of :func:`token_cross_entropy`.

    .. math::
        \frac{\partial\, \mathrm{PPL}}{\partial z_c} =
        \frac{e^{\mathrm{CE}}\,(p_c - [c = t])}{|K|},

    formed as :math:`e^{\mathrm{CE} + \log p_c} / |K|` off the target. Where
    :math:`\mathrm{PPL} = \infty` (a kept token of probability 0) it stays infinite
    whatever the other logits: the gradient is undefined.
    """
    z, rows, t, stats, ce, n = _mean_loss(logits, target, mask, ignore_index)
    ppl = mpmath.exp(ce) if not isnan(ce) else NAN
    g, scales = [ZERO] * z.size, [None] * z.size
    for i, row in stats.items():
        idx, ti = rows[i], int(t[i])
        if row is None or isnan(ce):
            for c in idx:
                g[c] = None
            continue
        if not finite(ce):  # PPL = +inf whatever the other logits: no derivative
            for c in idx:
                g[c] = None
            continue
        d = row.minus_onehot(ti)
        for k, c in enumerate(idx):
            if k != ti:
                g[c] = mpmath.exp(ce - row.nl[k]) / n
                if finite(row.nl[k]):
                    scales[c] = abs(g[c]) * (abs(ce) + row.nl[k]) * _EXPONENT_SCALE
        g[idx[ti]] = ppl * d[ti] / n
        others = [scales[c] for k, c in enumerate(idx) if k != ti and scales[c] is not None]
        scales[idx[ti]] = mpmath.fsum(others) if others else None
    return finish((), [ppl], {"logits": g}, {"grad:logits": scales})
