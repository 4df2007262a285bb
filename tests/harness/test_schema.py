"""The case-file JSON Schema: valid, in step with the registries, shipped, and used."""

from __future__ import annotations

import json
import os
import re
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.cases import CASE_KEYS, FILE_KEYS, load_cases
from xentcheck.harness.errors import CaseError
from xentcheck.harness.generators import GENERATORS
from xentcheck.harness.schema import case_schema
from xentcheck.harness.yamlnodes import load_located
from xentcheck.reference import LOSSES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "src" / "xentcheck" / "harness" / "case-schema.json"
SUITE_SCHEMA = ROOT / "cases" / "case-schema.json"
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


def test_schema_is_package_data_and_loads_from_the_package():
    packaged = resources.files("xentcheck.harness").joinpath("case-schema.json")
    assert packaged.is_file()
    assert packaged.read_text("utf-8") == SCHEMA_FILE.read_text("utf-8")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "harness/case-schema.json" in config["tool"]["setuptools"]["package-data"]["xentcheck"]
    assert any(d.startswith("jsonschema") for d in config["project"]["dependencies"])


def generated_schema() -> str:
    """What ``xentcheck schema`` prints (and what users save as their case-schema.json)."""
    return json.dumps(case_schema(), indent=2) + "\n"


def test_the_schema_files_equal_the_generated_schema(capsys):
    from xentcheck.cli import main

    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == generated_schema()
    assert SCHEMA_FILE.read_text("utf-8") == printed
    assert SUITE_SCHEMA.read_text("utf-8") == printed


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
    assert target.read_text("utf-8") == generated_schema()
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
