r"""Binary (element-wise Bernoulli) losses and the logistic sigmoid, exactly.

Every element is its own loss; reductions ``none`` (times the cotangent), ``sum`` and
``mean`` (over the number of elements, weights not entering it). Conventions of the
extended reals: a term whose coefficient is exactly 0 (a target 0 or 1, a zero weight)
is absent even where its other factor is infinite; infinite logits take the limit of
the finite case; NaN makes the element undefined.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from xentcheck.exact.arguments import (
    broadcast,
    check_range,
    check_reduction,
    floats,
    same_shape,
    smoothing,
)
from xentcheck.exact.reals import (
    INF,
    NAN,
    ONE,
    ZERO,
    finite,
    isnan,
    softplus,
    tanh_half,
    to_mp,
    total,
    zmul,
)
from xentcheck.exact.reals import sigmoid as sig
from xentcheck.exact.result import Exact, elementwise, finish
from xentcheck.reference import cotangent

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "log_sigmoid",
    "sigmoid",
    "sigmoid_focal_loss",
    "smoothed_binary_cross_entropy",
]


def _mags(*terms):
    """The sum of the magnitudes of finite ``terms`` (None if any is not finite)."""
    if not all(finite(t) for t in terms):
        return None
    return mpmath.fsum(abs(t) for t in terms)


def _inverse(v):
    """``1 / v`` with ``1 / 0 = +inf`` (``v >= 0`` here)."""
    return INF if v == 0 else 1 / v


def _columns(shape, *arrays):
    """The arrays (None: ones) broadcast to ``shape``, as flat mpmath lists."""
    return [[ONE] * int(np.prod(shape, dtype=np.int64)) if a is None else to_mp(a) for a in arrays]


def sigmoid(x) -> Exact:
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, VJP :math:`g\,\sigma(x)\sigma(-x)`
    (0 at ``+-inf``)."""
    x = floats(x, "x")
    cot = to_mp(cotangent(x.shape))
    xs = to_mp(x)
    grad = [None if isnan(v) else g * sig(v) * sig(-v) for v, g in zip(xs, cot, strict=True)]
    return finish(x.shape, [sig(v) for v in xs], {"x": grad})


def log_sigmoid(x) -> Exact:
    r""":math:`\log\sigma(x) = -\operatorname{softplus}(-x)`, VJP :math:`g\,\sigma(-x)`
    (0 at ``+inf``, ``g`` at ``-inf``)."""
    x = floats(x, "x")
    cot = to_mp(cotangent(x.shape))
    xs = to_mp(x)
    grad = [None if isnan(v) else g * sig(-v) for v, g in zip(xs, cot, strict=True)]
    return finish(x.shape, [-softplus(-v) for v in xs], {"x": grad})


def binary_cross_entropy(probs, target, weight=None, *, reduction="mean") -> Exact:
    r"""Binary cross-entropy of probabilities :math:`p \in [0, 1]` against targets
    :math:`y` (any real; soft, or even outside ``[0, 1]``), weight :math:`w`:

    .. math::
        \ell = -w \bigl(y \log p + (1 - y) \log(1 - p)\bigr), \qquad
        \frac{\partial \ell}{\partial p} = w\,\frac{p - y}{p (1 - p)}, \qquad
        \frac{\partial \ell}{\partial y} = -w \log\frac{p}{1 - p}.

    At :math:`p \in \{0, 1\}` the one-sided forms
    :math:`w(-y/p + (1 - y)/(1 - p))` with the zero-coefficient convention
    (``1/0 = inf``); :math:`\partial/\partial y` is :math:`\pm\infty` there.
    """
    p = floats(probs, "probs")
    y = floats(target, "target")
    same_shape(p, y, "target")
    w = broadcast(weight, p.shape, "weight")
    check_reduction(reduction)
    check_range(p, 0.0, 1.0, "binary_cross_entropy: probabilities")
    ps, ys, ws = _columns(p.shape, p, y, w)

    def element(p, y, w):
        if isnan(p) or isnan(y) or isnan(w):
            return NAN, None, {"probs": (None, None), "target": (None, None)}
        log_p, log_q = mpmath.log(p), mpmath.log1p(-p)
        a, b = zmul(y, log_p), zmul(1 - y, log_q)
        loss = -zmul(w, total([a, b]))
        if 0 < p < 1 and finite(y):
            gp = zmul(w, (p - y) / (p * (1 - p)))
        else:
            gp = zmul(w, total([zmul(-y, _inverse(p)), zmul(1 - y, _inverse(1 - p))]))
        gy = zmul(w, -mpmath.log(p / (1 - p)) if 0 < p < 1 else log_q - log_p)
        scale_y = None if not 0 < p < 1 else abs(w) * (abs(log_p) + abs(log_q))
        return loss, _scaled(w, _mags(a, b)), {"probs": (gp, None), "target": (gy, scale_y)}

    elements = [element(*e) for e in zip(ps, ys, ws, strict=True)]
    return elementwise(p.shape, elements, ("probs", "target"), reduction)


def _scaled(w, scale):
    return None if scale is None or not finite(w) else abs(w) * scale


def binary_cross_entropy_with_logits(
    logits, target, weight=None, pos_weight=None, *, reduction="mean"
) -> Exact:
    r"""Sigmoid binary cross-entropy from logits, weight :math:`w`, positive weight
    :math:`p_w`:

    .. math::
        \ell &= w\,\bigl[p_w y \operatorname{softplus}(-x)
               + (1 - y) \operatorname{softplus}(x)\bigr] \\
        \frac{\partial \ell}{\partial x} &= w\,\bigl[(1 - y)\sigma(x) - p_w y\,\sigma(-x)\bigr]
        \\
        \frac{\partial \ell}{\partial y} &= w\,\bigl[p_w \operatorname{softplus}(-x)
            - \operatorname{softplus}(x)\bigr] = w\,\bigl[(p_w - 1)\operatorname{softplus}(-x)
            - x\bigr]

    (the last form for finite :math:`x`). ``weight`` and ``pos_weight`` broadcast to the
    logits' shape (trailing axes aligned).
    """
    x = floats(logits, "logits")
    y = floats(target, "target")
    same_shape(x, y, "target")
    w = broadcast(weight, x.shape, "weight")
    pw = broadcast(pos_weight, x.shape, "pos_weight")
    check_reduction(reduction)
    xs, ys, ws, pws = _columns(x.shape, x, y, w, pw)

    def element(x, y, w, pw):
        c1, c0 = pw * y, 1 - y
        sp_n, sp_p = softplus(-x), softplus(x)
        a, b = zmul(c1, sp_n), zmul(c0, sp_p)
        loss = zmul(w, total([a, b]))
        u, v = zmul(c0, sig(x)), zmul(c1, sig(-x))
        gx = zmul(w, total([u, -v]))
        if finite(x):
            r = zmul(pw - 1, sp_n)
            gy, scale_y = zmul(w, total([r, -x])), _scaled(w, _mags(r, x))
        else:
            gy, scale_y = zmul(w, total([zmul(pw, sp_n), -sp_p])), None
        return (
            loss,
            _scaled(w, _mags(a, b)),
            {"logits": (gx, _scaled(w, _mags(u, v))), "target": (gy, scale_y)},
        )

    elements = [element(*e) for e in zip(xs, ys, ws, pws, strict=True)]
    return elementwise(x.shape, elements, ("logits", "target"), reduction)


def smoothed_binary_cross_entropy(logits, target, *, label_smoothing=0.0, reduction="mean"):
    r"""Binary cross-entropy from logits against targets smoothed towards 1/2:

    .. math::
        y' = (1 - \varepsilon) y + \varepsilon / 2, \qquad
        \ell = y' \operatorname{softplus}(-x) + (1 - y') \operatorname{softplus}(x), \\
        \frac{\partial \ell}{\partial x} = (1 - y')\sigma(x) - y'\sigma(-x), \qquad
        \frac{\partial \ell}{\partial y} = -(1 - \varepsilon)\, x

    with :math:`1 - y' = (1 - \varepsilon)(1 - y) + \varepsilon/2`; at
    :math:`\varepsilon = 1` the loss does not depend on :math:`y` (derivative 0, also
    at infinite :math:`x`).
    """
    x = floats(logits, "logits")
    y = floats(target, "target")
    same_shape(x, y, "target")
    eps = mpf(smoothing(label_smoothing))
    check_reduction(reduction)
    keep, half = 1 - eps, eps / 2

    def element(x, y):
        a, b = keep * y + half, keep * (1 - y) + half
        la, lb = zmul(a, softplus(-x)), zmul(b, softplus(x))
        u, v = zmul(b, sig(x)), zmul(a, sig(-x))
        return (
            total([la, lb]),
            _mags(la, lb),
            {"logits": (total([u, -v]), _mags(u, v)), "target": (-zmul(keep, x), None)},
        )

    elements = [element(*e) for e in zip(to_mp(x), to_mp(y), strict=True)]
    return elementwise(x.shape, elements, ("logits", "target"), reduction)


def sigmoid_focal_loss(logits, target, *, alpha=0.25, gamma=2.0, reduction="mean") -> Exact:
    r"""Sigmoid focal loss (Lin et al. 2017) with :math:`s = \sigma(x)`,
    :math:`y \in [0, 1]`:

    .. math::
        \mathrm{ce} &= y \operatorname{softplus}(-x) + (1 - y)\operatorname{softplus}(x),
        \quad m = (1 - y)\, s + y\, \sigma(-x), \quad
        \alpha_t = \alpha y + (1 - \alpha)(1 - y), \\
        \ell &= \alpha_t\, \mathrm{ce}\, m^\gamma \quad (0^0 = 1), \\
        \frac{\partial \ell}{\partial x} &= \alpha_t \bigl[m^\gamma (s - y)
            + \gamma\, \mathrm{ce}\, (1 - 2y)\, s\, \sigma(-x)\, m^{\gamma - 1}\bigr], \\
        \frac{\partial \ell}{\partial y} &= m^\gamma \bigl[(2\alpha - 1)\, \mathrm{ce}
            - \alpha_t x - \alpha_t \gamma\, \mathrm{ce} \tanh(x/2) / m\bigr].

    ``alpha`` None or negative: :math:`\alpha_t = 1` and no :math:`2\alpha - 1` term.
    Infinite logits take the limits of the finite case (see :func:`_focal_limit`).
    """
    x = floats(logits, "logits")
    y = floats(target, "target")
    same_shape(x, y, "target")
    check_reduction(reduction)
    gamma = float(gamma)
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma {gamma} must be finite and >= 0")
    if alpha is not None and np.isnan(float(alpha)):
        raise ValueError("alpha is NaN")
    check_range(y, 0.0, 1.0, "sigmoid_focal_loss: targets")
    use_alpha = alpha is not None and float(alpha) >= 0
    al, g = mpf(float(alpha)) if use_alpha else None, mpf(gamma)

    def element(x, y):
        if isnan(x) or isnan(y):
            return NAN, None, {"logits": (None, None), "target": (None, None)}
        if use_alpha:
            at, atp = al * y + (1 - al) * (1 - y), 2 * al - 1
            at_mag = abs(al * y) + abs((1 - al) * (1 - y))
        else:
            at, atp, at_mag = ONE, ZERO, ONE
        if not finite(x):
            loss, gx, gy = _focal_limit(x, y, at, atp, g)
            return loss, None, {"logits": (gx, None), "target": (gy, None)}
        s, sn = sig(x), sig(-x)
        ce = zmul(y, softplus(-x)) + zmul(1 - y, softplus(x))
        m = (1 - y) * s + y * sn
        mg = mpmath.power(m, g) if g else ONE
        loss = at * ce * mg
        d, d_mag = (-sn, sn) if y == 1 else (s, s) if y == 0 else (s - y, s + y)
        t2 = g * ce * (1 - 2 * y) * s * sn * mpmath.power(m, g - 1) if g else ZERO
        gx = at * (mg * d + t2)
        gx_mag = at_mag * (mg * d_mag + abs(t2))
        th = tanh_half(x)
        v1, v3 = atp * ce, g * ce * th / m
        gy = mg * (v1 - at * x - at * v3)
        gy_mag = mg * (abs(v1) + at_mag * (abs(x) + abs(v3)))
        return (
            loss,
            at_mag * ce * mg,
            {"logits": (gx, gx_mag), "target": (gy, gy_mag)},
        )

    elements = [element(*e) for e in zip(to_mp(x), to_mp(y), strict=True)]
    return elementwise(x.shape, elements, ("logits", "target"), reduction)


def _focal_limit(x, y, at, atp, g):
    r"""(loss, d/dx, d/dy) of the focal loss at ``x = +-inf``: the limits of the finite
    case. With :math:`u = 1 - y` at ``+inf`` (:math:`u = y` at ``-inf``), the side the
    logit predicts against:

    * :math:`u > 0`: :math:`\mathrm{ce} \to \infty`, :math:`m \to u`; the loss is
      :math:`\alpha_t \infty` (0 where :math:`\alpha_t = 0`), :math:`\partial_x \to
      \pm\alpha_t u^{\gamma + 1}`, and :math:`\partial_y \sim |x| u^\gamma K` with
      :math:`K = (2\alpha - 1)(1 - y) - \alpha_t (1 + \gamma)` (``+inf``) or
      :math:`(2\alpha - 1) y + \alpha_t (1 + \gamma)` (``-inf``): :math:`\pm\infty` by
      its sign, undefined where :math:`K = 0`;
    * :math:`u = 0`: the loss and :math:`\partial_x` tend to 0 (as
      :math:`e^{-(1 + \gamma)|x|}`), :math:`\partial_y \sim \mp \alpha_t |x| e^{-\gamma|x|}`:
      0 for :math:`\gamma > 0`, :math:`\mp\alpha_t \infty` for :math:`\gamma = 0`.
    """
    up = x > 0
    u = 1 - y if up else y
    if u == 0:
        gy = zmul(-at if up else at, INF) if g == 0 else ZERO
        return ZERO, ZERO, gy
    loss = zmul(at, INF)
    gx = at * mpmath.power(u, g + 1) * (1 if up else -1)
    k = atp * (1 - y) - at * (1 + g) if up else atp * y + at * (1 + g)
    gy = None if k == 0 else mpmath.sign(k) * INF
    return loss, gx, gy
