"""The oracle's answer (:class:`Exact`) and the reductions every loss shares.

A loss computes per-position losses (mpmath numbers, the extended reals included), the
scale of each (see :class:`Exact`), and the local derivatives of each position's loss;
:func:`reduce` turns the first two into the value and gives the upstream factor that
multiplies each position's derivatives (the cotangent, 1, or ``1/D``), and
:func:`finish` puts the pieces into the public form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mpmath

from xentcheck.exact.reals import NAN, ONE, finite, isnan, to_mp, total
from xentcheck.reference import cotangent

__all__ = ["Exact", "Reduced", "elementwise", "finish", "reduce", "scaled"]


@dataclass(frozen=True)
class Exact:
    """The exact value and gradients of a loss at an instance.

    shape:  the value's shape.
    value:  flat C-order list: ``mpmath.mpf`` where finite, the float ``inf``, ``-inf``
            or ``nan`` (undefined: an indeterminate form, a NaN input) elsewhere.
    grads:  differentiable input name -> flat C-order list over the input's shape of the
            vector-Jacobian products with :func:`xentcheck.reference.cotangent` of the
            value's shape: ``mpf``, float ``+-inf``, or None where undefined.
    scales: ``"value"`` or ``"grad:<input>"`` -> a flat list of the same length whose
            entries (``mpf`` or None) are, where the exact quantity is a sum of terms of
            both signs, the sum of the terms' magnitudes: what a float64 computation can
            be held to there. None (and a quantity not in the dict) means the quantity's
            own magnitude.
    """

    shape: tuple[int, ...]
    value: list
    grads: dict[str, list]
    scales: dict[str, list] = field(default_factory=dict)


@dataclass(frozen=True)
class Reduced:
    """A reduced value (flat), its scales, and each position's upstream factor (None
    where the gradient of the reduction is undefined: a mean over a zero denominator)."""

    value: list
    scales: list
    upstream: list


def reduce(
    per: Sequence,
    scales: Sequence,
    reduction: str,
    shape: tuple[int, ...],
    denominator=None,
) -> Reduced:
    r"""Reduce the per-position losses ``per`` (of ``shape``, flat) with their ``scales``.

    ``none``: as they are, each position's upstream factor its cotangent; ``sum``:
    :math:`\sum_i \ell_i`; ``mean``: the sum over ``denominator`` (default the number of
    positions), upstream ``1/D``. A zero denominator makes the mean undefined (NaN, no
    gradient: a mean over nothing, or over weights that sum to zero). The scale of a sum
    is the sum over its terms of the larger of ``|l_i|`` and the term's own scale.
    """
    if reduction == "none":
        cot = to_mp(cotangent(shape))
        return Reduced(list(per), list(scales), cot)
    s = total(per)
    scale = mpmath.fsum(
        max(abs(v), sc if sc is not None else 0)
        for v, sc in zip(per, scales, strict=True)
        if finite(v)
    )
    if reduction == "sum":
        return Reduced([s], [scale], [ONE] * len(per))
    d = mpmath.mpf(len(per)) if denominator is None else denominator
    if d == 0 or isnan(d):
        return Reduced([NAN], [None], [None] * len(per))
    return Reduced([s / d], [scale / abs(d)], [1 / d] * len(per))


def scaled(up, g):
    """A local derivative ``g`` times its upstream factor ``up`` (None: undefined)."""
    if up is None or g is None or isnan(g):
        return None
    return up * g


def _value(v):
    return v if finite(v) else float(v)


def _grad(v):
    if v is None or isnan(v):
        return None
    return v if finite(v) else float(v)


def finish(
    shape: tuple[int, ...],
    value: Sequence,
    grads: dict[str, Sequence],
    scales: dict[str, Sequence] | None = None,
) -> Exact:
    """The public :class:`Exact` from mpmath quantities (non-finite ones made floats or
    None); scales that are all None, or no larger than the quantity, are dropped."""
    kept = {}
    for key, sc in (scales or {}).items():
        q = value if key == "value" else grads[key.removeprefix("grad:")]
        sc = [
            s if s is not None and q_k is not None and finite(q_k) and s > abs(q_k) else None
            for s, q_k in zip(sc, q, strict=True)
        ]
        if any(s is not None for s in sc):
            kept[key] = sc
    return Exact(
        tuple(int(n) for n in shape),
        [_value(v) for v in value],
        {k: [_grad(v) for v in g] for k, g in grads.items()},
        kept,
    )


def elementwise(
    shape: tuple[int, ...],
    elements: Sequence,
    names: Sequence[str],
    reduction: str,
    denominator=None,
) -> Exact:
    """The :class:`Exact` of an element-wise loss from its elements.

    ``elements``: per element (flat, C order) ``(loss, loss_scale, {input: (d, d_scale)})``
    with ``d`` the derivative of that element's loss in that input's element (the
    inputs have the loss's shape) for each of ``names``; scales None where the quantity
    does not cancel.
    """
    per = [e[0] for e in elements]
    red = reduce(per, [e[1] for e in elements], reduction, shape, denominator)
    grads, scales = {}, {"value": red.scales}
    for name in names:
        pairs = [(up, e[2][name]) for up, e in zip(red.upstream, elements, strict=True)]
        grads[name] = [scaled(up, d) for up, (d, _) in pairs]
        scales[f"grad:{name}"] = [
            None if up is None or s is None else abs(up) * s for up, (_, s) in pairs
        ]
    return finish(shape if reduction == "none" else (), red.value, grads, scales)
