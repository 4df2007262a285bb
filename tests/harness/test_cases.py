"""Case files: schema validation with file:line errors, generators, sweeps."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from xentcheck.harness.cases import expand, load_cases, load_file
from xentcheck.harness.errors import CaseError


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """\
cases:
  - id: basic
    loss: softmax_cross_entropy
    description: two rows
    inputs:
      logits: [[1.0, 2.0, 3.0], [0.0, .inf, -.inf]]
      target: [0, 2]
    params:
      reduction: [none, mean, sum]
      label_smoothing: [0.0, 0.1]
    dtypes: [float32, bfloat16]
    tags: [edge]
  - id: generated
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [4, 5], scale: 3.0, seed: 1}
      target: {random: labels, shape: [4], classes: 5, seed: 2}
"""


def test_good_file_loads_and_sweeps_expand(tmp_path):
    cases = load_cases([write(tmp_path, GOOD)])
    assert [c.key for c in cases] == ["c/basic", "c/generated"]
    basic = cases[0]
    assert basic.dtypes == ("float32", "bfloat16")
    assert basic.source.line == 2
    instances = list(expand(basic))
    assert len(instances) == 6
    assert instances[0].name == "c/basic[reduction=none,label_smoothing=0.0]"
    logits = instances[0].inputs()["logits"]
    assert logits.dtype == np.float64 and np.isinf(logits[1, 1]) and logits[1, 2] == -np.inf
    assert instances[0].inputs()["target"].dtype == np.int64
    only = list(expand(cases[1]))
    assert len(only) == 1 and only[0].name == "c/generated"
    assert cases[1].dtypes == ("float64", "float32", "float16", "bfloat16")


def test_generated_inputs_are_reproducible(tmp_path):
    a = load_cases([write(tmp_path, GOOD)])[1]
    b = load_cases([write(tmp_path, GOOD, "d.yaml")])[1]
    x, y = next(expand(a)).inputs(), next(expand(b)).inputs()
    np.testing.assert_array_equal(x["logits"], y["logits"])
    assert x["logits"].shape == (4, 5) and x["target"].max() < 5


def test_defaults_are_merged(tmp_path):
    p = write(
        tmp_path,
        """\
        defaults: {loss: sigmoid, dtypes: [float16], tags: [act]}
        cases:
          - {id: a, inputs: {x: [1.0, 2.0]}}
          - {id: b, inputs: {x: [3.0]}, dtypes: [float64]}
        """,
    )
    a, b = load_file(p, tmp_path)
    assert a.loss == b.loss == "sigmoid" and a.dtypes == ("float16",) and b.dtypes == ("float64",)
    assert a.tags == ("act",)


BAD = [
    ("cases:\n  - id: x\n    loss: nope\n    inputs: {x: [1.0]}\n", 3, "unknown loss 'nope'; use one of: softmax_cross_entropy"),
    ("cases:\n  - id: x\n    loss: sigmoid\n    inputs: {y: [1.0]}\n", 4, "unknown input 'y' (sigmoid takes inputs: x)"),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n    params: {axis: 1}\n",
        5,
        "unknown parameter 'axis' (sigmoid takes parameters: none)",
    ),
    (
        "cases:\n  - id: x\n    loss: nll\n    inputs: {log_probs: [[0.0]], target: [0]}\n    params: {reduction: avg}\n",
        5,
        "unknown reduction 'avg'; use one of: none, sum, mean",
    ),
    ("cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [[1.0], [1.0, 2.0]]}\n", 4, "ragged"),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n",
        5,
        "duplicate id",
    ),
    ("cases:\n  - id: x\n    id: y\n    loss: sigmoid\n", 3, "duplicate key"),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: !!python/object:os.system [1]}\n",
        None,
        "",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs:\n      x: {random: normal, shape: [2, -1]}\n",
        5,
        "shape[1]: -1 is below the minimum 0",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs:\n      x: {random: normal, shape: [100000, 100000]}\n",
        5,
        "the limit is",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs:\n      x: {random: gauss, shape: [2]}\n",
        5,
        "unknown generator 'gauss'",
    ),
    (
        "cases:\n  - id: x\n    loss: nll\n    inputs: {log_probs: [[0.0]], target: [0.5]}\n",
        4,
        "class indices",
    ),
    (
        "cases:\n  - id: x\n    loss: softmax_cross_entropy\n    inputs: {logits: [[0.0]]}\n",
        4,
        "cases[0].inputs: missing 'target'",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n    dtypes: [float8]\n",
        5,
        "cases[0].dtypes[0]: unknown dtype 'float8'",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n    colour: red\n",
        5,
        "unknown field 'colour'",
    ),
    ("cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [a, b]}\n", 4, "inputs.x[0]: 'a' is not a number or a list"),
    ("cases: [\n", None, "invalid YAML"),
    ("just text\n", 1, "top level"),
    (
        "cases:\n  - id: x\n    loss: softmax_cross_entropy\n    inputs: {logits: [[0.0]], target: [0]}\n    params: {label_smoothing: 2}\n",
        5,
        "label_smoothing: 2 is above the maximum 1",
    ),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_broken_files_name_file_line_and_reason(tmp_path, text, line, words):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(CaseError) as info:
        load_cases([p])
    msg = str(info.value)
    assert msg.startswith(str(p))
    assert "\n" not in msg
    assert words in msg
    if line is not None:
        assert info.value.line == line, msg


def test_non_utf8_file_is_rejected_with_its_line(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"cases:\n  - id: caf\xe9\n")
    with pytest.raises(CaseError, match="UTF-8") as info:
        load_cases([p])
    assert info.value.line == 2


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\ncases: []\n")
    with pytest.raises(CaseError, match="expands to more than"):
        load_cases([p])


def test_same_key_in_two_roots_is_refused(tmp_path):
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    write(tmp_path / "r1", GOOD)
    write(tmp_path / "r2", GOOD)
    with pytest.raises(CaseError, match="also defined"):
        load_cases([tmp_path / "r1", tmp_path / "r2"])


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(CaseError, match="no such file"):
        load_cases([tmp_path / "nope"])


def test_yaml_1_2_exponent_floats_are_numbers(tmp_path):
    p = write(tmp_path, "cases:\n  - {id: e, loss: sigmoid, inputs: {x: [1e30, 1.0e30, -2E-5]}}\n")
    (case,) = load_cases([p])
    np.testing.assert_array_equal(next(expand(case)).inputs()["x"], [1e30, 1e30, -2e-5])
