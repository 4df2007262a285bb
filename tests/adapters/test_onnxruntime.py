"""The ONNX Runtime adapter against the float64 reference (real onnx + onnxruntime)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.adapters.calls import make_call
from xentcheck.adapters import load_framework
from xentcheck.adapters.base import Call, Unsupported
from xentcheck.known import Finding
from xentcheck.known.onnxruntime import ENTRIES
from xentcheck.reference import evaluate

ROOT = Path(__file__).resolve().parents[2]
FW = load_framework("onnxruntime")
APIS = {a.name: a for a in FW.apis}
TOL = {"float64": 1e-12, "float32": 2e-6, "float16": 2e-3}

LOGITS = [[0.2, 0.3, 0.5], [1.5, -0.25, 0.75], [-1.0, 2.0, 0.125], [0.0, 0.0, 3.0]]
TARGET = [2, 1, 0, 1]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize(
    "params",
    [{}, {"reduction": "none"}, {"reduction": "sum"}, {"ignore_index": 1}],
    ids=["default", "none", "sum", "ignore"],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_loss_matches_reference(dtype, params, weighted):
    inputs = {"logits": LOGITS, "target": TARGET}
    if weighted:
        inputs["weight"] = [0.5, 2.0, 1.25]
    call, golden = make_call("softmax_cross_entropy", inputs, params, dtype)
    out = APIS["onnx.SoftmaxCrossEntropyLoss"].run(call)
    assert out.out_dtype == dtype
    np.testing.assert_allclose(out.value, golden.value, rtol=TOL[dtype])
    assert out.grads == {}  # inference only: the harness writes unsupported grad rows
    assert "no gradients" in out.note


def test_k_dim_inputs_keep_the_class_axis_at_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 3, 5))
    target = rng.integers(0, 4, size=(2, 3, 5))
    for api, loss, x in [
        ("onnx.SoftmaxCrossEntropyLoss", "softmax_cross_entropy", "logits"),
        ("onnx.NegativeLogLikelihoodLoss", "nll", "log_probs"),
    ]:
        call, golden = make_call(loss, {x: logits, "target": target}, {"reduction": "none"})
        out = APIS[api].run(call)
        assert out.value.shape == (2, 3, 5)
        np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)


def test_nll_and_log_probs_recipe():
    probs = [[0.2, 0.7, 0.1], [0.25, 0.25, 0.5], [0.6, 0.3, 0.1]]
    call, golden = make_call("nll", {"log_probs": np.log(probs), "target": [1, 2, 0]})
    np.testing.assert_allclose(
        APIS["onnx.NegativeLogLikelihoodLoss"].run(call).value, golden.value, rtol=1e-12
    )
    call, golden = make_call("categorical_cross_entropy", {"probs": probs, "target": [1, 2, 0]})
    out = APIS["onnx.NegativeLogLikelihoodLoss(Log(probs))"].run(call)
    np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)


def test_probability_targets_run_the_log_softmax_graph():
    soft = [[0.1, 0.8, 0.1], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]]
    for reduction in ("none", "sum", "mean"):
        call, golden = make_call(
            "softmax_cross_entropy", {"logits": LOGITS, "target": soft}, {"reduction": reduction}
        )
        assert not APIS["onnx.SoftmaxCrossEntropyLoss"].applies(call)
        out = APIS["onnx.ReduceSum(-target*LogSoftmax(axis=1))"].run(call)
        np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)


@pytest.mark.parametrize(
    "api,loss,params",
    [
        ("onnx.Softmax", "softmax", {"axis": 1}),
        ("onnx.LogSoftmax", "log_softmax", {"axis": 0}),
        ("onnx.ReduceLogSumExp", "logsumexp", {"axis": 1}),
        ("onnx.Sigmoid", "sigmoid", {}),
    ],
)
def test_activations(api, loss, params):
    call, golden = make_call(loss, {"x": LOGITS}, params, "float32")
    np.testing.assert_allclose(APIS[api].run(call).value, golden.value, rtol=2e-6, atol=1e-7)


def test_label_smoothing_is_unsupported():
    call, _ = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, {"label_smoothing": 0.1}
    )
    with pytest.raises(Unsupported, match="label_smoothing"):
        APIS["onnx.SoftmaxCrossEntropyLoss"].run(call)


def test_bfloat16_has_no_kernel_and_is_reported_unsupported():
    call, _ = make_call("softmax", {"x": LOGITS}, {"axis": 1}, "bfloat16")
    with pytest.raises(Exception) as info:
        APIS["onnx.Softmax"].run(call)
    assert FW.unsupported_reason(info.value) is not None


def test_gpu_without_cuda_provider_is_unsupported():
    if FW.gpu_missing_reason() is None:
        pytest.skip("this onnxruntime has the CUDA provider")
    call, _ = make_call("softmax", {"x": LOGITS}, {"axis": 1}, device="gpu")
    with pytest.raises(Unsupported, match="CUDAExecutionProvider"):
        APIS["onnx.Softmax"].run(call)


def _bad_label_call(label: int) -> tuple[Call, Finding]:
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": TARGET})
    inputs = {**call.inputs, "target": np.array([label, 1, 0, 1])}
    bad = dataclasses.replace(call, inputs=inputs, grad_inputs=(), cotangent=np.asarray(1.0))
    return bad, inputs


def test_negative_label_wraps_and_the_registry_explains_it():
    bad, inputs = _bad_label_call(-1)
    out = APIS["onnx.SoftmaxCrossEntropyLoss"].run(bad)  # returns instead of raising
    wrapped = evaluate("softmax_cross_entropy", {**inputs, "target": np.array([2, 1, 0, 1])}, {})
    np.testing.assert_allclose(out.value, wrapped.value, rtol=1e-12)
    finding = Finding(
        "onnxruntime", "onnx.SoftmaxCrossEntropyLoss", "softmax_cross_entropy",
        dict(bad.params), inputs, "float64", "cpu", "value", "error", None, out.value, None, True,
    )  # fmt: skip
    assert ENTRIES[0].matches(finding)
    # a label past the end raises, so the entry must not explain another value
    wrong = dataclasses.replace(finding, actual=out.value + 1.0)
    assert not ENTRIES[0].matches(wrong)


def test_label_past_the_end_raises():
    bad, _ = _bad_label_call(3)
    with pytest.raises(Exception, match="GatherElements"):
        APIS["onnx.SoftmaxCrossEntropyLoss"].run(bad)


def test_cli_run_over_the_softmax_cases(tmp_path):
    out = tmp_path / "ort.jsonl"
    cmd = [sys.executable, "-m", "xentcheck.cli", "run", "--framework", "onnxruntime"]
    cmd += ["--cases", "cases/softmax_cross_entropy/basic.yaml", "--out", str(out)]
    cmd += ["--fail-on", "never", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    rows = [r for r in rows if r.get("framework") == "onnxruntime" and "status" in r]
    counts = Counter(r["status"] for r in rows)
    assert counts["pass"] > 0
    grads = {r["status"] for r in rows if r["quantity"].startswith("grad:")}
    assert grads == {"unsupported"}


def test_bfloat16_values_travel_exactly_through_a_session():
    """The CPU provider has Identity for bfloat16: feed and fetch keep every bit."""
    from onnx import helper

    from xentcheck.adapters import onnxruntime_adapter as adapter

    x = np.array([[1.5, -2.25, 3.0e38, 1.0e-40]])
    call, _ = make_call("softmax", {"x": x}, {"axis": 1}, "bfloat16")
    identity = [helper.make_node("Identity", ["x"], ["out"])]
    out = adapter._execute(call, lambda tensors: (identity, {"x": tensors["x"]}))
    np.testing.assert_array_equal(out.value, call.inputs["x"])
    assert out.out_dtype == "bfloat16"


PROBS = [[0.2, 0.7, 0.1], [0.25, 0.25, 0.5], [0.6, 0.3, 0.1]]
SOFT = [[0.1, 0.8, 0.1], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]]

#: calls reaching every branch of the declarations and the frame, which the shipped
#: suite's first calls per API (bad labels, for the class-index operators) leave out
SNIPPET_CALLS = {
    "weight-ignore-sum": (
        "onnx.SoftmaxCrossEntropyLoss", "softmax_cross_entropy",
        {"logits": LOGITS, "target": TARGET, "weight": [0.5, 2.0, 1.25]},
        {"reduction": "sum", "ignore_index": 1}, "float32",
    ),
    "no-weight-none": (
        "onnx.SoftmaxCrossEntropyLoss", "softmax_cross_entropy",
        {"logits": LOGITS, "target": TARGET}, {"reduction": "none"}, "float16",
    ),
    "float-class-index": (
        "onnx.NegativeLogLikelihoodLoss", "nll",
        {"log_probs": np.log(PROBS[:2]), "target": np.array([0.0, 1.5])}, {}, "float64",
    ),
    "log-then-nll": (
        "onnx.NegativeLogLikelihoodLoss(Log(probs))", "categorical_cross_entropy",
        {"probs": PROBS, "target": [1, 2, 0]}, {"reduction": "none"}, "float32",
    ),
    "soft-none": (
        "onnx.ReduceSum(-target*LogSoftmax(axis=1))", "softmax_cross_entropy",
        {"logits": LOGITS, "target": SOFT}, {"reduction": "none"}, "float64",
    ),
    "soft-mean": (
        "onnx.ReduceSum(-target*LogSoftmax(axis=1))", "softmax_cross_entropy",
        {"logits": LOGITS, "target": SOFT}, {"reduction": "mean"}, "float16",
    ),
    "axes": ("onnx.ReduceLogSumExp", "logsumexp", {"x": LOGITS}, {"axis": 0}, "float32"),
    "bfloat16-no-kernel": ("onnx.Softmax", "softmax", {"x": LOGITS}, {"axis": 1}, "bfloat16"),
    "bfloat16-bad-axis": ("onnx.Softmax", "softmax", {"x": LOGITS}, {"axis": 5}, "bfloat16"),
}  # fmt: skip


@pytest.mark.parametrize("key", SNIPPET_CALLS)
def test_snippet_gives_the_adapter_result_bit_for_bit(key):
    """The snippet, run alone (a fresh namespace, nothing of xentcheck), gives the
    adapter's value bit for bit, or raises what the adapter raised."""
    api, loss, inputs, params, dtype = SNIPPET_CALLS[key]
    call, _ = make_call(loss, inputs, params, dtype)
    code = FW.snippet(api, call)
    assert "xentcheck" not in code.replace('"xentcheck"', "")  # only the graph's name
    try:
        want = APIS[api].run(call)
    except Exception as exc:
        with pytest.raises(type(exc)):
            exec(compile(code, key, "exec"), {"__name__": "__main__"})
        return
    ns: dict = {"__name__": "__main__"}
    exec(compile(code, key, "exec"), ns)
    assert ns["grads"] == {} == want.grads
    got = np.asarray(ns["value"], dtype=np.float64)
    assert got.shape == want.value.shape and got.tobytes() == want.value.tobytes()
