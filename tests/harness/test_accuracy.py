"""The ULP criterion's allowance, unit by unit (xentcheck.accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

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


def _instance(case_text: str, tmp_path):
    from xentcheck.harness.cases import expand, load_cases

    (tmp_path / "c.yaml").write_text(case_text)
    (case,) = load_cases([str(tmp_path / "c.yaml")])
    return next(iter(expand(case)))


ROW_OF_EQUAL_HUGE_LOGITS = """
cases:
  - id: equal
    loss: softmax_cross_entropy
    inputs: {logits: [[1.0e+30, 1.0e+30, 1.0e+30], [0.0, -20.0, 3.0]], target: [1, 0]}
    params: {reduction: none}
"""


def test_shift_invariant_rows_move_relative_to_their_maximum(tmp_path):
    """Equal logits of 1e30 have loss log 3 exactly; no rounding of a correct kernel moves
    it, so D is 0 there (optax's unshifted normalizer returns 0 and must not pass); the
    ordinary row's D is nonzero."""
    from xentcheck.harness.sensitivity import sensitivity
    from xentcheck.reference import evaluate

    inst = _instance(ROW_OF_EQUAL_HUGE_LOGITS, tmp_path)
    inputs = {k: np.asarray(v) for k, v in inst.inputs().items()}
    golden = evaluate(inst.loss, inputs, inst.params)
    d = sensitivity(inst, inputs, "float32", golden)
    assert d["value"][0] == 0.0 and d["value"][1] > 0.0
    # its gradient moves only with the cotangent's rounding: u of itself
    g0 = np.abs(golden.grads["logits"][0])
    assert np.all(d["grad:logits"][0] <= 2 * accuracy.unit_roundoff("float32") * g0)


def test_d_is_stored_in_the_golden_cache_and_reused(tmp_path, monkeypatch):
    from xentcheck.harness import sensitivity as s
    from xentcheck.harness.goldens import GoldenCache
    from xentcheck.reference import evaluate

    inst = _instance(ROW_OF_EQUAL_HUGE_LOGITS, tmp_path)
    inputs = {k: np.asarray(v) for k, v in inst.inputs().items()}
    golden = evaluate(inst.loss, inputs, inst.params)
    cache = GoldenCache(tmp_path / "goldens")
    first = s.sensitivity(inst, inputs, "float32", golden, cache)
    assert len(list((tmp_path / "goldens").rglob("*.npz"))) == 1  # D alone, no perturbed goldens

    def computed_again(*args):
        raise AssertionError("D was computed again instead of read from the cache")

    monkeypatch.setattr(s, "_sensitivity", computed_again)
    again = s.sensitivity(inst, inputs, "float32", golden, cache)
    assert again.keys() == first.keys()
    assert all(np.array_equal(again[q], first[q]) for q in first)
    with pytest.raises(AssertionError, match="computed again"):
        s.sensitivity(inst, inputs, "float16", golden, cache)  # another dtype, another D


def test_a_flushed_subnormal_is_precision_and_a_flushed_normal_is_not():
    """FTZ (XLA's CPU default) turns float32 results below 2**-126 into 0: digits lost,
    within the lower precision's allowance; a normal 4e-18 returned as 0 is not."""
    e = np.array([3.7e-44, 1.0e-39, 4e-18])
    low = accuracy.lower_allowance(e, "float32", accuracy.LOWER_PRECISION["float32"][1], None)
    flushed = compare(e, np.zeros(3), "float32", 0, 0, allowance=low)
    assert flushed.status == "mismatch" and flushed.index == [2]  # only the normal one fails
    assert compare(e[:2], np.zeros(2), "float32", 0, 0, allowance=low[:2]).status == "pass"
    strict = accuracy.rounding_allowance(e[:2], "float32")
    assert compare(e[:2], np.zeros(2), "float32", 0, 0, allowance=strict).status == "mismatch"


def test_float64_sensitivity_is_measured_not_lost_below_float64_resolution(tmp_path):
    """At float64 a relative step of u = 2**-53 rounds away (1 + 2**-53 == 1): D must be
    measured at a coarser step and scaled, or every float64 D would be 0. Here the BCE
    target gradient (log(1 - p) - log p) / 6 is 0 at p = 0.5, and a kernel that takes the two
    logs differently is off by about u: D sees it."""
    from xentcheck.harness.sensitivity import sensitivity
    from xentcheck.reference import evaluate

    inst = _instance(HALF_PROBABILITIES, tmp_path)
    inputs = {k: np.asarray(v, dtype=np.float64) for k, v in inst.inputs().items()}
    golden = evaluate(inst.loss, inputs, inst.params)
    d = sensitivity(inst, inputs, "float64", golden)
    u = accuracy.unit_roundoff("float64")
    assert d["value"] > 0.1 * u
    assert np.all(d["grad:target"] > 0.01 * u) and np.all(d["grad:target"] < 100 * u)


HALF_PROBABILITIES = """
cases:
  - id: half
    loss: binary_cross_entropy
    inputs: {probs: [[0.5, 0.5, 0.5], [0.5, 0.25, 0.5]], target: [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]}
    params: {reduction: mean}
"""
