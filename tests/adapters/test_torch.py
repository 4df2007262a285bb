"""The torch adapter against the float64 reference, on small instances (real torch, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.adapters.calls import make_call  # noqa: E402
from xentcheck.adapters import load_framework  # noqa: E402
from xentcheck.adapters.base import Unsupported  # noqa: E402
from xentcheck.known import Finding, explain  # noqa: E402
from xentcheck.reference import LOSSES, evaluate  # noqa: E402

pytestmark = pytest.mark.torch

FW = load_framework("torch")
APIS = {a.name: a for a in FW.apis}

EXPECTED_APIS = {
    "softmax_cross_entropy": {"torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"},
    "categorical_cross_entropy": {
        "torch.nn.functional.nll_loss+torch.log",
        "torch.sum(-target*torch.log(probs),dim=1)",
    },
    "nll": {"torch.nn.functional.nll_loss", "torch.nn.NLLLoss"},
    "binary_cross_entropy": {"torch.nn.functional.binary_cross_entropy", "torch.nn.BCELoss"},
    "binary_cross_entropy_with_logits": {
        "torch.nn.functional.binary_cross_entropy_with_logits",
        "torch.nn.BCEWithLogitsLoss",
    },
    "smoothed_binary_cross_entropy": {
        "torch.nn.functional.binary_cross_entropy_with_logits+smoothed_target"
    },
    "kl_divergence": {"torch.nn.functional.kl_div", "torch.nn.KLDivLoss"},
    "sigmoid_focal_loss": {"torchvision.ops.sigmoid_focal_loss+torch-ops-recipe"},
    "token_cross_entropy": {
        "torch.nn.functional.cross_entropy+view(-1,V)+masked_fill(ignore_index)"
    },
    "perplexity": {
        "torch.exp(torch.nn.functional.cross_entropy+view(-1,V)+masked_fill(ignore_index))"
    },
    "softmax": {"torch.nn.functional.softmax", "torch.nn.Softmax"},
    "log_softmax": {"torch.nn.functional.log_softmax", "torch.nn.LogSoftmax"},
    "logsumexp": {"torch.logsumexp"},
    "sigmoid": {"torch.sigmoid", "torch.nn.Sigmoid"},
    "log_sigmoid": {"torch.nn.functional.logsigmoid", "torch.nn.LogSigmoid"},
}


LOGITS = [[0.2, 0.3, 0.5], [1.5, -0.25, 0.75], [-1.0, 2.0, 0.125]]
PROBS = [[0.2, 0.7, 0.1], [0.25, 0.25, 0.5], [0.6, 0.3, 0.1]]
SOFT = [[0.1, 0.8, 0.1], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
POSITIVE = [[0.1, 0.8, 0.1], [0.125, 0.375, 0.5], [0.5, 0.25, 0.25]]  # no zeros
WEIGHT = [0.5, 1.0, 2.0]

# loss -> list of (inputs, params) where torch and the reference agree in float64
INSTANCES = {
    "softmax_cross_entropy": [
        ({"logits": LOGITS, "target": [2, 0, 1]}, {}),
        ({"logits": LOGITS, "target": [2, 0, 1]}, {"reduction": "none"}),
        ({"logits": LOGITS, "target": [2, 0, 1], "weight": WEIGHT}, {"reduction": "mean"}),
        ({"logits": LOGITS, "target": [2, 0, 1]}, {"ignore_index": 0, "reduction": "sum"}),
        (
            {"logits": LOGITS, "target": [2, 0, 1], "weight": WEIGHT},
            {"label_smoothing": 0.25, "reduction": "mean"},
        ),
        ({"logits": LOGITS, "target": SOFT, "weight": WEIGHT}, {"label_smoothing": 0.1}),
        (
            {
                "logits": np.arange(24.0).reshape(2, 3, 4) / 7,
                "target": [[0, 1, 2, 0], [2, 2, 1, 0]],
            },
            {"reduction": "none"},
        ),
    ],
    "categorical_cross_entropy": [
        ({"probs": PROBS, "target": [1, 2, 0]}, {}),
        ({"probs": PROBS, "target": [1, 2, 0]}, {"reduction": "none"}),
        ({"probs": PROBS, "target": SOFT}, {"reduction": "sum"}),
        ({"probs": PROBS, "target": SOFT}, {"reduction": "none"}),
    ],
    "nll": [
        ({"log_probs": np.log(PROBS), "target": [1, 2, 0]}, {}),
        (
            {"log_probs": np.log(PROBS), "target": [1, 2, 0], "weight": WEIGHT},
            {"reduction": "none"},
        ),
        (
            {"log_probs": np.log(PROBS), "target": [1, 2, 0]},
            {"ignore_index": 2, "reduction": "mean"},
        ),
    ],
    "binary_cross_entropy": [
        ({"probs": [0.2, 0.7, 0.9], "target": [0.0, 1.0, 0.25]}, {}),
        (
            {"probs": [0.2, 0.7, 0.9], "target": [0.0, 1.0, 0.25], "weight": [1.0, 2.0, 0.5]},
            {"reduction": "none"},
        ),
    ],
    "binary_cross_entropy_with_logits": [
        ({"logits": [0.7, 0.2, 0.1], "target": [1.0, 0.0, 0.0]}, {"reduction": "mean"}),
        (
            {
                "logits": [[0.7, -2.0], [3.0, 0.1]],
                "target": [[1.0, 0.0], [0.25, 1.0]],
                "weight": [[1.0, 2.0], [0.5, 1.0]],
                "pos_weight": [3.0, 0.5],
            },
            {"reduction": "none"},
        ),
    ],
    "smoothed_binary_cross_entropy": [
        ({"logits": [[0.7, -2.0], [3.0, 0.1]], "target": [[1.0, 0.0], [0.25, 1.0]]}, {}),
        (
            {"logits": [[0.7, -2.0, 9.0]], "target": [[1.0, 0.0, 1.0]]},
            {"label_smoothing": 0.2, "reduction": "none"},
        ),
    ],
    "kl_divergence": [
        ({"input": np.log(PROBS), "target": POSITIVE}, {"reduction": "sum"}),
        ({"input": np.log(PROBS), "target": POSITIVE}, {"reduction": "batchmean"}),
        ({"input": np.log(PROBS), "target": POSITIVE}, {}),
        (
            {"input": np.log(PROBS), "target": np.log(PROBS[::-1])},
            {"log_target": True, "reduction": "none"},
        ),
    ],
    "sigmoid_focal_loss": [
        ({"logits": [0.7, -2.0, 3.0, 0.1], "target": [1.0, 0.0, 0.0, 1.0]}, {}),
        (
            {"logits": [0.7, -2.0, 3.0], "target": [1.0, 0.0, 0.5]},
            {"alpha": 0.5, "gamma": 1.0, "reduction": "none"},
        ),
        # alpha=None (no alpha_t factor) is torchvision's alpha=-1
        (
            {"logits": [0.7, -2.0, 3.0], "target": [1.0, 0.0, 0.5]},
            {"alpha": None, "gamma": 0.0, "reduction": "sum"},
        ),
    ],
    "token_cross_entropy": [
        ({"logits": np.arange(24.0).reshape(2, 3, 4) / 5, "target": [[0, 1, 3], [2, 2, 1]]}, {}),
        (
            {
                "logits": np.arange(24.0).reshape(2, 3, 4) / 5,
                "target": [[0, 1, 3], [2, 2, 1]],
                "mask": [[1, 1, 0], [1, 0, 0]],
            },
            {"ignore_index": 2},
        ),
    ],
    "perplexity": [
        (
            {
                "logits": np.arange(24.0).reshape(2, 3, 4) / 5,
                "target": [[0, 1, 3], [2, 2, 1]],
                "mask": [[1, 1, 1], [1, 0, 0]],
            },
            {},
        ),
    ],
    "softmax": [({"x": LOGITS}, {}), ({"x": LOGITS}, {"axis": 0})],
    "log_softmax": [({"x": LOGITS}, {}), ({"x": LOGITS}, {"axis": 0})],
    "logsumexp": [({"x": LOGITS}, {}), ({"x": LOGITS}, {"axis": 0})],
    "sigmoid": [({"x": [-3.0, 0.0, 0.5, 8.0]}, {})],
    "log_sigmoid": [({"x": [-3.0, 0.0, 0.5, 8.0]}, {})],
}


def test_registry_lists_the_expected_apis():
    assert FW.name == "torch"
    got = {loss: {a.name for a in FW.apis_for(loss)} for loss in LOSSES}
    assert got == EXPECTED_APIS
    assert len(APIS) == len(FW.apis), "API names must be unique"


@pytest.mark.parametrize("name", sorted(APIS))
def test_api_matches_reference_in_float64(name):
    api = APIS[name]
    ran = 0
    for inputs, params in INSTANCES[api.loss]:
        call, golden = make_call(api.loss, inputs, params)
        if not api.applies(call):
            continue
        out = api.run(call)
        ran += 1
        assert out.out_dtype == "float64"
        np.testing.assert_allclose(
            out.value, golden.value, rtol=1e-10, atol=1e-12, err_msg=f"{name} {params}"
        )
        assert set(out.grads) == set(golden.grads), f"{name} {params}: grads {set(out.grads)}"
        for k, g in golden.grads.items():
            np.testing.assert_allclose(
                out.grads[k], g, rtol=1e-10, atol=1e-12, err_msg=f"{name} grad {k} {params}"
            )
    assert ran, f"{name} applied to none of the instances"


def test_worked_examples():
    call, _ = make_call("softmax_cross_entropy", {"logits": [[0.2, 0.3, 0.5]], "target": [2]})
    for name in EXPECTED_APIS["softmax_cross_entropy"]:
        assert float(APIS[name].run(call).value) == pytest.approx(0.9398310608444602, rel=1e-15)
    call, _ = make_call(
        "binary_cross_entropy_with_logits", {"logits": [0.7, 0.2, 0.1], "target": [1.0, 0.0, 0.0]}
    )
    for name in EXPECTED_APIS["binary_cross_entropy_with_logits"]:
        assert float(APIS[name].run(call).value) == pytest.approx(0.6485738594468736, rel=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_low_precision_dtypes_stay_in_their_dtype(dtype):
    call, golden = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": [2, 0, 1]}, dtype=dtype
    )
    out = APIS["torch.nn.functional.cross_entropy"].run(call)
    assert out.out_dtype == dtype
    assert out.grads["logits"].dtype == np.float64
    np.testing.assert_allclose(out.value, golden.value, rtol=2e-2)
    np.testing.assert_allclose(out.grads["logits"], golden.grads["logits"], rtol=5e-2, atol=1e-2)


def test_routing_by_target_kind():
    hard, _ = make_call("categorical_cross_entropy", {"probs": PROBS, "target": [1, 2, 0]})
    soft, _ = make_call("categorical_cross_entropy", {"probs": PROBS, "target": SOFT})
    nll_log = APIS["torch.nn.functional.nll_loss+torch.log"]
    manual = APIS["torch.sum(-target*torch.log(probs),dim=1)"]
    assert nll_log.applies(hard) and not nll_log.applies(soft)
    assert manual.applies(soft) and not manual.applies(hard)


def test_integer_targets_get_no_gradient():
    call, _ = make_call("nll", {"log_probs": np.log(PROBS), "target": [1, 2, 0]})
    assert set(APIS["torch.nn.NLLLoss"].run(call).grads) == {"log_probs"}


def test_out_of_range_label_raises_on_cpu():
    bad, golden = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": [2, 3, 1]})
    assert golden is None and bad.grad_inputs == ()  # the reference rejects label 3
    with pytest.raises(IndexError, match="out of bounds"):
        APIS["torch.nn.functional.cross_entropy"].run(bad)


def test_ignore_index_is_passed_only_when_set():
    # torch's default ignore_index=-100 silently drops a -100 label; the reference rejects it
    neg, _ = make_call("nll", {"log_probs": np.log(PROBS), "target": [1, -100, 0]})
    with pytest.raises(ValueError):
        evaluate("nll", neg.inputs, {})
    value = float(APIS["torch.nn.functional.nll_loss"].run(neg).value)
    assert value == pytest.approx(-(np.log(0.7) + np.log(0.6)) / 2)
    f = Finding(
        framework="torch",
        api="torch.nn.functional.nll_loss",
        loss="nll",
        params=dict(neg.params),
        inputs=neg.inputs,
        dtype="float64",
        device="cpu",
        quantity="value",
        status="error",
        expected=None,
        actual=np.asarray(value),
        error=None,
        expect_error=True,
    )
    k = explain(f)
    assert k is not None and k.id == "torch-default-ignore-index" and k.link.startswith("https://")
    # a label other than -100 accepted where it should raise is not explained by that entry
    other = Finding(**{**f.__dict__, "inputs": {**f.inputs, "target": np.array([1, 7, 0])}})
    assert explain(other) is None


def test_bce_log_clamp_is_reproduced_and_explained():
    call, golden = make_call(
        "binary_cross_entropy",
        {"probs": [0.0, 0.5, 1.0], "target": [1.0, 0.0, 1.0]},
        {"reduction": "none"},
    )
    out = APIS["torch.nn.BCELoss"].run(call)
    assert out.value[0] == 100.0 and np.isinf(golden.value[0])  # log clamped at -100
    f = Finding(
        framework="torch",
        api="torch.nn.BCELoss",
        loss="binary_cross_entropy",
        params=dict(call.params),
        inputs=call.inputs,
        dtype="float64",
        device="cpu",
        quantity="value",
        status="nonfinite",
        expected=golden.value,
        actual=out.value,
        error=None,
        expect_error=False,
    )
    k = explain(f)
    assert k is not None and k.id == "torch-bce-log-clamp" and "BCELoss" in k.link
    # probabilities away from 0 and 1 with a differing value are not explained by the clamp
    call2, golden2 = make_call(
        "binary_cross_entropy", {"probs": [0.25, 0.5], "target": [1.0, 0.0]}, {"reduction": "none"}
    )
    f2 = Finding(
        **{
            **f.__dict__,
            "inputs": call2.inputs,
            "expected": golden2.value,
            "actual": golden2.value + 1.0,
            "status": "mismatch",
        }
    )
    assert explain(f2) is None


def test_unsupported_reason_classifies_missing_dtype_kernels():
    exc = RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'")
    assert "Half" in FW.unsupported_reason(exc)
    assert FW.unsupported_reason(RuntimeError("Target 5 is out of bounds.")) is None
    assert FW.unsupported_reason(IndexError("Target 5 is out of bounds.")) is None


def test_devices_and_versions():
    assert FW.versions()["torch"] == torch.__version__
    devices = FW.devices()
    assert devices["cpu"]
    if torch.cuda.is_available():
        assert devices["gpu"] and FW.gpu_missing_reason() is None
    else:
        assert devices["gpu"] is None and FW.gpu_missing_reason()
        call, _ = make_call("sigmoid", {"x": [0.5]}, device="gpu")
        with pytest.raises(Unsupported):
            APIS["torch.sigmoid"].run(call)


def test_plus_inf_softmax_nan_is_explained_only_in_its_slice():
    x = np.array([[np.inf, 1.0, 2.0], [np.inf, np.inf, 0.0], [0.5, 1.0, 2.0]])
    call, golden = make_call("logsumexp", {"x": x})
    out = APIS["torch.logsumexp"].run(call)
    assert np.isnan(out.grads["x"][0, 0]) and golden.grads["x"][0, 0] == 1.0
    f = Finding(
        framework="torch",
        api="torch.logsumexp",
        loss="logsumexp",
        params=dict(call.params),
        inputs=call.inputs,
        dtype="float64",
        device="cpu",
        quantity="grad:x",
        status="nonfinite",
        expected=golden.grads["x"],
        actual=out.grads["x"],
        error=None,
        expect_error=False,
    )
    k = explain(f)
    assert k is not None and k.id == "torch-softmax-plus-inf"
    # a wrong gradient in the finite row is not explained by the +inf of the others
    wrong = out.grads["x"].copy()
    wrong[2, 1] += 0.5
    assert explain(Finding(**{**f.__dict__, "actual": wrong})) is None
