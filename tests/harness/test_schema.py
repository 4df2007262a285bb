"""The case-file JSON Schema: valid, generated from the registries, committed, and used."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.cases import CASE_KEYS, FILE_KEYS, load_cases
from xentcheck.harness.errors import CaseError
from xentcheck.harness.generators import GENERATORS
from xentcheck.harness.schema import COMMITTED, PARAMETERS, REGENERATE, case_schema, generate
from xentcheck.harness.schema import text as schema_text
from xentcheck.harness.yamlnodes import load_located
from xentcheck.reference import LOSSES

ROOT = Path(__file__).resolve().parents[2]
SUITE_SCHEMA = ROOT / COMMITTED
SHIPPED = sorted((ROOT / "cases").rglob("*.yaml"))
HEADER = re.compile(r"^# yaml-language-server: \$schema=(\S+)\n")


@pytest.fixture(scope="module")
def schema() -> dict:
    return case_schema()


def test_schema_is_valid_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_losses_inputs_and_parameters_match_the_registry(schema):
    defs = schema["$defs"]
    assert defs["loss"]["enum"] == list(LOSSES)
    for name, spec in LOSSES.items():
        inputs = defs[f"inputs_{name}"]
        assert list(inputs["properties"]) == [i.name for i in spec.inputs], name
        assert inputs["required"] == [i.name for i in spec.inputs if i.required], name
        for i in spec.inputs:
            assert inputs["properties"][i.name] == {"$ref": f"#/$defs/input_{i.kind}"}
        params = defs[f"params_{name}"]["properties"]
        assert set(params) == set(spec.params), name
        for p, choices in spec.choices.items():
            if p == "reduction":
                assert params[p]["else"]["enum"] == list(choices), name
    dispatched = [branch["if"]["properties"]["loss"]["const"] for branch in defs["case"]["allOf"]]
    assert dispatched == list(LOSSES)


def test_generators_dtypes_and_fields_match_the_code(schema):
    defs = schema["$defs"]
    for name, g in GENERATORS.items():
        props = defs[f"generator_{name}"]["properties"]
        assert set(props) == {"random", "shape", "seed", *g.options}, name
        assert set(g.required) <= set(defs[f"generator_{name}"]["required"])
    assert set(defs["generator_for_target"]["properties"]["random"]["enum"]) == set(GENERATORS)
    assert defs["dtype"]["enum"] == list(FLOAT_DTYPES)
    assert set(defs["case"]["properties"]) == CASE_KEYS
    assert set(defs["defaults"]["properties"]) == CASE_KEYS - {"id"}
    assert set(schema["properties"]) == FILE_KEYS


def test_the_committed_schema_is_the_generated_one(capsys):
    """cases/case-schema.json (the editors' copy, shipped in the suite) is generated."""
    from xentcheck.cli import main

    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == schema_text()
    assert SUITE_SCHEMA.read_text("utf-8") == printed, (
        f"{COMMITTED} differs from the schema the registries give; regenerate it: {REGENERATE}"
    )
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(d.startswith("jsonschema") for d in config["project"]["dependencies"])


def test_a_new_loss_needs_no_schema_edit(monkeypatch):
    """A registry row is enough: its inputs, parameters and choices reach the schema."""
    base = LOSSES["binary_cross_entropy"]
    spec = dataclasses.replace(
        base, name="smoothed_bce", params={**base.params, "label_smoothing": 0.0}
    )
    monkeypatch.setitem(LOSSES, spec.name, spec)
    validator = jsonschema.Draft202012Validator(generate())
    case = {"id": "a", "loss": "smoothed_bce", "inputs": {"probs": [0.5], "target": [1.0]}}
    good = {**case, "params": {"label_smoothing": [0.0, 0.1], "reduction": "sum"}}
    assert not list(validator.iter_errors({"cases": [good]}))
    bad = {**case, "params": {"label_smoothing": 2.0}}
    assert any(e.validator == "maximum" for e in validator.iter_errors({"cases": [bad]}))
    unknown = {**case, "inputs": {**case["inputs"], "logits": [0.0]}}
    assert any(
        e.validator == "additionalProperties" for e in validator.iter_errors({"cases": [unknown]})
    )


def test_an_undescribed_parameter_names_the_table_to_extend(monkeypatch):
    base = LOSSES["sigmoid"]
    spec = dataclasses.replace(base, name="tempered_sigmoid", params={"temperature": 1.0})
    monkeypatch.setitem(LOSSES, spec.name, spec)
    with pytest.raises(ValueError, match=r"'temperature' of tempered_sigmoid .* PARAMETERS"):
        generate()
    monkeypatch.setitem(PARAMETERS, "temperature", ("T.", {"type": "number"}))
    assert "temperature" in generate()["$defs"]["params_tempered_sigmoid"]["properties"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_file_names_the_schema_and_validates_against_it(path, schema):
    text = path.read_text("utf-8")
    header = HEADER.match(text)
    assert header, f"{path}: first line must be '# yaml-language-server: $schema=...'"
    reference = header.group(1)
    # relative, so it resolves in a checkout, in the installed suite and in a copy of it
    assert not os.path.isabs(reference) and "src" not in Path(reference).parts, reference
    target = path.parent / reference
    assert target.resolve() == SUITE_SCHEMA.resolve(), f"{path}: $schema points to {target}"
    # the editor's view: the whole file against the schema, before defaults are merged
    jsonschema.Draft202012Validator(schema).validate(load_located(text, str(path)))


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_schema_errors_point_at_the_line_in_defaults(tmp_path):
    p = write(
        tmp_path,
        "defaults:\n"
        "  loss: nll\n"
        "  params:\n"
        "    reduction: [none, avg]\n"
        "cases:\n"
        "  - {id: a, inputs: {log_probs: [[0.0]], target: [0]}}\n",
    )
    with pytest.raises(CaseError) as info:
        load_cases([p])
    assert info.value.line == 4
    assert "defaults.params.reduction[1]: unknown reduction 'avg'" in str(info.value)


def test_schema_errors_point_at_the_row_of_a_literal(tmp_path):
    p = write(
        tmp_path,
        "cases:\n"
        "  - id: a\n"
        "    loss: sigmoid\n"
        "    inputs:\n"
        "      x:\n"
        "        - [1.0, 2.0]\n"
        "        - [3.0, oops]\n",
    )
    with pytest.raises(CaseError) as info:
        load_cases([p])
    assert info.value.line == 7
    assert "cases[0].inputs.x[1][1]: 'oops' is not a number or a list" in str(info.value)


def test_a_case_must_name_its_loss_and_inputs_after_defaults(tmp_path):
    p = write(tmp_path, "cases:\n  - id: a\n    inputs: {x: [1.0]}\n")
    with pytest.raises(CaseError, match=r"cases\[0\]: missing 'loss'") as info:
        load_cases([p])
    assert info.value.line == 2


def test_per_generator_options_come_from_the_schema(tmp_path):
    p = write(
        tmp_path,
        "cases:\n  - id: a\n    loss: sigmoid\n    inputs:\n"
        "      x: {random: binary, shape: [3], keep: 0.5}\n",
    )
    with pytest.raises(CaseError, match=r"unknown field 'keep' \(\{random: binary, shape"):
        load_cases([p])
