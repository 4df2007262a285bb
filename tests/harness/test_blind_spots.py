"""The three blind spots of torch.testing's tolerances, as custom adapters.

Each adapter returns the reference's exact answer rounded to the dtype, except for one
deliberate defect:

1. the gradient of a [1, 262144] float32 softmax cross-entropy 1% wrong on every
   non-target class (max_rel_err 0.01, far inside atol 1e-5: the probabilities are ~4e-6);
2. a tiny loss (BCE with logits at logit 40 and target 1, about 4e-18) flushed to 0;
3. a float64 loss computed in float32 and upcast (about 1e8 float64 ULP, inside rtol 1e-7).

Under the ULP criterion each row is a ``mismatch`` with its accuracy class; under the old
``tolerance`` criterion each passes, which is the blind spot.
"""

from __future__ import annotations

import textwrap

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output
from xentcheck.dtypes import quantize, saturate
from xentcheck.harness.cases import load_cases
from xentcheck.harness.plan import instances_of
from xentcheck.harness.worker import run_framework
from xentcheck.reference import evaluate


def _golden(call: Call):
    return evaluate(call.loss, dict(call.inputs), {k: call.params[k] for k in call.explicit})


def _rounded(a, dtype: str) -> np.ndarray:
    return quantize(saturate(np.asarray(a, dtype=np.float64), dtype), dtype)


def gradient_one_percent_off(call: Call) -> Output:
    """Exact, but every non-target class of the logits' gradient 1% too large."""
    g = _golden(call)
    grad = np.array(g.grads["logits"])
    target = np.asarray(call.inputs["target"])
    off = np.ones(grad.shape, dtype=bool)
    off[np.arange(grad.shape[0]), target] = False
    grad[off] *= 1.01
    return Output(_rounded(g.value, call.dtype), {"logits": _rounded(grad, call.dtype)}, call.dtype)


def tiny_loss_flushed(call: Call) -> Output:
    """Exact, but a loss below 1e-10 is returned as 0."""
    g = _golden(call)
    value = np.where(np.abs(g.value) < 1e-10, 0.0, g.value)
    grads = {k: _rounded(v, call.dtype) for k, v in g.grads.items()}
    return Output(_rounded(value, call.dtype), grads, call.dtype)


def float64_in_float32(call: Call) -> Output:
    """The loss and gradients computed from float32 inputs in float32, returned as float64."""
    inputs = {k: (quantize(v, "float32") if np.asarray(v).dtype.kind == "f" else v)
              for k, v in call.inputs.items()}  # fmt: skip
    g = evaluate(call.loss, inputs, {k: call.params[k] for k in call.explicit})
    grads = {k: quantize(v, "float32") for k, v in g.grads.items()}
    return Output(quantize(g.value, "float32"), grads, call.dtype)


def framework(run, loss: str) -> Framework:
    return Framework(
        name="blind",
        apis=[Api(f"blind.{loss}", loss, run)],
        versions=lambda: {"numpy": np.__version__},
        devices=lambda: {"cpu": "the test's CPU", "gpu": None},
    )


CASES = {
    "vocab": ("softmax_cross_entropy", gradient_one_percent_off, """
        - id: vocab-262144
          description: One row of 262,144 logits of scale 1.
          inputs:
            logits: {random: normal, shape: [1, 262144], scale: 1.0, seed: 5}
            target: {random: labels, shape: [1], classes: 262144, seed: 6}
          dtypes: [float32]
        """),
    "tiny": ("binary_cross_entropy_with_logits", tiny_loss_flushed, """
        - id: confident
          description: Logit 40, target 1; the loss is log1p(exp(-40)), about 4.2e-18.
          inputs:
            logits: [40.0]
            target: [1.0]
          params: {reduction: sum}
          dtypes: [float32, float64]
        """),
    "float32": ("softmax_cross_entropy", float64_in_float32, """
        - id: moderate
          description: Logits [4, 10] of scale 3, random targets.
          inputs:
            logits: {random: normal, shape: [4, 10], scale: 3.0, seed: 7}
            target: {random: labels, shape: [4], classes: 10, seed: 8}
          params: {reduction: mean}
          dtypes: [float64]
        """),
}  # fmt: skip


def rows_of(name: str, criterion: str, tmp_path) -> dict[tuple[str, str], dict]:
    loss, run, cases = CASES[name]
    file = tmp_path / f"{name}.yaml"
    file.write_text(
        f"defaults:\n  loss: {loss}\ncases:\n" + textwrap.indent(textwrap.dedent(cases), "  ")
    )
    rows: list[dict] = []
    run_framework(framework(run, loss), instances_of(load_cases([file])), None, ["cpu"],
                  rows.append, criterion=criterion)  # fmt: skip
    return {(r["dtype"], r["quantity"]): r for r in rows}


def test_a_gradient_one_percent_wrong_at_a_large_vocabulary_is_wrong(tmp_path):
    rows = rows_of("vocab", "ulp", tmp_path)
    grad = rows[("float32", "grad:logits")]
    assert grad["status"] == "mismatch" and grad["accuracy"] == "wrong", grad
    assert grad["criterion"] == "ulp" and grad["excess"] > 1 and grad["digits_lost"] > 2
    assert rows[("float32", "value")]["status"] == "pass"
    old = rows_of("vocab", "tolerance", tmp_path)[("float32", "grad:logits")]
    assert old["status"] == "pass" and old["criterion"] == "tolerance"  # the blind spot


def test_a_tiny_loss_flushed_to_zero_is_wrong(tmp_path):
    rows = rows_of("tiny", "ulp", tmp_path)
    for dtype in ("float32", "float64"):
        value = rows[(dtype, "value")]
        assert value["status"] == "mismatch" and value["accuracy"] == "wrong", value
        assert value["actual"] == [0.0]
        assert rows[(dtype, "grad:logits")]["status"] == "pass"
    old = rows_of("tiny", "tolerance", tmp_path)
    assert {old[(d, "value")]["status"] for d in ("float32", "float64")} == {"pass"}


def test_a_float64_api_computing_in_float32_is_a_precision_finding(tmp_path):
    rows = rows_of("float32", "ulp", tmp_path)
    for quantity in ("value", "grad:logits"):
        r = rows[("float64", quantity)]
        assert r["status"] == "mismatch" and r["accuracy"] == "precision", r
        assert r["precision_of"] == "float32" and 6 < r["digits_lost"] < 10
    old = rows_of("float32", "tolerance", tmp_path)
    assert {r["status"] for r in old.values()} == {"pass"}
