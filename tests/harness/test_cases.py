"""Case files: schema validation with file:line errors, generators, sweeps."""

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from xentcheck.cli import main
from xentcheck.harness import yamlnodes
from xentcheck.harness.cases import expand, load_cases, load_file
from xentcheck.harness.errors import CaseError
from xentcheck.harness.runner import reference_rows
from xentcheck.reference import LOSSES, evaluate


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
    (
        "cases:\n  - id: x\n    loss: nope\n    inputs: {x: [1.0]}\n",
        3,
        "unknown loss 'nope'; use one of: softmax_cross_entropy",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {y: [1.0]}\n",
        4,
        "unknown input 'y' (sigmoid takes inputs: x)",
    ),
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
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [a, b]}\n",
        4,
        "inputs.x[0]: 'a' is not a number or a list",
    ),
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


# ----------------------------------------------------------- hostile and broken input

CASE = "cases:\n  - id: x\n    loss: {loss}\n    inputs:\n      {inputs}\n"
SIGMOID = CASE.format(loss="sigmoid", inputs="x: {value}")
NLL = CASE.format(loss="nll", inputs="log_probs: [[0.0, 0.0]]\n      target: {value}")

HOSTILE = [
    # (document, line or None, words in the message)
    (SIGMOID.format(value="{random: normal, shape: [1000000, 1000000]}"), 5, "1000000000000 elements"),
    (SIGMOID.format(value="{random: normal, shape: [10, -3]}"), 5, "shape[1]: -3 is below the minimum 0"),
    (SIGMOID.format(value="{random: normal, shape: [2], seed: " + "9" * 30 + "}"), 5, "seed: 9999"),
    (SIGMOID.format(value="{random: normal, shape: [2], sigma: 2}"), 5, "unknown field 'sigma'"),
    (SIGMOID.format(value="{random: uniform, shape: [2], high: .inf}"), 5, "must be finite"),
    (SIGMOID.format(value="{random: binary, shape: [2], p: 2}"), 5, "p: 2 is above the maximum 1"),
    (SIGMOID.format(value="{random: probabilities, shape: [2, 3], axis: 2}"), 5, "axis 2 out of range"),
    (SIGMOID.format(value="{random: labels, shape: [2], classes: 3}"), 5, "unknown generator 'labels'"),
    (SIGMOID.format(value="{fill: x, shape: [2]}"), 5, "fill: 'x' is not a number"),
    (SIGMOID.format(value="[" * 100 + "]" * 100), 5, "nesting deeper than 64"),
    (SIGMOID.format(value="[" + "9" * 5000 + "]"), 5, "Exceeds the limit"),
    (SIGMOID.format(value="[" + "9" * 30 + "]"), 5, "does not fit in 64 bits"),
    (SIGMOID.format(value="[[1.0, 2.0], [3.0]]"), 5, "ragged"),
    (SIGMOID.format(value="[2001-12-14]"), 5, "reads as a date"),
    (SIGMOID.format(value="!!binary aGk="), 5, "reads as a bytes"),
    (SIGMOID.format(value="!!python/object/apply:os.system [ls]"), 5, "not allowed"),
    (SIGMOID.format(value="!!python/name:os.system 1"), 5, "not allowed"),
    (SIGMOID.format(value="!!set {a, b}"), 5, "not allowed"),
    (SIGMOID.format(value="[true, false]"), 5, "True is not a number"),
    (NLL.format(value="[1.5]"), 6, "holds class indices: write integers"),
    (NLL.format(value="[a]"), 6, "target[0]: 'a' is not a number"),
    (NLL.format(value="{random: normal, shape: [1]}"), 6, "unknown generator 'normal'"),
    ("a: &a {id: x}\ncases:\n  - <<: *a\n", 3, "merge keys"),
    ("cases: &a [*a]\n", 1, "recursive alias"),
    ("cases:\n  - id: x\n    1: 2\n", 3, "mapping key 1 is not a name"),
    ("cases:\n  - id: x\u0000\n", 2, "is not allowed in a YAML file"),
    ("cases:\n  - id: \"\\ud800\"\n", 2, "invalid"),
    ("cases: []\n---\ncases: []\n", 2, "another document"),
    ("", 1, "top level must be a mapping"),
    ("cases:\n", 1, "cases: None is not a list"),
    (
        "cases:\n  - id: x\n    loss: softmax_cross_entropy\n"
        "    inputs: {logits: [[0.0]], target: [0]}\n"
        "    params: {reduction: [none, sum, mean], ignore_index: [" + ", ".join(["1"] * 60) + "],"
        " label_smoothing: [" + ", ".join(["0.1"] * 60) + "]}\n",
        5,
        "10800 instances; the limit is 10000",
    ),
    (
        "cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [1.0]}\n"
        "    expected: {grads: {y: [1.0]}}\n",
        5,
        "sigmoid has no input 'y'",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "words"), HOSTILE)
def test_hostile_input_is_refused_in_one_line(tmp_path, text, line, words):
    p = tmp_path / "hostile.yaml"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(CaseError) as info:
        load_cases([p])
    msg = str(info.value)
    assert msg.startswith(f"{p}:") or msg.startswith(f"{p}: ")
    assert len(msg.splitlines()) == 1 and words in msg, msg
    if line is not None:
        assert info.value.line == line, msg


def test_alias_chain_is_refused_without_recursion(tmp_path):
    lines = ["a0: &a0 [1.0]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 5000)]
    p = tmp_path / "chain.yaml"
    p.write_text("\n".join(lines) + "\ncases: []\n")
    with pytest.raises(CaseError, match="nesting deeper than 64"):
        load_cases([p])


def test_huge_file_is_refused_before_it_is_parsed(tmp_path):
    p = tmp_path / "huge.yaml"
    with p.open("wb") as f:  # sparse: 1 GiB of zeros takes no disk
        f.truncate(1 << 30)
    t0 = time.perf_counter()
    with pytest.raises(CaseError, match="limited to 4194304") as info:
        load_cases([p])
    assert time.perf_counter() - t0 < 1.0
    assert info.value.line is None


def test_document_with_too_many_values_is_refused_while_composing(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlnodes, "MAX_NODES", 1000)  # the real limit is 500k: same code path
    p = tmp_path / "many.yaml"
    p.write_text("cases:\n  - id: x\n    loss: sigmoid\n    inputs: {x: [" + "0," * 1200 + "0]}\n")
    with pytest.raises(CaseError, match="more than 1000 values") as info:
        load_cases([p])
    assert info.value.line == 4


def test_float_class_indices_load_when_the_case_expects_an_error(tmp_path):
    p = tmp_path / "float_labels.yaml"
    p.write_text(NLL.format(value="[1.5]") + "    expect_error: true\n")
    (case,) = load_cases([p])
    assert next(expand(case)).inputs()["target"].tolist() == [1.5]


def test_byte_order_mark_and_yaml_1_2_floats_are_accepted(tmp_path):
    p = tmp_path / "bom.yaml"
    p.write_bytes("\ufeff".encode() + SIGMOID.format(value="[1e3, -2.5E-1]").encode())
    (case,) = load_cases([p])
    assert next(expand(case)).inputs()["x"].tolist() == [1000.0, -0.25]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cases:\n  - id: x\n    loss: nope\n", "unknown loss 'nope'"),
        (SIGMOID.format(value="{random: normal, shape: [100000, 100000, 100000]}"), "elements"),
        ("cases: [[[[\n", "invalid YAML"),
    ],
)
def test_cli_reports_bad_case_files_in_one_line_with_exit_2(tmp_path, capsys, text, words):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    assert main(["cases", "--cases", str(p)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"xentcheck: error: {p}:") and words in err[0]


# ------------------------------------------------------------- error-behaviour cases

SUITE = Path(__file__).resolve().parents[2] / "cases"


def test_every_error_case_makes_the_reference_raise():
    """The cases tagged error-behaviour (each loss's errors.yaml, and its bad labels)."""
    suite = load_cases([SUITE])
    cases = [c for c in suite if "error-behaviour" in c.tags]
    assert cases and all(c.expect_error for c in cases)
    rows = reference_rows(cases)
    assert len(rows) == sum(1 for c in cases for _ in expand(c))
    assert {r["status"] for r in rows} == {"pass"}, [r for r in rows if r["status"] != "pass"]
    covered = {c.loss for c in cases}
    # sigmoid and log_sigmoid are defined on every real, infinite and NaN input
    assert covered == set(LOSSES) - {"sigmoid", "log_sigmoid"}
    in_errors_files = [c for c in suite if Path(c.source.file).name == "errors.yaml"]
    assert in_errors_files and all("error-behaviour" in c.tags for c in in_errors_files)


@pytest.mark.parametrize(
    "probs", [[[0.2, 1.5, 0.5]], [[-0.2, 0.7, 0.5]], [[np.inf, 0.0, 0.0]]], ids=str
)
def test_categorical_cross_entropy_rejects_probabilities_outside_0_1(probs):
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        evaluate("categorical_cross_entropy", {"probs": np.array(probs), "target": np.array([1])})
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        evaluate(
            "categorical_cross_entropy",
            {"probs": np.array(probs), "target": np.array([[0.0, 1.0, 0.0]])},
        )


def test_categorical_cross_entropy_lets_nan_probabilities_through():
    g = evaluate(
        "categorical_cross_entropy",
        {"probs": np.array([[np.nan, 0.5, 0.5]]), "target": np.array([1])},
        {"reduction": "sum"},
    )
    assert g.value == pytest.approx(np.log(2))


ULP_CASE = """\
cases:
  - id: pinned
    loss: categorical_cross_entropy
    inputs: {{probs: [[0.5, 0.5]], target: [0]}}
    {field}
"""


def test_an_expected_value_can_be_pinned_in_ulp(tmp_path):
    p = write(
        tmp_path,
        ULP_CASE.format(field="expected: {value: 0.6931471805599453, tolerance: {ulp: 1}}"),
    )
    (case,) = load_cases([p])
    assert case.expected["tolerance"] == {"ulp": 1.0}
    assert case.tolerance == {}  # framework rows keep their rtol/atol


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "expected: {value: 0.69, tolerance: {ulp: -1}}",
            r"tolerance.ulp: -1 is below the minimum 0",
        ),
        ("expected: {value: 0.69, tolerance: {ulp: 1, rtol: 0.0}}", r"expected.tolerance"),
        ("expected: {value: 0.69, tolerance: {ulp: one}}", r"'one' is not a number"),
        ("expected: {tolerance: {ulp: 1}}", r"expected"),
        ("tolerance: {ulp: 1}", r"a ULP bound on expected values goes in expected.tolerance"),
    ],
)
def test_a_ulp_tolerance_is_validated(tmp_path, field, message):
    p = write(tmp_path, ULP_CASE.format(field=field))
    with pytest.raises(CaseError, match=message) as info:
        load_cases([p])
    assert info.value.line == 5
