"""compare's fast paths against a plain oracle: the same Comparison, field for field.

``compare`` takes a few finite elements in Python floats, and larger finite arrays block
by block; the oracle below is the whole-array NumPy form of the documented rule (every
error computed for every element at once), so any difference is a bug of a fast path:
a maximum, the worst element's index (the first of the largest ULP error, among the
failing elements when one fails), or the samples around it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xentcheck.dtypes import ulp
from xentcheck.harness import compare as cmp
from xentcheck.harness.compare import Comparison, compare, sample


def oracle(expected, actual, dtype, rtol, atol, allowance=None) -> Comparison:
    """compare() for two finite arrays of one shape, in whole-array NumPy."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    bound = atol + rtol * np.abs(e)
    if allowance is not None:
        bound = np.fmax(bound, allowance)
    with np.errstate(all="ignore"):
        abs_err = np.abs(a - e)
        rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(e))
        ulp_err = abs_err / ulp(e, dtype)
        allowed_ulp = bound.ravel() / ulp(e.ravel(), dtype)
        excess = np.where(abs_err == 0, 0.0, abs_err / bound).max()
    bad = abs_err > bound
    worst = int(np.argmax(np.where(bad, ulp_err, -1.0) if bad.any() else ulp_err))
    lo = max(0, worst - 1)

    def fin(x):
        return float(x) if np.isfinite(x) else None

    return Comparison(
        "mismatch" if bad.any() else "pass",
        fin(abs_err.max()), fin(rel_err.max()), fin(ulp_err.max()),
        index=[int(i) for i in np.unravel_index(worst, e.shape)],
        expected=sample(e.ravel()[lo : lo + 4]), actual=sample(a.ravel()[lo : lo + 4]),
        allowed_ulp=fin(allowed_ulp[worst]), excess=fin(excess),
    )  # fmt: skip


def cases(seed: int):
    """(expected, actual, dtype, rtol, atol): sizes around the few-element limit and the
    block, ties of the ULP error, zeros, tiny and huge values, overflowing differences."""
    rng = np.random.default_rng(seed)
    tolerances = [(1e-7, 1e-7), (1.3e-6, 1e-5), (0.0, 0.0), (1e-3, 0.0)]
    for trial in range(600):
        dtype = ["float64", "float32", "float16", "bfloat16"][trial % 4]
        shape = [(), (1,), (2, 3), (16,), (17,), (5, 7), (300,)][trial % 7]
        if trial % 3 == 0:  # a few values repeated: equal ULP errors, first-of-equal
            e = rng.choice([1.0, 1.5, -2.0, 0.0, 3.0, 1e-30], size=shape)
            a = e + rng.choice([0.0, 1e-6, 2e-6, 1e-3, -1e-3], size=shape)
        else:
            e = rng.normal(size=shape) * 10.0 ** rng.integers(-8, 8)
            a = e * (1 + rng.normal(size=shape) * 10.0 ** rng.integers(-16, -1))
        # an allowance (the ULP criterion's) on every other trial: larger or smaller than
        # the tolerance, element by element
        allowance = None if trial % 2 else np.abs(e) * 10.0 ** rng.integers(-9, -2, size=shape)
        yield e, a, dtype, *tolerances[trial % 4], allowance
    big = np.array([1e308, 1.0, -1e308])
    yield big, -big, "float64", 1e-7, 1e-7, None  # differences overflow to inf
    yield np.array([0.0, 0.0]), np.array([0.0, 1e-300]), "float16", 0.0, 0.0, None


@pytest.mark.parametrize("block", [cmp.BLOCK, 1, 4])
def test_fast_paths_equal_the_whole_array_oracle(block, monkeypatch):
    monkeypatch.setattr(cmp, "BLOCK", block)  # small blocks: the worst across blocks
    for e, a, dtype, rtol, atol, allowance in cases(block):
        got = dataclasses.asdict(compare(e, a, dtype, rtol, atol, allowance=allowance))
        want = dataclasses.asdict(oracle(e, a, dtype, rtol, atol, allowance))
        assert got == want, (e, a, dtype, allowance)


def test_few_elements_and_blocks_agree_with_each_other(monkeypatch):
    rng = np.random.default_rng(9)
    e = rng.normal(size=12)
    a = e + rng.normal(size=12) * 1e-3
    few = compare(e, a, "float32", 1.3e-6, 1e-5)
    monkeypatch.setattr(cmp, "FEW", 0)  # the block path for the same arrays
    assert compare(e, a, "float32", 1.3e-6, 1e-5) == few
