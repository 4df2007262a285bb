"""The tf-compat-v1 adapter (``tf.compat.v1.losses`` under TensorFlow 2) on the real
framework: every row against the reference, the reduction modes and where each stands for
the reference's mean, the float32 computation of float64 calls, and the refusals.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import tensorflow as tf

from tests.adapters.calls import make_call
from xentcheck.adapters import Unsupported, load_framework
from xentcheck.adapters.tf_compat_v1_adapter import BASE_REDUCTION, MEAN_MODES, V1Reduction

pytestmark = pytest.mark.tensorflow

FW = load_framework("tf-compat-v1")
API = {(a.loss, a.name): a for a in FW.apis}
V1 = "tf.compat.v1.losses"

RNG = np.random.default_rng(11)
LOGITS = RNG.normal(size=(3, 4)) * 2.0
LABELS = np.array([1, 3, 0])
SOFT = RNG.dirichlet(np.ones(4), size=3)
LOGITS_K = RNG.normal(size=(2, 3, 2))
LABELS_K = np.array([[0, 2], [1, 1]])
BIN_P = RNG.uniform(0.05, 0.95, size=(3, 4))
BIN_T = RNG.uniform(0.0, 1.0, size=(3, 4))
BIN_X = RNG.normal(size=(3, 4)) * 2.0
CLASS_W = [0.5, 1.0, 2.0, 3.0]
REDUCTIONS = ("none", "sum", "mean")

#: loss -> (inputs, params) every row of the loss runs on
INSTANCES: dict[str, list[tuple[dict, dict]]] = {
    "softmax_cross_entropy": [
        *[({"logits": LOGITS, "target": LABELS}, {"reduction": r}) for r in REDUCTIONS],
        *[({"logits": LOGITS, "target": SOFT}, {"reduction": r}) for r in REDUCTIONS],
        *[({"logits": LOGITS, "target": LABELS}, {"label_smoothing": 0.1, "reduction": r})
          for r in REDUCTIONS],
        ({"logits": LOGITS, "target": SOFT}, {"label_smoothing": 0.2}),
        ({"logits": LOGITS_K, "target": LABELS_K}, {"reduction": "none"}),
        *[({"logits": LOGITS, "target": np.array([1, -100, 0]), "weight": CLASS_W},
           {"ignore_index": -100, "reduction": r}) for r in REDUCTIONS],
        *[({"logits": LOGITS, "target": np.array([1, 2, 2])}, {"ignore_index": 2, "reduction": r})
          for r in REDUCTIONS],
        ({"logits": LOGITS, "target": np.array([1, 2, 2])},
         {"ignore_index": 2, "label_smoothing": 0.1}),
    ],
    "binary_cross_entropy": [
        *[({"probs": BIN_P, "target": BIN_T}, {"reduction": r}) for r in REDUCTIONS],
        *[({"probs": BIN_P, "target": BIN_T, "weight": np.full((3, 4), 0.5) + BIN_T},
           {"reduction": r}) for r in REDUCTIONS],
    ],
    "binary_cross_entropy_with_logits": [
        *[({"logits": BIN_X, "target": BIN_T}, {"reduction": r}) for r in REDUCTIONS],
        *[({"logits": BIN_X, "target": BIN_T, "weight": [[1.0, 0.5, 2.0, 0.0]]}, {"reduction": r})
          for r in REDUCTIONS],
    ],
    "smoothed_binary_cross_entropy": [
        ({"logits": BIN_X, "target": BIN_T}, {"label_smoothing": ls, "reduction": r})
        for ls in (0.0, 0.2) for r in REDUCTIONS
    ],
}  # fmt: skip


def _float32_numbers(a: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(a, np.float32).astype(np.float64), a))


def test_registry_lists_the_v1_losses_and_their_modes():
    names = {a.name for a in FW.apis}
    for fn in ("softmax_cross_entropy", "sparse_softmax_cross_entropy", "sigmoid_cross_entropy"):
        assert f"{V1}.{fn}" in names
        assert f"{V1}.{fn}(reduction=MEAN)" in names
        assert f"{V1}.{fn}(reduction=SUM_OVER_BATCH_SIZE)" in names
    assert f"{V1}.log_loss" in names and f"{V1}.log_loss(epsilon=0.0,reduction=MEAN)" in names
    assert {a.loss for a in FW.apis} == set(INSTANCES)
    assert len(API) == len(FW.apis), "API names must be unique within a loss"
    assert FW.name == "tf-compat-v1" and "keras" not in FW.versions()


def test_reduction_modes_are_tensorflows_own():
    R = tf.compat.v1.losses.Reduction
    # the alias that has no row of its own: the same string
    assert R.SUM_OVER_NONZERO_WEIGHTS == R.SUM_BY_NONZERO_WEIGHTS
    assert set(R.all()) == {*BASE_REDUCTION.values(), *map(V1Reduction, MEAN_MODES)}
    assert BASE_REDUCTION["mean"] == R.SUM_BY_NONZERO_WEIGHTS  # the API's default
    assert repr(V1Reduction("SUM")) == "tf.compat.v1.losses.Reduction.SUM"


def test_every_row_matches_the_reference_at_float32_accuracy_in_float64():
    covered: set[tuple[str, str]] = set()
    for (loss, name), api in API.items():
        for inputs, params in INSTANCES[loss]:
            call, golden = make_call(loss, inputs, params)
            if not api.applies(call):
                continue
            try:
                out = api.run(call)
            except Unsupported:
                continue
            covered.add((loss, name))
            what = f"{name} {params}"
            log_loss = name.startswith(f"{V1}.log_loss")
            # compute_weighted_loss casts to float32 and back; log_loss stays float32
            assert out.out_dtype == ("float32" if log_loss else "float64"), what
            assert _float32_numbers(out.value), what
            model = golden.value
            if log_loss and "epsilon=0.0" not in name:
                p, y = inputs["probs"], inputs["target"]
                per = -(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))
                w = inputs.get("weight", 1.0) * np.ones_like(p)
                r = params["reduction"]
                model = per * w if r == "none" else (per * w).sum() / (p.size if r == "mean" else 1)
            np.testing.assert_allclose(out.value, model, rtol=3e-6, atol=1e-6, err_msg=what)
            for k, g in golden.grads.items():
                if k == "target" and name.startswith(f"{V1}.softmax_cross_entropy"):
                    assert k not in out.grads, f"{what}: labels_stop_gradient"
                    continue
                tol = 1e-4 if log_loss else 1e-6  # epsilon moves log_loss's gradient
                np.testing.assert_allclose(out.grads[k], g, rtol=tol, atol=1e-7, err_msg=what)
    assert covered == set(API), sorted(set(API) - covered)


def _applying(loss: str, inputs: dict, params: dict) -> set[str]:
    call, _ = make_call(loss, inputs, params)
    return {name for (lo, name), a in API.items() if lo == loss and a.applies(call)}


def test_each_mean_mode_runs_only_where_it_is_the_references_mean():
    sparse = f"{V1}.sparse_softmax_cross_entropy"
    weighted = "+weights=weight[target]*(target!=ignore_index)"
    plain = _applying("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {})
    assert plain == {
        sparse,
        f"{sparse}(reduction=MEAN)",
        f"{sparse}(reduction=SUM_OVER_BATCH_SIZE)",
    }
    # class weights: only the sum of weights is the weighted mean's divisor
    inputs = {"logits": LOGITS, "target": LABELS, "weight": CLASS_W}
    assert _applying("softmax_cross_entropy", inputs, {}) == {f"{sparse}(reduction=MEAN){weighted}"}
    assert _applying("softmax_cross_entropy", inputs, {"reduction": "sum"}) == {
        f"{sparse}{weighted}"
    }
    # ignored positions only: nonzero count and weight sum agree, the batch size does not
    ignored = {"logits": LOGITS, "target": np.array([1, 2, 2])}
    assert _applying("softmax_cross_entropy", ignored, {"ignore_index": 2}) == {
        f"{sparse}{weighted}", f"{sparse}(reduction=MEAN){weighted}"}  # fmt: skip
    # element weights: the reference divides by the element count
    sig = f"{V1}.sigmoid_cross_entropy"
    bce = {"logits": BIN_X, "target": BIN_T, "weight": [[1.0, 0.5, 2.0, 0.0]]}
    assert _applying("binary_cross_entropy_with_logits", bce, {}) == {
        f"{sig}(reduction=SUM_OVER_BATCH_SIZE)"}  # fmt: skip


def test_the_modes_left_out_are_not_the_references_mean():
    """Why a mode has no row for a call: TensorFlow's answer is not the reference's mean."""
    R = tf.compat.v1.losses.Reduction
    logits = tf.constant(LOGITS)
    w = tf.constant(np.asarray(CLASS_W)[LABELS])
    _, golden = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS,
                                                    "weight": CLASS_W}, {})  # fmt: skip
    for mode in (R.SUM_BY_NONZERO_WEIGHTS, R.SUM_OVER_BATCH_SIZE):
        v = tf.compat.v1.losses.sparse_softmax_cross_entropy(LABELS, logits, w, reduction=mode)
        assert abs(float(v) - float(golden.value)) > 0.05, mode
    v = tf.compat.v1.losses.sparse_softmax_cross_entropy(LABELS, logits, w, reduction=R.MEAN)
    assert abs(float(v) - float(golden.value)) < 1e-6


def test_log_loss_float64_is_float32_and_epsilon_is_inside_the_logs():
    call, golden = make_call(
        "binary_cross_entropy", {"probs": [0.0, 0.999], "target": [1.0, 0.0]}, {"reduction": "none"}
    )
    out = API["binary_cross_entropy", f"{V1}.log_loss"].run(call)
    assert out.out_dtype == "float32" and np.isinf(golden.value[0])
    assert out.value[0] == pytest.approx(-np.log(np.float32(1e-7)), rel=1e-6)  # 16.118
    exact = API["binary_cross_entropy", f"{V1}.log_loss(epsilon=0.0)"].run(call)
    assert np.isinf(exact.value[0])
    # 0.999 rounded to float32 first: -log(1 - p) is off by 2e-6 relative
    assert 1e-7 < abs(exact.value[1] / golden.value[1] - 1) < 1e-5


def test_refusals_name_what_the_api_lacks():
    cases = [
        ("binary_cross_entropy_with_logits",
         {"logits": BIN_X, "target": BIN_T, "pos_weight": [1.0, 2.0, 3.0, 4.0]}, "pos_weight"),
        ("binary_cross_entropy",
         {"probs": BIN_P, "target": BIN_T, "weight": [1.0, 2.0, 3.0, 4.0]}, "rank"),
        ("softmax_cross_entropy", {"logits": LOGITS, "target": SOFT, "weight": CLASS_W},
         "class weights"),
    ]  # fmt: skip
    for loss, inputs, words in cases:
        call, _ = make_call(loss, inputs, {"reduction": "sum"})
        rows = [a for (lo, _), a in API.items() if lo == loss and a.applies(call)]
        assert rows, loss
        for api in rows:
            with pytest.raises(Unsupported, match=words):
                api.run(call)


def test_out_of_range_label_raises_on_cpu_and_one_hot_does_not():
    call, golden = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": [1, 4, 0]}, {})
    assert golden is None
    with pytest.raises(Exception, match="outside the valid range"):
        API["softmax_cross_entropy", f"{V1}.sparse_softmax_cross_entropy"].run(call)
    call, _ = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": [1, 4, 0]}, {"label_smoothing": 0.1}
    )
    out = API["softmax_cross_entropy", f"{V1}.softmax_cross_entropy+one_hot(target)"].run(call)
    assert np.isfinite(out.value)


def test_half_precision_keeps_its_dtype():
    for dtype in ("float16", "bfloat16"):
        call, golden = make_call(
            "softmax_cross_entropy",
            {"logits": LOGITS, "target": LABELS},
            {"reduction": "none"},
            dtype,
        )
        out = API["softmax_cross_entropy", f"{V1}.sparse_softmax_cross_entropy"].run(call)
        assert out.out_dtype == dtype
        np.testing.assert_allclose(out.value, golden.value, rtol=5e-2, atol=1e-2)


def test_gpu_call_without_gpu_is_unsupported():
    if FW.devices()["gpu"] is not None:
        pytest.skip("a GPU is present")
    assert FW.gpu_missing_reason()
    call, _ = make_call("binary_cross_entropy_with_logits", {"logits": BIN_X, "target": BIN_T},
                        {}, device="gpu")  # fmt: skip
    with pytest.raises(Unsupported):
        API["binary_cross_entropy_with_logits", f"{V1}.sigmoid_cross_entropy"].run(call)
