"""The ULP criterion's allowance, unit by unit (xentcheck.accuracy)."""

from __future__ import annotations

import numpy as np

from xentcheck import accuracy
from xentcheck.dtypes import quantize, ulp
from xentcheck.harness.compare import compare


def test_the_rounding_bound_is_r_ulps_plus_log2_of_the_terms():
    e = np.array([1.0, 3.0, 1e-40])
    a = accuracy.rounding_allowance(e, "float32", terms=1)
    assert np.array_equal(a, accuracy.ROUNDING_ULP * ulp(e, "float32"))
    a16 = accuracy.rounding_allowance(e, "float32", terms=2**16)
    assert np.allclose(a16, (accuracy.ROUNDING_ULP + 16) * ulp(e, "float32"))


def test_the_sensitivity_adds_k_times_d():
    e, d = np.array([1.0, 2.0]), np.array([0.0, 1e-3])
    got = accuracy.allowance(e, "float32", d)
    assert got[1] - accuracy.rounding_allowance(e, "float32")[1] == accuracy.BACKWARD_FACTOR * 1e-3


def test_a_correctly_rounded_result_passes_and_r_plus_one_ulp_does_not():
    e = np.array([0.1, 1.0 / 3.0, 7.7e-39, 2.0**-140])  # normal, normal, subnormal, subnormal
    a = accuracy.rounding_allowance(e, "float32")
    assert compare(e, quantize(e, "float32"), "float32", 0, 0, allowance=a).status == "pass"
    off = e + (accuracy.ROUNDING_ULP + 1) * ulp(e, "float32")
    c = compare(e, off, "float32", 0, 0, allowance=a)
    assert c.status == "mismatch" and 1 < c.excess < 1.2
    assert c.allowed_ulp == accuracy.ROUNDING_ULP


def test_a_zero_golden_allows_r_smallest_subnormals():
    a = accuracy.rounding_allowance(np.array([0.0]), "float16")
    assert a[0] == accuracy.ROUNDING_ULP * 2.0**-24


def test_the_lower_precision_allowance_has_no_underflow_excuse():
    tiny = np.array([4e-18])
    low = accuracy.lower_allowance(tiny, "float32", 11, None)
    assert low[0] < tiny[0]  # returning 0 for 4e-18 is not "float16 precision"
    one = accuracy.lower_allowance(np.array([1.0]), "float64", 24, None)
    assert one[0] == accuracy.ROUNDING_ULP * 2.0**-23


def test_digits_lost_is_log10_of_the_excess():
    assert accuracy.digits_lost(1000.0) == 3.0
    assert accuracy.digits_lost(0.5) == 0.0 and accuracy.digits_lost(None) is None


def test_the_reduction_terms_count_a_reduced_value_and_the_class_axis():
    assert accuracy.reduction_terms([4 * 10, 4], 10, 1) == 40  # a mean over [4, 10]
    assert accuracy.reduction_terms([4 * 10], 10, 40) == 10  # softmax over the class axis
    assert accuracy.reduction_terms([], 1, 1) == 1
