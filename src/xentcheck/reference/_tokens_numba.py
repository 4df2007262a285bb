"""The fused Numba kernel of the chunked token cross-entropy (private; needs ``numba``).

Importing this module raises ImportError where Numba is absent or refuses the installed
NumPy; :mod:`xentcheck.reference.tokens` then keeps its NumPy path.

:func:`token_rows` does, per row of logits and on both cores (``prange`` over rows), what
:func:`xentcheck.reference.rows.shifted_rows` does with whole-array NumPy operations, reading
the row (float32 or float64, never copied) two or three times:

1. the maximum ``m`` (first index on ties) and whether the row is finite;
2. ``R = sum_{c != amax} exp(z_c - m)`` as a double-double, and ``z_t - m``;
3. with a gradient, ``(p - onehot(t)) / n``, written straight into the output row (float32
   or float64, rounded once).

The arithmetic is the reference's: ``d + e = z - m`` exactly (TwoSum), the terms
``exp(d + e)``, a compensated sum, ``S = 1 + R`` and ``p = E / S`` in double-double, the
same special rows (NaN, one or more ``+inf``, only ``-inf``). Two things differ, so the
results are not bit for bit those of the NumPy path (they agree to a few ULP, and are
checked against mpmath):

* ``exp`` is :func:`_exp_dd` below, not ``np.exp``: ``2**k exp(r)`` with a degree-13
  Taylor polynomial on ``|r| <= ln(2)/2``, whose ``1 + y`` is kept as a double-double and
  folded with ``e`` (and the rest of ``r``) before the one rounding, so each term is
  within about 0.8 ULP of ``exp(d + e)``; NumPy's ``exp(d) (1 + e)`` is within about
  1.1. It uses IEEE ``+ - * /`` and fused multiply-add only, so the results are the same
  on every machine, whatever its SIMD width (NumPy's ``exp`` differs between its SIMD
  paths).
* ``R`` is summed in 256 interleaved lanes, each a TwoSum with its error carried, then
  the lanes; the NumPy path sums pairwise. Both are exact to about ``2**-100`` relative.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = ["BAD", "ONE_INF", "token_rows"]

#: row status codes in ``token_rows``' output (0: an ordinary row)
BAD, ONE_INF = 1, 2  # NaN / two or more +inf / only -inf; exactly one +inf (its limit)

_jit = njit(cache=True, error_model="numpy")  # IEEE results, no ZeroDivisionError checks
_LANES = 256  # interleaved partial sums and maxima: vectorisable, and a fixed order
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 32 significant bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (x + _ROUND) - _ROUND rounds x to an integer
_CLAMP = -746.0  # exp of anything below is 0 in float64
_C = tuple(1.0 / math.factorial(n) for n in range(14))
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``: fused on every target)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fnty = ir.FunctionType(f64, [f64, f64, f64])
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], fnty)
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _pow2(typingctx, k):
    """``2.0**k`` for integral ``-1022 <= k <= 1023``, from its bits."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        bits = builder.shl(builder.add(args[0], ir.Constant(i64, 1023)), ir.Constant(i64, 52))
        return builder.bitcast(bits, ir.DoubleType())

    return sig, codegen


@_jit
def _exp_dd(d, e):
    """``exp(d + e)`` for ``d <= 709`` (``-inf`` allowed) and a tiny correction ``e``."""
    keep = d > _CLAMP
    x = d if keep else _CLAMP
    e = e if keep else 0.0
    kf = (x * _INV_LN2 + _ROUND) - _ROUND
    t1 = x - kf * _LN2_HI  # exact
    t2 = kf * _LN2_LO
    r = t1 - t2
    r_lo = ((t1 - r) - t2) + e  # r + r_lo = x + e - k ln 2, to ~2**-106 relative
    q = _fma(r, _C13, _C12)
    q = _fma(r, q, _C11)
    q = _fma(r, q, _C10)
    q = _fma(r, q, _C9)
    q = _fma(r, q, _C8)
    q = _fma(r, q, _C7)
    q = _fma(r, q, _C6)
    q = _fma(r, q, _C5)
    q = _fma(r, q, _C4)
    q = _fma(r, q, _C3)
    q = _fma(r, q, _C2)
    y = _fma(r * r, q, r)  # expm1(r), rounded once
    hi = 1.0 + y
    lo = _fma(r_lo, hi, (1.0 - hi) + y)  # exp(r + r_lo) = hi + lo: 1 + y exactly (Fast2Sum)
    k = np.int64(kf)
    k1 = k >> 1  # two factors, so that 2**k below 2**-1022 still scales (subnormals)
    return ((hi + lo) * _pow2(k1)) * _pow2(k - k1)


@_jit
def _shift(x, m):
    """``(d, e)``: ``d + e = x - m`` exactly (TwoSum) where ``d`` is finite."""
    d = x - m
    bb = d - x
    return d, (x - (d - bb)) + (-m - bb)


@_jit
def _exp_shifted(x, m):
    """``exp(x - m)`` (``_exp_dd`` ignores ``e`` where ``d`` is not finite)."""
    d, e = _shift(x, m)
    return _exp_dd(d, e)


@_jit
def _max_and_finite(z):
    """``(m, amax, finite)``: the maximum of the row (first index on ties), and whether
    every entry is finite."""
    n = z.shape[0]
    mx = np.full(_LANES, -np.inf)
    ix = np.zeros(_LANES, np.int64)
    fin = np.zeros(_LANES)
    full = n - n % _LANES
    for base in range(0, full, _LANES):
        for j in range(_LANES):
            x = np.float64(z[base + j])
            up = x > mx[j]
            ix[j] = base + j if up else ix[j]
            mx[j] = x if up else mx[j]
            fin[j] += x - x  # NaN once an entry is NaN or infinite
    m, amax, f = -np.inf, 0, 0.0
    for j in range(_LANES):
        f += fin[j]
        if mx[j] > m or (mx[j] == m and ix[j] < amax):
            m, amax = mx[j], ix[j]
    for i in range(full, n):
        x = np.float64(z[i])
        f += x - x
        if x > m:
            m, amax = x, i
    return m, amax, f == 0.0


@_jit
def _special(z):
    """``(status, amax)`` of a row holding a NaN or an infinity (see ``BAD``, ``ONE_INF``)."""
    nan = pinf = ninf = 0
    first = 0
    for i in range(z.shape[0]):
        x = z[i]
        if x != x:
            nan += 1
        elif x == np.inf:
            first = i if pinf == 0 else first
            pinf += 1
        elif x == -np.inf:
            ninf += 1
    if nan or pinf > 1 or ninf == z.shape[0]:
        return BAD, 0
    return (ONE_INF, first) if pinf == 1 else (0, 0)


@_jit
def _sum_exp(z, m, amax):
    """``sum_{c != amax} exp(z_c - m)`` as a double-double (interleaved TwoSum lanes)."""
    n = z.shape[0]
    s = np.zeros(_LANES)
    c = np.zeros(_LANES)
    full = n - n % _LANES
    for base in range(0, full, _LANES):
        for j in range(_LANES):
            v = 0.0 if base + j == amax else _exp_shifted(np.float64(z[base + j]), m)
            t = s[j] + v
            bb = t - s[j]
            c[j] += (s[j] - (t - bb)) + (v - bb)
            s[j] = t
    hi, lo = 0.0, 0.0
    for i in range(full, n):
        v = 0.0 if i == amax else _exp_shifted(np.float64(z[i]), m)
        t = hi + v
        bb = t - hi
        lo += (hi - (t - bb)) + (v - bb)
        hi = t
    for j in range(_LANES):
        t = hi + s[j]
        bb = t - hi
        lo += ((hi - (t - bb)) + (s[j] - bb)) + c[j]
        hi = t
    t = hi + lo
    return t, lo - (t - hi)  # |hi| >= |lo|: Fast2Sum


@_jit
def _grad_row(z, m, amax, status, tgt, r_hi, r_lo, n, g):
    """``g = (p - onehot(tgt)) / n``, as :meth:`xentcheck.reference.rows.Rows.sparse_grad`
    at the maximum and the target; elsewhere ``exp(z_c - m) / (S n)``, by the
    double-double reciprocal of ``S n``: rounded once."""
    size = z.shape[0]
    if status == BAD:
        for i in range(size):
            g[i] = np.nan
        return
    s_hi = r_hi + 1.0  # S = 1 + R as _dd.add_f
    bb = s_hi - r_hi
    err = ((r_hi - (s_hi - bb)) + (1.0 - bb)) + r_lo
    t = s_hi + err
    s_lo = err - (t - s_hi)
    s_hi = t
    k = s_lo / s_hi
    if status == ONE_INF:  # every term exp(z_c - m) is 0
        p_t = 0.0
        for i in range(size):
            g[i] = 0.0
    else:
        p_hi = s_hi * n  # S n, then its reciprocal, as double-doubles
        p_lo = _fma(s_hi, n, -p_hi) + s_lo * n
        c_hi = 1.0 / p_hi
        c_lo = (_fma(-c_hi, p_hi, 1.0) - c_hi * p_lo) * c_hi
        for i in range(size):
            e_i = _exp_shifted(np.float64(z[i]), m)
            g[i] = _fma(e_i, c_hi, e_i * c_lo)
        p0 = _exp_shifted(np.float64(z[tgt]), m) / s_hi
        p_t = p0 - p0 * k
    inv = 1.0 / s_hi
    if tgt == amax:
        q0 = r_hi / s_hi
        g[amax] = -(q0 + (r_lo - q0 * s_lo) / s_hi) / n  # -(1 - p) = -R / S
    else:
        g[amax] = (inv - inv * k) / n  # 1 / S
        g[tgt] = (p_t - 1.0) / n


@njit(parallel=True, cache=True, error_model="numpy")
def token_rows(z, rows, target, n, grad, grad_rows, out, status):
    """Per kept token ``q`` (row ``rows[q]`` of ``z [M, V]``, label ``target[q]``): into
    ``out[q] = (r_hi, r_lo, d_t, e_t)``, ``R`` and ``z_t - m`` as double-doubles; into
    ``status[q]`` 0, ``BAD`` or ``ONE_INF``; and, where ``grad`` has rows, the gradient
    ``(p - onehot(t)) / n`` into ``grad[grad_rows[q]]`` (NaN in ``BAD`` rows).

    ``ONE_INF`` rows are their limit: ``R = 0``, ``d_t = 0`` at the ``+inf``, ``-inf``
    elsewhere.
    """
    want_grad = grad.shape[0] > 0
    for q in prange(rows.shape[0]):
        zr = z[rows[q]]
        tgt = target[q]
        m, amax, finite = _max_and_finite(zr)
        st = 0
        if not finite:
            st, first = _special(zr)
            if st == ONE_INF:
                m, amax = 0.0, first
        r_hi = r_lo = d_t = e_t = 0.0
        if st == ONE_INF:
            d_t = 0.0 if tgt == amax else -np.inf
        elif st == 0:
            r_hi, r_lo = _sum_exp(zr, m, amax)
            d_t, e_t = _shift(np.float64(zr[tgt]), m)
            e_t = e_t if math.isfinite(d_t) else 0.0
        out[q, 0] = r_hi
        out[q, 1] = r_lo
        out[q, 2] = d_t
        out[q, 3] = e_t
        status[q] = st
        if want_grad:
            _grad_row(zr, m, amax, st, tgt, r_hi, r_lo, n, grad[grad_rows[q]])
