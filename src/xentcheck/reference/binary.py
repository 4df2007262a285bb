"""Binary (independent-Bernoulli) losses of the reference, and the logistic sigmoid.

Every function returns ``(value, grads)``: ``value`` a float64 array (0-d when
reduced), ``grads`` a dict from input name to a float64 array of that input's shape,
the vector-Jacobian product with the fixed cotangent of
:mod:`xentcheck.reference._cotangent` (1 for a reduced, scalar value).

Accuracy: values and gradients are computed in double-double arithmetic
(:mod:`xentcheck.reference._dd`, about 106 bits) and rounded to float64 once, so for
finite inputs they lie within half an ULP (plus about ``2**-100`` relative) of the
exact result whatever its magnitude: a loss of ``exp(-700)`` is right to its last bit.
A difference that cancels (``sigmoid(x) - y`` for a soft target) is right to about
``2**-104`` of its larger term, hence correctly rounded unless it cancels by more than
some 50 bits. Products are formed with their factors normalised (see ``_dd.prod``),
so a subnormal weight or target times a huge loss is exact; a subnormal per-element
gradient is rounded a second time when the cotangent or the mean scales it (within
about 1.5 ULP). Sums and means are correctly rounded sums of the double-double
per-element values (divided once, for the mean), recomputed at a scale of ``2**k``
where the sum is so small that subnormal roundings would add up.
Conventions for the extended reals:

* ``0 * log 0 = 0``, and more generally a term whose coefficient is exactly zero
  (a target 0 or 1, a zero weight, ``alpha_t = 0``) contributes 0 even where the other
  factor is infinite (``0 * inf = 0``, as the limit of the finite case);
* infinite logits take the limit of the finite case (``x = +inf`` with ``y = 1`` gives
  a loss of 0, with ``y < 1`` a loss of ``+inf``);
* NaN in any input of an element makes that element's value and gradients NaN;
* a probability outside ``[0, 1]``, where ``log`` is undefined, raises ``ValueError``.

No framework's clamping is reproduced: PyTorch's ``BCELoss`` clamps ``log`` at -100 and
Keras clips probabilities to ``[1e-7, 1 - 1e-7]``; the report shows those choices as
differences from this reference.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from xentcheck.reference import _dd
from xentcheck.reference._cotangent import cotangent
from xentcheck.reference._elementwise import finish, patch, reduce_value, zmul
from xentcheck.reference.arguments import (
    as_float,
    broadcast_weight,
    check_alpha,
    check_focal_target,
    check_gamma,
    check_probabilities,
    check_reduction,
    check_same_shape,
    check_smoothing,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "log_sigmoid",
    "sigmoid",
    "sigmoid_focal_loss",
    "smoothed_binary_cross_entropy",
]

_ONE = _dd.dd(1.0)
_FAR = 600.0  # beyond, exp(-|x|) < 1e-260 is negligible next to 1 in double-double
_TINY = 2.0**-900  # below, a factor risks rounding to a subnormal before it is scaled


class _Logit(NamedTuple):
    """Double-double pieces of a finite logit ``x``, all from ``e = exp(-|x|)``."""

    ax: np.ndarray  # |x|
    pos: np.ndarray  # x >= 0
    e: _dd.DD  # exp(-|x|), in (0, 1]
    em1: _dd.DD  # expm1(-|x|) = e - 1
    ope: _dd.DD  # 1 + e
    log1pe: _dd.DD  # log1p(e) = softplus(-|x|)

    def sig_abs(self) -> _dd.DD:
        """``sigmoid(|x|) = 1 / (1 + e)``."""
        return _dd.div(_ONE, self.ope)

    def sig_negabs(self) -> _dd.DD:
        """``sigmoid(-|x|) = e / (1 + e)``."""
        return _dd.div(self.e, self.ope)

    def softplus(self) -> _dd.DD:
        """``softplus(x) = max(x, 0) + log1p(e)``."""
        return _dd.where(self.pos, _dd.add_f(self.log1pe, self.ax), self.log1pe)

    def softplus_neg(self) -> _dd.DD:
        """``softplus(-x) = max(-x, 0) + log1p(e)``."""
        return _dd.where(self.pos, self.log1pe, _dd.add_f(self.log1pe, self.ax))


def _logit(xs: np.ndarray) -> _Logit:
    ax = np.abs(xs)
    e, em1 = _dd.exp_expm1(-ax)
    return _Logit(ax, xs >= 0, e, em1, _dd.add_f(e, 1.0), _dd.log1p(e))


def _naive_sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _naive_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _finite(*arrays) -> np.ndarray:
    ok = np.ones(np.shape(arrays[0]), dtype=bool)
    for a in arrays:
        if a is not None:
            ok &= np.isfinite(a)
    return ok


def _one_minus(y: np.ndarray) -> _dd.DD:
    """``1 - y`` exactly, as a double-double."""
    return _dd.two_sum(np.ones_like(y), -y)


def sigmoid(x):
    r"""The logistic sigmoid, element-wise.

    .. math::
        \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma'(x) = \sigma(x)\,\sigma(-x)

    evaluated as ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for ``x < 0`` with
    ``e = exp(-|x|)``, so that neither branch overflows and ``sigmoid(-745)`` is the
    subnormal it should be; ``sigmoid(+-inf)`` is 1 or 0 with derivative 0.

    Args:
      x: float array of any shape.

    Returns:
      ``(value, grads)``: ``value`` the sigmoid of every element (shape of ``x``);
      ``grads["x"] = cotangent * sigmoid'(x)``.

    References:
      ``jax.nn.sigmoid``; ``torch.sigmoid``; ``scipy.special.expit``.
    """
    x = as_float(x, "x")
    ok = np.isfinite(x)
    with np.errstate(all="ignore"):
        lg = _logit(np.where(ok, x, 0.0))
        value = _dd.where(lg.pos, lg.sig_abs(), lg.sig_negabs())
        # cotangent * e / (1 + e)^2 = cotangent * exp(-|x| - 2 log1p(e)), rounded once
        # even where it is subnormal
        log_d = _dd.neg(_dd.add_f(_dd.mul_f(lg.log1pe, 2.0), lg.ax))
        grad = _dd.exp_times(log_d, _dd.dd(cotangent(x.shape)))
        value = patch(ok, value, _naive_sigmoid(x))
        grad = patch(ok, grad, np.where(np.isnan(x), np.nan, 0.0))
    return reduce_value(value, "none"), {"x": _dd.to_float(grad)}


def log_sigmoid(x):
    r"""The log of the logistic sigmoid, element-wise.

    .. math::
        \log\sigma(x) = -\operatorname{softplus}(-x) = \min(x, 0) - \log(1 + e^{-|x|}),
        \qquad \frac{d}{dx}\log\sigma(x) = \sigma(-x)

    ``log_sigmoid(+inf) = 0`` (derivative 0), ``log_sigmoid(-inf) = -inf`` (derivative 1).

    Args:
      x: float array of any shape.

    Returns:
      ``(value, grads)``: ``value`` of the shape of ``x``;
      ``grads["x"] = cotangent * sigmoid(-x)``.

    References:
      ``jax.nn.log_sigmoid``; ``torch.nn.functional.logsigmoid``.
    """
    x = as_float(x, "x")
    ok = np.isfinite(x)
    with np.errstate(all="ignore"):
        lg = _logit(np.where(ok, x, 0.0))
        value = _dd.neg(_dd.where(lg.pos, lg.log1pe, _dd.add_f(lg.log1pe, lg.ax)))
        # cotangent * sigmoid(-x); for x >= 0 as cotangent * exp(-|x| - log1p(e))
        ct = cotangent(x.shape)
        small = _dd.exp_times(_dd.neg(_dd.add_f(lg.log1pe, lg.ax)), _dd.dd(ct))
        grad = _dd.where(lg.pos, small, _dd.mul_f(lg.sig_abs(), ct))
        value = patch(ok, value, -_naive_softplus(-x))
        grad = patch(ok, grad, ct * _naive_sigmoid(-x))
    return reduce_value(value, "none"), {"x": _dd.to_float(grad)}


def binary_cross_entropy(probs, target, weight=None, *, reduction="mean"):
    r"""Binary cross-entropy of predicted probabilities (PyTorch's ``BCELoss``).

    For every element, with probability :math:`p`, target :math:`y` and weight :math:`w`:

    .. math::
        \ell = -w\,\bigl(y \log p + (1 - y) \log(1 - p)\bigr)

    with :math:`0 \log 0 = 0`: ``y = 1, p = 1`` and ``y = 0, p = 0`` give 0, while
    ``y > 0, p = 0`` (or ``y < 1, p = 1``) gives ``+inf``, as the math says. There is
    no clamping (PyTorch clamps ``log`` at -100, Keras clips ``p`` to
    ``[1e-7, 1 - 1e-7]``: those are the frameworks' choices, not the loss).

    ``log(1 - p)`` is evaluated as ``log1p(-p)`` in double-double precision, so
    ``p = 1 - 2**-53`` is exact. Probabilities must lie in ``[0, 1]`` (``ValueError``
    otherwise: the logarithm is undefined); targets may be soft and may even lie outside
    ``[0, 1]``, where the formula is still defined (the loss can then be negative).

    Gradients (before the cotangent):

    .. math::
        \frac{\partial\ell}{\partial p} = w\,\frac{p - y}{p(1 - p)}
          = w\Bigl(-\frac{y}{p} + \frac{1 - y}{1 - p}\Bigr), \qquad
        \frac{\partial\ell}{\partial y} = -w\,\bigl(\log p - \log(1 - p)\bigr)

    the first in its cancellation-free form (``p - y`` and ``1 - p`` are exact in
    double-double); at ``p = 0`` and ``p = 1`` the second form with the zero-coefficient
    convention: ``d/dp = w`` at ``p = 0, y = 0`` and ``-w`` at ``p = 1, y = 1``, and
    ``-inf`` / ``+inf`` where the one-sided derivative is infinite. ``d/dy`` is
    ``+inf`` at ``p = 0`` and ``-inf`` at ``p = 1``.

    Args:
      probs: probabilities in ``[0, 1]``, any shape ``[...]``.
      target: targets of the same shape (0/1 labels or soft probabilities).
      weight: optional element-wise rescaling, broadcastable to ``probs`` (NumPy rules:
        trailing axes aligned). Not differentiated.
      reduction: ``"none"`` (per-element losses), ``"sum"`` or ``"mean"`` (the sum over
        the number of elements; weights do not enter the denominator).

    Returns:
      ``(value, grads)`` with ``grads["probs"]`` and ``grads["target"]``.

    Raises:
      ValueError: on mismatched shapes, a probability outside ``[0, 1]`` or an unknown
        reduction.

    References:
      ``torch.nn.BCELoss``; ``keras.losses.BinaryCrossentropy``;
      Goodfellow, Bengio & Courville, *Deep Learning* (2016), 3.13 and 6.2.2.2.
    """
    p = as_float(probs, "probs")
    y = as_float(target, "target")
    check_same_shape(p, y, "probs", "target")
    w = broadcast_weight(weight, p.shape, "weight", "probs")
    check_reduction(reduction)
    check_probabilities(p, "binary_cross_entropy")

    ok = _finite(y, w) & (p > 0) & (p < 1)
    ps = np.where(ok, p, 0.5)
    ys = np.where(ok, y, 0.0)
    with np.errstate(all="ignore"):
        logp = _dd.log(ps)
        log1mp = _dd.log1p(-ps)
        omy = _one_minus(ys)
        ws = np.ones_like(ps) if w is None else np.where(ok, w, 1.0)
        # Every term is the product of all its factors, weights included (see _dd.prod).

        def losses(scale: int = 0) -> _dd.DD:
            sc = 2.0**scale  # times the power of 2 asked for
            return _dd.neg(_dd.add(_dd.prod(sc, ws, ys, logp), _dd.prod(sc, ws, omy, log1mp)))

        loss = losses()
        num, den = _dd.two_sum(ps, -ys), _dd.mul_f(_one_minus(ps), ps)
        gp = _dd.prod(ws, num, over=den)  # w (p - y) / (p (1 - p))
        gy = _dd.prod(ws, _dd.sub(log1mp, logp))

        # Extended reals: p in {0, 1}, non-finite inputs.
        lp, l1 = np.log(p), np.log1p(-p)
        n_loss = -(zmul(y, lp) + zmul(1.0 - y, l1))
        n_gp = zmul(-y, 1.0 / p) + zmul(1.0 - y, 1.0 / (1.0 - p))
        n_gy = l1 - lp
    grads = {"probs": (gp, n_gp), "target": (gy, n_gy)}
    return finish(ok, reduction, losses, (loss, n_loss), grads, w)


def binary_cross_entropy_with_logits(
    logits, target, weight=None, pos_weight=None, *, reduction="mean"
):
    r"""Sigmoid binary cross-entropy from logits (PyTorch's ``BCEWithLogitsLoss``).

    For every element, with logit :math:`x`, target :math:`y`, weight :math:`w` and
    positive-class weight :math:`p_w`:

    .. math::
        \ell = w\,\bigl[p_w\,y\,\operatorname{softplus}(-x)
               + (1 - y)\operatorname{softplus}(x)\bigr]
        = -w\,\bigl[p_w\,y \log\sigma(x) + (1 - y)\log(1 - \sigma(x))\bigr]

    with ``softplus(x) = max(x, 0) + log1p(exp(-|x|))``, which never overflows: logits
    of ``+-1e30`` give exact losses, and ``x = 700, y = 1`` gives ``exp(-700)`` to its
    last bit. Infinite logits take the limit (``x = +inf, y = 1`` gives 0).

    Gradients (before the cotangent), with :math:`c = (1 - y) + p_w y`:

    .. math::
        \frac{\partial\ell}{\partial x}
          = w\,\bigl[(1 - y)\,\sigma(x) - p_w\,y\,\sigma(-x)\bigr]
          = w\,\bigl[c\,\sigma(x) - p_w\,y\bigr], \qquad
        \frac{\partial\ell}{\partial y}
          = w\,\bigl[p_w \operatorname{softplus}(-x) - \operatorname{softplus}(x)\bigr]

    ``d/dx`` (``sigmoid(x) - y`` when ``p_w = 1``) is evaluated as ``(1 - y) - c*sigma(-x)``
    for ``x >= 0`` and ``c*sigma(x) - p_w*y`` for ``x < 0``, so that it is exact relative
    to itself for 0/1 targets and relative to its larger term for soft ones; ``d/dy`` as
    ``(p_w - 1) softplus(-|x|) - x`` (``x >= 0``) or ``... - p_w x`` (``x < 0``), which
    is exactly ``-x`` when ``p_w = 1``.

    Args:
      logits: float array of any shape ``[...]`` (``[N, C]`` for multi-label input).
      target: targets of the same shape, usually in ``[0, 1]``; values outside are
        allowed (the formula is defined).
      weight: optional element-wise rescaling, broadcastable to ``logits``.
      pos_weight: optional weight of the positive term, broadcastable to ``logits`` by
        NumPy rules, so a ``[C]`` vector applies along the last (class) axis.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (sum over the number of elements).

    Returns:
      ``(value, grads)`` with ``grads["logits"]`` and ``grads["target"]``.

    Raises:
      ValueError: on mismatched shapes or an unknown reduction.

    References:
      ``torch.nn.BCEWithLogitsLoss``; ``tf.nn.sigmoid_cross_entropy_with_logits``;
      ``optax.sigmoid_binary_cross_entropy``.
    """
    x = as_float(logits, "logits")
    y = as_float(target, "target")
    check_same_shape(x, y, "logits", "target")
    w = broadcast_weight(weight, x.shape, "weight", "logits")
    pw = broadcast_weight(pos_weight, x.shape, "pos_weight", "logits")
    check_reduction(reduction)

    ok = _finite(x, y, w, pw)
    xs = np.where(ok, x, 0.0)
    ys = np.where(ok, y, 0.0)
    with np.errstate(all="ignore"):
        lg = _logit(xs)
        ws = np.ones_like(xs) if w is None else np.where(ok, w, 1.0)
        pws = np.ones_like(xs) if pw is None else np.where(ok, pw, 1.0)
        omy = _one_minus(ys)
        c = _dd.add(omy, _dd.two_prod(pws, ys))  # (1 - y) + pw y
        pwm1 = _dd.two_sum(pws, -np.ones_like(pws))  # pw - 1
        q = np.where(lg.pos, 1.0, pws)
        # Every term is the product of all its factors, weights included (see _dd.prod).
        prod = _dd.prod
        w_pwy, w_omy, w_c = prod(ws, pws, ys), prod(ws, omy), prod(ws, c)
        w_c_small = prod(ws, c, lg.sig_negabs())
        gx = _dd.where(lg.pos, _dd.sub(w_omy, w_c_small), _dd.sub(w_c_small, w_pwy))
        w_qx = prod(ws, q, xs)
        gy = _dd.sub(prod(ws, pwm1, lg.log1pe), w_qx)
        # Far from 0 (|x| > 600), each quantity is A + B e to double-double precision
        # (log1p(e) = e and sigma(-|x|) = e up to a factor 1 + O(e)): B e is formed as
        # exp(log|B| - |x|), so a tiny result is not rounded to a subnormal on the way.
        far = (lg.ax > _FAR, _dd.neg(_dd.dd(lg.ax)))

        def losses(scale: int = 0) -> _dd.DD:
            sc = 2.0**scale  # times the power of 2 asked for
            out = _dd.add(
                prod(sc, ws, pws, ys, lg.softplus_neg()), prod(sc, ws, omy, lg.softplus())
            )
            out_a = _dd.where(lg.pos, prod(sc, ws, omy, lg.ax), prod(sc, ws, pws, ys, lg.ax))
            return _far_mix(far, out, out_a, w_c, scale)

        loss = losses()
        gx_a = _dd.where(lg.pos, w_omy, _dd.neg(w_pwy))
        gx = _far_mix(far, gx, gx_a, _dd.where(lg.pos, _dd.neg(w_c), w_c))
        gy = _far_mix(far, gy, _dd.neg(w_qx), prod(ws, pwm1))

        pw_n = 1.0 if pw is None else pw
        sp, spn = _naive_softplus(x), _naive_softplus(-x)
        n_loss = zmul(pw_n * y, spn) + zmul(1.0 - y, sp)
        n_gx = zmul(1.0 - y, _naive_sigmoid(x)) - zmul(pw_n * y, _naive_sigmoid(-x))
        n_gy = zmul(pw_n, spn) - sp
    grads = {"logits": (gx, n_gx), "target": (gy, n_gy)}
    return finish(ok, reduction, losses, (loss, n_loss), grads, w)


def smoothed_binary_cross_entropy(logits, target, *, label_smoothing=0.0, reduction="mean"):
    r"""Binary cross-entropy from logits against targets smoothed towards 1/2 (Keras's
    ``BinaryCrossentropy(from_logits=True, label_smoothing=eps)``).

    Label smoothing over the two classes of each element: with logit :math:`x`, target
    :math:`y` and :math:`\varepsilon` = ``label_smoothing``,

    .. math::
        y' = (1 - \varepsilon)\,y + \tfrac{\varepsilon}{2}, \qquad
        \ell = y' \operatorname{softplus}(-x) + (1 - y') \operatorname{softplus}(x)

    (``1 - y' = (1 - eps)(1 - y) + eps/2``). Gradients (before the cotangent):

    .. math::
        \frac{\partial\ell}{\partial x} = (1 - y')\,\sigma(x) - y'\,\sigma(-x)
            = \sigma(x) - y', \qquad
        \frac{\partial\ell}{\partial y} = -(1 - \varepsilon)\,x

    ``y'`` and ``1 - y'`` are formed in double-double, each from ``y`` or ``1 - y``
    (exact), so no rounding of ``y'`` reaches the loss: it is right to the accuracy of
    :func:`binary_cross_entropy_with_logits` (a loss that cancels to nothing cannot occur
    for ``eps > 0``). Smoothing towards ``1/C`` over a last axis of ``C`` labels (optax's
    ``smooth_labels``) is a different loss unless ``C = 2``.

    Args:
      logits: float array of any shape.
      target: targets of the same shape, usually 0/1 or in ``[0, 1]``.
      label_smoothing: :math:`\varepsilon` in ``[0, 1]``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (over all elements).

    Returns:
      ``(value, grads)`` with ``grads["logits"]`` and ``grads["target"]``.

    Raises:
      ValueError: on mismatched shapes, ``label_smoothing`` outside ``[0, 1]`` or an
        unknown reduction.
    """
    x = as_float(logits, "logits")
    y = as_float(target, "target")
    check_same_shape(x, y, "logits", "target")
    eps = check_smoothing(label_smoothing)
    check_reduction(reduction)

    ok = _finite(x, y)
    xs, ys = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    with np.errstate(all="ignore"):
        lg = _logit(xs)
        keep = _dd.two_sum(np.ones_like(xs), np.full_like(xs, -eps))  # 1 - eps, exactly
        a = _dd.add_f(_dd.prod(ys, keep), np.full_like(xs, eps / 2))  # y'
        b = _dd.add_f(_dd.prod(_one_minus(ys), keep), np.full_like(xs, eps / 2))  # 1 - y'

        def losses(scale: int = 0) -> _dd.DD:
            sc = 2.0**scale
            return _dd.add(_dd.prod(sc, a, lg.softplus_neg()), _dd.prod(sc, b, lg.softplus()))

        up, down = lg.sig_abs(), lg.sig_negabs()  # sigma(|x|), sigma(-|x|)
        gx = _dd.where(
            lg.pos,
            _dd.sub(_dd.prod(b, up), _dd.prod(a, down)),
            _dd.sub(_dd.prod(b, down), _dd.prod(a, up)),
        )
        gy = _dd.neg(_dd.prod(keep, xs))

        a_n = (1.0 - eps) * y + eps / 2
        b_n = (1.0 - eps) * (1.0 - y) + eps / 2
        sp, spn = _naive_softplus(x), _naive_softplus(-x)
        n_loss = zmul(a_n, spn) + zmul(b_n, sp)
        n_gx = zmul(b_n, _naive_sigmoid(x)) - zmul(a_n, _naive_sigmoid(-x))
        n_gy = -(1.0 - eps) * x
    grads = {"logits": (gx, n_gx), "target": (gy, n_gy)}
    return finish(ok, reduction, losses, (losses(), n_loss), grads)


def _far_mix(far, regular: _dd.DD, a: _dd.DD, b: _dd.DD, scale: int = 0) -> _dd.DD:
    """``regular``, or ``a + b exp(-|x|) 2**scale`` where ``|x| > _FAR``."""
    mask, minus_ax = far
    if not np.any(mask):
        return regular
    return _dd.where(mask, _dd.add(a, _dd.exp_times(minus_ax, b, scale)), regular)


def _take(k: np.ndarray, *xs: _dd.DD) -> list[_dd.DD]:
    """The flat elements ``k`` of each double-double in ``xs``."""
    return [(np.ravel(x[0])[k], np.ravel(x[1])[k]) for x in xs]


def _put(x: _dd.DD, k: np.ndarray, v: _dd.DD) -> _dd.DD:
    """A copy of ``x`` with its flat elements ``k`` set to ``v``."""
    hi, lo = np.array(x[0], dtype=np.float64), np.array(x[1], dtype=np.float64)
    hi.reshape(-1)[k], lo.reshape(-1)[k] = v
    return hi, lo


def _power(m: _dd.DD, gamma: float) -> _dd.DD:
    """``m ** gamma`` for ``m >= 0``, ``gamma >= 0`` (``0 ** 0 = 1``)."""
    if gamma == 0.0:
        return _dd.dd(np.ones_like(m[0]))
    if gamma == 1.0:
        return m
    if gamma == 2.0:
        return _dd.mul(m, m)
    pos = m[0] > 0
    r = _dd.exp(_dd.mul_f(_dd.log(_dd.where(pos, m, _ONE)), gamma))
    return _dd.where(pos, r, _dd.dd(np.zeros_like(m[0])))


def sigmoid_focal_loss(logits, target, *, alpha=0.25, gamma=2.0, reduction="mean"):
    r"""Sigmoid focal loss (Lin et al. 2017), as torchvision and optax define it.

    For every element, with logit :math:`x`, target :math:`y \in [0, 1]` and
    :math:`p = \sigma(x)`:

    .. math::
        \mathrm{ce} &= y\operatorname{softplus}(-x) + (1 - y)\operatorname{softplus}(x)
          \quad\text{(BCE with logits)} \\
        1 - p_t &= 1 - \bigl(p y + (1 - p)(1 - y)\bigr) = (1 - y)\,\sigma(x) + y\,\sigma(-x) \\
        \alpha_t &= \alpha y + (1 - \alpha)(1 - y) \\
        \ell &= \alpha_t \,\mathrm{ce}\, (1 - p_t)^\gamma

    ``1 - p_t`` is evaluated in the right-hand, cancellation-free form (for ``y = 1`` it
    is ``sigma(-x)``, which does not round to 0 when ``p`` rounds to 1), and
    ``0 ** 0 = 1``. ``alpha=None`` disables the ``alpha_t`` factor (optax's default);
    so does a negative ``alpha`` (torchvision's convention, ``alpha=-1``).

    Gradients (before the cotangent), with :math:`m = 1 - p_t`:

    .. math::
        \frac{\partial\ell}{\partial x} &= \alpha_t\, m^\gamma \Bigl[(\sigma(x) - y)
          + \gamma\,\mathrm{ce}\,(1 - 2y)\,\frac{\sigma(x)\sigma(-x)}{m}\Bigr] \\
        \frac{\partial\ell}{\partial y} &= m^\gamma \Bigl[(2\alpha - 1)\,\mathrm{ce}
          - \alpha_t\, x + \alpha_t\,\gamma\,\mathrm{ce}\,
          \frac{\sigma(-x) - \sigma(x)}{m}\Bigr]

    (the ``2 alpha - 1`` term is absent when ``alpha_t`` is disabled), evaluated with
    ``m**gamma`` factored out so that ``gamma < 1`` needs no ``m**(gamma - 1)``, and in
    log space where ``m**gamma`` or ``m`` itself is tiny. The accuracy claim of the
    module holds for targets that are 0 or at least about ``1e-290``; a positive target
    below that (a subnormal, say) meets ``exp(-|x|)`` in the subnormal range when
    ``|x| > 708`` and can lose accuracy there.

    Args:
      logits: float array of any shape.
      target: targets of the same shape, in ``[0, 1]`` (0/1 labels or soft).
      alpha: weight of the positive class in ``[0, 1]``; ``None`` or negative to disable.
      gamma: focusing parameter, ``gamma >= 0`` (``gamma = 0`` gives ``alpha_t * ce``).
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (sum over the number of elements).

    Returns:
      ``(value, grads)`` with ``grads["logits"]`` and ``grads["target"]``.

    Raises:
      ValueError: on mismatched shapes, a target outside ``[0, 1]`` (where
        ``(1 - p_t) ** gamma`` can be the power of a negative number), a negative or
        non-finite ``gamma``, a NaN ``alpha`` or an unknown reduction.

    References:
      Lin, Goyal, Girshick, He & Dollar, *Focal Loss for Dense Object Detection*, ICCV
      2017 (arXiv:1708.02002); ``torchvision.ops.sigmoid_focal_loss``;
      ``optax.sigmoid_focal_loss``.
    """
    x = as_float(logits, "logits")
    y = as_float(target, "target")
    check_same_shape(x, y, "logits", "target")
    check_reduction(reduction)
    gamma = check_gamma(gamma)
    check_alpha(alpha)
    use_alpha = alpha is not None and float(alpha) >= 0
    check_focal_target(y)

    ok = _finite(x, y)
    xs = np.where(ok, x, 0.0)
    ys = np.where(ok, y, 0.0)
    with np.errstate(all="ignore"):
        lg = _logit(xs)
        omy = _one_minus(ys)
        yd = _dd.dd(ys)
        # With a = 1 - y, b = y for x >= 0 and a = y, b = 1 - y for x < 0:
        #   ce = a|x| + log1p(e),  m = (a + b e) / (1 + e),  sigma(x) - y = s (a - b e) / (1 + e)
        a = _dd.where(lg.pos, omy, yd)
        b = _dd.where(lg.pos, yd, omy)
        sign = np.where(lg.pos, 1.0, -1.0)
        ce = _dd.add(_dd.mul_f(a, lg.ax), lg.log1pe)
        den = _dd.add(a, _dd.mul(b, lg.e))  # a + b e = m (1 + e)
        m = _dd.div(den, lg.ope)
        a0 = a[0] == 0  # y in {0, 1} on the side it predicts: m = e / (1 + e)
        den_s = _dd.where(a0, _ONE, den)
        if use_alpha:
            al = float(alpha)
            at = _dd.add(
                _dd.two_prod(np.full_like(ys, al), ys),
                _dd.mul(omy, _dd.two_sum(np.ones_like(ys), -al)),
            )
            atp = _dd.two_sum(np.full_like(ys, 2.0 * al), -np.ones_like(ys))
        else:
            at = _dd.dd(np.ones_like(ys))
            atp = _dd.dd(np.zeros_like(ys))
        mg = _power(m, gamma)
        tiny_loss = None  # (elements, z, F): loss = F exp(z) there, set below

        # d/dx = alpha_t m^g s / (1 + e) [(a - b e) + g ce (a - b) e / (a + b e)]
        a_minus_b = _dd.mul_f(_dd.two_sum(np.ones_like(ys), -2.0 * ys), sign)
        t2 = _dd.div(_dd.mul(_dd.mul(ce, a_minus_b), lg.e), den_s)
        t2 = _dd.where(a0, _dd.neg(lg.log1pe), t2)  # a = 0: ce (a - b) e / (b e) = -log1p(e)
        bracket = _dd.add(_dd.sub(a, _dd.mul(b, lg.e)), _dd.mul_f(t2, gamma))
        gx = _dd.mul_f(_dd.div(_dd.mul(_dd.mul(at, mg), bracket), lg.ope), sign)

        # d/dy = m^g [(2 alpha - 1) ce - alpha_t x + alpha_t g s ce expm1(-|x|) / (a + b e)]
        e_s = _dd.where(lg.e[0] > 0, lg.e, _ONE)
        f = _dd.where(lg.e[0] > 0, _dd.div(lg.log1pe, e_s), _ONE)  # log1p(e) / e
        # ce / (a + b e) = (a |x| + log1p(e)) / (a + b e), the first term normalised so
        # that a subnormal target a does not round a |x| before the division
        ratio = _dd.add(_dd.prod(a, lg.ax, over=den_s), _dd.div(lg.log1pe, den_s))
        ratio = _dd.where(a0, f, ratio)
        t3 = _dd.mul_f(_dd.mul_f(_dd.mul(_dd.mul(at, ratio), lg.em1), gamma), sign)
        bracket_y = _dd.add(_dd.sub(_dd.mul(atp, ce), _dd.mul_f(at, xs)), t3)
        gy = _dd.mul(mg, bracket_y)

        # Where m**gamma is tiny it may underflow while the results do not: there, and
        # wherever a = 0 (y = 1, x >= 0 or y = 0, x < 0: m = e / (1 + e) and
        # ce = log1p(e) = e f may underflow themselves), each result is F exp(z) formed
        # as sign(F) exp(z + log|F|), with log m = -(|x| + log1p(e)) where a = 0:
        #   loss = alpha_t ce m^g             = alpha_t f exp(g log m - |x|)  (a = 0)
        #   d/dx = alpha_t m^g s bracket / (1 + e) = -s alpha_t (1 + g f) m^(1 + g)  (a = 0)
        #   d/dy = m^g bracket_y.
        tiny = a0 | (mg[0] < _TINY)
        if np.any(tiny):
            k = np.nonzero(tiny.ravel())[0]
            ka0, ax, sk = a0.ravel()[k], lg.ax.ravel()[k], sign.ravel()[k]
            L, at_k, f_k, ce_k, m_k, br_k, bry_k, ope_k = _take(
                k, lg.log1pe, at, f, ce, m, bracket, bracket_y, lg.ope
            )
            logm = _dd.where(ka0, _dd.neg(_dd.add_f(L, ax)), _dd.log(m_k))
            glogm = _dd.mul_f(logm, gamma)
            z = _dd.where(ka0, _dd.add_f(glogm, -ax), glogm)
            fl = _dd.where(ka0, _dd.mul(at_k, f_k), _dd.mul(at_k, ce_k))
            tiny_loss = (k, z, fl)
            z = _dd.where(ka0, _dd.add(logm, glogm), glogm)
            fx0 = _dd.mul_f(_dd.mul(at_k, _dd.add_f(_dd.mul_f(f_k, gamma), 1.0)), -sk)
            fx = _dd.mul_f(_dd.div(_dd.mul(at_k, br_k), ope_k), sk)
            gx = _put(gx, k, _dd.exp_times(z, _dd.where(ka0, fx0, fx)))
            gy = _put(gy, k, _dd.exp_times(glogm, bry_k))

        # |x| < 2**-900: s expm1(-|x|) = -x, so d/dy = m^g (2 alpha - 1) ce + m^g x Q with
        # Q = -alpha_t (1 + g ce / (a + b e)); the second product is formed in one piece,
        # as the result can lie where double-double has no digits to spare.
        small_x = (lg.ax < _TINY) & (lg.ax > 0)
        if np.any(small_x):
            q = _dd.neg(_dd.mul(at, _dd.add_f(_dd.mul_f(ratio, gamma), 1.0)))
            gy_small = _dd.add(_dd.prod(mg, atp, ce), _dd.prod(mg, xs, q))
            gy = _dd.where(small_x, gy_small, gy)

        def losses(scale: int = 0) -> _dd.DD:
            sc = 2.0**scale  # times the power of 2 asked for
            out = _dd.prod(sc, at, ce, mg)
            if tiny_loss is not None:
                k, z, fl = tiny_loss
                out = _put(out, k, _dd.exp_times(z, fl, scale))
            return out

        loss = losses()
        n_loss, n_gx, n_gy = _naive_focal(x, y, float(alpha) if use_alpha else None, gamma)
    grads = {"logits": (gx, n_gx), "target": (gy, n_gy)}
    return finish(ok, reduction, losses, (loss, n_loss), grads)


def _naive_focal(x, y, alpha, gamma):
    """Float64 focal loss and gradients, textbook form, for non-finite elements."""
    s, sn = _naive_sigmoid(x), _naive_sigmoid(-x)
    sp, spn = _naive_softplus(x), _naive_softplus(-x)
    ce = zmul(y, spn) + zmul(1.0 - y, sp)
    m = zmul(1.0 - y, s) + zmul(y, sn)
    mg = m**gamma
    if alpha is None:
        at, atp = np.ones_like(x), np.zeros_like(x)
    else:
        at, atp = alpha * y + (1.0 - alpha) * (1.0 - y), np.full_like(x, 2.0 * alpha - 1.0)
    loss = zmul(at, zmul(ce, mg))
    mgm1 = m ** (gamma - 1.0)
    dm = zmul(gamma, zmul(ce, zmul(1.0 - 2.0 * y, zmul(zmul(s, sn), mgm1))))
    gx = zmul(at, zmul(s - y, mg) + dm)
    gy = zmul(mg, zmul(atp, ce) - zmul(at, x)) + zmul(at, zmul(gamma, zmul(ce, zmul(mgm1, sn - s))))
    return loss, gx, gy
