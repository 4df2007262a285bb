"""The worker's goldens of the running instance (``worker.instance_goldens``): dtypes whose
rounded inputs are the same share one evaluation, a sensitivity perturbation that moves
no input reads the golden instead of evaluating it again, and neither changes an answer
or a row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xentcheck.harness import sensitivity as sens
from xentcheck.harness import worker
from xentcheck.harness.cases import expand, load_cases

ROOT = Path(__file__).resolve().parents[2]

# literal inputs exact in float64, float32 and float16 (halves and small integers); one-hot
# probability targets, which the sensitivity's patterns do not move (a 0 or 1 target
# multiplies exactly), and logits it does
CASES = """\
cases:
  - id: exact
    loss: softmax_cross_entropy
    inputs:
      logits: [[0.5, 1.5, -2.0], [3.0, 0.25, 1.0]]
      target: [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    params: {reduction: [none, mean]}
    dtypes: [float64, float32, float16, bfloat16]
  - id: generated
    loss: binary_cross_entropy_with_logits
    inputs:
      logits: {random: normal, shape: [4, 3], seed: 5}
      target: {random: binary, shape: [4, 3], seed: 6}
    dtypes: [float64, float32]
"""


@pytest.fixture
def instances(tmp_path):
    (tmp_path / "c.yaml").write_text(CASES)
    return [i for c in load_cases([tmp_path]) for i in expand(c)]


@pytest.fixture
def evaluations(monkeypatch):
    """The inputs of every reference evaluation the worker's golden_for makes."""
    made: list[dict[str, np.ndarray]] = []
    real = worker.evaluate

    def counting(loss, inputs, params):
        made.append(inputs)
        return real(loss, inputs, params)

    monkeypatch.setattr(worker, "evaluate", counting)
    return made


def _same(a, b) -> bool:
    """Golden answers equal bit for bit (value, gradients, rejection message)."""
    (ga, ea), (gb, eb) = a, b
    if ga is None or gb is None:
        return ga is gb and ea == eb
    pairs = [(ga.value, gb.value)] + [(ga.grads[k], gb.grads[k]) for k in ga.grads]
    return ga.grads.keys() == gb.grads.keys() and all(
        np.asarray(x).tobytes() == np.asarray(y).tobytes() and np.shape(x) == np.shape(y)
        for x, y in pairs
    )


def test_dtypes_with_the_same_rounded_inputs_share_one_evaluation(instances, evaluations):
    exact = instances[0]
    raw = exact.inputs()
    with worker.instance_goldens(exact):
        answers = [
            worker._golden(exact, worker.rounded_inputs(exact, raw, d), None, remember=True)
            for d in exact.case.dtypes
        ]
    assert len(evaluations) == 1  # the halves are the same at every dtype
    assert [found for _, found in answers] == [False, True, True, True]
    again = worker.golden_for(exact, worker.rounded_inputs(exact, raw, "float16"))
    assert len(evaluations) == 2  # outside the block: evaluated afresh
    assert all(_same(a, again) for a, _ in answers)


def test_generated_inputs_rounded_differently_are_evaluated_at_each_dtype(instances, evaluations):
    generated = instances[-1]
    raw = generated.inputs()
    with worker.instance_goldens(generated):
        for d in generated.case.dtypes:
            worker._golden(generated, worker.rounded_inputs(generated, raw, d), None, remember=True)
    assert len(evaluations) == 2


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_a_perturbation_that_moves_no_input_is_not_evaluated_and_d_is_unchanged(
    instances, evaluations, dtype
):
    exact = instances[0]  # reduction none: the cotangent patterns apply too
    inputs = worker.rounded_inputs(exact, exact.inputs(), dtype)
    golden, _ = worker.golden_for(exact, inputs)
    evaluations.clear()
    plain = sens.sensitivity(exact, inputs, dtype, golden)
    alone = len(evaluations)
    evaluations.clear()
    with worker.instance_goldens(exact):
        worker._golden(exact, inputs, None, remember=True)  # the run's golden, at hand
        evaluations.clear()
        shared = sens.sensitivity(exact, inputs, dtype, golden)
    # the one-hot target's three patterns move nothing: the golden answers them
    assert len(evaluations) == alone - 3
    assert plain.keys() == shared.keys()
    for q in plain:
        assert plain[q].tobytes() == shared[q].tobytes(), q


def test_the_rows_are_those_of_goldens_computed_one_dtype_at_a_time(instances):
    pytest.importorskip("torch", reason="the worker's rows need a framework: torch")
    from xentcheck.adapters import load_framework

    fw = load_framework("torch")
    fw.setup()
    drop = ("elapsed_s", "compile_s")
    for instance in instances:
        rows = worker.run_instance(fw, instance, None, ["cpu"])
        alone = []
        for dtype in instance.case.dtypes:
            inputs = worker.rounded_inputs(instance, instance.inputs(), dtype)
            golden, reason = worker.golden_for(instance, inputs)  # no goldens at hand
            shared: dict = {}
            for api in fw.apis_for(instance.loss):
                alone += worker.run_api(fw, api, instance, inputs, dtype, "cpu", golden, reason,
                                        shared)  # fmt: skip
        assert rows and [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
            {k: v for k, v in r.items() if k not in drop} for r in alone
        ]


def test_same_inputs_compares_names_dtypes_shapes_and_every_byte():
    a = np.linspace(-3.0, 3.0, 1000)
    base = {"logits": a, "target": np.arange(10)}
    assert worker.same_inputs(base, {"logits": a.copy(), "target": np.arange(10)})
    one_off = a.copy()
    one_off[501] = np.nextafter(one_off[501], np.inf)  # off the sampled elements
    assert not worker.same_inputs(base, {**base, "logits": one_off})
    assert not worker.same_inputs(base, {**base, "logits": a.astype(np.float32)})
    assert not worker.same_inputs(base, {**base, "logits": a.reshape(10, 100)})
    assert not worker.same_inputs(base, {"logits": a})
    zeros = {"x": np.zeros(3)}
    assert not worker.same_inputs(zeros, {"x": -np.zeros(3)})  # -0.0: other bytes
    nan = {"x": np.array([np.nan, 1.0])}
    assert worker.same_inputs(nan, {"x": np.array([np.nan, 1.0])})
