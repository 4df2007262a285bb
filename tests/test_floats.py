"""xentcheck's own float formats (xentcheck.floats) against three independent oracles.

- exact rational arithmetic (fractions.Fraction): round to nearest, ties to even, once;
- NumPy's float64 -> float32 / float16 casts (correctly rounded, directly from float64);
- ml_dtypes' bfloat16, which rounded through float32 before 0.7: compared exactly where
  the library rounds directly, and only on values where both ways agree otherwise.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from xentcheck import dtypes
from xentcheck.floats import FLOAT_FORMATS, float_round, float_saturate, float_tiny, float_ulp

NARROW = ("float32", "float16", "bfloat16")


def exact_round(x: float, dtype: str) -> float:
    """The oracle: ``x`` rounded to ``dtype`` in exact rational arithmetic."""
    if not math.isfinite(x) or x == 0:
        return x
    nmant, emin, big = FLOAT_FORMATS[dtype]
    q = Fraction(x)
    e = max(math.frexp(abs(x))[1] - 1, emin)  # floor(log2 |x|), held at emin for subnormals
    quantum = Fraction(2) ** (e - nmant)
    k = abs(q) / quantum
    n = math.floor(k)
    if k - n > Fraction(1, 2) or (k - n == Fraction(1, 2) and n % 2 == 1):
        n += 1
    r = n * quantum
    if r > Fraction(big):
        return math.copysign(math.inf, x)
    return math.copysign(float(r), x)


def _interesting(dtype: str) -> np.ndarray:
    """Values at the edges of ``dtype``: ties, near-ties, subnormals, overflow, specials."""
    nmant, emin, big = FLOAT_FORMATS[dtype]
    rng = np.random.default_rng(20261205)
    tiny = float_tiny(dtype)
    quantum_at_one = 2.0**-nmant
    ties = [1 + quantum_at_one / 2, 1 + 1.5 * quantum_at_one, 3 * tiny / 2, tiny / 2, big]
    near = [t * (1 + s * 2.0**-45) for t in ties for s in (-1, 1)]
    double_rounding = [1 + 2.0**-8 + 2.0**-40, 1 + 2.0**-24 + 2.0**-60, 2.0**-134 + 2.0**-160]
    overflow = [big * (1 + quantum_at_one / 2), big * (1 + quantum_at_one / 4), big * 2]
    specials = [0.0, 5e-324, 2.0**-1022, 1e-300, 1e300, 1.0, 0.1, 1 / 3]
    randoms = rng.standard_normal(3000) * np.exp2(rng.integers(emin - nmant - 4, 129, 3000))
    x = np.concatenate([ties, near, double_rounding, overflow, specials, randoms])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("dtype", NARROW)
def test_round_is_the_exact_rational_rounding(dtype):
    x = _interesting(dtype)
    with np.errstate(over="ignore"):
        got = float_round(x, dtype)
    want = np.array([exact_round(float(v), dtype) for v in x])
    bad = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
    assert bad.size == 0, [(x[i], got[i], want[i]) for i in bad[:5]]


def test_bfloat16_rounds_once_not_through_float32():
    # through float32 the 2**-40 is lost and the rest is a tie that goes to even (1.0)
    assert float_round(np.array([1 + 2.0**-8 + 2.0**-40]), "bfloat16")[0] == 1 + 2.0**-7


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_equals_numpys_cast(dtype):
    x = _interesting(dtype)
    with np.errstate(over="ignore"):
        want = x.astype(dtype).astype(np.float64)
        got = float_round(x, dtype)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_bfloat16_cross_checked_with_ml_dtypes():
    x = _interesting("bfloat16")
    with np.errstate(over="ignore"):
        lib = x.astype(ml_dtypes.bfloat16).astype(np.float64)
        via_f32 = float_round(float_round(x, "float32"), "bfloat16")
        got = float_round(x, "bfloat16")
    probe = np.array([1 + 2.0**-8 + 2.0**-40])
    direct = probe.astype(ml_dtypes.bfloat16).astype(np.float64)[0] == 1 + 2.0**-7
    # ml_dtypes >= 0.7 rounds once like us; before, it matched rounding through float32
    want = lib if direct else np.where(got == via_f32, lib, got)
    if not direct:
        assert np.array_equal(lib, via_f32, equal_nan=True)
    assert np.array_equal(got, want, equal_nan=True)


def test_specials_and_signs_pass_through():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-300])
    for dtype in FLOAT_FORMATS:
        got = float_round(x, dtype)
        assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf
        assert list(np.signbit(got[3:])) == [False, True, True]
        assert got.shape == x.shape


def test_round_keeps_shape_and_accepts_non_contiguous_input():
    x = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2] / 7
    assert float_round(x, "float16").shape == (4, 3)
    assert float_round(np.float64(0.1), "float32").shape == ()


@pytest.mark.parametrize("dtype", list(FLOAT_FORMATS))
def test_ulp_is_the_spacing_of_the_format(dtype):
    nmant, emin, big = FLOAT_FORMATS[dtype]
    assert float_ulp(np.array(1.0), dtype) == 2.0**-nmant
    assert float_ulp(np.nextafter(1.0, 0.0), dtype) == 2.0 ** (-nmant - 1)  # below 2**0
    assert float_ulp(np.array(0.0), dtype) == float_tiny(dtype)
    assert float_ulp(np.array(2.0**emin), dtype) == float_tiny(dtype)
    beyond = big if dtype == "float64" else big * 4
    assert float_ulp(np.array(beyond), dtype) == float_ulp(np.array(big), dtype)
    assert np.isnan(float_ulp(np.array(np.inf), dtype))
    if dtype != "float64":
        np_dtype = dtypes.numpy_dtype(dtype)
        assert float_ulp(np.array(1.0), dtype) == float(ml_dtypes.finfo(np_dtype).eps)
        assert float_tiny(dtype) == float(ml_dtypes.finfo(np_dtype).smallest_subnormal)
        assert big == float(ml_dtypes.finfo(np_dtype).max)


def test_saturate_replaces_only_what_overflows():
    x = np.array([1e5, 65504.0, 65519.0, 65520.0, -1e9, 0.1])
    got = float_saturate(x, "float16")
    assert list(got) == [np.inf, 65504.0, 65519.0, np.inf, -np.inf, 0.1]


def test_dtypes_uses_xentchecks_rounding():
    x = np.array([1 + 2.0**-8 + 2.0**-40, 0.1])
    assert np.array_equal(dtypes.quantize(x, "bfloat16"), float_round(x, "bfloat16"))
    assert dtypes.mantissa_bits("bfloat16") == 7
    with pytest.raises(ValueError, match="unknown dtype"):
        dtypes.quantize(x, "float8")
