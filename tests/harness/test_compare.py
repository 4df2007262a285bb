"""Comparison: tolerances, ULP errors in the dtype under test, NaN/Inf patterns."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xentcheck import accuracy
from xentcheck.dtypes import quantize, ulp
from xentcheck.harness import compare as compare_module
from xentcheck.harness.compare import DEFAULT_TOLERANCE, compare, tolerance_for


def test_identical_arrays_pass_with_zero_error():
    a = np.array([1.0, -2.5, 1e-30])
    c = compare(a, a.copy(), "float64", *DEFAULT_TOLERANCE["float64"])
    assert c.status == "pass"
    assert c.max_abs_err == 0.0 and c.max_ulp == 0.0


def test_one_ulp_in_float32_is_reported_as_one_ulp():
    e = np.array([1.0])
    a = np.array([1.0 + 2.0**-23])
    c = compare(e, a, "float32", *DEFAULT_TOLERANCE["float32"])
    assert c.status == "pass"
    assert c.max_ulp == pytest.approx(1.0)


def test_error_beyond_tolerance_is_a_mismatch_at_the_worst_element():
    e = np.array([1.0, 2.0, 3.0])
    a = np.array([1.0, 2.1, 3.0])
    c = compare(e, a, "float32", *DEFAULT_TOLERANCE["float32"])
    assert c.status == "mismatch"
    assert c.index == [1]
    assert c.max_abs_err == pytest.approx(0.1)
    assert c.max_rel_err == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ([np.nan], [0.0]),
        ([np.inf], [1e308]),
        ([1.0], [np.nan]),
        ([np.inf], [-np.inf]),
        ([-np.inf], [np.nan]),
    ],
)
def test_nonfinite_patterns_must_match_exactly(expected, actual):
    c = compare(np.array(expected), np.array(actual), "float64", 1e-7, 1e-7)
    assert c.status == "nonfinite"


def test_matching_nonfinite_patterns_compare_the_finite_rest():
    e = np.array([np.nan, np.inf, 1.0])
    assert compare(e, e.copy(), "float16", 1e-3, 1e-5).status == "pass"
    assert compare(e, np.array([np.nan, np.inf, 2.0]), "float16", 1e-3, 1e-5).status == "mismatch"


def test_shape_with_other_size_is_a_mismatch():
    c = compare(np.zeros(3), np.zeros(2), "float64", 1e-7, 1e-7)
    assert c.status == "mismatch" and "shape" in c.note


def test_same_size_other_shape_is_compared_and_noted():
    c = compare(np.zeros((2, 1)), np.zeros(2), "float64", 1e-7, 1e-7)
    assert c.status == "pass" and "shape" in c.note


def test_case_tolerance_overrides_per_dtype():
    assert tolerance_for("float16", {}) == DEFAULT_TOLERANCE["float16"]
    assert tolerance_for("float16", {"*": {"rtol": 0.5}}) == (0.5, 1e-5)
    assert tolerance_for("float16", {"*": {"rtol": 0.5}, "float16": {"atol": 2.0}}) == (0.5, 2.0)


@pytest.mark.parametrize(
    "dtype,nmant", [("float64", 52), ("float32", 23), ("float16", 10), ("bfloat16", 7)]
)
def test_ulp_at_one_and_quantize(dtype, nmant):
    assert ulp(np.array(1.0), dtype) == 2.0**-nmant
    assert ulp(np.array(1.5), dtype) == 2.0**-nmant
    # rounding 1 + ulp/4 to the dtype gives 1 back
    assert quantize(np.array([1.0 + 2.0**-nmant / 4]), dtype)[0] == 1.0


def test_ulp_of_zero_is_the_smallest_subnormal():
    assert ulp(np.array(0.0), "float64") == 5e-324
    assert ulp(np.array(0.0), "float16") == 2.0**-24
    assert math.isnan(ulp(np.array(np.inf), "float32"))


def test_saturate_maps_values_beyond_the_dtype_range_to_infinity():
    from xentcheck.dtypes import saturate

    x = np.array([-8e6, 65504.0, 70000.0, 1.0, np.nan])
    s = saturate(x, "float16")
    assert s[0] == -np.inf and s[1] == 65504.0 and s[2] == np.inf and s[3] == 1.0 and np.isnan(s[4])
    np.testing.assert_array_equal(saturate(x[:4], "float64"), x[:4])


def test_scalar_outputs_compare_like_arrays():
    """0-d values (a reduced loss) take the all-finite path too."""
    c = compare(np.float64(2.0), np.float64(2.0 + 2**-20), "float32", 1.3e-6, 1e-5)
    assert c.status == "pass" and c.max_abs_err == 2**-20 and c.index == []
    c = compare(np.array(2.0), np.array(2.5), "float32", 1.3e-6, 1e-5)
    assert c.status == "mismatch" and c.max_rel_err == 0.25


def test_the_default_tolerance_is_the_accuracy_modules_own():
    """One table: the harness reads the criterion's, it keeps no copy."""
    assert compare_module.DEFAULT_TOLERANCE is accuracy.DEFAULT_TOLERANCE


#: values that probe the criterion: near-equal, tolerance-sized and overflowing differences
#: (100 / 101.62 and 1000 / 1001.0005 agree in bfloat16 / float16 at rtol * |actual| but
#: not at rtol * |expected|), zeros, subnormals and every non-finite value
_VALUES = st.sampled_from(
    [0.0, -0.0, 1.0, 1.0 + 1e-7, 1.0 + 2e-7, 1.0 + 1e-3, 1.1, -1.0, 1e-5, 2e-5, 5e-324,
     100.0, 101.62, 1000.0, 1001.0005, 1e300, -1e300, 1.7e308, -1.7e308,
     np.inf, -np.inf, np.nan]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(_VALUES, _VALUES), max_size=40),
    dtype=st.sampled_from(sorted(DEFAULT_TOLERANCE)),
    other_shape=st.booleans(),
)
@example(pairs=[(100.0, 101.62)], dtype="bfloat16", other_shape=False)
@example(pairs=[(1000.0, 1001.0005), (np.inf, np.inf)], dtype="float16", other_shape=True)
@example(pairs=[(np.nan, np.nan), (-np.inf, -np.inf)], dtype="float32", other_shape=False)
@example(pairs=[(1.7e308, -1.7e308)], dtype="float64", other_shape=False)
def test_compare_passes_exactly_when_the_criterion_agrees(pairs, dtype, other_shape):
    """``compare``'s fast paths (a few elements, blocks of finite ones, the general path)
    and :func:`accuracy.agrees` are one criterion; same-size arrays of another shape are
    read in the golden's shape by both."""
    e = np.array([x for x, _ in pairs], dtype=np.float64)
    a = np.array([y for _, y in pairs], dtype=np.float64)
    if other_shape and e.size % 2 == 0 and e.size:
        e = e.reshape(2, -1)
    rtol, atol = DEFAULT_TOLERANCE[dtype]
    with np.errstate(all="ignore"):
        passed = compare(e, a, dtype, rtol, atol).status == "pass"
    assert accuracy.agrees(e, a, rtol, atol) == passed
    d = accuracy.disagreeing(e, a, rtol, atol)
    assert d.shape == e.shape and bool(d.any()) != passed


def test_arrays_of_other_sizes_do_not_agree():
    assert accuracy.disagreeing([1.0, 2.0], [1.0], 1e-7, 1e-7) is None
    assert not accuracy.agrees([1.0, 2.0], [1.0], 1e-7, 1e-7)
    assert compare(np.array([1.0, 2.0]), np.array([1.0]), "float64", 1e-7, 1e-7).status != "pass"
