"""make_call: the one Call the worker, the plugin, bench and the adapter tests build."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.adapters import calls as test_calls
from xentcheck.adapters import Call
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import Instance, expand, load_cases
from xentcheck.harness.worker import golden_for, rounded_inputs, run_instance
from xentcheck.reference import LOSSES, cotangent, differentiable_inputs

CASES = """
defaults:
  loss: softmax_cross_entropy
  dtypes: [float64, float32, float16]
cases:
  - id: weighted
    inputs:
      logits: [[1.0, 2.0, 3.0], [3.0, 1.0, -1.0], [0.1, 0.2, 0.3]]
      target: [2, 0, 1]
      weight: [0.1, 1.0, 2.0]
    params:
      reduction: [none, mean]
      ignore_index: [null, 1]
  - id: soft
    inputs:
      logits: [[1.0, 2.0, 3.0], [3.0, 1.0, -1.0]]
      target: [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]
    params:
      label_smoothing: 0.1
  - id: fractional-class-index
    description: a float class index (1.5) that no framework may truncate to 1
    expect_error: true
    inputs:
      logits: [[1.0, 2.0, 3.0], [3.0, 1.0, -1.0]]
      target: [0.0, 1.5]
"""


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> list[Instance]:
    folder: Path = tmp_path_factory.mktemp("calls")
    (folder / "sce.yaml").write_text(CASES)
    return [i for c in load_cases([folder]) for i in expand(c)]


def worker_call(instance: Instance, dtype: str, device: str = "cpu") -> Call:
    """The Call as the worker's steps build it: round, golden, make_call."""
    inputs = rounded_inputs(instance, instance.inputs(), dtype)
    golden, _ = golden_for(instance, inputs)
    return make_call(instance, inputs, dtype, device, golden)


def assert_same_call(got: Call, want: Call) -> None:
    """Field by field, arrays by dtype, shape and bits (NaN equal to NaN)."""
    for name in ("loss", "params", "explicit", "dtype", "device", "grad_inputs"):
        assert getattr(got, name) == getattr(want, name), name
    assert set(got.inputs) == set(want.inputs)
    pairs = [(f"inputs[{k}]", got.inputs[k], want.inputs[k]) for k in want.inputs]
    for what, a, b in [*pairs, ("cotangent", got.cotangent, want.cotangent)]:
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), what
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), what


def test_the_worker_hands_each_api_make_calls_call(instances) -> None:
    pytest.importorskip("torch", reason="the worker's calls are recorded through real torch APIs")
    from xentcheck.adapters import load_framework

    fw = load_framework("torch")
    seen: list[tuple[str, Call]] = []

    def recorded(api):
        def run(call):
            seen.append((api.name, call))
            return api.run(call)

        return replace(api, run=run)

    def outcome(api, call: Call) -> object:
        try:
            return np.asarray(api.run(call).value).tobytes()
        except Exception as exc:  # a raising API is an outcome too
            return type(exc).__name__

    recording = replace(fw, apis=[recorded(a) for a in fw.apis])
    apis = {a.name: a for a in fw.apis}
    for inst in instances:
        seen.clear()
        rows = run_instance(recording, inst, None, ["cpu"])
        assert len(seen) == len({(r["api"], r["dtype"]) for r in rows}) > 0
        for name, call in seen:
            want = worker_call(inst, call.dtype)
            assert_same_call(call, want)
            # the adapter gives the same on make_call's Call as on the worker's
            assert outcome(apis[name], want) == outcome(apis[name], call), (inst.name, name)


def test_adapter_tests_build_the_workers_call(instances) -> None:
    # the adapter tests' helper takes plain arrays; a float class index stays a float
    # (the reference rejects 1.5) rather than being truncated to the class 1
    for inst in instances:
        for dtype in inst.case.dtypes:
            raw = {k: v.tolist() for k, v in inst.inputs().items()}
            call, golden = test_calls.make_call(inst.loss, raw, inst.params, dtype)
            assert_same_call(call, worker_call(inst, dtype))
            assert (golden is None) == inst.case.expect_error
    fractional = next(i for i in instances if i.case.id == "fractional-class-index")
    call, _ = test_calls.make_call(fractional.loss, fractional.inputs(), fractional.params)
    assert call.inputs["target"].tolist() == [0.0, 1.5]


def test_registry_defaults_are_filled_and_explicit_is_what_the_case_set(instances) -> None:
    spec = LOSSES["softmax_cross_entropy"]
    for inst in instances:
        call = worker_call(inst, "float64")
        assert dict(call.params) == {**spec.params, **inst.params}
        assert call.explicit == frozenset(inst.params)
    soft = next(i for i in instances if i.case.id == "soft")
    call = worker_call(soft, "float64")
    assert call.explicit == {"label_smoothing"}
    assert call.params["reduction"] == spec.params["reduction"]
    assert call.is_set("label_smoothing") and not call.is_set("reduction")


def test_cotangent_has_the_golden_value_shape(instances) -> None:
    shapes = set()
    for inst in (i for i in instances if not i.case.expect_error):
        inputs = rounded_inputs(inst, inst.inputs(), "float32")
        golden, _ = golden_for(inst, inputs)
        call = make_call(inst, inputs, "float32", "cpu", golden)
        assert call.cotangent.shape == golden.value.shape
        assert np.array_equal(call.cotangent, cotangent(golden.value.shape))
        assert call.grad_inputs == differentiable_inputs(inst.loss, inputs) == tuple(golden.grads)
        shapes.add(call.cotangent.shape)
    assert shapes == {(3,), ()}  # reduction none and a reduced loss


def test_no_golden_gives_no_grad_inputs_and_a_scalar_cotangent(instances) -> None:
    rejected = next(i for i in instances if i.case.expect_error)
    inputs = rounded_inputs(rejected, rejected.inputs(), "float64")
    golden, reason = golden_for(rejected, inputs)
    assert golden is None and reason
    call = make_call(rejected, inputs, "float64", "gpu", golden)
    assert call.grad_inputs == ()
    assert call.cotangent.shape == () and call.cotangent == 1.0
    assert call.device == "gpu"


def test_shared_computes_the_golden_side_once(instances) -> None:
    inst = instances[0]
    inputs = rounded_inputs(inst, inst.inputs(), "float64")
    golden, _ = golden_for(inst, inputs)
    shared: dict = {}
    first = make_call(inst, inputs, "float64", "cpu", golden, shared)
    second = make_call(inst, inputs, "float64", "gpu", golden, shared)
    assert second.cotangent is first.cotangent  # reused, not recomputed
    assert_same_call(first, make_call(inst, inputs, "float64", "cpu", golden))
    assert_same_call(second, make_call(inst, inputs, "float64", "gpu", golden))
