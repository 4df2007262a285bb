"""The oracle on its own: its domain, its gradients, known values, the criterion, speed.

The gradients are checked against central differences of the oracle's own values (at
60 digits a step of ``2**-20`` leaves an error near ``1e-12``), so a wrong formula in
the oracle is found without the reference.
"""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import pytest

from xentcheck.exact import ABSOLUTE, RELATIVE, exact, reference_disagreements
from xentcheck.exact.compare import element_error, sample
from xentcheck.reference import LOSSES, cotangent, differentiable_inputs

RNG = np.random.default_rng(7)
Z = RNG.normal(size=(3, 4)) * 2
T = np.array([1, 3, 0])
P = RNG.uniform(0.1, 0.9, size=(3, 4))
Y = RNG.uniform(0.0, 1.0, size=(3, 4))

#: smooth instances of every loss (inputs away from the edges), one per loss and more
SMOOTH: list[tuple[str, dict, dict]] = [
    ("softmax_cross_entropy", {"logits": Z, "target": T, "weight": P[0]}, {}),
    ("softmax_cross_entropy", {"logits": Z, "target": P}, {"label_smoothing": 0.2}),
    (
        "softmax_cross_entropy",
        {"logits": Z.reshape(3, 2, 2), "target": np.array([[0, 1], [1, 1], [0, 0]])},
        {"label_smoothing": 0.3, "reduction": "none"},
    ),
    ("categorical_cross_entropy", {"probs": P, "target": Y}, {"reduction": "none"}),
    ("categorical_cross_entropy", {"probs": P, "target": T}, {"reduction": "sum"}),
    ("nll", {"log_probs": Z, "target": T, "weight": Y[0]}, {"ignore_index": 3}),
    ("binary_cross_entropy", {"probs": P, "target": Y, "weight": Y[1]}, {}),
    (
        "binary_cross_entropy_with_logits",
        {"logits": Z, "target": Y, "weight": P[1], "pos_weight": 1 + Y[2]},
        {"reduction": "none"},
    ),
    ("smoothed_binary_cross_entropy", {"logits": Z, "target": Y}, {"label_smoothing": 0.1}),
    ("kl_divergence", {"input": Z, "target": P}, {"reduction": "batchmean"}),
    ("kl_divergence", {"input": Z, "target": Z / 3}, {"log_target": True, "reduction": "none"}),
    ("sigmoid_focal_loss", {"logits": Z, "target": Y}, {"gamma": 1.5, "reduction": "none"}),
    ("sigmoid_focal_loss", {"logits": Z, "target": Y}, {"alpha": None, "gamma": 0.5}),
    ("token_cross_entropy", {"logits": Z, "target": T, "mask": np.array([1, 0, 1])}, {}),
    ("perplexity", {"logits": Z.reshape(1, 3, 4), "target": T.reshape(1, 3)}, {}),
    ("softmax", {"x": Z}, {"axis": 0}),
    ("log_softmax", {"x": Z}, {}),
    ("logsumexp", {"x": Z}, {"axis": 0}),
    ("sigmoid", {"x": Z}, {}),
    ("log_sigmoid", {"x": Z}, {}),
]


def _weighted_value(loss, inputs, params) -> mpmath.mpf:
    """``sum_j cotangent_j value_j``: what the gradient differentiates."""
    e = exact(loss, inputs, params)
    cot = cotangent(e.shape).ravel()
    return mpmath.fsum(mpmath.mpf(float(c)) * v for c, v in zip(cot, e.value, strict=True))


def test_every_loss_has_a_smooth_instance_here():
    assert {loss for loss, _, _ in SMOOTH} == set(LOSSES)


@pytest.fixture(autouse=True)
def sixty_digits():
    """Arithmetic on the oracle's numbers in the tests at its own precision."""
    with mpmath.workdps(60):
        yield


@pytest.mark.parametrize(("loss", "inputs", "params"), SMOOTH)
def test_the_gradients_are_the_derivatives_of_the_value(loss, inputs, params):
    e = exact(loss, inputs, params)
    assert set(e.grads) == set(differentiable_inputs(loss, inputs))
    for name, grad in e.grads.items():
        base = np.asarray(inputs[name], dtype=np.float64)
        for k in range(base.size):
            h = 2.0**-20 * max(1.0, abs(base.flat[k]))
            up, down = base.copy(), base.copy()
            up.flat[k] += h
            down.flat[k] -= h
            diff = _weighted_value(loss, {**inputs, name: up}, params) - _weighted_value(
                loss, {**inputs, name: down}, params
            )
            numeric = diff / (mpmath.mpf(up.flat[k]) - mpmath.mpf(down.flat[k]))
            assert abs(numeric - grad[k]) <= 1e-10 * (1 + abs(grad[k])), (name, k)


@pytest.mark.parametrize(
    ("loss", "inputs", "params", "value"),
    [
        ("softmax_cross_entropy", {"logits": np.zeros(2), "target": np.array(0)}, {}, "log2"),
        ("logsumexp", {"x": np.zeros((1, 2))}, {}, "log2"),
        ("log_sigmoid", {"x": np.zeros(())}, {}, "-log2"),
        ("perplexity", {"logits": np.zeros((1, 4)), "target": np.array([2])}, {}, "4"),
        ("softmax", {"x": np.array([np.inf, 0.0])}, {}, "1 0"),
        ("logsumexp", {"x": np.array([np.inf, np.inf])}, {}, "inf"),
        ("logsumexp", {"x": np.zeros((3, 0))}, {}, "-inf -inf -inf"),
        (
            "token_cross_entropy",
            {"logits": np.zeros((2, 3)), "target": np.array([0, 1])},
            {"ignore_index": 0},
            "log3",
        ),
        (
            "token_cross_entropy",
            {"logits": np.zeros((2, 3)), "target": np.array([0, 0])},
            {"ignore_index": 0},
            "nan",
        ),
        ("binary_cross_entropy", {"probs": np.array(0.0), "target": np.array(0.0)}, {}, "0"),
        ("binary_cross_entropy", {"probs": np.array(0.0), "target": np.array(0.5)}, {}, "inf"),
        ("kl_divergence", {"input": np.array(-np.inf), "target": np.array(0.0)}, {}, "0"),
        ("sigmoid_focal_loss", {"logits": np.array(np.inf), "target": np.array(1.0)}, {}, "0"),
    ],
)
def test_known_values(loss, inputs, params, value):
    expected = {
        "log2": [mpmath.log(2)],
        "-log2": [-mpmath.log(2)],
        "log3": [mpmath.log(3)],
        "4": [mpmath.mpf(4)],
        "1 0": [1, 0],
        "0": [0],
    }.get(value)
    got = exact(loss, inputs, params).value
    if expected is None:
        assert [str(v) for v in got] == [str(float(w)) for w in value.split()]
    else:
        assert all(abs(g - w) < mpmath.mpf(10) ** -55 for g, w in zip(got, expected, strict=True))


@pytest.mark.parametrize(
    ("loss", "inputs"),
    [
        ("softmax_cross_entropy", {"logits": Z, "target": np.array([0, 4, 1])}),
        ("softmax_cross_entropy", {"logits": Z, "target": np.array([0, -1, 1])}),
        ("nll", {"log_probs": Z, "target": np.array([0, 1, 4])}),
        ("categorical_cross_entropy", {"probs": P, "target": np.array([5, 0, 0])}),
        ("token_cross_entropy", {"logits": Z, "target": np.array([0, 1, 4])}),
        ("perplexity", {"logits": Z, "target": np.array([-1, 1, 2])}),
    ],
)
def test_an_out_of_range_label_is_a_value_error(loss, inputs):
    with pytest.raises(ValueError, match="label"):
        exact(loss, inputs)
    assert reference_disagreements(loss, inputs) == []  # the reference rejects it too


def test_an_ignored_or_masked_out_label_may_lie_out_of_range():
    inputs = {"logits": Z, "target": np.array([-100, 1, 2])}
    assert exact("softmax_cross_entropy", inputs, {"ignore_index": -100}).value
    masked = {"logits": Z, "target": np.array([9, 1, 2]), "mask": np.array([0, 1, 1])}
    assert exact("token_cross_entropy", masked).value


@pytest.mark.parametrize(
    ("loss", "inputs", "params"),
    [
        ("binary_cross_entropy", {"probs": np.array([1.5]), "target": np.array([1.0])}, {}),
        ("softmax_cross_entropy", {"logits": Z, "target": np.zeros((3, 3))}, {}),
        ("kl_divergence", {"input": Z, "target": -P}, {}),
        ("sigmoid_focal_loss", {"logits": Z, "target": Y}, {"gamma": -1.0}),
        ("softmax", {"x": Z}, {"axis": 2}),
        ("sigmoid", {"x": Z}, {"reduction": "sum"}),
        ("no_such_loss", {"x": Z}, {}),
    ],
)
def test_inputs_outside_the_domain_are_value_errors(loss, inputs, params):
    with pytest.raises(ValueError):
        exact(loss, inputs, params)


def test_a_rejection_by_the_oracle_alone_is_a_disagreement(monkeypatch):
    """Where the oracle rejects an input the reference accepts, the value disagrees."""
    from xentcheck.exact import ORACLES

    def reject(**_):
        raise ValueError("label 7 outside [0, 3)")

    monkeypatch.setitem(ORACLES, "sigmoid", reject)
    found = reference_disagreements("sigmoid", {"x": Z})
    assert [(d.quantity, d.exact) for d in found] == [
        ("value", "undefined (label 7 outside [0, 3))")
    ]


def test_the_criterion_element_by_element():
    x = mpmath.mpf(1.5)
    tol = float(RELATIVE) * 1.5
    assert element_error(1.5 + tol / 2, x) is None
    assert element_error(1.5 + 2 * tol, x) == pytest.approx(2 * tol / 1.5)
    assert element_error(1.5 + 2 * tol, x, scale=mpmath.mpf(4)) is None  # a cancelling sum
    assert element_error(5e-324, mpmath.mpf(0)) is None  # the absolute floor
    assert element_error(1e-300, mpmath.mpf(0)) == math.inf
    assert element_error(float(ABSOLUTE) * 4, mpmath.mpf(0)) == math.inf
    assert element_error(np.nan, x) == math.inf
    assert element_error(np.inf, x) == math.inf
    assert element_error(np.inf, mpmath.mpf(2) ** 1024) is None  # rounds to inf
    assert element_error(-np.inf, mpmath.mpf(2) ** 1024) == math.inf
    assert element_error(1.0, float("inf")) == math.inf
    assert element_error(np.inf, float("inf")) is None
    assert element_error(-np.inf, float("inf")) == math.inf
    assert element_error(np.nan, float("inf")) == math.inf
    assert element_error(3.0, float("nan")) is None  # undefined: not checked
    assert element_error(3.0, None) is None


def test_the_sample_is_deterministic_and_holds_the_largest():
    ref = np.arange(1000.0)
    ref[17] = np.nan
    ex = [mpmath.mpf(v) for v in range(1000)]
    ex[500] = mpmath.mpf(10) ** 400
    picked = sample(ref, ex, 40)
    assert np.array_equal(picked, sample(ref, ex, 40))
    assert {17, 999, 998, 500} <= set(picked.tolist()) and len(picked) <= 60
    assert np.array_equal(sample(ref[:30], ex[:30], 40), np.arange(30))


@pytest.mark.parametrize(
    ("loss", "inputs", "limit"),
    [
        ("softmax_cross_entropy", {"logits": RNG.normal(size=(8, 8)), "target": np.arange(8)}, 1),
        ("sigmoid_focal_loss", {"logits": Z[:2, :], "target": Y[:2, :]}, 1),
        ("log_softmax", {"x": RNG.normal(size=(64, 64))}, 10),
        (
            "binary_cross_entropy_with_logits",
            {"logits": RNG.normal(size=(64, 64)), "target": RNG.random((64, 64))},
            10,
        ),
    ],
)
def test_instances_take_well_under_a_second_per_64_elements(loss, inputs, limit):
    start = time.perf_counter()
    assert reference_disagreements(loss, inputs) == []
    assert time.perf_counter() - start < limit
