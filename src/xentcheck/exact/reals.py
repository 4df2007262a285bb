"""Extended-real arithmetic in mpmath for the oracle.

Float64 inputs convert to mpmath exactly (``inf`` and ``NaN`` included). Quantities are
mpmath numbers throughout, ``mpmath.inf`` and ``mpmath.nan`` for the extended reals; this
module holds the few operations whose conventions the losses share:

* :func:`zmul`, the product in which an exactly-zero factor annihilates an infinite one
  (``0 * inf = 0``: a term whose coefficient is 0 is absent; NaN still propagates);
* :func:`total`, the exact sum of finite terms (rounded once), with IEEE rules for the
  infinite ones (``inf + -inf = NaN``);
* :func:`sigmoid`, :func:`softplus` and :func:`tanh_half`, written so that neither
  cancels nor overflows, with their limits at ``+-inf``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mpmath
import numpy as np
from mpmath import mpf

__all__ = [
    "BITS",
    "INF",
    "NAN",
    "ONE",
    "ZERO",
    "finite",
    "input_bits",
    "isnan",
    "magnitude",
    "sigmoid",
    "softplus",
    "tanh_half",
    "to_mp",
    "total",
    "zmul",
]

BITS = 200  # about 60 significant decimal digits
INF, NAN = mpmath.inf, mpmath.nan
ZERO, ONE = mpf(0), mpf(1)
_SPAN = 16384


def to_mp(a: np.ndarray) -> list[mpf]:
    """The elements of ``a`` as mpmath numbers, flat in C order, each converted exactly."""
    return [mpf(float(v)) for v in np.asarray(a, dtype=np.float64).ravel()]


def input_bits(arrays: Iterable[np.ndarray]) -> int:
    """Working precision for inputs ``arrays``: :data:`BITS` plus the binary exponent of
    their largest finite magnitude, so that a difference of two large quantities (a mean
    of token losses of ``1e300`` less one of them) keeps :data:`BITS` bits."""
    big = 0.0
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float64))
        a = a[np.isfinite(a)]
        if a.size:
            big = max(big, float(a.max()))
    return BITS + max(0, int(np.frexp(big)[1]))


def isnan(v) -> bool:
    return bool(mpmath.isnan(v))


def finite(v) -> bool:
    return bool(mpmath.isfinite(v))


def zmul(a, b):
    """``a * b`` with ``0 * (+-inf) = 0``: an exactly-zero factor removes the term, as
    the limit of the finite case; NaN propagates."""
    if (a == 0 and not isnan(b)) or (b == 0 and not isnan(a)):
        return ZERO
    return a * b


def total(terms: Iterable) -> mpf:
    """The sum of ``terms``: exact for finite ones, rounded once to the working precision;
    NaN if any is NaN or both infinities occur; the infinity otherwise."""
    terms = list(terms)
    if any(isnan(t) for t in terms):
        return NAN
    infs = {t for t in terms if not finite(t)}
    if infs:
        return NAN if len(infs) > 1 else infs.pop()
    nonzero = [t for t in terms if t != 0]
    if not nonzero:
        return ZERO
    # mpf internals: (sign, mantissa, exponent, bit count); the exact sum fits in the
    # span of the terms' bits plus the carries (float64 data spans some 6000 bits at
    # most; beyond the cap, terms below 2**-16384 of the sum are dropped)
    low = min(t._mpf_[2] for t in nonzero)
    high = max(t._mpf_[2] + t._mpf_[3] for t in nonzero)
    span = min(high - low, mpmath.mp.prec + _SPAN)
    with mpmath.workprec(span + len(nonzero).bit_length() + 8):
        s = mpmath.fsum(nonzero)
    return +s  # rounded to the caller's precision


def magnitude(terms: Sequence) -> mpf:
    """The sum of ``|t|`` over the finite terms: the scale of a sum whose terms may cancel."""
    return mpmath.fsum(abs(t) for t in terms if finite(t))


def sigmoid(x):
    r"""``1 / (1 + e^{-x})``, as ``e^x / (1 + e^x)`` below 0; 1 at ``+inf``, 0 at ``-inf``."""
    if isnan(x):
        return NAN
    if x == INF:
        return ONE
    if x == -INF:
        return ZERO
    if x >= 0:
        return 1 / (1 + mpmath.exp(-x))
    e = mpmath.exp(x)
    return e / (1 + e)


def softplus(x):
    r"""``log(1 + e^x) = max(x, 0) + log1p(e^{-|x|})``; ``+inf`` at ``+inf``, 0 at ``-inf``."""
    if isnan(x):
        return NAN
    if x == INF:
        return INF
    if x == -INF:
        return ZERO
    if x >= 0:
        return x + mpmath.log1p(mpmath.exp(-x))
    return mpmath.log1p(mpmath.exp(x))


def tanh_half(x):
    r"""``tanh(x / 2) = sigmoid(x) - sigmoid(-x)``, without the cancellation; +-1 at
    ``+-inf``."""
    if isnan(x):
        return NAN
    if not finite(x):
        return mpf(mpmath.sign(x))
    return mpmath.tanh(x / 2)
