"""Planted reference bugs are found: each check of the criterion can fail.

The registry's function of a loss is replaced (``dataclasses.replace`` of its
``LossSpec``) by one that calls the real one and then errs in one way; the test asserts
that :func:`reference_disagreements` names the quantity and the element, and that the
unpatched reference gives ``[]`` on the same instance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from xentcheck.exact import RELATIVE, reference_disagreements
from xentcheck.reference import LOSSES, evaluate

RNG = np.random.default_rng(20240613)
LOGITS = RNG.normal(size=(4, 3)) * 3
LABELS = np.array([0, 2, 1, 2])


def plant(monkeypatch, loss: str, wrap: Callable) -> None:
    """Make the registry's ``loss`` call ``wrap(fn, *args, **kwargs)`` instead of ``fn``."""
    spec = LOSSES[loss]
    fn = spec.fn

    def planted(*args, **kwargs):
        return wrap(fn, *args, **kwargs)

    monkeypatch.setitem(LOSSES, loss, dataclasses.replace(spec, fn=planted))


def names(found) -> set[tuple[str, tuple[int, ...]]]:
    return {(d.quantity, d.index) for d in found}


def test_a_value_off_by_a_relative_1e_9_is_found(monkeypatch):
    inputs = {"logits": LOGITS, "target": LABELS}
    assert reference_disagreements("softmax_cross_entropy", inputs) == []

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        return value * (1 + 1e-9), grads

    plant(monkeypatch, "softmax_cross_entropy", wrap)
    found = reference_disagreements("softmax_cross_entropy", inputs)
    assert names(found) == {("value", ())}
    assert 0.9e-9 < found[0].error < 1.1e-9


def test_an_error_just_above_the_criterion_is_found_and_one_below_is_not(monkeypatch):
    inputs = {"x": LOGITS}
    scale = {"factor": 1.0}

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        value = value.copy()
        value[1, 1] *= scale["factor"]
        return value, grads

    plant(monkeypatch, "sigmoid", wrap)
    scale["factor"] = 1 + 4 * float(RELATIVE)
    assert names(reference_disagreements("sigmoid", inputs)) == {("value", (1, 1))}
    scale["factor"] = 1 + float(RELATIVE) / 4
    assert reference_disagreements("sigmoid", inputs) == []


def test_one_gradient_element_of_the_wrong_sign_is_found(monkeypatch):
    inputs = {"x": LOGITS}
    assert reference_disagreements("log_softmax", inputs, {"axis": 0}) == []

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        g = grads["x"].copy()
        g[2, 1] = -g[2, 1]
        return value, {"x": g}

    plant(monkeypatch, "log_softmax", wrap)
    found = reference_disagreements("log_softmax", inputs, {"axis": 0})
    assert names(found) == {("grad:x", (2, 1))}


def test_a_mean_over_the_count_instead_of_the_weights_is_found(monkeypatch):
    inputs = {"logits": LOGITS, "target": LABELS, "weight": np.array([0.5, 2.0, 1.0])}
    assert reference_disagreements("softmax_cross_entropy", inputs) == []

    def wrap(fn, *a, reduction="mean", **k):
        value, grads = fn(*a, reduction="sum", **k)
        n = LABELS.size
        return value / n, {name: g / n for name, g in grads.items()}

    plant(monkeypatch, "softmax_cross_entropy", wrap)
    found = reference_disagreements("softmax_cross_entropy", inputs)
    assert ("value", ()) in names(found)
    assert {q for q, _ in names(found)} == {"value", "grad:logits"}


def test_dropped_label_smoothing_is_found(monkeypatch):
    inputs = {"logits": LOGITS, "target": LABELS}
    params = {"label_smoothing": 0.1, "reduction": "none"}
    assert reference_disagreements("softmax_cross_entropy", inputs, params) == []

    def wrap(fn, *a, label_smoothing=0.0, **k):
        return fn(*a, label_smoothing=0.0, **k)

    plant(monkeypatch, "softmax_cross_entropy", wrap)
    found = names(reference_disagreements("softmax_cross_entropy", inputs, params))
    assert {("value", (i,)) for i in range(4)} <= found
    assert ("grad:logits", (0, 1)) in found


def test_batchmean_taken_as_mean_is_found(monkeypatch):
    inputs = {"input": LOGITS - 5, "target": RNG.random((4, 3))}
    params = {"reduction": "batchmean"}
    assert reference_disagreements("kl_divergence", inputs, params) == []

    def wrap(fn, *a, reduction="mean", **k):
        return fn(*a, reduction="mean", **k)

    plant(monkeypatch, "kl_divergence", wrap)
    found = names(reference_disagreements("kl_divergence", inputs, params))
    assert ("value", ()) in found
    assert ("grad:input", (3, 2)) in found


def test_a_nan_or_a_finite_number_for_an_infinite_loss_is_found(monkeypatch):
    inputs = {"probs": np.array([0.0, 0.5]), "target": np.array([1.0, 0.5])}
    params = {"reduction": "none"}
    assert reference_disagreements("binary_cross_entropy", inputs, params) == []
    replacement = {"value": np.nan}

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        value = value.copy()
        value[0] = replacement["value"]  # the exact loss there is +inf
        return value, grads

    plant(monkeypatch, "binary_cross_entropy", wrap)
    for bad in (np.nan, 1e308, -np.inf):
        replacement["value"] = bad
        found = reference_disagreements("binary_cross_entropy", inputs, params)
        assert names(found) == {("value", (0,))}
        assert found[0].exact == "inf" and found[0].error == np.inf


def test_a_nan_where_the_exact_value_is_a_number_is_found(monkeypatch):
    inputs = {"logits": LOGITS, "target": LABELS}

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        return value, {"logits": np.where(grads["logits"] > 0.1, np.nan, grads["logits"])}

    plant(monkeypatch, "token_cross_entropy", wrap)
    found = reference_disagreements("token_cross_entropy", inputs)
    assert found and {d.quantity for d in found} == {"grad:logits"}
    assert all(np.isnan(d.reference) for d in found)


def test_a_gradient_off_by_a_relative_1e_9_in_a_large_instance_is_found(monkeypatch):
    """Beyond ``max_grad_elements`` the sample still holds the largest elements."""
    x = np.linspace(-6, 6, 3000).reshape(30, 100)
    g = evaluate("sigmoid", {"x": x}).grads["x"]
    big = np.unravel_index(np.argmax(np.abs(g)), x.shape)

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        g = grads["x"].copy()
        g[big] *= 1 + 1e-9
        return value, {"x": g}

    plant(monkeypatch, "sigmoid", wrap)
    found = reference_disagreements("sigmoid", {"x": x}, max_elements=64, max_grad_elements=16)
    assert names(found) == {("grad:x", tuple(int(i) for i in big))}


@pytest.mark.parametrize("loss", ["nll", "perplexity", "binary_cross_entropy_with_logits"])
def test_every_gradient_element_is_checked(monkeypatch, loss):
    """Perturbing each nonzero gradient element in turn, one at a time, is found there."""
    if loss == "nll":
        inputs = {"log_probs": LOGITS, "target": LABELS}
        name = "log_probs"
    elif loss == "perplexity":
        inputs = {"logits": LOGITS, "target": LABELS}
        name = "logits"
    else:
        inputs = {"logits": LOGITS, "target": RNG.random((4, 3))}
        name = "logits"
    where = {"k": (0, 0)}

    def wrap(fn, *a, **k):
        value, grads = fn(*a, **k)
        g = grads[name].copy()
        g[where["k"]] *= 1 + 1e-9
        return value, {**grads, name: g}

    plant(monkeypatch, loss, wrap)
    for k in zip(*np.nonzero(np.ones(LOGITS.shape)), strict=True):
        where["k"] = tuple(int(i) for i in k)
        found = names(reference_disagreements(loss, inputs))
        if loss == "nll" and LABELS[k[0]] != k[1]:
            assert found == set()  # a zero gradient times 1 + 1e-9 is still exact
        else:
            assert found == {(f"grad:{name}", where["k"])}
