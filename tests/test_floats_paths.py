"""xentcheck.floats' fast paths against its general rounding, on random and edge bits.

``float_round`` rounds the format's normal range on the magnitude's bits (one quantum for
every element) and sends the few elements below the smallest normal to the general
per-element rounding (``_float_round_any``), block by block; ``float_ulp_one`` is the
scalar form of ``float_ulp``. Each must give the same bits as the general form.
"""

from __future__ import annotations

import numpy as np
import pytest

from xentcheck import floats
from xentcheck.floats import FLOAT_FORMATS, float_round, float_ulp, float_ulp_one

NARROW = ("float32", "float16", "bfloat16")


def edge_values(dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Random bit patterns, ties and near-ties at the quantum around emin and the largest
    finite value, float64 subnormals, infinities and NaNs with every payload shape."""
    nmant, emin, big = FLOAT_FORMATS[dtype]
    parts = [rng.integers(0, 2**64, size=20_000, dtype=np.uint64).view(np.float64)]
    top = int(np.log2(big))
    for e in [*range(emin - nmant - 2, emin + 2), -1, 0, 1, top - 1, top, top + 1]:
        drop = 52 - nmant + max(emin - e, 0)
        kept = rng.integers(0, 2**16, size=300, dtype=np.uint64) << np.uint64(min(drop, 52))
        half = np.uint64(1) << np.uint64(min(drop - 1, 51))
        frac = np.concatenate(
            [kept | half, (kept | half) + np.uint64(1), (kept | half) - np.uint64(1)]
        )
        bits = np.array(np.ldexp(1.0, e)).view(np.uint64) | (frac & np.uint64(2**52 - 1))
        parts += [bits.view(np.float64), -bits.view(np.float64)]
    nans = np.array([0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x7FF0000000000001], dtype=np.uint64)
    specials = [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308, big, -big]
    return np.concatenate([*parts, nans.view(np.float64), np.array(specials)])


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize("dtype", NARROW)
def test_round_fast_path_equals_the_general_rounding_bit_for_bit(dtype, monkeypatch):
    x = edge_values(dtype, np.random.default_rng(3))
    nmant, emin, big = FLOAT_FORMATS[dtype]
    general = floats._float_round_any(x.copy(), nmant, emin, big)
    assert np.array_equal(bits(float_round(x, dtype)), bits(general))
    # small blocks: elements below the normal range and overflows land in many blocks
    monkeypatch.setattr(floats, "_FLOAT_BLOCK", 7)
    assert np.array_equal(bits(float_round(x, dtype)), bits(general))


@pytest.mark.parametrize("dtype", NARROW)
def test_round_keeps_0d_and_returns_a_fresh_array(dtype):
    x = np.array(1.0 + 2.0**-30)
    out = float_round(x, dtype)
    assert out.shape == () and out is not x and float(out) == 1.0
    assert float_round(np.empty((0, 3)), dtype).shape == (0, 3)


@pytest.mark.parametrize("dtype", [*NARROW, "float64"])
def test_ulp_one_is_float_ulp_of_one_element(dtype):
    x = edge_values(dtype if dtype != "float64" else "float32", np.random.default_rng(4))
    x = x[np.isfinite(x)]
    want = float_ulp(x, dtype)
    got = np.array([float_ulp_one(float(v), dtype) for v in x])
    assert np.array_equal(bits(got), bits(want))
