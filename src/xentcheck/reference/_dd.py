"""Double-double arithmetic for the binary and KL losses of the reference (private).

A double-double ``(hi, lo)`` stands for the unevaluated sum ``hi + lo`` with
``|lo| <= ulp(hi) / 2``: about 106 significant bits, twice float64's 53. The binary and KL
losses compute values and gradients in it and round to float64 once, at the end, so
their goldens are correctly rounded but for rare near-ties and the cases their
docstrings name, and agree across platforms: the arithmetic uses IEEE ``+ - * /`` only
(NumPy's ``log`` and ``log1p`` merely seed a Newton step whose result does not depend
on the seed's last bits). ``exp`` is evaluated from scratch (argument reduction by ``ln 2`` in triple
precision, a degree-9 Taylor polynomial on ``r / 1024``, ten squarings).

Every function takes and returns pairs of float64 arrays (a plain float or array is
promoted with :func:`dd`). Apart from ``exp``, ``log`` and ``log1p``, which handle
special values, they assume finite arguments and results (an overflow makes NaN):
callers substitute safe values for special inputs (infinite logits, probabilities 0
and 1, NaN) and patch those elements, and any that overflowed, afterwards.

References:
  Dekker, *A floating-point technique for extending the available precision*,
  Numerische Mathematik 18 (1971); Knuth, *TAOCP* vol. 2, 4.2.2 (TwoSum);
  Hida, Li & Bailey, *Algorithms for quad-double precision floating point arithmetic*
  (2001), the QD library's double-double division.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np

DD = tuple[np.ndarray, np.ndarray]

_SPLITTER = 134217729.0  # 2**27 + 1
_SPLIT_LIMIT = 2.0**995  # beyond this, a * _SPLITTER could overflow: scale first


def _parts(x: Fraction, n: int) -> tuple[float, ...]:
    """``x`` as a sum of ``n`` non-overlapping floats, largest first."""
    out = []
    for _ in range(n):
        f = float(x)
        out.append(f)
        x -= Fraction(f)
    return tuple(out)


_LN2_EXACT = Fraction(
    Decimal("0.69314718055994530941723212145817656807550013436025525412068000949339362196969472")
)
_LN2_HI, _LN2_LO, _LN2_LO2 = _parts(_LN2_EXACT, 3)
_INV_LN2 = 1.0 / _LN2_HI
_INV_FACT = [_parts(Fraction(1, math.factorial(n)), 2) for n in range(10)]
_SQRT_HALF = math.sqrt(0.5)
_EXP_SQUARINGS = 10
_EXP_CLAMP = 2000.0  # exp(z) * 2**scale is 0 or inf beyond, for |scale| <= 1000


def dd(x) -> DD:
    """Promote a float or float64 array to a double-double with ``lo = 0``."""
    x = np.asarray(x, dtype=np.float64)
    return x, np.zeros_like(x)


def where(mask, x: DD, y: DD) -> DD:
    """Element-wise choice between two double-doubles."""
    return np.where(mask, x[0], y[0]), np.where(mask, x[1], y[1])


def two_sum(a, b) -> DD:
    """``a + b`` exactly, as a double-double (Knuth). Finite arguments and sum."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a, b) -> DD:
    """``a + b`` exactly when ``|a| >= |b|`` (Dekker). Finite arguments and sum."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    big = np.abs(a) > _SPLIT_LIMIT
    if not np.any(big):
        t = _SPLITTER * a
        hi = t - (t - a)
        return hi, a - hi
    a_s = np.where(big, a * 2.0**-28, a)
    t = _SPLITTER * a_s
    hi = t - (t - a_s)
    lo = a_s - hi
    return np.where(big, hi * 2.0**28, hi), np.where(big, lo * 2.0**28, lo)


def two_prod(a, b) -> DD:
    """``a * b`` exactly (barring underflow), as a double-double (Dekker)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def neg(x: DD) -> DD:
    return -x[0], -x[1]


def add(x: DD, y: DD) -> DD:
    """Double-double sum, accurate even under cancellation (QD's ieee_add)."""
    s, e = two_sum(x[0], y[0])
    t, f = two_sum(x[1], y[1])
    e = e + t
    s, e = fast_two_sum(s, e)
    e = e + f
    return fast_two_sum(s, e)


def sub(x: DD, y: DD) -> DD:
    return add(x, neg(y))


def add_f(x: DD, b) -> DD:
    """Double-double plus float."""
    s, e = two_sum(x[0], b)
    e = e + x[1]
    return fast_two_sum(s, e)


def mul(x: DD, y: DD) -> DD:
    p, e = two_prod(x[0], y[0])
    e = e + (x[0] * y[1] + x[1] * y[0])
    return fast_two_sum(p, e)


def mul_f(x: DD, b) -> DD:
    """Double-double times float."""
    p, e = two_prod(x[0], b)
    e = e + x[1] * b
    return fast_two_sum(p, e)


def div(x: DD, y: DD) -> DD:
    """Double-double quotient (QD's accurate division, three partial quotients)."""
    q1 = x[0] / y[0]
    r = sub(x, mul_f(y, q1))
    q2 = r[0] / y[0]
    r = sub(r, mul_f(y, q2))
    q3 = r[0] / y[0]
    q = add_f(fast_two_sum(q1, q2), q3)
    ok = np.isfinite(q1)
    return np.where(ok, q[0], q1), np.where(ok & np.isfinite(q[1]), q[1], 0.0)


def to_float(x: DD) -> np.ndarray:
    """Round a double-double to the nearest float64."""
    s = x[0] + x[1]
    return np.where(np.isfinite(x[0]), s, x[0])


def _exp_core(z: DD) -> tuple[np.ndarray, DD]:
    """``exp(z) = 2**k * (1 + u)``: ``k`` integral, ``|u| < 0.42``; ``z`` finite, ``|z| <= 800``."""
    k = np.rint(z[0] * _INV_LN2)
    r = sub(z, two_prod(k, _LN2_HI))
    r = sub(r, add_f(two_prod(k, _LN2_LO), k * _LN2_LO2))
    tiny = np.abs(r[0]) < 2.0**-1000  # expm1(r) = r to far beyond double-double precision
    s = (r[0] * 2.0**-_EXP_SQUARINGS, r[1] * 2.0**-_EXP_SQUARINGS)
    acc = (np.full_like(s[0], _INV_FACT[9][0]), np.full_like(s[0], _INV_FACT[9][1]))
    for n in range(8, 0, -1):
        acc = add(mul(acc, s), (_INV_FACT[n][0], _INV_FACT[n][1]))
    u = mul(acc, s)  # expm1(s)
    for _ in range(_EXP_SQUARINGS):
        u = mul(u, add_f(u, 2.0))  # (1 + u)**2 - 1
    return k, where(tiny, r, u)


def _prepare_exp_arg(z) -> tuple[DD, np.ndarray, np.ndarray]:
    z = z if isinstance(z, tuple) else dd(z)
    hi = np.asarray(z[0], dtype=np.float64)
    lo = np.asarray(z[1], dtype=np.float64)
    finite = np.isfinite(hi)
    clamped = np.clip(np.where(finite, hi, 0.0), -_EXP_CLAMP, _EXP_CLAMP)
    lo = np.where(finite & (clamped == hi), lo, 0.0)
    return (clamped, lo), hi, finite


def _scale(x: DD, k: np.ndarray) -> DD:
    ki = k.astype(np.int64)
    return np.ldexp(x[0], ki), np.ldexp(x[1], ki)


def exp(z, scale: int = 0) -> DD:
    """``exp(z) * 2**scale`` as a double-double (``|scale| <= 1000``): 0 below about
    ``-745 - scale ln 2``, ``inf`` above about ``709.78 - scale ln 2``."""
    zc, hi, finite = _prepare_exp_arg(z)
    k, u = _exp_core(zc)
    out = _scale(add_f(u, 1.0), k + scale)
    special = np.where(np.isnan(hi), np.nan, np.where(hi > 0, np.inf, 0.0))
    return np.where(finite, out[0], special), np.where(finite & np.isfinite(out[0]), out[1], 0.0)


def exp_expm1(z) -> tuple[DD, DD]:
    """``(exp(z), expm1(z))`` as double-doubles, each with full relative accuracy."""
    zc, hi, finite = _prepare_exp_arg(z)
    k, u = _exp_core(zc)
    e = _scale(add_f(u, 1.0), k)
    em1 = where(k == 0, u, add_f(e, -1.0))
    e_special = np.where(np.isnan(hi), np.nan, np.where(hi > 0, np.inf, 0.0))
    m_special = np.where(np.isnan(hi), np.nan, np.where(hi > 0, np.inf, -1.0))
    e_ok = finite & np.isfinite(e[0])
    return (
        (np.where(finite, e[0], e_special), np.where(e_ok, e[1], 0.0)),
        (np.where(finite, em1[0], m_special), np.where(e_ok, em1[1], 0.0)),
    )


def _log1p_core(u: DD) -> DD:
    """``log1p(u)`` for ``-0.3 <= u <= 0.42``: NumPy's seed, one Newton step on ``expm1``."""
    y0 = np.log1p(u[0])
    _, em1 = exp_expm1(y0)
    corr = div(sub(u, em1), add_f(em1, 1.0))
    return add_f(corr, y0)


def _log_positive(v: DD) -> DD:
    """``log(v)`` for finite ``v > 0``: ``v = 2**j * m``, ``m`` in ``[sqrt(1/2), sqrt(2))``."""
    m, j = np.frexp(v[0])
    j = np.where(m < _SQRT_HALF, j - 1, j)
    vs = (np.ldexp(v[0], -j), np.ldexp(v[1], -j))
    u = add_f(two_sum(vs[0], -1.0), vs[1])
    jf = j.astype(np.float64)
    jl = add_f(add(two_prod(jf, _LN2_HI), two_prod(jf, _LN2_LO)), jf * _LN2_LO2)
    return add(_log1p_core(u), jl)


def _log_special(hi: np.ndarray) -> np.ndarray:
    return np.where(hi == 0, -np.inf, np.where(hi == np.inf, np.inf, np.nan))


def _flat(x: DD) -> DD:
    return (
        np.array(x[0], dtype=np.float64, copy=True).reshape(-1),
        np.array(x[1], dtype=np.float64, copy=True).reshape(-1),
    )


def _fill(out: DD, mask: np.ndarray, fn, x: DD) -> None:
    """``out[mask] = fn(x[mask])``, computing ``fn`` on the selected elements only."""
    if np.any(mask):
        y = fn((x[0][mask], x[1][mask]))
        out[0][mask] = y[0]
        out[1][mask] = y[1]


def log(v) -> DD:
    """``log(v)``; ``-inf`` at 0, ``inf`` at ``inf``, NaN below 0."""
    v = v if isinstance(v, tuple) else dd(v)
    shape = np.shape(v[0])
    v = _flat(v)
    ok = (v[0] > 0) & np.isfinite(v[0])
    out = (_log_special(v[0]), np.zeros_like(v[0]))
    _fill(out, ok, _log_positive, v)
    return out[0].reshape(shape), out[1].reshape(shape)


def log1p(u) -> DD:
    """``log1p(u)`` with full relative accuracy for tiny ``u``; ``-inf`` at ``u = -1``."""
    u = u if isinstance(u, tuple) else dd(u)
    shape = np.shape(u[0])
    u = _flat(u)
    finite = np.isfinite(u[0])
    v = add_f(two_sum(np.ones_like(u[0]), np.where(finite, u[0], 0.0)), u[1])
    ok = finite & (v[0] > 0)
    near = ok & (u[0] >= -0.29) & (u[0] <= 0.41)
    out = (_log_special(np.where(finite, v[0], u[0])), np.zeros_like(v[0]))
    _fill(out, near, _log1p_core, u)
    _fill(out, ok & ~near, _log_positive, v)
    return out[0].reshape(shape), out[1].reshape(shape)


def exp_times(z, f: DD, scale: int = 0) -> DD:
    """``f * exp(z) * 2**scale`` as ``sign(f) * exp(z + log|f|) * 2**scale``, for finite
    ``z`` and ``f``.

    Exact to double-double precision wherever the product is a normal number, even when
    ``exp(z)`` alone would underflow or overflow; 0 where ``f`` is 0.
    """
    z = z if isinstance(z, tuple) else dd(z)
    negative = f[0] < 0
    mag_f = where(negative, neg(f), f)
    nonzero = f[0] != 0
    mag = exp(add(z, log(where(nonzero, mag_f, dd(np.ones_like(f[0]))))), scale)
    out = where(negative, neg(mag), mag)
    zero = np.zeros_like(out[0])
    return np.where(nonzero, out[0], zero), np.where(nonzero, out[1], zero)


def _normalized(f) -> tuple[DD, np.ndarray]:
    f = f if isinstance(f, tuple) else dd(f)
    _, e = np.frexp(f[0])
    return (np.ldexp(f[0], -e), np.ldexp(f[1], -e)), e


def prod(*factors, over=None) -> DD:
    """The product of float or double-double factors (divided by ``over``, if given).

    Each factor is normalised to a mantissa in ``[1/2, 1)`` times a power of 2: the
    mantissas are multiplied in double-double and the powers of 2 applied once, at the
    end, so a normal result is exact to double-double precision even where partial
    products are not representable (a subnormal weight times a huge loss), and a
    subnormal result is rounded about once. Finite factors only.
    """
    acc, e_sum = _normalized(factors[0])
    for f in factors[1:]:
        m, e = _normalized(f)
        acc, e_sum = mul(acc, m), e_sum + e
    if over is not None:
        m, e = _normalized(over)
        acc, e_sum = div(acc, m), e_sum - e
    return np.ldexp(acc[0], e_sum), np.ldexp(acc[1], e_sum)
