"""Softmax-family reference losses: golden values and analytic gradients in float64.

One plain function per loss, each returning ``(value, grads)``: ``value`` a float64 array
(0-d when reduced) and ``grads`` a dict input name -> float64 array of that input's shape,
the vector-Jacobian product with the fixed cotangent of
:mod:`xentcheck.reference._cotangent` (1 for a scalar output).

Layout: the class axis is 1 (PyTorch's), ``logits [N, C, d1, ...]`` with class indices
``[N, d1, ...]`` or a probability target of the logits' shape. A 1-D input ``[C]`` is one
sample (PyTorch's unbatched form) with a 0-d class index. A target of the same rank as the
first input holds probabilities, one rank lower class indices.

How the numbers are made accurate (the goldens every framework is judged by):

* Every row is shifted by its maximum ``m``; ``d = z - m`` is kept together with its exact
  rounding error ``e`` (TwoSum), so ``d + e = z - m`` exactly and
  ``exp(z - m) = exp(d) * (1 + e)`` to within rounding, even for logits like ``1e30``.
* ``R = sum over the other classes of exp(z_c - m)`` (the maximum's own term, exactly 1,
  left out) is summed with compensated pairwise summation into a double-double, and
  ``log S = log1p(R)`` is taken in double-double (:mod:`xentcheck.reference._dd`): a loss
  of ``1e-20`` where the target dominates keeps all its digits.
* ``-log p_c = log S - d_c - e_c`` is formed in double-double before the one final
  rounding. What remains is the rounding of ``exp`` (NumPy's, under 1 ULP) in each term.
* In gradients, ``1 - p_a`` for the largest class ``a`` is ``R / S`` (never ``1 - p_a``),
  and ``W p_a - a_a`` is ``sum_{c != a} a_c - W R / S``, so nothing cancels that need not.
* Reductions use correctly rounded sums (``math.fsum``); a mean divides once. Weights
  below 1 are scaled up by a power of two (exactly) and the results scaled back, so tiny
  weights lose no digits to underflow.
* Rows are processed in blocks of about ``2**17`` elements, so a ``[8*128, 32000]`` input
  stays within cache-sized temporaries.

Accuracy, against mpmath (``tests/reference``): values within 4 ULP of the exact value
(about 2.5 at worst over 10,000 drawn inputs per loss), gradients within 4 ULP of the
exact value or, where they are a difference that may cancel, of its larger term (about
3 at worst). Where a result lies near underflow (below about ``1e-300``) the error is
absolute instead: a few multiples of ``2**-1074`` times the weights and cotangent that
multiply it afterwards.

Non-finite logits follow the limits of the math, documented per function: a row holding
NaN gives NaN; a row with exactly one ``+inf`` is the limit of that logit going to
infinity (softmax one-hot there); two or more ``+inf`` in a row, or a row of only
``-inf``, are indeterminate (NaN; logsumexp is ``+inf`` / ``-inf`` there).
A zero weight or a zero target probability removes its term (``0 * inf = 0``, the
``0 log 0 = 0`` convention).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from xentcheck.reference import _dd
from xentcheck.reference._cotangent import cotangent
from xentcheck.reference._labels import as_labels
from xentcheck.reference._reduce import exact_sum, reduce

__all__ = [
    "categorical_cross_entropy",
    "log_softmax",
    "logsumexp",
    "nll",
    "softmax",
    "softmax_cross_entropy",
]

_REDUCTIONS = ("none", "sum", "mean")

# ----------------------------------------------------------------- exact arithmetic


def _two_sum(a, b):
    """``(s, err)`` with ``s + err = a + b`` exactly (TwoSum); ``err = 0`` where ``s`` is
    not finite (an infinite or NaN sum carries no rounding error)."""
    s, err = _dd.two_sum(a, b)
    return s, np.where(np.isfinite(s), err, 0.0)


def _sum_dd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``x`` along its last axis into a double-double ``(hi, lo)``.

    Pairwise summation in which every addition is error-free (TwoSum) and the errors are
    carried along: ``hi + lo`` equals the exact sum to about ``2**-100`` relative to the
    sum of ``|x|``, and ``hi`` is the sum rounded (faithfully) to float64.
    """
    s = np.asarray(x, dtype=np.float64)
    lead = s.shape[:-1]
    if s.shape[-1] == 0:
        return np.zeros(lead), np.zeros(lead)
    e = None
    while s.shape[-1] > 1:
        n = s.shape[-1]
        h = n // 2
        t, err = _two_sum(s[..., 0 : 2 * h : 2], s[..., 1 : 2 * h : 2])
        if e is not None:
            err = err + (e[..., 0 : 2 * h : 2] + e[..., 1 : 2 * h : 2])
        if n % 2:
            t = np.concatenate([t, s[..., -1:]], axis=-1)
            tail = e[..., -1:] if e is not None else np.zeros((*lead, 1))
            err = np.concatenate([err, tail], axis=-1)
        s, e = t, err
    if e is None:
        return s[..., 0].copy(), np.zeros(lead)
    return _two_sum(s[..., 0], e[..., 0])


# ------------------------------------------------------------------ the shifted rows


@dataclass
class _Rows:
    """The max-shifted softmax of rows ``z [M, C]`` (``C >= 1``) in extra precision.

    ``d + e = z - m`` exactly (``m`` the row maximum, at the first index ``amax``);
    ``E = exp(d + e)`` with ``E[amax] = 0`` (its true value is exactly 1);
    ``R = sum(E)`` and ``S = 1 + R`` as double-doubles; ``log S`` as a double-double.
    Rows with a single ``+inf`` are replaced by their limit (0 there, ``-inf`` elsewhere);
    ``nan_row``, ``multi_inf`` (two or more ``+inf``) and ``all_ninf`` (only ``-inf``)
    flag rows whose softmax is undefined (computed on zeros, to be overwritten).
    """

    m: np.ndarray
    d: np.ndarray
    e: np.ndarray
    E: np.ndarray
    amax: np.ndarray
    r_hi: np.ndarray
    r_lo: np.ndarray
    s_hi: np.ndarray
    s_lo: np.ndarray
    logs_hi: np.ndarray
    logs_lo: np.ndarray
    nan_row: np.ndarray
    any_inf: np.ndarray
    multi_inf: np.ndarray
    all_ninf: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        """Rows whose softmax is undefined (NaN results)."""
        return self.nan_row | self.multi_inf | self.all_ninf

    @property
    def ar(self) -> np.ndarray:
        return np.arange(self.m.shape[0])

    @cached_property
    def p_off(self) -> np.ndarray:
        """Softmax ``E / S`` with 0 in the column of the maximum."""
        p0 = self.E / self.s_hi[:, None]
        return p0 - p0 * (self.s_lo / self.s_hi)[:, None]

    def p_max(self) -> np.ndarray:
        """Softmax at the maximum, ``1 / S``."""
        inv = 1.0 / self.s_hi
        return inv - inv * (self.s_lo / self.s_hi)

    def q_max(self) -> np.ndarray:
        """``1 - p`` at the maximum, ``R / S``, without cancellation."""
        q0 = self.r_hi / self.s_hi
        return q0 + (self.r_lo - q0 * self.s_lo) / self.s_hi

    def softmax(self) -> np.ndarray:
        p = self.p_off.copy()
        p[self.ar, self.amax] = self.p_max()
        return p

    def _neg_log(self, d, e, logs_hi, logs_lo):
        hi, lo = _two_sum(logs_hi, -d)
        return hi, np.where(np.isfinite(hi), lo + (logs_lo - e), 0.0)

    def neg_log_p(self) -> tuple[np.ndarray, np.ndarray]:
        """``-log softmax`` of every entry, as a double-double ``[M, C]``."""
        return self._neg_log(self.d, self.e, self.logs_hi[:, None], self.logs_lo[:, None])

    def neg_log_p_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``-log softmax`` at class ``t[i]`` of each row, as a double-double ``[M]``."""
        ar = self.ar
        return self._neg_log(self.d[ar, t], self.e[ar, t], self.logs_hi, self.logs_lo)

    def sparse_grad(self, t: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``f * (p - onehot(t))`` per row, ``[M, C]``, without cancellation."""
        ar = self.ar
        g = self.p_off * f[:, None]
        at_max = t == self.amax
        g[ar, self.amax] = np.where(at_max, -f * self.q_max(), f * self.p_max())
        other = ~at_max
        g[ar[other], t[other]] -= f[other]
        return g

    def dense_grad(self, a: np.ndarray) -> np.ndarray:
        """``W p - a`` per row with ``W = sum_c a_c``, ``[M, C]``.

        At the maximum ``a`` where ``p_a > 1/2``: ``sum_{c != a} a_c - W (1 - p_a)`` with
        ``1 - p_a = R / S``, whose terms are at most twice the larger of ``W p_a, a_a``
        and which, unlike them, do not cancel as ``p_a`` nears 1.
        """
        ar, amax = self.ar, self.amax
        w_hi, w_lo = _sum_dd(a)
        w = w_hi + w_lo
        g = w[:, None] * self.p_off - a
        a_max = a[ar, amax]
        rest_hi, rest_lo = _two_sum(w_hi, -a_max)  # sum_{c != a} a_c
        q = self.q_max()
        g[ar, amax] = np.where(
            q < 0.5, (rest_hi + (rest_lo + w_lo)) - w * q, w * self.p_max() - a_max
        )
        return g


def _rows(z: np.ndarray) -> _Rows:
    """Shift and exponentiate the rows of ``z [M, C]``, ``C >= 1``."""
    z = np.asarray(z, dtype=np.float64)
    nan_row = np.isnan(z).any(axis=-1)
    pinf = z == np.inf
    n_inf = pinf.sum(axis=-1)
    all_ninf = (z == -np.inf).all(axis=-1)
    multi_inf = ~nan_row & (n_inf > 1)
    one_inf = ~nan_row & (n_inf == 1)
    fix = nan_row | multi_inf | one_inf | all_ninf
    if fix.any():
        z = z.copy()
        z[nan_row | multi_inf | all_ninf] = 0.0
        z[one_inf] = np.where(pinf[one_inf], 0.0, -np.inf)
    amax = np.argmax(z, axis=-1)
    ar = np.arange(z.shape[0])
    m = z[ar, amax]
    d, e = _two_sum(z, -m[:, None])
    E = np.exp(d)
    E += E * e
    E[ar, amax] = 0.0
    r_hi, r_lo = _sum_dd(E)
    s_hi, s_lo = _dd.add_f((r_hi, r_lo), 1.0)
    logs_hi, logs_lo = _dd.log1p((r_hi, r_lo))
    return _Rows(
        m=m,
        d=d,
        e=e,
        E=E,
        amax=amax,
        r_hi=r_hi,
        r_lo=r_lo,
        s_hi=s_hi,
        s_lo=s_lo,
        logs_hi=logs_hi,
        logs_lo=logs_lo,
        nan_row=nan_row,
        any_inf=one_inf | multi_inf,
        multi_inf=multi_inf,
        all_ninf=all_ninf,
    )


# --------------------------------------------------------------------- input plumbing


def _float(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a real array, got dtype {a.dtype}")
    return a.astype(np.float64)


_labels = as_labels


def _classes(x: np.ndarray, name: str) -> int:
    """Number of classes of ``x`` (axis 1, or axis 0 of an unbatched 1-D input)."""
    if x.ndim == 0:
        raise ValueError(f"{name}: needs a class axis, got a 0-d array")
    return int(x.shape[1] if x.ndim >= 2 else x.shape[0])


def _label_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape of the class indices matching ``x``: ``x.shape`` without axis 1."""
    return (x.shape[0], *x.shape[2:]) if x.ndim >= 2 else ()


def _rows_along(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` as rows ``[M, C]`` with ``axis`` last, C-order over the other axes."""
    n_rows = int(np.prod(x.shape[:axis] + x.shape[axis + 1 :], dtype=np.int64))
    return np.moveaxis(x, axis, -1).reshape(n_rows, x.shape[axis])


def _to_rows(x: np.ndarray) -> np.ndarray:
    """``[N, C, d1, ...]`` (or ``[C]``) -> ``[N*d1*..., C]`` rows, C-order over the rest."""
    return _rows_along(x, 1 if x.ndim >= 2 else 0)


def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_to_rows` for an array of ``shape``."""
    if len(shape) == 1:
        return rows.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; use none, sum or mean")


def _check_target_shape(target: np.ndarray, first: np.ndarray, name: str) -> None:
    want = first.shape if target.ndim == first.ndim else _label_shape(first)
    if target.shape != want:
        raise ValueError(
            f"target shape {target.shape} does not match {name} shape {first.shape}: "
            f"class indices need {_label_shape(first)}, probabilities {first.shape}"
        )


def _check_labels(t: np.ndarray, kept: np.ndarray, classes: int) -> None:
    """Raise ``ValueError`` naming the first kept label outside ``[0, classes)``."""
    bad = kept & ((t < 0) | (t >= classes))
    if bad.any():
        label = int(t[bad][0])
        raise ValueError(f"target label {label} is out of range [0, {classes}) for C={classes}")


def _weight(weight, classes: int) -> np.ndarray | None:
    if weight is None:
        return None
    w = _float(weight, "weight")
    if w.shape != (classes,):
        raise ValueError(f"weight shape {w.shape} does not match the {classes} classes")
    return w


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
    s_hi, s_lo = _sum_dd(hi)
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


_BLOCK = 1 << 17  # elements per block of rows: keeps the temporaries in cache


def _blocks(n_rows: int, n_cols: int):
    """Slices of consecutive rows, about ``_BLOCK`` elements each (at least one row)."""
    step = max(1, _BLOCK // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


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
    z = _float(logits, "logits")
    classes = _classes(z, "logits")
    target = np.asarray(target)
    _check_target_shape(target, z, "logits")
    _check_reduction(reduction)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    w = _weight(weight, classes)
    soft = target.ndim == z.ndim
    zr = _to_rows(z)
    out_shape = _label_shape(z)
    n_rows = zr.shape[0]
    kept = np.ones(n_rows, dtype=bool)
    w_exp = 0  # the weights in use are scaled by 2**-w_exp (see _upscale)
    if soft or eps:
        w_exp = 0 if w is None else _upscale(w)
        w = None if w is None else np.ldexp(w, -w_exp)
    if soft:
        y = _to_rows(_float(target, "target"))
        denominator = float(n_rows)
    else:
        t_all = _labels(target, "target").ravel()
        if ignore_index is not None:
            kept = t_all != operator.index(ignore_index)
        _check_labels(t_all, kept, classes)
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
        for b in _blocks(n_rows, classes) if classes else ():
            rows = _rows(zr[b])
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
    p = _float(probs, "probs")
    classes = _classes(p, "probs")
    target = np.asarray(target)
    _check_target_shape(target, p, "probs")
    _check_reduction(reduction)
    if np.any((p < 0) | (p > 1)):  # NaN compares false: it propagates instead
        raise ValueError("categorical_cross_entropy: probabilities must lie in [0, 1]")
    soft = target.ndim == p.ndim
    pr = _to_rows(p)
    out_shape = _label_shape(p)
    n_rows = pr.shape[0]
    with np.errstate(all="ignore"):
        neg_log = -np.log(pr)
        if soft:
            y = _to_rows(_float(target, "target"))
        else:
            t = _labels(target, "target").ravel()
            _check_labels(t, np.ones(t.shape, dtype=bool), classes)
            y = np.zeros(pr.shape)
            y[np.arange(n_rows), t] = 1.0
        # 0 log p = 0 whatever p; with probability targets a NaN p stays NaN (IEEE 0 * NaN),
        # with class indices only p[target] enters the loss, so NaN elsewhere does not.
        absent = (y == 0) & (~np.isnan(pr) if soft else True)
        s_hi, s_lo = _sum_dd(np.where(absent, 0.0, y * neg_log))
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
    x = _float(log_probs, "log_probs")
    classes = _classes(x, "log_probs")
    target = np.asarray(target)
    if target.shape != _label_shape(x):
        raise ValueError(
            f"target shape {target.shape} does not match log_probs shape {x.shape}: "
            f"class indices need {_label_shape(x)}"
        )
    _check_reduction(reduction)
    w = _weight(weight, classes)
    xr = _to_rows(x)
    out_shape = _label_shape(x)
    n_rows = xr.shape[0]
    t_all = _labels(target, "target").ravel()
    kept = np.ones(n_rows, dtype=bool)
    if ignore_index is not None:
        kept = t_all != operator.index(ignore_index)
    _check_labels(t_all, kept, classes)
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
    x = _float(x, "x")
    axis = operator.index(axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {x.ndim}")
    axis %= x.ndim
    classes = x.shape[axis]
    xr = _rows_along(x, axis)
    n_rows = xr.shape[0]
    moved = (*x.shape[:axis], *x.shape[axis + 1 :], classes)
    if reduced:
        out_shape = moved[:-1]
        cot = cotangent(out_shape).reshape(-1)
        value = np.full(n_rows, -np.inf)  # an empty axis sums to 0: log 0
    else:
        out_shape = x.shape
        cot = _rows_along(cotangent(x.shape), axis)
        value = np.zeros(xr.shape)
    vjp = np.zeros(xr.shape)
    with np.errstate(all="ignore"):
        for b in _blocks(n_rows, classes) if classes else ():
            value[b], vjp[b] = block(_rows(xr[b]), cot[b])

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


def _softmax_block(rows: _Rows, g: np.ndarray):
    ar, amax = rows.ar, rows.amax
    p = rows.softmax()
    ga = g[ar, amax]
    t_hi, t_lo = _sum_dd(rows.p_off * (ga[:, None] - g))  # sum_{c != a} p_c (g_a - g_c)
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


def _log_softmax_block(rows: _Rows, g: np.ndarray):
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


def _logsumexp_block(rows: _Rows, g: np.ndarray):
    hi, lo = _two_sum(rows.m, rows.logs_hi)
    value = hi + (lo + rows.logs_lo)
    value[rows.any_inf] = np.inf
    value[rows.all_ninf] = -np.inf
    value[rows.nan_row] = np.nan
    vjp = rows.softmax() * g[:, None]
    vjp[rows.bad] = np.nan
    return value, vjp
