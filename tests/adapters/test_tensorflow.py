"""The TensorFlow/Keras adapter against the float64 reference, on the real framework.

Every Api object runs on small instances of its loss; where TensorFlow's semantics agree
with the reference's, values and gradients match to ~1e-10 in float64 (Keras ``Loss``
objects compute in float32, so those are held to float32 accuracy). Documented
differences are reproduced and matched by their entries in ``xentcheck.known.tensorflow``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from tests.adapters.calls import make_call
from xentcheck.adapters import Call, Unsupported, load_framework
from xentcheck.known import Finding, explain
from xentcheck.reference import LOSSES, evaluate

pytestmark = pytest.mark.tensorflow

FW = load_framework("tensorflow")
API = {a.name: a for a in FW.apis}


RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(3, 4)) * 2.0
LABELS = np.array([1, 3, 0])
SOFT = RNG.dirichlet(np.ones(4), size=3)
PROBS = RNG.dirichlet(np.ones(4) * 3.0, size=3)  # rows sum to 1, entries far from 0 and 1
LOGITS_K = RNG.normal(size=(2, 3, 2))
LABELS_K = np.array([[0, 2], [1, 1]])
BIN_P = RNG.uniform(0.05, 0.95, size=(3, 4))
BIN_T = RNG.uniform(0.0, 1.0, size=(3, 4))
BIN_X = RNG.normal(size=(3, 4)) * 2.0
TOKENS = RNG.normal(size=(2, 3, 5))
TOKEN_T = np.array([[1, 4, 0], [2, 2, 3]])
REDUCTIONS = ("none", "sum", "mean")

#: loss -> list of (inputs, params), the small instances every API of the loss runs on
INSTANCES: dict[str, list[tuple[dict, dict]]] = {
    "softmax_cross_entropy": [
        *[({"logits": LOGITS, "target": LABELS}, {"reduction": r}) for r in REDUCTIONS],
        *[({"logits": LOGITS, "target": SOFT}, {"reduction": r}) for r in REDUCTIONS],
        ({"logits": LOGITS, "target": LABELS}, {"label_smoothing": 0.1}),
        ({"logits": LOGITS, "target": SOFT}, {"label_smoothing": 0.2, "reduction": "sum"}),
        ({"logits": LOGITS_K, "target": LABELS_K}, {"reduction": "none"}),
        (
            {"logits": LOGITS, "target": np.array([1, -100, 0]), "weight": [0.5, 1.0, 2.0, 3.0]},
            {"ignore_index": -100, "reduction": "none"},
        ),
        (
            {"logits": LOGITS, "target": np.array([1, -100, 0]), "weight": [0.5, 1.0, 2.0, 3.0]},
            {"ignore_index": -100, "reduction": "sum"},
        ),
        (
            {"logits": LOGITS, "target": np.array([1, -100, 0]), "weight": [0.5, 1.0, 2.0, 3.0]},
            {"ignore_index": -100, "reduction": "mean"},
        ),
        ({"logits": LOGITS, "target": np.array([1, 2, 2])}, {"ignore_index": 2}),
    ],
    "categorical_cross_entropy": [
        *[({"probs": PROBS, "target": LABELS}, {"reduction": r}) for r in REDUCTIONS],
        *[({"probs": PROBS, "target": SOFT}, {"reduction": r}) for r in REDUCTIONS],
    ],
    "nll": [({"log_probs": np.log(PROBS), "target": LABELS}, {})],
    "binary_cross_entropy": [
        *[({"probs": BIN_P, "target": BIN_T}, {"reduction": r}) for r in REDUCTIONS],
    ],
    "binary_cross_entropy_with_logits": [
        *[({"logits": BIN_X, "target": BIN_T}, {"reduction": r}) for r in REDUCTIONS],
        ({"logits": BIN_X, "target": BIN_T, "weight": [1.0, 0.5, 2.0, 0.0]}, {"reduction": "sum"}),
        ({"logits": BIN_X, "target": BIN_T, "pos_weight": [3.0, 1.0, 0.5, 2.0]}, {}),
        (
            {"logits": BIN_X, "target": BIN_T, "pos_weight": [3.0, 1.0, 0.5, 2.0], "weight": [2.0]},
            {"reduction": "none"},
        ),
    ],
    "sigmoid_focal_loss": [
        *[({"logits": BIN_X, "target": BIN_T}, {"reduction": r}) for r in REDUCTIONS],
        ({"logits": BIN_X, "target": BIN_T}, {"alpha": 0.6, "gamma": 1.5}),
        ({"logits": BIN_X, "target": BIN_T}, {"alpha": -1.0, "gamma": 0.0}),
    ],
    "kl_divergence": [
        ({"input": np.log(PROBS), "target": SOFT}, {"reduction": "batchmean"}),
        ({"input": np.log(PROBS), "target": SOFT}, {"reduction": "sum"}),
        (
            {"input": np.log(PROBS), "target": np.log(SOFT)},
            {"reduction": "sum", "log_target": True},
        ),
        ({"input": np.log(PROBS), "target": SOFT}, {"reduction": "mean"}),
        ({"input": np.log(PROBS), "target": SOFT}, {"reduction": "none"}),
    ],
    "token_cross_entropy": [
        ({"logits": TOKENS, "target": TOKEN_T}, {}),
        ({"logits": TOKENS, "target": np.array([[1, -1, 0], [2, 2, -1]])}, {"ignore_index": -1}),
        ({"logits": TOKENS, "target": TOKEN_T, "mask": [[1, 1, 0], [1, 0, 0]]}, {}),
    ],
    "perplexity": [
        ({"logits": TOKENS, "target": TOKEN_T}, {}),
        ({"logits": TOKENS, "target": np.array([[1, -1, 0], [2, 2, -1]])}, {"ignore_index": -1}),
    ],
    "smoothed_binary_cross_entropy": [
        ({"logits": BIN_X, "target": BIN_T}, {"label_smoothing": ls, "reduction": r})
        for ls in (0.0, 0.2)
        for r in REDUCTIONS
    ],
    "softmax": [({"x": LOGITS}, {}), ({"x": LOGITS_K}, {"axis": 1})],
    "log_softmax": [({"x": LOGITS}, {}), ({"x": LOGITS_K}, {"axis": 1})],
    "logsumexp": [({"x": LOGITS}, {}), ({"x": LOGITS_K}, {"axis": 1})],
    "sigmoid": [({"x": BIN_X * 10}, {})],
    "log_sigmoid": [({"x": BIN_X * 10}, {})],
}

KERAS_BINARY_MEAN_AXIS = ("keras.losses.binary", "keras.losses.Binary")


def semantics_agree(api: str, call: Call) -> str:
    """What agrees with the reference: ``all``, ``value`` or ``none`` (where TensorFlow
    documents a different definition; those are checked further below)."""
    reduction = call.params.get("reduction")
    if api.startswith(KERAS_BINARY_MEAN_AXIS) and reduction != "mean":
        return "none"  # Keras averages over the last axis before reducing
    if call.loss == "kl_divergence" and reduction in ("none", "mean"):
        return "none"  # Keras sums over the last (class) axis
    if "+sample_weight=weight[target]" in api and reduction == "mean":
        return "none"  # Keras's mean divides by the element count, not the weight sum
    if "mask" in call.inputs and api.startswith("keras"):
        return "none"  # the same, with sample_weight=mask
    if call.loss == "categorical_cross_entropy":
        return "value"  # Keras renormalises probs (rows summing to 1 keep the value only)
    return "all"


def check_close(actual, expected, out_dtype: str, what: str) -> None:
    rtol, atol = (1e-10, 1e-12) if out_dtype == "float64" else (5e-6, 1e-7)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def test_every_api_runs_and_matches_the_reference_in_float64():
    covered: dict[str, int] = {}
    for api in FW.apis:
        for inputs, params in INSTANCES[api.loss]:
            call, golden = make_call(api.loss, inputs, params)
            if not api.applies(call):
                continue
            if api.loss == "nll":
                with pytest.raises(Unsupported):
                    api.run(call)
                covered[api.name] = covered.get(api.name, 0) + 1
                continue
            try:
                out = api.run(call)
            except Unsupported:
                continue
            covered[api.name] = covered.get(api.name, 0) + 1
            agree = semantics_agree(api.name, call)
            if agree == "none":
                continue
            what = f"{api.name} {params}"
            keras_object = re.search(r"keras\.losses\.[A-Z]", api.name) is not None
            assert out.out_dtype == ("float32" if keras_object else "float64"), what
            check_close(out.value, golden.value, out.out_dtype, f"value of {what}")
            for name, g in golden.grads.items() if agree == "all" else ():
                assert name in out.grads, f"{what}: no gradient for {name}"
                check_close(out.grads[name], g, out.out_dtype, f"grad:{name} of {what}")
    missing = sorted(set(API) - set(covered))
    assert not missing, f"APIs never run by the test instances: {missing}"


def test_registry_lists_the_expected_apis():
    expected = {
        "tf.nn.softmax_cross_entropy_with_logits",
        "tf.nn.sparse_softmax_cross_entropy_with_logits",
        "tf.nn.sigmoid_cross_entropy_with_logits",
        "tf.nn.weighted_cross_entropy_with_logits",
        "tf.nn.softmax",
        "tf.nn.log_softmax",
        "tf.math.sigmoid",
        "tf.math.log_sigmoid",
        "tf.reduce_logsumexp",
        "keras.losses.categorical_crossentropy",
        "keras.losses.CategoricalCrossentropy",
        "keras.losses.sparse_categorical_crossentropy",
        "keras.losses.SparseCategoricalCrossentropy",
        "keras.losses.binary_crossentropy",
        "keras.losses.BinaryCrossentropy",
        "keras.losses.CategoricalCrossentropy(from_logits=True)",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
        "keras.losses.binary_crossentropy(from_logits=True)",
        "keras.losses.BinaryCrossentropy(from_logits=True)",
        "keras.ops.logsumexp",
        "keras.ops.softmax",
        "keras.ops.log_sigmoid",
    }
    assert expected <= set(API), sorted(expected - set(API))
    losses = {a.loss for a in FW.apis}
    assert losses == set(LOSSES), sorted(set(LOSSES) ^ losses)
    assert any(n.startswith("keras.losses.binary_focal_crossentropy") for n in API)
    assert any(n.startswith("keras.losses.KLDivergence") for n in API)
    assert any(n.startswith("keras.losses.kl_divergence") for n in API)
    assert FW.name == "tensorflow"
    rows = [(a.loss, a.name) for a in FW.apis]  # one API may compute two losses
    assert len(rows) == len(set(rows)), "API names must be unique within a loss"


def test_worked_examples():
    call, _ = make_call("softmax_cross_entropy", {"logits": [[0.2, 0.3, 0.5]], "target": [2]})
    for name in (
        "tf.nn.sparse_softmax_cross_entropy_with_logits",
        "keras.losses.sparse_categorical_crossentropy(from_logits=True)",
    ):
        out = API[name].run(call)
        assert abs(float(out.value) - 0.9398310608444602) < 1e-15, name
    call, _ = make_call(
        "binary_cross_entropy_with_logits", {"logits": [0.7, 0.2, 0.1], "target": [1.0, 0.0, 0.0]}
    )
    out = API["tf.nn.sigmoid_cross_entropy_with_logits"].run(call)
    assert abs(float(out.value) - 0.6485738594468736) < 1e-15


def test_sibling_routing_integer_vs_probability_targets():
    int_call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS})
    soft_call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": SOFT})
    sparse = API["tf.nn.sparse_softmax_cross_entropy_with_logits"]
    dense = API["tf.nn.softmax_cross_entropy_with_logits"]
    assert sparse.applies(int_call) and not sparse.applies(soft_call)
    assert dense.applies(soft_call) and not dense.applies(int_call)
    weighted, _ = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": LABELS, "weight": [1.0, 2, 3, 4]}
    )
    assert not sparse.applies(weighted)
    assert API[
        "tf.nn.sparse_softmax_cross_entropy_with_logits+weight[target]+where(target!=ignore_index)"
    ].applies(weighted)


def test_gradients_left_out_where_tensorflow_does_not_differentiate():
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": SOFT})
    out = API["tf.nn.softmax_cross_entropy_with_logits"].run(call)
    assert set(out.grads) == {"logits", "target"}
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS})
    out = API["tf.nn.sparse_softmax_cross_entropy_with_logits"].run(call)
    assert set(out.grads) == {"logits"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_out_dtype(dtype):
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {"reduction": "none"}, dtype
    )
    out = API["tf.nn.sparse_softmax_cross_entropy_with_logits"].run(call)
    assert out.out_dtype == dtype
    np.testing.assert_allclose(out.value, golden.value, rtol=5e-2, atol=1e-2)
    assert out.grads["logits"].shape == LOGITS.shape
    # Keras Loss objects compute in keras.backend.floatx(): the value comes back float32
    out = API["keras.losses.SparseCategoricalCrossentropy(from_logits=True)"].run(call)
    assert out.out_dtype == "float32"
    out = API["keras.ops.log_sigmoid"].run(make_call("log_sigmoid", {"x": BIN_X}, {}, dtype)[0])
    assert out.out_dtype == dtype


def test_out_of_range_label_raises_on_cpu():
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": [1, 4, 0]}, dtype="float32"
    )
    assert golden is None and call.grad_inputs == ()  # the reference rejects label 4
    with pytest.raises(ValueError):
        evaluate("softmax_cross_entropy", call.inputs, {})
    with pytest.raises(Exception, match="outside the valid range"):
        API["tf.nn.sparse_softmax_cross_entropy_with_logits"].run(call)


def test_gpu_call_without_gpu_is_unsupported():
    devices = FW.devices()
    assert devices["cpu"]
    if devices["gpu"] is not None:
        pytest.skip("a GPU is present")
    assert FW.gpu_missing_reason()
    call, _ = make_call("sigmoid", {"x": BIN_X}, {}, device="gpu")
    with pytest.raises(Unsupported):
        API["tf.math.sigmoid"].run(call)
    versions = FW.versions()
    assert versions["keras_backend"] == "tensorflow" and versions["tensorflow"]


def test_unsupported_reason_classifies_missing_kernels_only():
    import tensorflow as tf

    exc = tf.errors.NotFoundError(
        None, None, "No registered 'Foo' OpKernel for 'CPU' devices compatible with node"
    )
    assert FW.unsupported_reason(exc)
    assert FW.unsupported_reason(tf.errors.InvalidArgumentError(None, None, "label 5")) is None
    assert FW.unsupported_reason(ValueError("x")) is None


# ------------------------------------------------------------- documented differences


def finding(api: str, call: Call, golden, out, quantity: str = "value") -> Finding:
    expected = golden.value if quantity == "value" else golden.grads[quantity[5:]]
    actual = out.value if quantity == "value" else out.grads[quantity[5:]]
    return Finding(
        framework="tensorflow",
        api=api,
        loss=call.loss,
        params=call.params,
        inputs=call.inputs,
        dtype=call.dtype,
        device=call.device,
        quantity=quantity,
        status="mismatch",
        expected=np.asarray(expected),
        actual=np.asarray(actual),
        error=None,
        expect_error=False,
    )


def explained_by(api: str, call: Call, golden, out, quantity: str = "value", status="mismatch"):
    f = finding(api, call, golden, out, quantity)
    f = Finding(**{**f.__dict__, "status": status})
    k = explain(f)
    return None if k is None else k.id


def perturbed(out, quantity: str = "value", factor: float = 1.01):
    """The same output with the quantity scaled: an unexplained difference."""
    from dataclasses import replace

    if quantity == "value":
        return replace(out, value=out.value * factor)
    grads = dict(out.grads)
    grads[quantity[5:]] = grads[quantity[5:]] * factor
    return replace(out, grads=grads)


def test_keras_clip_at_epsilon_reproduced_and_known():
    api = "keras.losses.categorical_crossentropy"
    call, golden = make_call(
        "categorical_cross_entropy",
        {"probs": [[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], "target": [[1.0, 0.0, 0.0], [0, 0, 1.0]]},
        {"reduction": "none"},
    )
    out = API[api].run(call)
    assert golden.value[0] == np.inf
    assert out.value[0] == pytest.approx(-np.log(1e-7), rel=1e-12)  # clipped, finite
    assert out.value[1] == pytest.approx(golden.value[1], rel=1e-12)
    assert explained_by(api, call, golden, out, status="nonfinite") == (
        "keras-probabilities-clipped-to-epsilon"
    )
    # the same kind of difference on probabilities the clip does not touch is not explained
    call2, golden2 = make_call(
        "binary_cross_entropy", {"probs": BIN_P, "target": BIN_T}, {"reduction": "mean"}
    )
    out2 = perturbed(API["keras.ops.binary_crossentropy"].run(call2))
    assert explained_by("keras.ops.binary_crossentropy", call2, golden2, out2) is None


def test_keras_mean_divides_by_element_count_not_weight_sum():
    api = (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)+sample_weight=weight[target]"
    )
    weight = np.array([0.5, 1.0, 2.0, 3.0])
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": LABELS, "weight": weight}
    )
    out = API[api].run(call)
    w = weight[LABELS]
    # Keras: sum(w * l) / N; the reference (PyTorch): sum(w * l) / sum(w)
    np.testing.assert_allclose(out.value, golden.value * w.sum() / len(w), rtol=1e-6)
    assert explained_by(api, call, golden, out) == "keras-mean-divides-by-element-count"
    assert explained_by(api, call, golden, perturbed(out)) is None
    g = "grad:logits"
    assert explained_by(api, call, golden, out, g) == "keras-mean-divides-by-element-count"


def test_softmax_xent_gradient_assumes_label_rows_sum_to_one():
    api = "tf.nn.softmax_cross_entropy_with_logits"
    target = SOFT * np.array([[1.0], [0.5], [2.0]])  # rows summing to 1, 0.5 and 2
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": target}, {"reduction": "sum"}
    )
    out = API[api].run(call)
    np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)  # the value is right
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.grads["logits"], p - target, rtol=1e-10, atol=1e-12)
    assert not np.allclose(out.grads["logits"], golden.grads["logits"])
    q = "grad:logits"
    assert explained_by(api, call, golden, out, q) == (
        "tf-softmax-xent-gradient-assumes-normalised-labels"
    )
    assert explained_by(api, call, golden, perturbed(out, q), q) is None


def test_keras_loss_objects_compute_float64_calls_in_float32():
    api = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    call, golden = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS})
    out = API[api].run(call)
    assert out.out_dtype == "float32"
    assert float(out.value) != float(golden.value)
    assert explained_by(api, call, golden, out) == "keras-loss-object-computes-in-floatx"
    assert explained_by(api, call, golden, perturbed(out, factor=1.001)) is None


def test_keras_kl_sums_over_the_class_axis():
    api = "keras.losses.KLDivergence()(target,exp(input))"
    inputs = {"input": np.log(PROBS), "target": SOFT}
    call, golden = make_call("kl_divergence", inputs, {"reduction": "mean"})
    out = API[api].run(call)
    classes = PROBS.shape[1]
    np.testing.assert_allclose(out.value, golden.value * classes, rtol=1e-6)
    assert explained_by(api, call, golden, out) == "keras-kl-sums-over-the-class-axis"
    assert explained_by(api, call, golden, perturbed(out)) is None
