"""The tf-keras adapter (Keras 2, ``import tf_keras``) on the real framework: its rows are
Keras 3's table carried over, they run and agree with the reference where Keras 2's
semantics do, and what Keras 2 does otherwise shows.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

import tf_keras

from tests.adapters.calls import make_call
from xentcheck.adapters import Unsupported, keras_apis, load_framework
from xentcheck.adapters.keras2_names import keras2_name
from xentcheck.adapters.tf_keras_adapter import DECLARATIONS, KERAS2_REDUCTION, LEFT_OUT

pytestmark = pytest.mark.tensorflow

FW = load_framework("tf-keras")
API = {(a.loss, a.name): a for a in FW.apis}

RNG = np.random.default_rng(13)
LOGITS = RNG.normal(size=(3, 4)) * 2.0
LABELS = np.array([1, 3, 0])
SOFT = RNG.dirichlet(np.ones(4), size=3)
PROBS = RNG.dirichlet(np.ones(4) * 3.0, size=3)
BIN_X = RNG.normal(size=(3, 4)) * 2.0
BIN_T = RNG.uniform(0.0, 1.0, size=(3, 4))
TOKENS = RNG.normal(size=(2, 3, 5))
TOKEN_T = np.array([[1, 4, 0], [2, 2, 3]])

#: (loss, inputs, params) on which every row of the loss agrees with the reference in
#: float64 (Keras 2's own semantics left out: last-axis means, renormalised probabilities,
#: the double epsilon; the known entries take those)
AGREEING = [
    *[("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {"reduction": r})
      for r in ("none", "sum", "mean")],
    ("softmax_cross_entropy", {"logits": LOGITS, "target": SOFT}, {"reduction": "sum"}),
    ("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {"label_smoothing": 0.1}),
    ("softmax_cross_entropy", {"logits": LOGITS, "target": np.array([1, 2, 2])},
     {"ignore_index": 2}),
    ("binary_cross_entropy_with_logits", {"logits": BIN_X, "target": BIN_T}, {"reduction": "mean"}),
    ("smoothed_binary_cross_entropy", {"logits": BIN_X, "target": BIN_T},
     {"label_smoothing": 0.2, "reduction": "mean"}),
    ("sigmoid_focal_loss", {"logits": BIN_X * 20, "target": BIN_T}, {"reduction": "mean"}),
    ("kl_divergence", {"input": np.log(PROBS), "target": SOFT}, {"reduction": "sum"}),
    ("token_cross_entropy", {"logits": TOKENS, "target": TOKEN_T}, {}),
    ("perplexity", {"logits": TOKENS, "target": TOKEN_T}, {}),
    ("softmax", {"x": LOGITS}, {"axis": 1}),
    ("sigmoid", {"x": BIN_X}, {}),
]  # fmt: skip


def test_rows_are_keras3s_table_in_keras2s_namespaces():
    keras3 = [(d.loss, d.name) for d in keras_apis.DECLARATIONS]
    left_out = {(loss, name) for name, loss, _ in LEFT_OUT}
    carried = [(loss, keras2_name(name)) for loss, name in keras3 if (loss, name) not in left_out]
    assert [(d.loss, d.name) for d in DECLARATIONS] == carried
    # what is left out, Keras 2 lacks: the adapter looked, and so does this test
    assert {name for name, _, _ in LEFT_OUT} == {
        "keras.ops.log_softmax", "keras.activations.log_softmax", "keras.ops.logsumexp",
        "keras.ops.log_sigmoid", "keras.activations.log_sigmoid"}  # fmt: skip
    for name, _, _ in LEFT_OUT:
        module, _, attr = keras2_name(name).removeprefix("tf_keras.").partition(".")
        assert not hasattr(getattr(tf_keras, module), attr), name
    assert all(n.startswith(("tf_keras.", "(no NLL")) for _, n in API)
    assert len(API) == len(FW.apis), "API names must be unique within a loss"


def test_keras2_not_keras3_runs_the_rows():
    assert "TF_USE_LEGACY_KERAS" not in os.environ
    versions = FW.versions()
    assert versions["tf_keras"] == tf_keras.__version__ and versions["tf_keras"].startswith("2.")
    assert "keras" not in versions
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {})
    snippet = FW.snippet("tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)", call)
    assert "import tf_keras" in snippet and "import keras" not in snippet


def test_loss_objects_get_keras2_reductions_and_keep_the_input_dtype():
    assert set(KERAS2_REDUCTION.values()) <= set(tf_keras.losses.Reduction.all())
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {"reduction": "mean"}
    )
    out = API[
        "softmax_cross_entropy", "tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    ].run(call)
    # Keras 3 would cast to floatx (float32); Keras 2 computes float64 in float64
    assert out.out_dtype == "float64"
    np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)


def test_rows_agree_with_the_reference_where_keras2_does():
    ran = 0
    for loss, inputs, params in AGREEING:
        call, golden = make_call(loss, inputs, params)
        for (lo, name), api in API.items():
            if lo != loss or not api.applies(call):
                continue
            out = api.run(call)
            what = f"{name} {params}"
            assert out.out_dtype == "float64", what
            np.testing.assert_allclose(out.value, golden.value, rtol=1e-9, atol=1e-12, err_msg=what)
            for k, g in golden.grads.items():
                np.testing.assert_allclose(out.grads[k], g, rtol=1e-9, atol=1e-12, err_msg=what)
            ran += 1
    assert ran >= 30


def test_binary_crossentropy_adds_epsilon_after_clipping():
    call, golden = make_call(
        "binary_cross_entropy", {"probs": [[0.0], [0.25]], "target": [[1.0], [1.0]]},
        {"reduction": "none"},
    )  # fmt: skip
    out = API["binary_cross_entropy", "tf_keras.losses.binary_crossentropy"].run(call)
    assert np.isinf(golden.value[0, 0])
    assert out.value[0] == pytest.approx(-np.log(2e-7), rel=1e-12)  # 15.42, not -log(1e-7)
    assert out.value[1] == pytest.approx(-np.log(0.25 + 1e-7), rel=1e-12)


def test_focal_loss_on_logits_is_not_clipped():
    """Keras 2 takes the logits through sigmoid_cross_entropy_with_logits: a logit of 40
    gives its true, tiny loss (Keras 3's clip to 1 - 1e-7 would give about 1e-7 * 1e-14)."""
    call, golden = make_call(
        "sigmoid_focal_loss", {"logits": [[40.0, -3.0]], "target": [[1.0, 0.0]]},
        {"reduction": "sum", "gamma": 0.0, "alpha": None},
    )  # fmt: skip
    out = API["sigmoid_focal_loss", keras2_name(
        "keras.losses.binary_focal_crossentropy(from_logits=True,apply_class_balancing=True)")].run(call)  # fmt: skip
    # the last-axis mean halves the sum; the element values are the reference's
    np.testing.assert_allclose(out.value * 2, golden.value, rtol=1e-12)


def test_refusals_name_the_keras2_api():
    call, _ = make_call(
        "binary_cross_entropy_with_logits",
        {"logits": BIN_X, "target": BIN_T, "pos_weight": [1.0, 2.0, 3.0, 4.0]}, {},
    )  # fmt: skip
    with pytest.raises(
        Unsupported, match=r"^tf_keras\.losses\.binary_crossentropy has no pos_weight"
    ):
        API["binary_cross_entropy_with_logits", "tf_keras.losses.binary_crossentropy(from_logits=True)"].run(call)  # fmt: skip
    with pytest.raises(Unsupported):
        API["nll", "(no NLL API in Keras 2)"].run(
            make_call("nll", {"log_probs": np.log(PROBS), "target": LABELS})[0]
        )


def test_gpu_call_without_gpu_is_unsupported():
    if FW.devices()["gpu"] is not None:
        pytest.skip("a GPU is present")
    call, _ = make_call("sigmoid", {"x": BIN_X}, {}, device="gpu")
    with pytest.raises(Unsupported):
        API["sigmoid", "tf_keras.activations.sigmoid"].run(call)
