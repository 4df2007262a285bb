r"""Token-level language-model losses: mean next-token cross-entropy and perplexity.

With logits :math:`z` ``[B, T, V]`` (the vocabulary LAST, as language models lay it
out), token ids :math:`t` and the kept tokens :math:`K` (mask and ``ignore_index``):

.. math::
    \ell_{bt} = -\log p_{bt\, t_{bt}}, \qquad
    \mathrm{CE} = \frac{1}{|K|} \sum_K \ell, \qquad \mathrm{PPL} = e^{\mathrm{CE}}.

The rows are the double-double rows of :mod:`xentcheck.reference.rows`, and the mean is
kept as a double-double. :func:`token_cross_entropy_chunked` computes the same loss at
language-model scale (float32 logits ``[8192, 131072]``, 4 GiB) a block of rows at a
time: its ``"numpy"`` kernel bit for bit, its ``"numba"`` kernel (the ``fast`` extra;
:mod:`xentcheck.reference._tokens_numba`) fused per row, to the same accuracy.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from xentcheck.reference import _dd
from xentcheck.reference._reduce import exact_sum
from xentcheck.reference.arguments import as_real, real_array, token_labels
from xentcheck.reference.rows import blocks, neg_log, rows_along, shifted_rows, sum_dd, two_sum

__all__ = [
    "KERNELS",
    "default_kernel",
    "perplexity",
    "token_cross_entropy",
    "token_cross_entropy_chunked",
]


def _kept_rows(logits, target, mask, ignore_index, *, to_float64=True):
    """Validate; return the logits as rows ``[M, V]``, the labels ``[M]`` and the flat
    positions of the kept tokens.

    With ``to_float64=False`` the rows keep the input's floating dtype (a view where the
    input is contiguous): each block is converted to float64 when it is used, which gives
    the same float64 numbers, since every float format converts to float64 exactly.
    """
    z = as_real(logits, "logits") if to_float64 else real_array(logits, "logits", ml_floats=True)
    t, kept = token_labels(z, target, mask, ignore_index)
    return rows_along(z, z.ndim - 1), t, np.flatnonzero(kept)


def _mean_loss(zr, t, idx, grad=None, *, sink=None, block_elements=None):
    """The mean of ``-log p_t`` over the kept rows ``idx``, as a double-double.

    With ``grad(rows, t) -> [m, V]``, also the gradient rows of the kept tokens (zeros
    elsewhere, NaN in rows whose softmax is undefined), computed in the same pass: into a
    float64 array of ``zr``'s shape (returned), or, when ``sink(positions, rows)`` is
    given, handed to it block by block (nothing returned). ``zr`` may hold any real
    dtype; each block of rows is converted to float64 on its own.
    Returns ``(hi, lo, g)``; NaN when nothing is kept.
    """
    n = idx.size
    l_hi, l_lo = np.zeros(n), np.zeros(n)
    g = None
    if grad is not None and sink is None:
        g = np.zeros(zr.shape)

        def sink(positions, gb):
            g[positions] = gb

    with np.errstate(all="ignore"):
        for b in blocks(n, zr.shape[1], block_elements):
            rows = shifted_rows(zr[idx[b]])
            tb = t[idx[b]]
            hi, l_lo[b] = rows.neg_log_p_at(tb)
            l_hi[b] = np.where(rows.bad, np.nan, hi)
            if grad is not None:
                gb = grad(rows, tb)
                gb[rows.bad] = np.nan
                sink(idx[b], gb)
            del rows
    return (*_dd_mean(l_hi, l_lo, n), g)


def _dd_mean(l_hi: np.ndarray, l_lo: np.ndarray, n: int) -> tuple[float, float]:
    """The mean of the double-doubles ``l_hi + l_lo`` as a double-double ``(hi, lo)``,
    from their exact sum (:func:`exact_sum`, whatever the order of the terms)."""
    if n == 0:
        return math.nan, 0.0
    parts = np.concatenate([l_hi, l_lo])
    total = exact_sum(parts)
    if not math.isfinite(total):
        return total / n, 0.0
    total_lo = exact_sum(np.append(parts, -total))  # the exact remainder, rounded
    hi = total / n
    remainder = float(Fraction(total) - Fraction(hi) * n)  # exact: total - hi * n
    return hi, (remainder + total_lo) / n


def token_cross_entropy(logits, target, mask=None, *, ignore_index: int | None = None):
    r"""Mean next-token cross-entropy over the kept tokens.

    With ``logits`` :math:`z` of shape ``[B, T, V]`` (vocabulary LAST; any ``[..., V]``
    works), token ids :math:`t` ``[B, T]`` and an optional boolean ``mask`` ``[B, T]``
    (True = keep), each token's loss is

    .. math::
        \ell_{bt} = \operatorname{logsumexp}(z_{bt}) - z_{bt t_{bt}} = -\log p_{bt t_{bt}},

    the kept tokens are :math:`K = \{mask \wedge t \ne \mathrm{ignore\_index}\}` and the
    value is the scalar :math:`\sum_K \ell / |K|` (NaN when nothing is kept). The gradient
    is :math:`(p - \mathrm{onehot}(t)) / |K|` at kept tokens and 0 elsewhere.

    The per-token losses are double-doubles and their mean is kept as one too (that is what
    :func:`perplexity` exponentiates). Non-finite logits behave as in
    :func:`xentcheck.reference.softmax.softmax_cross_entropy`: a kept token whose target
    logit is ``-inf`` gives ``+inf``, a NaN in a kept row gives NaN (a masked-out row is
    never looked at).

    Args:
      logits: ``[B, T, V]``.
      target: token ids ``[B, T]``.
      mask: optional ``[B, T]``, nonzero = keep.
      ignore_index: a token id whose positions are skipped.

    Returns:
      ``(value, {"logits": grad})`` with a 0-d value.

    Raises:
      ValueError: a kept label outside ``[0, V)`` (masked-out positions are not checked),
        mismatched shapes.

    References:
      Jurafsky and Martin, *Speech and Language Processing*, 3rd ed., ch. 3 (perplexity);
      the usual ``cross_entropy(logits.view(-1, V), target.view(-1), ignore_index=...)``
      recipe of language-model training code.
    """
    zr, t, idx = _kept_rows(logits, target, mask, ignore_index)
    n = idx.size
    hi, lo, g = _mean_loss(zr, t, idx, lambda rows, tb: rows.sparse_grad(tb, np.ones(tb.shape)) / n)
    return np.asarray(hi + lo, dtype=np.float64), {"logits": g.reshape(np.shape(logits))}


def perplexity(logits, target, mask=None, *, ignore_index: int | None = None):
    r"""Perplexity: ``exp`` of :func:`token_cross_entropy`.

    .. math::
        \mathrm{PPL} = \exp\Big(\frac{1}{|K|} \sum_K \ell\Big), \qquad
        \frac{\partial\, \mathrm{PPL}}{\partial z} = \mathrm{PPL} \cdot
        \frac{p - \mathrm{onehot}(t)}{|K|}.

    The mean token loss :math:`x` enters as a double-double :math:`x_{hi} + x_{lo}`, and
    :math:`\exp(x_{hi})(1 + x_{lo})`, so the rounding of the mean (up to several ULP of
    the perplexity for a mean near 10) does not reach the result. The gradient entries
    are :math:`\exp(x + \log p_c) / |K|` (with the target's entry minus the sum of the
    others), so they stay finite and accurate where :math:`\mathrm{PPL}` overflows or
    :math:`p_c` underflows but their product does neither. Their exponent
    :math:`x + \log p_c` is a double-double difference, exact to about
    :math:`|x| \cdot 2^{-104}`: a few ULP more only where token losses reach
    :math:`10^{15}` and beyond (logits of that size).
    NaN when nothing is kept; ``+inf`` when a kept token has probability 0 (its gradient
    is then IEEE ``inf * (p - onehot(t))``).

    Args / Raises: as :func:`token_cross_entropy`.

    Returns:
      ``(value, {"logits": grad})`` with a 0-d value.

    References:
      Jelinek et al., *Perplexity - a measure of the difficulty of speech recognition
      tasks*, JASA 1977.
    """
    zr, t, idx = _kept_rows(logits, target, mask, ignore_index)
    n = idx.size
    hi, lo, _ = _mean_loss(zr, t, idx)
    with np.errstate(all="ignore"):
        e = float(np.exp(hi))
        ppl = e + e * lo if math.isfinite(e) else e

    def grad(rows, tb):
        if not math.isfinite(hi):  # an infinite or NaN mean: IEEE ppl * (p - onehot)
            return rows.sparse_grad(tb, np.ones(tb.shape)) * ppl
        # exp(x) p_c = exp(x - (-log p_c)) for c != t, in double-double; at t minus their sum
        nl_hi, nl_lo = rows.neg_log_p()
        d, err = two_sum(hi, -nl_hi)
        d, err = two_sum(d, err + (lo - nl_lo))  # renormalised: |err| <= ulp(d) / 2
        gb = np.exp(d)
        gb = np.where(np.isinf(gb), gb, gb + gb * err)
        gb[rows.ar, tb] = 0.0
        s_hi, s_lo = sum_dd(gb)
        gb[rows.ar, tb] = -(s_hi + s_lo)
        return gb / n

    _, _, g = _mean_loss(zr, t, idx, grad)
    return np.asarray(ppl, dtype=np.float64), {"logits": g.reshape(np.shape(logits))}


#: Default elements per block of the chunked path: 1 Mi float64 elements (8 MiB) per
#: temporary, under 0.1 GiB of temporaries in all with the gradient (and the fastest
#: block size measured at vocabularies of 131072: fewer NumPy calls, temporaries in cache).
CHUNK_ELEMENTS = 1 << 20

#: The kernels of :func:`token_cross_entropy_chunked`: ``"numba"`` (the ``fast`` extra)
#: and ``"numpy"`` (always there; bit for bit :func:`token_cross_entropy`).
KERNELS = ("numba", "numpy")

_FAST_INPUTS = (np.dtype(np.float32), np.dtype(np.float64))  # read by the kernel in place


@functools.cache
def _numba_kernel():
    """:mod:`xentcheck.reference._tokens_numba`, or None where Numba cannot be imported
    (imported on first use: Numba takes a while to load)."""
    try:
        return importlib.import_module("xentcheck.reference._tokens_numba")
    except ImportError:  # absent, or refusing the installed NumPy
        return None


def default_kernel() -> str:
    """The kernel :func:`token_cross_entropy_chunked` uses by default: ``"numba"`` where
    Numba imports, else ``"numpy"``."""
    return "numba" if _numba_kernel() is not None else "numpy"


def token_cross_entropy_chunked(
    logits,
    target,
    mask=None,
    *,
    ignore_index: int | None = None,
    grad_dtype=None,
    on_grad: Callable[[np.ndarray, np.ndarray], None] | None = None,
    block_elements: int | None = None,
    kernel: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    r""":func:`token_cross_entropy` at language-model scale, in bounded extra memory.

    The same loss, the same float64 arithmetic per row and the same exact sum over the
    tokens. ``logits`` (float32, bfloat16, ... or an ``np.memmap``) is never copied to
    float64 as a whole, and two kernels compute the rows:

    * ``"numpy"``: blocks of about ``block_elements`` elements (default
      :data:`xentcheck.reference.tokens.CHUNK_ELEMENTS`, at least one row) are converted
      and computed one after the other with :func:`token_cross_entropy`'s code, so the
      value and the float64 gradient are bit for bit its own; the value needs the input
      plus about ten float64 temporaries of one block.
    * ``"numba"`` (the ``fast`` extra): one fused pass per row for the maximum, one for
      the sum of exponentials, one more for the gradient, the rows spread over every
      core; float32 and float64 logits are read in place (other dtypes a block at a time,
      converted to float64), and the value needs no more than a few scalars per token.
      Its ``exp`` and its order of summation are its own, so results may differ from the
      ``"numpy"`` kernel's in the last bits; they are as accurate (within 4 ULP of the
      exact value, checked against mpmath) and the same on every machine.

    ``kernel=None`` takes :func:`default_kernel` (``"numba"`` where Numba imports).

    The gradient, :math:`(p - \mathrm{onehot}(t)) / |K|` at kept tokens, is made block by
    block too, and is given back in one or both of two ways:

    * ``grad_dtype``: an array of ``logits``' shape in that dtype (e.g. ``logits.dtype``:
      the input's size again; with the ``"numpy"`` kernel ``np.float64`` reproduces
      :func:`token_cross_entropy`'s gradient exactly, at twice a float32 input's size).
      Each float64 entry is rounded once to ``grad_dtype``.
    * ``on_grad(positions, rows)``: called for each block with the flat token positions
      (indices into ``logits.reshape(-1, V)``) and their float64 gradient rows
      ``[len(positions), V]``, e.g. to compare with a framework's gradient chunk by chunk
      without keeping either. Rows of tokens that are not kept are 0 and never passed.

    Args:
      logits: ``[..., V]``, any real dtype.
      target, mask, ignore_index: as :func:`token_cross_entropy`.
      grad_dtype: the dtype of the returned gradient, or None for no gradient array.
      on_grad: an optional callback receiving the gradient block by block.
      block_elements: elements per block (a tuning knob; results do not depend on it).
      kernel: ``"numba"``, ``"numpy"`` or None (the default kernel).

    Returns:
      ``(value, grad)``: a 0-d float64 value and the gradient array (None without
      ``grad_dtype``).

    Raises:
      ValueError: as :func:`token_cross_entropy`; an unknown kernel, or ``"numba"`` where
        Numba cannot be imported.
    """
    kernel = default_kernel() if kernel is None else kernel
    if kernel not in KERNELS:
        raise ValueError(f"kernel {kernel!r}: use one of {', '.join(KERNELS)}")
    if kernel == "numba" and _numba_kernel() is None:
        raise ValueError("kernel 'numba': Numba is not importable (pip install xentcheck[fast])")
    zr, t, idx = _kept_rows(logits, target, mask, ignore_index, to_float64=False)
    n = idx.size
    shape = np.shape(logits)
    g_out = None
    if grad_dtype is not None:
        g_out = np.zeros(zr.shape, dtype=grad_dtype)  # pages of unkept rows stay unmapped
    want_grad = g_out is not None or on_grad is not None

    def sink(positions: np.ndarray, gb: np.ndarray) -> None:
        if g_out is not None:
            g_out[positions] = gb
        if on_grad is not None:
            on_grad(positions, gb)

    elements = CHUNK_ELEMENTS if block_elements is None else block_elements
    if kernel == "numba":
        hi, lo = _mean_loss_fused(zr, t, idx, g_out, on_grad, sink, elements)
    else:
        hi, lo, _ = _mean_loss(
            zr,
            t,
            idx,
            (lambda rows, tb: rows.sparse_grad(tb, np.ones(tb.shape)) / n) if want_grad else None,
            sink=sink,
            block_elements=elements,
        )
    grad = None if g_out is None else g_out.reshape(shape)
    return np.asarray(hi + lo, dtype=np.float64), grad


def _mean_loss_fused(zr, t, idx, g_out, on_grad, sink, block_elements) -> tuple[float, float]:
    """:func:`_mean_loss` with the Numba kernel: the mean loss as a double-double.

    Float32 and float64 rows are read in place, and a float32 or float64 ``g_out`` is
    written in place, all kept rows in one call; otherwise blocks of rows are converted
    to float64 and their float64 gradient rows handed to ``sink``.
    """
    kern = _numba_kernel()
    n, vocab = idx.size, zr.shape[1]
    stats, status = np.zeros((n, 4)), np.zeros(n, dtype=np.int8)
    tk = np.asarray(t[idx], dtype=np.int64)
    in_place = zr.dtype in _FAST_INPUTS
    g_in_place = on_grad is None and (g_out is None or g_out.dtype in _FAST_INPUTS)
    whole = in_place and g_in_place  # nothing to convert or buffer: every row in one call
    row_blocks = [slice(0, n)] if whole else blocks(n, vocab, block_elements)
    z = np.asarray(zr)
    no_grad = np.zeros((0, vocab))
    for b in row_blocks:
        rows = idx[b]
        if rows.size == 0:
            continue
        local = np.arange(rows.size, dtype=np.int64)
        zb, zrows = (z, rows) if in_place else (z[rows].astype(np.float64), local)
        if g_in_place:
            gb, grows = (no_grad if g_out is None else g_out), rows
        else:
            gb, grows = np.empty((rows.size, vocab)), local
        kern.token_rows(zb, zrows, tk[b], float(n), gb, grows, stats[b], status[b])
        if not g_in_place:
            sink(rows, gb)
    with np.errstate(all="ignore"):
        logs = _dd.log1p((stats[:, 0], stats[:, 1]))
        hi, lo = neg_log(*logs, stats[:, 2], stats[:, 3])
    hi = np.where(status == kern.BAD, np.nan, hi)
    return _dd_mean(hi, lo, n)
