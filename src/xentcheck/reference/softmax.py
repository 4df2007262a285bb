r"""Softmax-family reference losses in float64, class axis 1 (PyTorch's layout).

With :math:`p = \mathrm{softmax}(z)` along the class axis of logits ``[N, C, d1, ...]``
(``[C]`` is one unbatched sample), class weights :math:`w` and the smoothed target
:math:`y' = (1 - \varepsilon) y + \varepsilon / C`:

.. math::
    \text{softmax\_cross\_entropy:}\ \ell_i = -\sum_c w_c\, y'_{ic} \log p_{ic}, \qquad
    \text{nll:}\ \ell_i = -w_{t_i} x_{i t_i}, \qquad
    \text{categorical:}\ \ell_i = -\sum_c y_{ic} \log p_{ic},

a target holding class indices ``[N, d1, ...]`` (one rank lower than the first input) or
probabilities (the same rank); ``softmax``, ``log_softmax`` and ``logsumexp`` along any
axis. Each function returns ``(value, grads)``: the value a float64 array (0-d when
reduced), the gradients the vector-Jacobian products with the fixed cotangent of
:mod:`xentcheck.reference._cotangent`. The rows are computed by the double-double row
kernel :mod:`xentcheck.reference.rows`, reductions use correctly rounded sums, and
weights below 1 are scaled up by a power of two (exactly) and the results scaled back.
Against mpmath (``tests/reference``): values and gradients within 4 ULP of the exact
value, or of a cancelling difference's larger term; an absolute error of a few
``2**-1074`` near underflow. Non-finite logits follow the limits of the math, as each
function documents.
"""

from __future__ import annotations

import numpy as np

from xentcheck.reference._cotangent import cotangent
from xentcheck.reference._reduce import exact_sum, reduce
from xentcheck.reference.arguments import (
    as_labels,
    as_real,
    check_axis,
    check_label_shape,
    check_labels,
    check_probabilities,
    check_reduction,
    check_smoothing,
    check_target_shape,
    class_weight,
    kept_labels,
    label_shape,
    n_classes,
)
from xentcheck.reference.rows import Rows, blocks, rows_along, shifted_rows, sum_dd, two_sum

__all__ = [
    "categorical_cross_entropy",
    "log_softmax",
    "logsumexp",
    "nll",
    "softmax",
    "softmax_cross_entropy",
]

# --------------------------------------------------------------------- layout, scaling


def _to_rows(x: np.ndarray) -> np.ndarray:
    """``[N, C, d1, ...]`` (or ``[C]``) -> ``[N*d1*..., C]`` rows, C-order over the rest."""
    return rows_along(x, 1 if x.ndim >= 2 else 0)


def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_to_rows` for an array of ``shape``."""
    if len(shape) == 1:
        return rows.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))


def _upscale(w: np.ndarray) -> int:
    """``k <= 0`` such that ``w * 2**-k`` has its largest magnitude in ``[1, 2)`` when it
    is below 1 (else 0).

    Every loss is linear in its weights: computing with weights scaled up by a power of
    two (exactly) and scaling the results back at the end keeps tiny weights from losing
    their digits to underflow in products and in a weighted mean's denominator.
    """
    big = float(np.max(np.abs(w), initial=0.0))
    return int(np.frexp(big)[1]) - 1 if 0.0 < big < 1.0 else 0


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` with ``0 * inf = 0`` (a zero weight or probability removes the term)."""
    return np.where(a == 0, 0.0, a * b)


def _dot_dd(a: np.ndarray, x_hi: np.ndarray, x_lo: np.ndarray, w=None) -> np.ndarray:
    """``sum_c w_c a_c (x_hi + x_lo)_c`` per row, terms with ``a_c = 0`` or ``w_c = 0``
    removed; ``w`` (an input, exact) multiplies last, so no rounded product underflows
    before it meets a large ``x``."""
    hi, lo = _times(a, x_hi), _times(a, x_lo)
    if w is not None:
        hi, lo = _times(w, hi), _times(w, lo)
    s_hi, s_lo = sum_dd(hi)
    return s_hi + (s_lo + lo.sum(axis=-1))


def _row_cotangent(reduction: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The fixed cotangent of each position's loss (flat), for ``none``; else None."""
    return cotangent(shape).reshape(-1) if reduction == "none" else None


def _scale(g: np.ndarray, reduction: str, cot: np.ndarray | None, denominator: float):
    """Row quantities ``g`` ``[m]`` or ``[m, C]`` times their rows' upstream cotangent:
    the fixed cotangent (``none``), 1 (``sum``), or divided once by the denominator."""
    if reduction == "none":
        return g * (cot[:, None] if g.ndim == 2 else cot)
    if reduction == "sum":
        return g
    return g / np.float64(denominator)


# --------------------------------------------------------------------------- losses


def softmax_cross_entropy(
    logits,
    target,
    weight=None,
    *,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
):
    r"""Softmax cross-entropy between logits and class indices or class probabilities.

    Let :math:`z` be the ``logits`` of shape ``[N, C, d1, ...]`` (class axis 1; a 1-D
    ``[C]`` is one unbatched sample), :math:`p = \mathrm{softmax}(z)` along the class axis,
    :math:`w` the class ``weight`` ``[C]`` (default all ones), :math:`\varepsilon` the
    ``label_smoothing``. With the smoothed target

    .. math::
        y'_{ic} = (1 - \varepsilon)\, y_{ic} + \varepsilon / C

    where :math:`y_i` is ``onehot(target[i])`` for class indices ``[N, d1, ...]`` and the
    given row for a probability target of the logits' shape (used as given: rows need not
    sum to 1), each position's loss is

    .. math::
        \ell_i = -\sum_c w_c\, y'_{ic} \log p_{ic}
               = \sum_c w_c\, y'_{ic} \left(\operatorname{logsumexp}(z_i) - z_{ic}\right).

    For class indices this is PyTorch's
    :math:`(1-\varepsilon)\, w_{t_i} (-\log p_{i t_i}) + (\varepsilon/C) \sum_c w_c (-\log p_{ic})`.
    Positions whose label equals ``ignore_index`` get :math:`\ell_i = 0` and are left out
    of the mean (``ignore_index`` does not apply to probability targets).

    Reduction: ``none`` gives :math:`\ell` of shape ``[N, d1, ...]``; ``sum``
    :math:`\sum_i \ell_i`; ``mean`` for class indices
    :math:`\sum_i \ell_i / \sum_{i\ \mathrm{kept}} w_{t_i}` (PyTorch's weighted mean) and
    for probability targets :math:`\sum_i \ell_i / (N d_1 \cdots)` (weights do not enter
    the denominator). A zero denominator follows IEEE, no exception: a mean over nothing
    is ``0/0 = NaN``, a positive sum over zero total weight ``+inf``.

    Gradients: :math:`\partial \ell_i / \partial z_{ik} = W_i p_{ik} - w_k y'_{ik}` with
    :math:`W_i = \sum_c w_c y'_{ic}`; for a probability target also
    :math:`\partial \ell_i / \partial y_{ik} = -(1-\varepsilon)\, w_k \log p_{ik}`. Ignored
    positions get zero gradients; a mean whose denominator is 0 gives IEEE ``x/0``
    (NaN or inf) in the kept positions.

    Edges: a logit of ``-inf`` has :math:`p = 0`, so a target class there gives
    :math:`+\infty` (with the finite limit gradient :math:`W p - w y'`); a row with one
    ``+inf`` logit is the limit of that logit growing (:math:`p` one-hot there: loss 0 when
    the target is that class, :math:`+\infty` when another class has target weight);
    two or more ``+inf`` in a row, a row of only ``-inf`` or a NaN logit make that
    position's loss and logit gradients NaN. A zero weight or zero target probability
    removes its term even where :math:`\log p = -\infty`.

    Args:
      logits: unnormalised log-probabilities ``[N, C, d1, ...]`` or ``[C]``.
      target: class indices ``[N, d1, ...]`` (int) or probabilities ``[N, C, d1, ...]``.
      weight: optional class weights ``[C]``.
      ignore_index: a label whose positions are skipped (class-index targets only).
      label_smoothing: :math:`\varepsilon` in ``[0, 1]``.
      reduction: ``none``, ``sum`` or ``mean``.

    Returns:
      ``(value, grads)``: the loss (``[N, d1, ...]`` or 0-d) and gradients for ``logits``
      and, with a probability target, ``target``.

    Raises:
      ValueError: a label outside ``[0, C)`` that is not ``ignore_index``, mismatched
        shapes, ``label_smoothing`` outside ``[0, 1]``, an unknown reduction.

    References:
      PyTorch ``torch.nn.functional.cross_entropy``
      (https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html);
      Szegedy et al., *Rethinking the Inception Architecture*, 2016 (label smoothing);
      Blanchard, Higham, Higham, *Accurately computing the log-sum-exp and softmax
      functions*, IMA J. Numer. Anal. 2021.
    """
    z = as_real(logits, "logits")
    classes = n_classes(z, "logits")
    target = np.asarray(target)
    check_target_shape(target, z, "logits")
    check_reduction(reduction)
    eps = check_smoothing(label_smoothing)
    w = class_weight(weight, classes)
    soft = target.ndim == z.ndim
    zr = _to_rows(z)
    out_shape = label_shape(z)
    n_rows = zr.shape[0]
    kept = np.ones(n_rows, dtype=bool)
    w_exp = 0  # the weights in use are scaled by 2**-w_exp (see _upscale)
    if soft or eps:
        w_exp = 0 if w is None else _upscale(w)
        w = None if w is None else np.ldexp(w, -w_exp)
    if soft:
        y = _to_rows(as_real(target, "target"))
        denominator = float(n_rows)
    else:
        t_all = as_labels(target, "target").ravel()
        kept = kept_labels(t_all, ignore_index)
        check_labels(t_all, kept, classes)
        t = np.where(kept, t_all, 0)
        wt = np.ones(n_rows) if w is None or classes == 0 else w[t]
        wt = np.where(kept, wt, 0.0)
        if not eps:  # only the targets' weights enter
            w_exp = _upscale(wt)
            wt = np.ldexp(wt, -w_exp)
        denominator = exact_sum(wt)

    per = np.zeros(n_rows)
    g = np.zeros(zr.shape)
    gy = np.zeros(zr.shape) if soft else None
    cot = _row_cotangent(reduction, out_shape)
    wc = np.ones(classes) if w is None else w
    dense = soft or eps > 0.0
    with np.errstate(all="ignore"):
        # with no classes every (kept) position has loss 0 and nothing to differentiate
        for b in blocks(n_rows, classes) if classes else ():
            rows = shifted_rows(zr[b])
            cb = None if cot is None else cot[b]
            if dense:
                nl_hi, nl_lo = rows.neg_log_p()
            # the loss: (1 - eps) * A + (eps / C) * B
            if soft:
                A = _dot_dd(y[b], nl_hi, nl_lo, w)
            else:
                l_hi, l_lo = rows.neg_log_p_at(t[b])
                A = _times(wt[b], l_hi) + _times(wt[b], l_lo)
            lb = (1.0 - eps) * A + eps * _dot_dd(wc, nl_hi, nl_lo) / classes if eps else A
            bad = rows.bad & kept[b]
            per[b] = np.where(bad, np.nan, np.where(kept[b], lb, 0.0))
            # the gradients
            if dense:
                if soft:
                    wy = y[b] if w is None else w * y[b]
                    a = (1.0 - eps) * wy + eps * wc / classes if eps else wy
                else:
                    a = np.broadcast_to(eps * wc / classes, rows.E.shape).copy()
                    a[rows.ar, t[b]] += (1.0 - eps) * wt[b]
                gb = _scale(rows.dense_grad(a), reduction, cb, denominator)
            else:
                gb = rows.sparse_grad(t[b], _scale(wt[b], reduction, cb, denominator))
            gb[~kept[b]] = 0.0
            gb[bad] = np.nan
            g[b] = gb
            if soft:  # (1 - eps) w_c (-log p_c), the weight (exact) multiplied last
                gyb = _scale((1.0 - eps) * (nl_hi + nl_lo), reduction, cb, denominator)
                gy[b] = gyb if w is None else _times(np.broadcast_to(w, gyb.shape), gyb)
        value, _ = reduce(per.reshape(out_shape), reduction, denominator)
    grads = {"logits": _from_rows(g, z.shape)}
    if soft:
        grads["target"] = _from_rows(gy, z.shape)
    if w_exp and (soft or reduction != "mean"):  # undo the scaling of the weights
        value = np.asarray(np.ldexp(value, w_exp))
        grads = {k: np.ldexp(v, w_exp) for k, v in grads.items()}
    return value, grads


def categorical_cross_entropy(probs, target, *, reduction: str = "mean"):
    r"""Cross-entropy of given class probabilities against class indices or probabilities.

    Let :math:`p` be ``probs`` ``[N, C, d1, ...]`` (class axis 1; ``[C]`` is one sample),
    taken as they are: no renormalisation, no clipping. Each position's loss is

    .. math::
        \ell_i = -\sum_c y_{ic} \log p_{ic}

    with :math:`y_i` the probability row of ``target`` (same shape as ``probs``), or
    :math:`\ell_i = -\log p_{i t_i}` for class indices ``[N, d1, ...]``. A term with
    :math:`y_{ic} = 0` is 0 whatever :math:`p_{ic}` (``0 log 0 = 0``; a NaN probability
    stays NaN for probability targets, and does not enter at all for class indices), so
    :math:`p_{ic} = 0` where :math:`y_{ic} > 0` gives :math:`+\infty`. A probability
    outside :math:`[0, 1]` (a negative one has no real logarithm) raises ``ValueError``,
    as ``binary_cross_entropy`` does; NaN passes through. Reduction ``mean`` divides by
    the number of positions :math:`N d_1 \cdots`.

    Gradients: :math:`\partial \ell_i / \partial p_{ic} = -y_{ic} / p_{ic}` (exactly
    :math:`-\infty` where :math:`p = 0 < y`, 0 where :math:`y = 0`; NaN where
    :math:`p < 0` and :math:`y \ne 0`) and, for a probability target,
    :math:`\partial \ell_i / \partial y_{ic} = -\log p_{ic}` (:math:`+\infty` at
    :math:`p = 0`).

    Args:
      probs: probabilities ``[N, C, d1, ...]`` or ``[C]``.
      target: class indices ``[N, d1, ...]`` or probabilities of ``probs``' shape.
      reduction: ``none``, ``sum`` or ``mean``.

    Returns:
      ``(value, grads)`` with gradients for ``probs`` and, for probabilities, ``target``.

    Raises:
      ValueError: a label outside ``[0, C)``, a probability outside ``[0, 1]``, mismatched
        shapes, an unknown reduction.

    References:
      Keras ``categorical_crossentropy(from_logits=False)`` (without its clipping);
      Goodfellow, Bengio, Courville, *Deep Learning*, 2016, section 3.13.
    """
    p = as_real(probs, "probs")
    classes = n_classes(p, "probs")
    target = np.asarray(target)
    check_target_shape(target, p, "probs")
    check_reduction(reduction)
    check_probabilities(p, "categorical_cross_entropy")
    soft = target.ndim == p.ndim
    pr = _to_rows(p)
    out_shape = label_shape(p)
    n_rows = pr.shape[0]
    with np.errstate(all="ignore"):
        neg_log = -np.log(pr)
        if soft:
            y = _to_rows(as_real(target, "target"))
        else:
            t = as_labels(target, "target").ravel()
            check_labels(t, kept_labels(t, None), classes)
            y = np.zeros(pr.shape)
            y[np.arange(n_rows), t] = 1.0
        # 0 log p = 0 whatever p; with probability targets a NaN p stays NaN (IEEE 0 * NaN),
        # with class indices only p[target] enters the loss, so NaN elsewhere does not.
        absent = (y == 0) & (~np.isnan(pr) if soft else True)
        s_hi, s_lo = sum_dd(np.where(absent, 0.0, y * neg_log))
        per = s_hi + s_lo
        gp = np.where(absent, 0.0, np.where(pr < 0, np.nan, -y / pr))
        value, _ = reduce(per.reshape(out_shape), reduction, n_rows)
        cot = _row_cotangent(reduction, out_shape)
        g = _scale(gp, reduction, cot, n_rows)
        if reduction == "mean":  # y / p may overflow where the mean of it does not
            g = np.where(np.isinf(gp) & (pr != 0), -(y / n_rows) / pr, g)
        grads = {"probs": _from_rows(g, p.shape)}
        if soft:
            grads["target"] = _from_rows(_scale(neg_log, reduction, cot, n_rows), p.shape)
    return value, grads


def nll(
    log_probs, target, weight=None, *, ignore_index: int | None = None, reduction: str = "mean"
):
    r"""Negative log-likelihood of class indices under given log-probabilities.

    With ``log_probs`` :math:`x` of shape ``[N, C, d1, ...]`` (class axis 1; ``[C]`` is one
    sample), class indices :math:`t` ``[N, d1, ...]`` and class weights :math:`w` ``[C]``
    (default ones), each position's loss is

    .. math::
        \ell_i = -w_{t_i}\, x_{i t_i}

    for any real :math:`x` (nothing checks that they are log-probabilities); a zero weight
    gives 0 even where :math:`x = -\infty`. Positions labelled ``ignore_index`` give 0 and
    are left out of the mean, which is
    :math:`\sum_i \ell_i / \sum_{i\ \mathrm{kept}} w_{t_i}` (NaN over nothing).

    Gradient: :math:`\partial \ell_i / \partial x_{ik} = -w_{t_i} [k = t_i]`, zero at
    ignored positions (IEEE ``x/0`` at kept positions of a mean whose denominator is 0).

    Args:
      log_probs: ``[N, C, d1, ...]`` or ``[C]``.
      target: class indices ``[N, d1, ...]``.
      weight: optional class weights ``[C]``.
      ignore_index: a label whose positions are skipped.
      reduction: ``none``, ``sum`` or ``mean``.

    Returns:
      ``(value, grads)`` with the gradient for ``log_probs``.

    Raises:
      ValueError: a label outside ``[0, C)`` that is not ``ignore_index``, mismatched
        shapes, an unknown reduction.

    References:
      PyTorch ``torch.nn.functional.nll_loss``
      (https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html).
    """
    x = as_real(log_probs, "log_probs")
    classes = n_classes(x, "log_probs")
    target = np.asarray(target)
    check_label_shape(target, x, "log_probs")
    check_reduction(reduction)
    w = class_weight(weight, classes)
    xr = _to_rows(x)
    out_shape = label_shape(x)
    n_rows = xr.shape[0]
    t_all = as_labels(target, "target").ravel()
    kept = kept_labels(t_all, ignore_index)
    check_labels(t_all, kept, classes)
    t = np.where(kept, t_all, 0)
    ar = np.arange(n_rows)
    with np.errstate(all="ignore"):
        wt = np.ones(n_rows) if w is None else w[t] if classes else np.zeros(n_rows)
        wt = np.where(kept, wt, 0.0)
        w_exp = _upscale(wt)
        wt = np.ldexp(wt, -w_exp)
        denominator = exact_sum(wt)
        xt = xr[ar, t] if classes else np.zeros(n_rows)
        per = np.where(kept, -_times(wt, xt), 0.0)
        value, _ = reduce(per.reshape(out_shape), reduction, denominator)
        g = np.zeros(xr.shape)
        cot = _row_cotangent(reduction, out_shape)
        f = np.where(kept, -_scale(wt, reduction, cot, denominator), 0.0)
        if classes:
            g[ar, t] = f
    if w_exp and reduction != "mean":  # undo the scaling of the weights
        return np.asarray(np.ldexp(value, w_exp)), {
            "log_probs": _from_rows(np.ldexp(g, w_exp), x.shape)
        }
    return value, {"log_probs": _from_rows(g, x.shape)}


# ----------------------------------------------------------------- softmax functions


def _along_axis(x, axis: int, block, reduced: bool = False):
    """Run ``block(rows, g) -> (value, vjp)`` over the slices of ``x`` along ``axis``.

    ``g`` is the fixed cotangent of the output (per slice for a ``reduced`` output, else
    per element), both laid out as rows ``[M, C]`` with ``axis`` last.
    """
    x = as_real(x, "x")
    axis = check_axis(axis, x.ndim)
    classes = x.shape[axis]
    xr = rows_along(x, axis)
    n_rows = xr.shape[0]
    moved = (*x.shape[:axis], *x.shape[axis + 1 :], classes)
    if reduced:
        out_shape = moved[:-1]
        cot = cotangent(out_shape).reshape(-1)
        value = np.full(n_rows, -np.inf)  # an empty axis sums to 0: log 0
    else:
        out_shape = x.shape
        cot = rows_along(cotangent(x.shape), axis)
        value = np.zeros(xr.shape)
    vjp = np.zeros(xr.shape)
    with np.errstate(all="ignore"):
        for b in blocks(n_rows, classes) if classes else ():
            value[b], vjp[b] = block(shifted_rows(xr[b]), cot[b])

    def back(rows):
        return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, axis))

    value = value.reshape(out_shape) if reduced else back(value)
    return value, {"x": back(vjp)}


def softmax(x, *, axis: int = -1):
    r"""Softmax along ``axis`` and its vector-Jacobian product.

    .. math::
        \sigma(x)_k = \frac{e^{x_k - m}}{\sum_c e^{x_c - m}}, \quad m = \max_c x_c.

    VJP with cotangent :math:`g`:
    :math:`\bar x_k = \sigma_k (g_k - \sum_c \sigma_c g_c)`, evaluated as
    :math:`\sigma_k ((g_k - g_a) + \sum_{c \ne a} \sigma_c (g_a - g_c))` with :math:`a` the
    largest entry, so that the bracket never cancels more than the data force.

    Edges: one ``+inf`` in a slice gives the one-hot limit (VJP 0); two or more ``+inf``,
    only ``-inf``, or a NaN give NaN for the whole slice.

    Args:
      x: any real array with at least one axis.
      axis: the axis normalised over.

    Returns:
      ``(value, {"x": vjp})``, both of ``x``'s shape.

    References:
      Bridle, *Probabilistic interpretation of feedforward classification network
      outputs*, 1990; Blanchard, Higham, Higham, IMA J. Numer. Anal. 2021.
    """
    return _along_axis(x, axis, _softmax_block)


def _softmax_block(rows: Rows, g: np.ndarray):
    ar, amax = rows.ar, rows.amax
    p = rows.softmax()
    ga = g[ar, amax]
    t_hi, t_lo = sum_dd(rows.p_off * (ga[:, None] - g))  # sum_{c != a} p_c (g_a - g_c)
    t = t_hi + t_lo
    bracket = (g - ga[:, None]) + t[:, None]
    bracket[ar, amax] = t
    vjp = p * bracket
    p[rows.bad] = np.nan
    vjp[rows.bad] = np.nan
    return p, vjp


def log_softmax(x, *, axis: int = -1):
    r"""Log-softmax along ``axis`` and its vector-Jacobian product.

    .. math::
        \log \sigma(x)_k = (x_k - m) - \log \sum_c e^{x_c - m}, \quad m = \max_c x_c,

    with the log-sum formed as ``log1p`` of the other terms, so the largest entry's
    :math:`\log \sigma` (near 0) keeps full relative accuracy.
    VJP: :math:`\bar x_k = g_k - \sigma_k \sum_c g_c`; at the largest entry :math:`a`,
    :math:`-\sum_{c \ne a} g_c + (\sum_c g_c)(1 - \sigma_a)` with :math:`1 - \sigma_a`
    computed directly.

    Edges: one ``+inf`` gives 0 there and ``-inf`` elsewhere (the limit); two or more
    ``+inf``, only ``-inf`` or a NaN give NaN for the slice.

    Args:
      x: any real array with at least one axis.
      axis: the axis normalised over.

    Returns:
      ``(value, {"x": vjp})``, both of ``x``'s shape.
    """
    return _along_axis(x, axis, _log_softmax_block)


def _log_softmax_block(rows: Rows, g: np.ndarray):
    nl_hi, nl_lo = rows.neg_log_p()
    value = -(nl_hi + nl_lo)
    vjp = -rows.dense_grad(g)
    value[rows.bad] = np.nan
    vjp[rows.bad] = np.nan
    return value, vjp


def logsumexp(x, *, axis: int = -1):
    r"""Log-sum-exp along ``axis`` (the axis is reduced, no keepdims) and its VJP.

    .. math::
        \operatorname{lse}(x) = m + \log\Big(1 + \sum_{c \ne a} e^{x_c - m}\Big),
        \quad m = x_a = \max_c x_c.

    The log term is a double-double, so the result is accurate to a few ULP of
    :math:`\max(|m|, \log S)`; where :math:`m < 0` and the log term nearly cancels it
    (the value near 0), that is the best a float64 input allows (the problem is
    ill-conditioned there). VJP: :math:`\bar x_k = g\, \sigma(x)_k`.

    Edges: any ``+inf`` (and no NaN) gives ``+inf``; only ``-inf`` gives ``-inf``; an empty
    axis gives ``-inf``; NaN gives NaN. The VJP is the softmax's: one-hot for one ``+inf``,
    NaN for several, for only ``-inf`` or for NaN.

    Args:
      x: any real array with at least one axis.
      axis: the axis reduced.

    Returns:
      ``(value, {"x": vjp})``: value of ``x``'s shape without ``axis``; VJP of ``x``'s.
    """
    return _along_axis(x, axis, _logsumexp_block, reduced=True)


def _logsumexp_block(rows: Rows, g: np.ndarray):
    hi, lo = two_sum(rows.m, rows.logs_hi)
    value = hi + (lo + rows.logs_lo)
    value[rows.any_inf] = np.inf
    value[rows.all_ninf] = -np.inf
    value[rows.nan_row] = np.nan
    vjp = rows.softmax() * g[:, None]
    vjp[rows.bad] = np.nan
    return value, vjp
