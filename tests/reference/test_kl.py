"""``kl_divergence`` of the reference against mpmath at 60 digits.

Values and gradients on hypothesis-drawn inputs, probability and log-probability
targets, every reduction (``batchmean`` included), with some inputs set to the rounded
``log`` of the target so that the divergence nearly cancels: within 4 ULP of the exact
value, or of the larger term where the exact quantity is a difference of terms of
opposite signs. Plus exact edges (``p = 0``, infinite inputs, over- and underflow of
``exp(t)``) and errors.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference import strategies_binary as sb
from tests.reference.oracle import mpf
from xentcheck.reference import cotangent, evaluate, kl
from xentcheck.reference.arguments import KL_REDUCTIONS

mp = mpmath
EXAMPLES = 300


def larger_term(*terms):
    """Largest |term| where nonzero terms of both signs meet (the sum cancels), else 0."""
    if any(t > 0 for t in terms) and any(t < 0 for t in terms):
        return max(abs(t) for t in terms)
    return mp.mpf(0)


def kl_exact(q, t, log_target):
    """Exact pointwise value, d/dinput, d/dtarget, and the larger terms of value and d/dtarget."""
    Q, T = mpf(q), mpf(t)
    if log_target:
        P = mp.exp(T)
        terms, gterms = (P * T, -P * Q), (P * T, P, -P * Q)
        return mp.fsum(terms), -P, mp.fsum(gterms), larger_term(*terms), larger_term(*gterms)
    if t == 0:
        return mp.mpf(0), mp.mpf(0), -math.inf, mp.mpf(0), mp.mpf(0)
    terms, gterms = (T * mp.log(T), -T * Q), (mp.log(T), mp.mpf(1), -Q)
    return mp.fsum(terms), -T, mp.fsum(gterms), larger_term(*terms), larger_term(*gterms)


@st.composite
def kl_cases(draw):
    shape = draw(sb.shapes)
    log_target = draw(st.booleans())
    q = sb.array(draw, shape, sb.log_probabilities())
    t = sb.array(draw, shape, sb.log_targets() if log_target else sb.kl_targets())
    # Some inputs equal the rounded log of the target: the divergence nearly cancels.
    near = draw(sb.hnp.arrays(bool, shape))
    with np.errstate(divide="ignore"):
        log_p = t if log_target else np.log(t)
    q = np.where(near & np.isfinite(log_p), log_p, q)
    return q, t, log_target, draw(st.sampled_from(KL_REDUCTIONS))


def run_kl(q, t, log_target, reduction) -> dict[str, float]:
    value, grads = kl.kl_divergence(q, t, log_target=log_target, reduction=reduction)
    ex = [kl_exact(qi, ti, log_target) for qi, ti in zip(q.ravel(), t.ravel(), strict=True)]
    cols = list(zip(*ex, strict=True))
    kind, denominator = reduction, None
    if reduction == "batchmean":
        kind, denominator = "mean", (q.shape[0] if q.ndim else 1)
    return {
        "value": sb.check_value(
            value, list(cols[0]), kind, list(cols[3]), denominator, what="value"
        ),
        "grad_input": sb.check_grad(
            grads["input"], list(cols[1]), q.shape, kind, None, denominator, what="d/dinput"
        ),
        "grad_target": sb.check_grad(
            grads["target"],
            list(cols[2]),
            q.shape,
            kind,
            list(cols[4]),
            denominator,
            what="d/dtarget",
        ),
    }


@settings(max_examples=EXAMPLES, deadline=None)
@given(kl_cases())
def test_kl_matches_mpmath(case):
    run_kl(*case)


@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
def test_kl_extremes(reduction):
    q = np.array([[-1e-300, -745.0, -1e30, 0.0], [3.0, -50.0, -0.6931471805599453, -36.7]])
    p = np.array([[1e-300, 1.0 - 2.0**-53, 0.5, 5e-324], [2.5, 1e-20, 0.5, 1.0]])
    run_kl(q, p, False, reduction)
    t = np.array([[-700.0, -745.0, 700.0, -1e-300], [0.0, -36.7, -0.6931471805599453, 5.0]])
    run_kl(q, t, True, reduction)


def test_kl_log_target_exp_over_and_underflow():
    # exp(710) overflows but exp(710) * 0.1 does not; exp(-800) underflows, exp(-800) * 1e300 does not.
    q = np.array([709.9, -1e300, -1e30])
    t = np.array([710.0, -800.0, -760.0])
    value, grads = kl.kl_divergence(q, t, log_target=True, reduction="none")
    assert np.all(np.isfinite(value)) and value[0] > 1e307 and value[1] > 0 and value[2] > 0
    run_kl(q, t, True, "none")
    assert grads["input"][0] == -np.inf  # -exp(710) overflows: the exact value is beyond float64


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_kl_sums_of_subnormal_terms_are_rounded_once(reduction):
    run_kl(np.full((4, 4), -3.0), np.full((4, 4), 5e-324), False, reduction)
    run_kl(np.full((4, 4), -3.0), np.full((4, 4), -745.0), True, reduction)
    # a tiny sum whose terms have a huge factor (t - input = 1e30): scaling must not overflow
    run_kl(np.array([-1e30]), np.array([-745.0]), True, reduction)


def test_kl_zero_probability_convention():
    q = np.array([-2.0, -np.inf, np.inf, -np.inf, 0.0])
    p = np.array([0.0, 0.0, 0.0, 0.5, 0.5])
    value, grads = kl.kl_divergence(q, p, reduction="none")
    np.testing.assert_array_equal(value[:4], [0.0, 0.0, 0.0, np.inf])
    ct = cotangent((5,))
    np.testing.assert_array_equal(grads["input"], -p * ct)
    np.testing.assert_array_equal(grads["target"][:4], [-np.inf, np.nan, -np.inf, np.inf])
    # log_target: t = -inf is p = 0
    t = np.array([-np.inf, -np.inf, -np.inf, np.log(0.5)])
    value, grads = kl.kl_divergence(q[:4], t, log_target=True, reduction="none")
    np.testing.assert_array_equal(value, [0.0, 0.0, 0.0, np.inf])
    np.testing.assert_array_equal(grads["input"][:3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads["target"], [0.0, np.nan, np.nan, np.inf])


def test_kl_nan_propagates():
    value, grads = kl.kl_divergence(
        np.array([np.nan, -1.0]), np.array([0.0, 0.5]), reduction="none"
    )
    assert math.isnan(value[0]) and math.isnan(grads["input"][0]) and math.isnan(grads["target"][0])
    assert not math.isnan(value[1])


def test_kl_identical_distributions_give_exactly_zero_with_log_target():
    t = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    value, grads = kl.kl_divergence(t, t, log_target=True, reduction="batchmean")
    assert float(value) == 0.0
    # d/dt = exp(t) (t - input + 1) / N = exp(t) / 2
    assert sb.worst_ulp(grads["target"], [mp.exp(mpf(v)) / 2 for v in t.ravel()]) <= 0.5


def test_kl_batchmean_divides_by_the_batch_size():
    q = np.log(np.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]]))
    p = np.array([[0.5, 0.5], [0.3, 0.7], [0.2, 0.8]])
    total, _ = kl.kl_divergence(q, p, reduction="sum")
    per_sample, _ = kl.kl_divergence(q, p, reduction="batchmean")
    mean, _ = kl.kl_divergence(q, p, reduction="mean")
    assert sb.worst_ulp(per_sample, [mpf(total) / 3]) <= 0.5
    assert sb.worst_ulp(mean, [mpf(total) / 6]) <= 0.5
    run_kl(q, p, False, "batchmean")
    # 0-d input: batchmean divides by 1 (PyTorch); an empty batch gives NaN
    v0, _ = kl.kl_divergence(np.float64(-1.0), np.float64(0.5), reduction="batchmean")
    v1, _ = kl.kl_divergence(np.float64(-1.0), np.float64(0.5), reduction="sum")
    assert v0.shape == () and float(v0) == float(v1)
    empty, _ = kl.kl_divergence(np.zeros((0, 3)), np.zeros((0, 3)), reduction="batchmean")
    assert math.isnan(float(empty))


def test_kl_through_the_registry():
    golden = evaluate(
        "kl_divergence",
        {"input": [[-1.2, -0.4]], "target": [[0.3, 0.7]]},
        {"reduction": "batchmean"},
    )
    exact = sum(mpf(p) * (mp.log(mpf(p)) - mpf(q)) for p, q in [(0.3, -1.2), (0.7, -0.4)])
    assert sb.worst_ulp(golden.value, [exact]) <= 0.5
    assert set(golden.grads) == {"input", "target"}
    assert golden.grads["input"].shape == (1, 2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: kl.kl_divergence(np.zeros(3), np.array([0.5, -0.1, 0.6])), ">= 0"),
        (lambda: kl.kl_divergence(np.zeros(3), np.full(2, 0.5)), "shape"),
        (lambda: kl.kl_divergence(np.zeros((2, 3)), np.full(3, 0.5)), "shape"),
        (lambda: kl.kl_divergence(np.zeros(3), np.full(3, 0.5), reduction="avg"), "reduction"),
    ],
)
def test_kl_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_kl_negative_log_targets_are_fine():
    value, _ = kl.kl_divergence(
        np.array([-1.0]), np.array([-3.0]), log_target=True, reduction="sum"
    )
    assert sb.worst_ulp(value, [mp.exp(-3) * (-3 + 1)]) <= 0.5
