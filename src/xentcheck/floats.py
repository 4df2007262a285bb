"""Binary floating-point formats, by their bits: rounding, ULPs and overflow, NumPy only.

xentcheck defines its own numerics here instead of borrowing a library's casts, so the
goldens do not move when a library changes how it rounds (ml_dtypes rounded float64 to
bfloat16 through float32 before 0.7 and directly since). A format is its explicit
fraction bits ``m``, its smallest normal exponent ``emin`` and its largest finite value;
a finite float64 ``x = s * 2**(E - 52)`` (``s`` the 53-bit significand) rounds to the
nearest multiple of the format's quantum ``2**(max(E, emin) - m)``, ties to even, and to
infinity beyond the largest finite value: IEEE 754 round-to-nearest-even, done once from
float64 (no double rounding). Subnormals of the format come out right; float64
subnormals are far below every format's smallest subnormal and round to zero.

This module imports nothing but NumPy (and the standard library's ``math``) and is
embedded as it is in every reproduction script (:mod:`xentcheck.report.repro`), so its names carry a ``float_`` prefix that
adapter code copied after it cannot shadow. Tests cross-check it against NumPy's casts,
ml_dtypes and exact rational arithmetic.
"""

import math

import numpy as np

#: dtype -> (explicit fraction bits, smallest normal exponent, largest finite value)
FLOAT_FORMATS = {
    "float64": (52, -1022, 1.7976931348623157e308),
    "float32": (23, -126, 3.4028234663852886e38),
    "float16": (10, -14, 65504.0),
    "bfloat16": (7, -126, 3.3895313892515355e38),
}

_SIGN = np.uint64(1 << 63)
_FRACTION = np.uint64((1 << 52) - 1)
_HIDDEN = np.uint64(1 << 52)
_EXPONENT = np.uint64(0x7FF << 52)


def float_tiny(dtype):
    """The smallest positive subnormal of ``dtype``: ``2**(emin - m)``."""
    nmant, emin, _ = FLOAT_FORMATS[dtype]
    return 2.0 ** (emin - nmant)


def float_round(x, dtype):
    """``x`` rounded to ``dtype`` (nearest, ties to even; overflow to +-inf), as float64.

    Signs, zeros, infinities and NaN pass through; everything else is rounded on the
    float64 bits: the significand loses the bits below the format's quantum, and is
    incremented when the dropped part exceeds half a quantum, or equals it with an odd
    kept part.
    """
    f = np.array(x, dtype=np.float64, order="C")  # a contiguous copy, 0-d kept 0-d
    if dtype == "float64":
        return f
    bits = f.reshape(-1).view(np.uint64)  # f's own elements, rounded in place
    for lo in range(0, bits.size, _FLOAT_BLOCK):  # blocks: the temporaries stay in cache
        _float_round_bits(bits[lo : lo + _FLOAT_BLOCK], *FLOAT_FORMATS[dtype])
    return f


#: elements rounded at a time by float_round
_FLOAT_BLOCK = 1 << 16


def _float_round_bits(bits, nmant, emin, big):
    """Round the float64 numbers whose bits are the 1-d uint64 array ``bits``, in place."""
    one = np.uint64(1)
    drop = np.uint64(52 - nmant)
    # In the format's normal range the quantum is 2**(E - m): the same number of low bits
    # (52 - m) of every magnitude goes. Adding half a quantum, less one unless the kept
    # part is odd, then clearing those bits rounds to nearest even; a carry out of the
    # fraction moves into the exponent, the next binade, as it should. Integer ops only.
    mag = bits & ~_SIGN
    out = np.subtract(mag, one)  # 0 wraps to the top: zero is no subnormal
    below = out < np.uint64(((emin + 1023) << 52) - 1)
    np.right_shift(mag, drop, out=out)
    out &= one
    out += (one << (drop - one)) - one
    out += mag
    out &= ~((one << drop) - one)
    # Beyond the largest finite value (an overflow, or an infinity or NaN input, whose
    # carry may reach the sign bit) the result is an infinity or the input itself; below
    # the smallest normal (zero aside) the quantum is the smallest subnormal: those few
    # go through the general rounding.
    beyond = out > np.array(big).view(np.uint64)
    out |= np.bitwise_and(bits, _SIGN, out=mag)
    rounded = out.view(np.float64)
    f = bits.view(np.float64)
    if below.any():
        rounded[below] = _float_round_any(f[below], nmant, emin, big)
    if beyond.any():
        fb = f[beyond]
        rounded[beyond] = np.where(np.isfinite(fb), np.copysign(np.inf, fb), fb)
    bits[...] = out


def _float_round_any(f, nmant, emin, big):
    """:func:`float_round` of the float64 array ``f`` for any finite element, by the
    significand and exponent of each: what the fast path leaves to values below the
    smallest normal of the format (whose quantum is the smallest subnormal)."""
    bits = f.view(np.uint64)
    biased = ((bits & ~_SIGN) >> np.uint64(52)).astype(np.int64)
    normal = biased > 0
    significand = np.where(normal, (bits & _FRACTION) | _HIDDEN, bits & _FRACTION)
    exponent = np.where(normal, biased - 1023, -1022)
    # bits below the quantum 2**(max(E, emin) - m); past 60 every significand rounds to 0
    drop = np.minimum(52 - nmant + np.maximum(emin - exponent, 0), 60).astype(np.uint64)
    one = np.uint64(1)
    kept = significand >> drop
    rest = significand & ((one << drop) - one)
    half = one << (drop - one)
    up = (rest > half) | ((rest == half) & ((kept & one) == one))
    kept = kept + up.astype(np.uint64)
    scale = exponent - 52 + drop.astype(np.int64)
    with np.errstate(over="ignore"):  # inf and NaN inputs, put back below
        magnitude = np.ldexp(kept.astype(np.float64), scale)  # exact: kept < 2**(m + 2)
    magnitude = np.where(magnitude > big, np.inf, magnitude)
    out = np.copysign(magnitude, f)
    return np.where(np.isfinite(f), out, f)


def float_ulp(x, dtype):
    """The unit in the last place of ``x`` in ``dtype``, as float64.

    ``ulp(x) = 2**(floor(log2|x|) - m)``, never below the smallest subnormal of ``dtype``;
    beyond the dtype's range, the ulp of its largest finite value. NaN for non-finite ``x``.
    """
    nmant, _, big = FLOAT_FORMATS[dtype]
    x = np.asarray(x, dtype=np.float64)
    u = np.abs(x.reshape(-1))  # a 1-d array of its own, worked on in place
    finite = not u.size or np.isfinite(u.max())  # the max is NaN when an element is
    nonfinite = None if finite else ~np.isfinite(u)
    np.minimum(u, big, out=u)
    # 2**floor(log2 |x|) is |x| with its fraction bits cleared (0 for zero and float64
    # subnormals, which the floor below lifts); the scaling by 2**-m is exact
    u.view(np.uint64)[...] &= _EXPONENT
    u *= 2.0**-nmant
    np.maximum(u, float_tiny(dtype), out=u)
    if nonfinite is not None:
        u[nonfinite] = np.nan
    return u.reshape(x.shape)


def float_ulp_one(x, dtype):
    """:func:`float_ulp` of one finite Python float, as a Python float (no arrays made)."""
    nmant, _, big = FLOAT_FORMATS[dtype]
    clipped = min(abs(x), big)
    if clipped == 0.0:
        return float_tiny(dtype)
    # frexp: clipped = f * 2**e with f in [0.5, 1), so floor(log2 clipped) = e - 1; below
    # the normal range the power underflows to 0 and the floor lifts it, as float_ulp's
    return max(math.ldexp(1.0, math.frexp(clipped)[1] - 1 - nmant), float_tiny(dtype))


def float_saturate(x, dtype):
    """``x`` with the values that overflow ``dtype`` replaced by the infinity they round to.

    A loss whose true value is beyond the dtype's range (``-1/p`` at a tiny float16 ``p``,
    say) is correctly computed as ``inf`` there; comparisons use this form of the golden.
    Finite values that fit keep their float64 precision.
    """
    x = np.asarray(x, dtype=np.float64)
    big = FLOAT_FORMATS[dtype][2]
    with np.errstate(invalid="ignore"):
        if not (np.abs(x) > big).any():  # nothing beyond the largest finite: fast path
            return x
    rounded = float_round(x, dtype)
    return np.where(np.isinf(rounded) & np.isfinite(x), rounded, x)
