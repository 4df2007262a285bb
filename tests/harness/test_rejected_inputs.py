"""A rejected input is an error case only when the case says so (``expect_error: true``).

Loading a case asks the reference's input checks (``xentcheck.reference.check``) about
every instance at every dtype: a case whose input the reference rejects without
``expect_error``, or accepts with it, or whose ``expected`` has another shape than the
reference's value, is a one-line ``file:line`` error. The worker keeps a defensive path:
a rejected input without ``expect_error`` is an ``error`` row, never a pass.
"""

from __future__ import annotations

import dataclasses
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from xentcheck.adapters.base import Api, Call, Framework, Output
from xentcheck.cli import main
from xentcheck.harness.cases import InputDef, expand, load_cases, load_file
from xentcheck.harness.errors import CaseError
from xentcheck.harness.worker import golden_for, rounded_inputs, run_api
from xentcheck.reference import InputRejected, check, evaluate, values_read

ROOT = Path(__file__).resolve().parents[2]


def case_file(tmp_path: Path, body: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text("cases:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return p


SOFTMAX = """\
- id: broken
  loss: softmax_cross_entropy
  inputs:
    logits: [[1.0, 2.0, 3.0]]
    {input}
"""

# the broken cases of the issue: (input line, the input named, the reference's reason)
BROKEN = {
    "target of the wrong shape": (
        "target: [2, 1, 0]",
        "target",
        "target shape (3,) does not match logits shape (1, 3)",
    ),
    "float labels": ("target: [2.5]", "target", "class indices must be integers"),
    "NaN label": ("target: [.nan]", "target", "class indices must be integers"),
    "off-by-one label": ("target: [3]", "target", "target label 3 is out of range [0, 3)"),
    "class weight of the wrong length": (
        "target: [2]\n    weight: [1.0, 2.0]",
        "weight",
        "weight shape (2,) does not match the 3 classes",
    ),
}


@pytest.mark.parametrize("what", BROKEN)
def test_a_rejected_input_without_expect_error_is_a_case_error(tmp_path, what):
    line, name, reason = BROKEN[what]
    p = case_file(tmp_path, SOFTMAX.format(input=line))
    with pytest.raises(CaseError) as info:
        load_cases([p])
    message = str(info.value)
    input_line = 1 + p.read_text().splitlines().index(
        next(x for x in p.read_text().splitlines() if x.strip().startswith(f"{name}:"))
    )
    assert message.startswith(f"{p}:{input_line}: "), message
    assert "case 'broken'" in message
    assert "instance 'c/broken' at float64" in message
    assert f"rejects input {name!r}" in message
    assert reason in message
    assert "set expect_error: true" in message and "or correct the input" in message
    # the pytest plugin loads files one by one: the same error
    with pytest.raises(CaseError, match="rejects input"):
        load_file(p, tmp_path)


@pytest.mark.parametrize("what", BROKEN)
def test_the_same_input_is_an_error_case_when_the_case_says_so(tmp_path, what):
    line, _, _ = BROKEN[what]
    p = case_file(tmp_path, SOFTMAX.format(input=line) + "  expect_error: true\n")
    (case,) = load_cases([p])
    assert case.expect_error


@pytest.mark.parametrize("command", ["cases", "run"])
def test_the_cli_rejects_it_on_one_line_with_exit_2(tmp_path, capsys, command):
    p = case_file(tmp_path, SOFTMAX.format(input="target: [3]"))
    argv = ["cases", "--cases", str(p)]
    if command == "run":
        argv = ["run", "--cases", str(p), "--out", str(tmp_path / "r")]
        argv += ["--adapter", "tests.harness.faulty_adapter:FRAMEWORK", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{p}:6: case 'broken'" in err and "target label 3 is out of range" in err
    assert not (tmp_path / "r").exists()


def test_expect_error_on_an_input_the_reference_accepts_is_a_case_error(tmp_path):
    p = case_file(
        tmp_path,
        """\
        - id: fine
          loss: softmax_cross_entropy
          inputs: {logits: [[1.0, 2.0, 3.0]], target: [2]}
          params: {reduction: [none, mean]}
          expect_error: true
        """,
    )
    with pytest.raises(CaseError) as info:
        load_cases([p])
    assert info.value.line == 6
    assert "sets expect_error: true, but the reference accepts instance" in str(info.value)
    assert "'c/fine[reduction=none]' at float64, float32, float16, bfloat16" in str(info.value)


def test_a_parameter_the_reference_rejects_names_the_parameter(tmp_path):
    p = case_file(
        tmp_path,
        """\
        - id: axis
          loss: softmax
          inputs: {x: [[1.0, 2.0]]}
          params:
            axis: [1, 2]
        """,
    )
    with pytest.raises(CaseError) as info:
        load_cases([p])
    assert info.value.line == 6
    assert "instance 'c/axis[axis=2]'" in str(info.value)
    assert "rejects parameter 'axis': axis 2 is out of bounds" in str(info.value)


# 1 + 2**-23 is a float64 and a float32 above 1; it rounds to 1.0 in float16 and bfloat16
JUST_ABOVE_ONE = """\
- id: edge
  loss: binary_cross_entropy
  inputs: {{probs: [1.00000011920928955078125, 0.5], target: [1.0, 0.0]}}
  dtypes: {dtypes}
{extra}"""


def test_every_listed_dtype_is_checked_after_rounding(tmp_path):
    ok = case_file(tmp_path, JUST_ABOVE_ONE.format(dtypes="[float16, bfloat16]", extra=""))
    load_cases([ok])
    rejected = case_file(
        tmp_path,
        JUST_ABOVE_ONE.format(dtypes="[float16, float32]", extra=""),
        "r.yaml",
    )
    with pytest.raises(CaseError, match="'r/edge' at float32: the reference rejects input 'probs'"):
        load_cases([rejected])
    # expect_error must hold at every dtype too: float16 rounds the input into [0, 1]
    mixed = case_file(
        tmp_path,
        JUST_ABOVE_ONE.format(dtypes="[float64, float16]", extra="  expect_error: true\n"),
        "m.yaml",
    )
    with pytest.raises(CaseError, match="accepts instance 'm/edge' at float16"):
        load_cases([mixed])
    both = case_file(
        tmp_path,
        JUST_ABOVE_ONE.format(dtypes="[float64, float32]", extra="  expect_error: true\n"),
        "b.yaml",
    )
    load_cases([both])


def test_an_expected_value_of_the_wrong_shape_names_both_shapes_the_right_way(tmp_path):
    p = case_file(
        tmp_path,
        """\
        - id: shape
          loss: softmax_cross_entropy
          inputs: {logits: [[1.0, 2.0, 3.0]], target: [2]}
          params: {reduction: mean}
          expected:
            value: [1.0, 2.0]
        """,
    )
    with pytest.raises(CaseError) as info:
        load_cases([p])
    assert info.value.line == 7
    assert "expected.value has shape [2], but the reference computes shape []" in str(info.value)


def test_expected_gradients_must_exist_and_have_the_input_shape(tmp_path):
    body = """\
    - id: grads
      loss: softmax_cross_entropy
      inputs: {{logits: [[1.0, 2.0, 3.0]], target: [2]}}
      expected:
        grads: {{{grad}}}
    """
    p = case_file(tmp_path, body.format(grad="logits: [1.0, 2.0, 3.0]"))
    with pytest.raises(CaseError, match=r"expected.grads.logits has shape \[3\], but the "
                       r"reference computes shape \[1, 3\]"):  # fmt: skip
        load_cases([p])
    p = case_file(tmp_path, body.format(grad="target: [0.0]"))
    with pytest.raises(CaseError, match="the reference has no gradient for 'target'"):
        load_cases([p])
    p = case_file(tmp_path, body.format(grad="logits: 0.0"))  # one number: every element
    load_cases([p])


def test_a_scalar_expected_value_applies_to_every_reduction(tmp_path):
    p = case_file(
        tmp_path,
        """\
        - id: sweep
          loss: categorical_cross_entropy
          inputs: {probs: [[0.5, 0.5]], target: [0]}
          params: {reduction: [none, sum, mean]}
          expected: {value: 0.6931471805599453}
        """,
    )
    assert len(list(expand(load_cases([p])[0]))) == 3


# ------------------------------------------------------ the worker's defensive path


def _raises(call: Call) -> Output:
    raise ValueError("rejected, as a conforming API would")


def _returns(call: Call) -> Output:
    return Output(value=np.asarray(1.0), grads={}, out_dtype=call.dtype)


FRAMEWORK = Framework(
    name="strict",
    apis=[
        Api("strict.raises", "softmax_cross_entropy", _raises),
        Api("strict.returns", "softmax_cross_entropy", _returns),
    ],
    versions=lambda: {},
    devices=lambda: {"cpu": "cpu", "gpu": None},
)


@pytest.mark.parametrize("expect_error", [False, True])
def test_the_worker_never_passes_a_rejected_input_the_case_did_not_expect(tmp_path, expect_error):
    p = case_file(tmp_path, SOFTMAX.format(input="target: [2]"))
    (case,) = load_cases([p])
    # what a case that escaped the loader's check would hold: an off-by-one label
    broken = dataclasses.replace(
        case, inputs={**case.inputs, "target": InputDef(literal=np.array([3]))},
        expect_error=expect_error,
    )  # fmt: skip
    (instance,) = expand(broken)
    inputs = rounded_inputs(instance, instance.inputs(), "float64")
    golden, reason = golden_for(instance, inputs)
    assert golden is None and "out of range" in reason
    statuses = {}
    for api in FRAMEWORK.apis:
        (row,) = run_api(FRAMEWORK, api, instance, inputs, "float64", "cpu", golden, reason)
        statuses[api.name] = row["status"]
        if not expect_error:
            assert "does not set expect_error: true" in row["message"]
            assert reason in row["message"]
    if expect_error:
        assert statuses == {"strict.raises": "pass", "strict.returns": "error"}
    else:
        assert statuses == {"strict.raises": "error", "strict.returns": "error"}


# ------------------------------------- the validation-only path agrees with evaluate


def _verdict(fn, loss, inputs, params):
    try:
        return "ok", fn(loss, inputs, params)
    except ValueError as exc:
        return "rejected", str(exc)


def _shipped_instances():
    """(case, instance, dtypes): every instance of the shipped suite (but the large
    vocabularies) at float64, and the first of each case at every dtype it lists."""
    for case in load_cases([ROOT / "cases"]):
        if "large-vocab" in case.tags:
            continue
        for n, instance in enumerate(expand(case)):
            yield case, instance, case.dtypes if n == 0 else ("float64",)


def test_check_agrees_with_evaluate_on_every_shipped_instance_and_dtype():
    seen = {"ok": 0, "rejected": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow when rounding to float16
        for case, instance, dtypes in _shipped_instances():
            raw = instance.inputs()
            for dtype in dtypes:
                inputs = rounded_inputs(instance, raw, dtype)
                verdict, shape_or_reason = _verdict(check, case.loss, inputs, instance.params)
                golden = _verdict(evaluate, case.loss, inputs, instance.params)
                if golden[0] == "ok":
                    golden = ("ok", golden[1].value.shape)
                assert (verdict, shape_or_reason) == golden, (instance.name, dtype)
                seen[verdict] += 1
    assert seen["ok"] > 700 and seen["rejected"] > 100, seen


def test_check_reads_only_the_values_it_declares():
    """Stand-ins (zeros that hold no memory) for every other input give the same answer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for case, instance, dtypes in _shipped_instances():
            raw = instance.inputs()
            read = values_read(case.loss)
            for dtype in dtypes:
                inputs = rounded_inputs(instance, raw, dtype)
                stand_ins = {
                    k: v if k in read else np.broadcast_to(np.zeros((), v.dtype), v.shape)
                    for k, v in inputs.items()
                }
                assert _verdict(check, case.loss, stand_ins, instance.params) == _verdict(
                    check, case.loss, inputs, instance.params
                ), (instance.name, dtype)


def test_a_rejection_names_its_input_or_parameter():
    logits = np.zeros((2, 3))
    cases = {
        "target": ({"logits": logits, "target": np.array([0, 3])}, {}),
        "weight": ({"logits": logits, "target": np.array([0, 1]), "weight": np.ones(2)}, {}),
        "params.label_smoothing": (
            {"logits": logits, "target": np.array([0, 1])}, {"label_smoothing": 2.0},
        ),
    }  # fmt: skip
    for field, (inputs, params) in cases.items():
        with pytest.raises(InputRejected) as info:
            check("softmax_cross_entropy", inputs, params)
        assert info.value.field == field
        with pytest.raises(ValueError, match=str(info.value).split(" ")[0]):
            evaluate("softmax_cross_entropy", inputs, params)
