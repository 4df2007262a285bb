r"""The softmax family, exactly: rows along the class axis (axis 1; ``[C]`` is one row).

For a row :math:`z` with maximum :math:`m = z_a` (first index on ties),
:math:`E_c = e^{z_c - m}`, :math:`R = \sum_{c \ne a} E_c`, :math:`S = 1 + R`:

.. math::
    p_c = E_c / S, \qquad -\log p_c = \operatorname{log1p}(R) - (z_c - m), \qquad
    1 - p_a = R / S,

each without cancellation. A row with one ``+inf`` is the limit of that logit growing
(:math:`p` one-hot); a NaN, two or more ``+inf``, or only ``-inf`` leave the softmax
undefined (NaN values, no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath import mpf

from xentcheck.exact.arguments import (
    axis_rows,
    check_labels,
    check_range,
    check_reduction,
    class_rows,
    floats,
    labels,
    normal_axis,
    same_shape,
    smoothing,
)
from xentcheck.exact.reals import INF, NAN, ONE, ZERO, isnan, magnitude, to_mp, total, zmul
from xentcheck.exact.result import Exact, finish, reduce, scaled
from xentcheck.reference import cotangent

__all__ = [
    "Row",
    "categorical_cross_entropy",
    "log_softmax",
    "logsumexp",
    "nll",
    "softmax",
    "softmax_cross_entropy",
    "softmax_row",
]

HALF = mpf(0.5)


@dataclass(frozen=True)
class Row:
    """The softmax of one row: ``p``, ``nl = -log p``, ``q = 1 - p[amax]``, and
    ``lse = m + log_s`` (``m`` the maximum, ``log_s = log1p(R)``)."""

    amax: int
    m: mpf
    log_s: mpf
    p: list
    nl: list
    q: mpf

    def minus_onehot(self, t: int) -> list:
        """``p - onehot(t)``, the entry at ``t`` as ``-q`` where ``t`` is the maximum."""
        g = list(self.p)
        g[t] = -self.q if t == self.amax else self.p[t] - 1
        return g


def softmax_row(z: list) -> Row | None:
    """The :class:`Row` of the logits ``z`` (at least one), or None where undefined."""
    if any(isnan(v) for v in z):
        return None
    pinf = [k for k, v in enumerate(z) if v == INF]
    if len(pinf) > 1:
        return None
    if pinf:
        a = pinf[0]
        p = [ONE if k == a else ZERO for k in range(len(z))]
        nl = [ZERO if k == a else INF for k in range(len(z))]
        return Row(a, INF, ZERO, p, nl, ZERO)
    if all(v == -INF for v in z):
        return None
    m = max(z)
    a = z.index(m)
    d = [v - m for v in z]
    e = [mpmath.exp(v) for v in d]
    r = total(e[:a] + e[a + 1 :])
    s = 1 + r
    log_s = mpmath.log1p(r)
    return Row(a, m, log_s, [v / s for v in e], [log_s - v for v in d], r / s)


def _dense_grad(row: Row, a: list) -> tuple[list, list]:
    r"""``W p - a`` with ``W = \sum_c a_c`` and its scales: at the maximum, where
    ``p_a > 1/2``, as ``\sum_{c \ne a} a_c - W (1 - p_a)``."""
    w = total(a)
    g, sc = [], []
    for c, (p_c, a_c) in enumerate(zip(row.p, a, strict=True)):
        if c == row.amax and row.q < HALF:
            rest = a[:c] + a[c + 1 :]
            g.append(total(rest) - w * row.q)
            sc.append(magnitude(rest) + abs(w) * row.q)
        else:
            g.append(w * p_c - a_c)
            sc.append(abs(w) * p_c + abs(a_c))
    return g, sc


def _label_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], *shape[2:]) if len(shape) >= 2 else ()


def _targets(x: np.ndarray, target, name: str, soft_allowed: bool = True):
    """(soft, probabilities or labels) of ``target`` for class-axis input ``x``."""
    target = np.asarray(target)
    soft = soft_allowed and target.ndim == x.ndim
    if soft:
        t = floats(target, "target")
        same_shape(x, t, "target")
        return True, t
    if target.shape != _label_shape(x.shape):
        raise ValueError(f"target shape {target.shape} does not match {name} {x.shape}")
    return False, labels(target).ravel()


def _weights(weight, classes: int) -> list:
    if weight is None:
        return [ONE] * classes
    w = floats(weight, "weight")
    if w.shape != (classes,):
        raise ValueError(f"weight shape {w.shape}, expected ({classes},)")
    return to_mp(w)


def _assemble(
    x_shape, rows, per, per_scale, local, reduction, denominator, extra_rows=None
) -> tuple[list, dict[str, list], dict[str, list]]:
    """Reduce row losses and scatter row derivatives into flat gradients.

    ``local[name][i]``: row ``i``'s derivatives ``(g, scales)`` (lists over the row), or
    ``"zero"`` (a row that does not enter), or None (undefined).
    """
    out_shape = _label_shape(x_shape) if extra_rows is None else extra_rows
    red = reduce(per, per_scale, reduction, out_shape, denominator)
    size = int(np.prod(x_shape, dtype=np.int64))
    grads, scales = {}, {"value": red.scales}
    for name, by_row in local.items():
        g, sc = [ZERO] * size, [None] * size
        for i, entry in enumerate(by_row):
            idx = rows[i]
            if entry == "zero":
                continue
            up = red.upstream[i]
            for k, c in enumerate(idx):
                if entry is None:
                    g[c] = None
                    continue
                g[c] = scaled(up, entry[0][k])
                s = entry[1][k]
                sc[c] = None if up is None or s is None else abs(up) * s
        grads[name], scales[f"grad:{name}"] = g, sc
    return red.value, grads, scales


def softmax_cross_entropy(
    logits, target, weight=None, *, ignore_index=None, label_smoothing=0.0, reduction="mean"
) -> Exact:
    r"""Softmax cross-entropy with class weights and label smoothing.

    .. math::
        y'_{ic} = (1 - \varepsilon)\, y_{ic} + \varepsilon / C, \qquad
        a_{ic} = w_c\, y'_{ic}, \qquad \ell_i = \sum_c a_{ic} (-\log p_{ic}),

    with :math:`y_i` one-hot for class indices (rank of logits less one) or the given
    probability row (same rank, used as given). A zero :math:`a_{ic}` removes its term
    even where :math:`p_{ic} = 0`. Rows labelled ``ignore_index`` are 0 and leave the
    mean, which divides by :math:`\sum_{i\ \mathrm{kept}} w_{t_i}` (class indices) or
    the number of rows (probabilities).

    .. math::
        \frac{\partial \ell_i}{\partial z_{ik}} = W_i p_{ik} - a_{ik}, \quad
        W_i = \sum_c a_{ic}; \qquad
        \frac{\partial \ell_i}{\partial y_{ik}} = (1 - \varepsilon)\, w_k (-\log p_{ik}).
    """
    z = floats(logits, "logits")
    rows = class_rows(z.shape)
    n_rows, classes = rows.shape
    soft, t = _targets(z, target, "logits")
    check_reduction(reduction)
    eps = mpf(smoothing(label_smoothing))
    w = _weights(weight, classes)
    zs = to_mp(z)
    if soft:
        ys = to_mp(t)
        kept = np.ones(n_rows, dtype=bool)
    else:
        kept = t != ignore_index if ignore_index is not None else np.ones(n_rows, dtype=bool)
        check_labels(t, kept, classes)
    keep = 1 - eps
    spread = eps / classes if classes else ZERO
    per, per_scale = [], []
    local = {"logits": []}
    if soft:
        local["target"] = []
    for i in range(n_rows):
        idx = rows[i]
        if not kept[i] or classes == 0:
            per.append(ZERO)
            per_scale.append(None)
            for v in local.values():
                v.append("zero")
            continue
        y = [ys[c] for c in idx] if soft else [ONE if c == t[i] else ZERO for c in range(classes)]
        a = [w_c * (keep * y_c + spread) for w_c, y_c in zip(w, y, strict=True)]
        row = softmax_row([zs[c] for c in idx])
        if row is None:
            per.append(NAN)
            per_scale.append(None)
            for v in local.values():
                v.append(None)
            continue
        terms = [zmul(a_c, nl_c) for a_c, nl_c in zip(a, row.nl, strict=True)]
        per.append(total(terms))
        per_scale.append(magnitude(terms))
        local["logits"].append(_dense_grad(row, a))
        if soft:
            gy = [zmul(keep * w_c, nl_c) for w_c, nl_c in zip(w, row.nl, strict=True)]
            local["target"].append((gy, [None] * classes))
    if soft:
        denominator = mpf(n_rows)
    else:
        denominator = total(w[t[i]] for i in range(n_rows) if kept[i]) if classes else ZERO
    value, grads, scales = _assemble(z.shape, rows, per, per_scale, local, reduction, denominator)
    shape = _label_shape(z.shape) if reduction == "none" else ()
    return finish(shape, value, grads, scales)


def categorical_cross_entropy(probs, target, *, reduction="mean") -> Exact:
    r"""Cross-entropy of given probabilities :math:`p` (no renormalisation).

    .. math::
        \ell_i = -\sum_c y_{ic} \log p_{ic}, \qquad
        \frac{\partial \ell_i}{\partial p_{ic}} = -\frac{y_{ic}}{p_{ic}}, \qquad
        \frac{\partial \ell_i}{\partial y_{ic}} = -\log p_{ic},

    :math:`y_i` one-hot for class indices (only :math:`p_{it_i}` enters) or the given
    row; a zero :math:`y_{ic}` removes its term (``0 log 0 = 0``), except that a NaN
    :math:`p_{ic}` of a probability target stays NaN. Probabilities lie in ``[0, 1]``.
    The mean divides by the number of rows.
    """
    p = floats(probs, "probs")
    rows = class_rows(p.shape)
    n_rows, classes = rows.shape
    soft, t = _targets(p, target, "probs")
    check_reduction(reduction)
    check_range(p, 0.0, 1.0, "categorical_cross_entropy: probabilities")
    if not soft:
        check_labels(t, np.ones(n_rows, dtype=bool), classes)
    ps = to_mp(p)
    ys = to_mp(t) if soft else None
    per, per_scale = [], []
    local = {"probs": []}
    if soft:
        local["target"] = []
    for i in range(n_rows):
        idx = rows[i]
        row_p = [ps[c] for c in idx]
        if soft:
            y = [ys[c] for c in idx]
            terms, gp, gy = [], [], []
            for p_c, y_c in zip(row_p, y, strict=True):
                if isnan(p_c) or isnan(y_c):
                    terms.append(NAN)
                    gp.append(None)
                    gy.append(None)
                    continue
                log_p = mpmath.log(p_c)
                terms.append(zmul(-y_c, log_p))
                gp.append(_neg_ratio(y_c, p_c))
                gy.append(-log_p)
            per.append(total(terms))
            per_scale.append(magnitude(terms))
            local["probs"].append((gp, [None] * classes))
            local["target"].append((gy, [None] * classes))
        else:
            p_t = row_p[t[i]]
            per.append(-mpmath.log(p_t) if not isnan(p_t) else NAN)
            per_scale.append(None)
            gp = [ZERO] * classes
            gp[t[i]] = None if isnan(p_t) else _neg_ratio(ONE, p_t)
            local["probs"].append((gp, [None] * classes))
    value, grads, scales = _assemble(p.shape, rows, per, per_scale, local, reduction, mpf(n_rows))
    shape = _label_shape(p.shape) if reduction == "none" else ()
    return finish(shape, value, grads, scales)


def _neg_ratio(y, p):
    """``-y / p`` with ``-y / 0 = -sign(y) inf`` and ``0 / p = 0``."""
    if y == 0:
        return ZERO
    if p == 0:
        return -mpmath.sign(y) * INF
    return -y / p


def nll(log_probs, target, weight=None, *, ignore_index=None, reduction="mean") -> Exact:
    r"""Negative log-likelihood of class indices under given log-probabilities :math:`x`.

    .. math::
        \ell_i = -w_{t_i}\, x_{i t_i}, \qquad
        \frac{\partial \ell_i}{\partial x_{ik}} = -w_{t_i} [k = t_i],

    a zero weight giving 0 even where :math:`x = \pm\infty`; ignored rows are 0 and leave
    the mean, which divides by :math:`\sum_{i\ \mathrm{kept}} w_{t_i}`.
    """
    x = floats(log_probs, "log_probs")
    rows = class_rows(x.shape)
    n_rows, classes = rows.shape
    _, t = _targets(x, target, "log_probs", soft_allowed=False)
    check_reduction(reduction)
    w = _weights(weight, classes)
    kept = t != ignore_index if ignore_index is not None else np.ones(n_rows, dtype=bool)
    check_labels(t, kept, classes)
    xs = to_mp(x)
    per, per_scale, local = [], [], {"log_probs": []}
    for i in range(n_rows):
        if not kept[i]:
            per.append(ZERO)
            per_scale.append(None)
            local["log_probs"].append("zero")
            continue
        w_t = w[t[i]]
        per.append(-zmul(w_t, xs[rows[i][t[i]]]))
        per_scale.append(None)
        g = [ZERO] * classes
        g[t[i]] = -w_t
        local["log_probs"].append((g, [None] * classes))
    denominator = total(w[t[i]] for i in range(n_rows) if kept[i])
    value, grads, scales = _assemble(x.shape, rows, per, per_scale, local, reduction, denominator)
    shape = _label_shape(x.shape) if reduction == "none" else ()
    return finish(shape, value, grads, scales)


# ---------------------------------------------------------------- along any axis


def _along(x, axis: int, reduced: bool, block) -> Exact:
    """Apply ``block(row, z, g) -> (values, value scales, vjp, vjp scales)`` to every
    slice of ``x`` along ``axis`` (``row`` None where the softmax is undefined; ``g``
    the slice's cotangent: one number for a ``reduced`` output, else a list)."""
    x = floats(x, "x")
    axis = normal_axis(axis, x.ndim)
    rows = axis_rows(x.shape, axis)
    out_shape = tuple(n for k, n in enumerate(x.shape) if k != axis) if reduced else x.shape
    cot = to_mp(cotangent(out_shape))
    xs = to_mp(x)
    value = [ZERO] * (len(rows) if reduced else x.size)
    value_scale = [None] * len(value)
    vjp, vjp_scale = [ZERO] * x.size, [None] * x.size
    for i, idx in enumerate(rows):
        z = [xs[c] for c in idx]
        g = cot[i] if reduced else [cot[c] for c in idx]
        row = softmax_row(z) if z else None
        v, vs, d, ds = block(row, z, g)
        for k, c in enumerate(idx):
            vjp[c], vjp_scale[c] = d[k], ds[k]
        for k, c in enumerate([i] if reduced else idx):
            value[c], value_scale[c] = v[k], vs[k]
    return finish(out_shape, value, {"x": vjp}, {"value": value_scale, "grad:x": vjp_scale})


def softmax(x, *, axis=-1) -> Exact:
    r"""Softmax along ``axis``; VJP :math:`\bar x_k = p_k (g_k - \sum_c p_c g_c)`.

    A slice with one ``+inf`` is one-hot (VJP 0); NaN, several ``+inf`` or only
    ``-inf`` leave it undefined.
    """

    def block(row, z, g):
        n = len(z)
        if row is None:
            return [NAN] * n, [None] * n, [None] * n, [None] * n
        mean_g = mpmath.fsum(p * gk for p, gk in zip(row.p, g, strict=True))
        vjp = [p * (gk - mean_g) for p, gk in zip(row.p, g, strict=True)]
        scale = [p * (gk + mean_g) for p, gk in zip(row.p, g, strict=True)]
        return row.p, [None] * n, vjp, scale

    return _along(x, axis, False, block)


def log_softmax(x, *, axis=-1) -> Exact:
    r"""Log-softmax along ``axis``; VJP :math:`\bar x_k = g_k - p_k \sum_c g_c`, at the
    maximum :math:`a` as :math:`-\sum_{c \ne a} g_c + (1 - p_a) \sum_c g_c`.

    One ``+inf`` gives 0 there and ``-inf`` elsewhere (the limit); NaN, several ``+inf``
    or only ``-inf`` leave the slice undefined.
    """

    def block(row, z, g):
        n = len(z)
        if row is None:
            return [NAN] * n, [None] * n, [None] * n, [None] * n
        w = total(g)
        vjp, scale = [], []
        for k, (p, gk) in enumerate(zip(row.p, g, strict=True)):
            if k == row.amax:
                vjp.append(-total(g[:k] + g[k + 1 :]) + w * row.q)
            else:
                vjp.append(gk - p * w)
            scale.append(abs(gk) + p * abs(w))
        return [-v for v in row.nl], [None] * n, vjp, scale

    return _along(x, axis, False, block)


def logsumexp(x, *, axis=-1) -> Exact:
    r"""Log-sum-exp along ``axis`` (reduced): :math:`m + \operatorname{log1p}(R)`;
    VJP :math:`g\, p_k`.

    Any ``+inf`` (no NaN) gives ``+inf``; only ``-inf``, or an empty axis, ``-inf``;
    NaN gives NaN. The VJP is undefined where the softmax is. Where :math:`m < 0` the
    two terms cancel: the scale is :math:`|m| + \log S`.
    """

    def block(row, z, g):
        n = len(z)
        if any(isnan(v) for v in z):
            return [NAN], [None], [None] * n, [None] * n
        if any(v == INF for v in z):
            value, scale = INF, None
        elif row is None:  # empty or only -inf
            value, scale = -INF, None
        else:
            value, scale = row.m + row.log_s, abs(row.m) + row.log_s
        vjp = [None] * n if row is None else [g * p for p in row.p]
        return [value], [scale], vjp, [None] * n

    return _along(x, axis, True, block)
