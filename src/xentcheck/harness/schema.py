"""The JSON Schema of case files: generated from the registries, and used to validate.

The schema (JSON Schema draft 2020-12) is the one machine-readable description of the
case format. :func:`generate` builds it from what the code already declares: the losses
with their inputs, parameters and choices (:data:`xentcheck.reference.LOSSES`), the input
generators with their options (:data:`xentcheck.harness.generators.GENERATORS`) and the
dtypes; the tables below add only what those lack (the words of a description, a range).
So a new loss needs no edit here; a new parameter name, input kind or generator needs
its line in :data:`PARAMETERS`, :data:`INPUT_KINDS` or :data:`GENERATOR_NOTES`.

The loader validates every document against it (:func:`check_file`, then
:func:`check_case` once a file's ``defaults`` are merged into each case). A schema
violation becomes a one-line :class:`CaseError` ``path:line: where: reason (how to fix)``,
the line found through the locations :mod:`xentcheck.harness.yamlnodes` keeps.

Editors read the copy committed as :data:`COMMITTED` (``cases/case-schema.json``, shipped
inside the suite), through the ``# yaml-language-server: $schema=../case-schema.json``
line of each case file; a test fails when it differs from :func:`text`, and
``xentcheck schema > cases/case-schema.json`` rewrites it.

What a schema cannot say (ragged literals, element counts of shapes, an axis in range for
a shape, unique ids) is checked by :mod:`xentcheck.harness.cases`.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match, by_relevance

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.errors import CaseError, show
from xentcheck.harness.generators import GENERATORS, MAX_ELEMENTS, Generator
from xentcheck.harness.yamlnodes import Map, Seq
from xentcheck.reference import LOSSES, LossSpec

#: the committed copy of :func:`text`, relative to the repository root
COMMITTED = "cases/case-schema.json"
REGENERATE = f"xentcheck schema > {COMMITTED}"
_MAX_ERRORS = 100  # errors looked at to find the first one in the file
# a "not" says what a value must not be (a ULP bound in a case's tolerance): its hint
# explains the other errors at the same place
_RELEVANCE = by_relevance(strong=frozenset({"not"}))


def case_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a case file, as a fresh dict (:func:`generate`)."""
    return generate()


def text() -> str:
    """The schema as ``xentcheck schema`` prints it and :data:`COMMITTED` holds it."""
    return json.dumps(generate(), indent=2) + "\n"


# ------------------------------------------------------------------ generating it

_MAX_DIMS = 32  # numpy's limit on the rank of an array
_INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
_AXIS = {"minimum": -_MAX_DIMS, "maximum": _MAX_DIMS - 1}
_UNIT = {"minimum": 0, "maximum": 1}

#: parameter name -> (description, JSON Schema of one value; None: one of the loss's
#: ``choices`` in the registry)
PARAMETERS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "ignore_index": (
        "A class index whose positions are skipped (null: none).",
        {
            "type": ["integer", "null"],
            **_INT64,
            "errorMessage": "ignore_index is an integer or null",
        },
    ),
    "label_smoothing": (
        "Label smoothing in [0, 1].",
        {"type": "number", **_UNIT, "errorMessage": "label_smoothing is a number in [0, 1]"},
    ),
    "reduction": ("How to reduce the elementwise losses.", None),
    "log_target": (
        "Whether the target holds log-probabilities.",
        {"type": "boolean", "errorMessage": "log_target is true or false"},
    ),
    "alpha": (
        "Weight of the positive class (null or negative: none).",
        {"type": ["number", "null"], "errorMessage": "alpha is a number or null"},
    ),
    "gamma": (
        "Focusing exponent (>= 0).",
        {"type": "number", "minimum": 0, "errorMessage": "gamma is a number >= 0"},
    ),
    "axis": (
        "The axis to reduce along.",
        {"type": "integer", **_AXIS, "errorMessage": "axis is an integer"},
    ),
}

#: generator name -> what it makes (for the description of ``generator_NAME``)
GENERATOR_NOTES: dict[str, str] = {
    "normal": "loc + scale * standard normal",
    "uniform": "uniform in [low, high)",
    "labels": "integer class indices in [0, classes), a fraction replaced by ignore_index",
    "probabilities": "softmax of scale * standard normal along axis (rows sum to 1)",
    "one_hot": "one-hot rows along axis",
    "binary": "0.0/1.0 with P(1) = p",
    "mask": "booleans with P(true) = keep",
}

#: generator option -> constraints beyond its Python type (a range, a message)
_OPTION_LIMITS: dict[str, dict[str, Any]] = {
    "classes": {"minimum": 1, "maximum": 2**31 - 1},
    "ignore_index": _INT64,
    "ignore_fraction": {**_UNIT, "errorMessage": "a fraction in [0, 1]"},
    "axis": _AXIS,
    "p": {**_UNIT, "errorMessage": "a probability in [0, 1]"},
    "keep": {**_UNIT, "errorMessage": "a probability in [0, 1]"},
}

_FLOATING = tuple(name for name in GENERATORS if name != "labels")
#: input kind (:class:`xentcheck.reference.InputSpec`) -> (description, the generators it
#: takes, in the order its error message lists them)
INPUT_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "float": ("a floating input: a literal, {fill: ..., shape: ...} or a generator", _FLOATING),
    "weight": ("a weight: a literal, {fill: ..., shape: ...} or a generator", _FLOATING),
    "target": (
        "class indices (one rank below the first input) or probabilities (its rank)",
        tuple(GENERATORS),
    ),
    "labels": (
        "integer class indices: a literal of integers, {random: labels, ...} or {fill: ...}",
        ("labels", "binary"),
    ),
    "mask": (
        "a mask (nonzero = keep): a literal of 0/1, {random: mask, ...} or {fill: ...}",
        ("mask", "binary"),
    ),
}


def generate() -> dict[str, Any]:
    """The case-file JSON Schema, built from LOSSES, GENERATORS and FLOAT_DTYPES (fresh).

    Raises ValueError naming the table to extend where the registry uses a parameter
    name, an input kind or a generator this module does not describe.
    """
    defs: dict[str, Any] = {
        "id": _ID,
        "loss": {
            "enum": list(LOSSES),
            "description": "The canonical loss name.",
            "errorMessage": "use one of the losses xentcheck knows",
        },
        "dtype": {"enum": list(FLOAT_DTYPES), "description": "A floating dtype under test."},
        **_VALUES,
    }
    for name, g in GENERATORS.items():
        defs[f"generator_{name}"] = _generator(name, g)
    for kind, (description, names) in INPUT_KINDS.items():
        defs[f"generator_for_{kind}"] = _one_of_generators(names)
        defs[f"input_{kind}"] = _input(description, kind)
    defs["input_any"] = _ref("input_target")
    for spec in LOSSES.values():
        defs[f"inputs_{spec.name}"] = _inputs(spec)
        defs[f"params_{spec.name}"] = _params(spec)
    defs.update(_TOLERANCES)
    by_loss = [_when_loss(name) for name in LOSSES]
    defs["case"] = _fields("One case: a loss, its inputs, parameters and dtypes.", "case",
                           ["id", *_CASE_FIELDS], by_loss, required=["id"])  # fmt: skip
    defs["defaults"] = _fields(
        "Fields applied to every case of the file (a case's own value wins).",
        "default", _CASE_FIELDS, by_loss,
    )  # fmt: skip
    defs["resolved_case"] = {
        "description": "A case after the file's defaults are merged into it.",
        "$ref": "#/$defs/case",
        "required": ["id", "loss", "inputs"],
    }
    return copy.deepcopy({**_FILE, "$defs": defs})  # callers may change it


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _generator(name: str, g: Generator) -> dict[str, Any]:
    if name not in GENERATOR_NOTES:
        raise ValueError(f"generator {name!r} is not described: add it to GENERATOR_NOTES")
    options = {}
    for option, types in g.options.items():
        kind = "integer" if types is int else "number"
        options[option] = {"type": kind, **_OPTION_LIMITS.get(option, {})}
    fields = ", ".join(f"{option}: ..." for option in g.options)
    return {
        "description": f"random: {name} - {GENERATOR_NOTES[name]}.",
        "type": "object",
        "properties": {
            "random": {"const": name}, "shape": _ref("shape"), "seed": _ref("seed"), **options,
        },
        "required": ["random", "shape", *g.required],
        "additionalProperties": False,
        "errorMessage": f"{{random: {name}, shape: [...], seed: N{', ' if fields else ''}{fields}}}",
    }  # fmt: skip


def _when(field: str, value: str, then: dict[str, Any]) -> dict[str, Any]:
    """``then`` applies where ``field`` is ``value``."""
    return {"if": {"properties": {field: {"const": value}}, "required": [field]}, "then": then}


def _one_of_generators(names: tuple[str, ...]) -> dict[str, Any]:
    for name in names:
        if name not in GENERATORS:
            raise ValueError(f"INPUT_KINDS names generator {name!r}, which GENERATORS lacks")
    return {
        "type": "object",
        "properties": {
            "random": {
                "enum": list(names),
                "errorMessage": f"generators for this input: {', '.join(names)} (or fill:)",
            }
        },
        "required": ["random"],
        "allOf": [_when("random", name, _ref(f"generator_{name}")) for name in names],
    }


def _input(description: str, kind: str) -> dict[str, Any]:
    return {
        "description": description,
        "if": {"type": "object"},
        "then": {
            "if": {"required": ["fill"]},
            "then": _ref("fill"),
            "else": _ref(f"generator_for_{kind}"),
        },
        "else": _ref("literal"),
    }


def _inputs(spec: LossSpec) -> dict[str, Any]:
    for i in spec.inputs:
        if i.kind not in INPUT_KINDS:
            raise ValueError(
                f"input {i.name!r} of {spec.name} has kind {i.kind!r}: add it to INPUT_KINDS"
            )
    required = [i.name for i in spec.inputs if i.required]
    optional = [i.name for i in spec.inputs if not i.required]
    takes = f"{spec.name} takes inputs: {', '.join(required)}"
    return {
        "type": "object",
        "properties": {i.name: _ref(f"input_{i.kind}") for i in spec.inputs},
        "required": required,
        "additionalProperties": False,
        "errorMessage": f"{takes}; optional: {', '.join(optional)}" if optional else takes,
    }


def _params(spec: LossSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: _param(spec, name) for name in spec.params},
        "additionalProperties": False,
        "errorMessage": f"{spec.name} takes parameters: {', '.join(spec.params) or 'none'}",
    }


def _param(spec: LossSpec, name: str) -> dict[str, Any]:
    """One parameter: a value, or a list of values to sweep."""
    if name not in PARAMETERS:
        raise ValueError(
            f"parameter {name!r} of {spec.name} is not described: add it to PARAMETERS"
        )
    description, value = PARAMETERS[name]
    if value is None:
        if name not in spec.choices:
            raise ValueError(f"parameter {name!r} of {spec.name} needs choices in the registry")
        value = {"enum": list(spec.choices[name])}
    return {
        "description": f"{description} A list sweeps the parameter.",
        "if": {"type": "array"},
        "then": {
            "type": "array",
            "minItems": 1,
            "items": value,
            "errorMessage": "a sweep lists at least one value",
        },
        "else": value,
    }


def _when_loss(name: str) -> dict[str, Any]:
    then = {"inputs": _ref(f"inputs_{name}"), "params": _ref(f"params_{name}")}
    return _when("loss", name, {"properties": then})


def _fields(
    description: str, noun: str, names: list[str], by_loss: list, required: list | None = None
) -> dict[str, Any]:
    """The schema of a case (or of a file's defaults) with fields ``names``."""
    out = {
        "description": description,
        "type": "object",
        "properties": {name: _CASE_FIELD_SCHEMAS[name] for name in names},
    }
    if required:
        out["required"] = required
    out |= {
        "additionalProperties": False,
        "allOf": by_loss,
        "errorMessage": f"allowed {noun} fields: {', '.join(names)}",
    }
    return out


# the fixed parts: the file, ids, values, tolerances and case fields

_FILE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "xentcheck case file",
    "description": "Cases for xentcheck: a 'cases' list and optional 'defaults'.",
    "type": "object",
    "properties": {
        "cases": {
            "type": "array",
            "items": _ref("case"),
            "description": "The cases of this file.",
            "errorMessage": "cases is a list of case mappings",
        },
        "defaults": _ref("defaults"),
    },
    "required": ["cases"],
    "additionalProperties": False,
    "errorMessage": "a case file has 'cases:' (a list) and optionally 'defaults:'",
}

_ID: dict[str, Any] = {
    "type": "string",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "maxLength": 200,
    "description": "Unique within the file: letters, digits, '.', '_' or '-'.",
    "errorMessage": "an id is a name of letters, digits, '.', '_' or '-', starting with a letter or digit",
}

_VALUES: dict[str, Any] = {
    "dtypes": {
        "description": "Dtypes to try (default: all four).",
        "if": {"type": "string"},
        "then": _ref("dtype"),
        "else": {"type": "array", "items": _ref("dtype"), "minItems": 1, "uniqueItems": True},
    },
    "tags": {
        "description": "Free-form labels to filter and group cases by.",
        "if": {"type": "string"},
        "then": {"type": "string"},
        "else": {"type": "array", "items": {"type": "string"}},
    },
    "literal": {
        "description": "A number or a nested list of numbers (.inf, -.inf, .nan allowed); rows of one length.",
        "type": ["number", "array"],
        "items": _ref("literal"),
        "errorMessage": "a literal holds numbers only (.inf, -.inf, .nan allowed), in nested lists",
    },
    "shape": {
        "description": "Dimensions of the generated array.",
        "type": "array",
        "maxItems": _MAX_DIMS,
        "items": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_ELEMENTS,
            "errorMessage": "a dimension is an integer in [0, 2**28]",
        },
        "errorMessage": "a shape is a list of non-negative integers, e.g. [4, 5]",
    },
    "seed": {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**63 - 1,
        "description": "Seed of numpy.random.default_rng (default: derived from the case and input names).",
        "errorMessage": "a seed is a non-negative integer",
    },
    "fill": {
        "description": "A constant array: {fill: NUMBER, shape: [...]}.",
        "type": "object",
        "properties": {"fill": {"type": "number"}, "shape": _ref("shape")},
        "required": ["fill", "shape"],
        "additionalProperties": False,
        "errorMessage": "a fill input is {fill: NUMBER, shape: [..]}",
    },
}

_TOL = {"type": "number", "minimum": 0}
_TOLERANCES: dict[str, Any] = {
    "tol": {
        "type": "object",
        "properties": {"rtol": _TOL, "atol": _TOL},
        "additionalProperties": False,
        "minProperties": 1,
        "errorMessage": "a tolerance is {rtol: NUMBER >= 0, atol: NUMBER >= 0}",
        "description": "|actual - expected| <= atol + rtol |expected|.",
    },
    "tolerance": {
        "description": "|actual - expected| <= atol + rtol |expected|: {rtol, atol} for every dtype, or {DTYPE: {rtol, atol}}.",
        "type": "object",
        "not": {"required": ["ulp"]},
        "if": {"anyOf": [{"required": ["rtol"]}, {"required": ["atol"]}]},
        "then": _ref("tol"),
        "else": {
            "propertyNames": _ref("dtype"),
            "additionalProperties": _ref("tol"),
            "minProperties": 1,
        },
        "errorMessage": "tolerance is {rtol: x, atol: y} or {DTYPE: {rtol: x, atol: y}}; a ULP bound on expected values goes in expected.tolerance: {ulp: N}",
    },
    "ulp_tol": {
        "description": "|actual - expected| <= ulp units in the last place of the float64 expected value.",
        "type": "object",
        "properties": {"ulp": _TOL},
        "required": ["ulp"],
        "additionalProperties": False,
        "errorMessage": "a ULP tolerance is {ulp: NUMBER >= 0}",
    },
    "expected_tolerance": {
        "description": "How close the reference must come to the expected values, in float64: {ulp: N} (N units in the last place of each expected value) or {rtol, atol}. Default: the case's float64 tolerance.",
        "if": {"type": "object", "required": ["ulp"]},
        "then": _ref("ulp_tol"),
        "else": _ref("tol"),
        "errorMessage": "expected.tolerance is {ulp: N} or {rtol: x, atol: y}",
    },
    "expected": {
        "description": "Values published elsewhere that the reference must match.",
        "type": "object",
        "properties": {
            "value": _ref("literal"),
            "grads": {
                "type": "object",
                "additionalProperties": _ref("literal"),
                "errorMessage": "grads maps input names to arrays",
            },
            "tolerance": _ref("expected_tolerance"),
        },
        "additionalProperties": False,
        "minProperties": 1,
        "errorMessage": "expected is {value: ..., grads: {INPUT: ...}, tolerance: {ulp: N}}",
    },
}

_CASE_FIELDS = ["loss", "description", "inputs", "params", "dtypes", "tags", "expected",
                "tolerance", "expect_error"]  # fmt: skip
_CASE_FIELD_SCHEMAS: dict[str, Any] = {
    "id": _ref("id"),
    "loss": _ref("loss"),
    "description": {"type": "string", "description": "What the case checks and why."},
    "inputs": {
        "type": "object",
        "additionalProperties": _ref("input_any"),
        "description": "Input name -> literal, {fill: ..., shape: ...} or generator mapping.",
        "errorMessage": "inputs is a mapping of input name -> literal or generator",
    },
    "params": {
        "type": "object",
        "description": "Parameter -> value, or a list of values to sweep.",
        "errorMessage": "params is a mapping of parameter -> value or list of values",
    },
    "dtypes": _ref("dtypes"),
    "tags": _ref("tags"),
    "expected": _ref("expected"),
    "tolerance": _ref("tolerance"),
    "expect_error": {
        "type": "boolean",
        "description": "The correct behaviour is to reject the input.",
    },
}


# ------------------------------------------------------------------ validating with it


@functools.cache
def _validator(definition: str | None) -> jsonschema.Draft202012Validator:
    schema = case_schema()
    if definition is None:
        # The file's own fields and its defaults; each case is validated once, with the
        # defaults merged in (check_case), rather than twice.
        items = {
            "type": "object",
            "errorMessage": "each case is a mapping with id, loss and inputs",
        }
        schema["properties"]["cases"]["items"] = items
    else:  # validate against one of $defs, resolving refs in the file
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def check_file(doc: Map, path: str) -> None:
    """Validate a loaded case file's top level and ``defaults``; raise CaseError if broken.

    Its cases are validated one by one by :func:`check_case`, once defaults are merged.
    """
    view = doc
    if isinstance(doc, Map):
        view = _like(doc, {k: _compact_case(v) if k == "defaults" else v for k, v in doc.items()})
    _check(_validator(None), view, path, ())


def check_case(case: Map, path: str, index: int) -> None:
    """Validate one case with the file's defaults merged in (it must name id, loss, inputs).

    A case naming a known loss is first asked of that loss's own schema
    (:func:`_loss_validator`), which accepts exactly what the whole schema accepts for
    it at a fraction of the cost; only a case it rejects (or one without a known loss)
    goes through the whole schema, which finds and words the error.
    """
    view = _compact_case(case)
    loss = case.get("loss") if isinstance(case, Map) else None
    if isinstance(loss, str) and loss in LOSSES and _loss_validator(loss).is_valid(view):
        return
    _check(_validator("resolved_case"), view, path, ("cases", index))


#: definitions kept as references when resolving (``literal`` refers to itself)
_RECURSIVE = frozenset({"literal"})


@functools.cache
def _loss_validator(loss: str) -> jsonschema.Draft202012Validator:
    """``resolved_case`` for cases whose ``loss`` is ``loss``: the same verdict, faster.

    The case definition dispatches on the loss with one ``if``/``then`` per loss of the
    registry; for a case naming ``loss`` every other ``if`` fails, so only its ``then``
    applies, and it is put in the dispatch's place. Every other reference is resolved in
    place (JSON Schema 2020-12 applies ``$ref`` beside sibling keywords, as the ``allOf``
    it becomes here does), so validating looks nothing up.
    """
    defs = case_schema()["$defs"]
    case = dict(defs["case"])
    case["allOf"] = [
        branch["then"]
        for branch in case["allOf"]
        if branch["if"]["properties"]["loss"]["const"] == loss
    ]
    defs["case"] = case

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: resolve(v) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if ref is None:
            return out
        name = ref.removeprefix("#/$defs/")
        if name in _RECURSIVE:
            return {**out, "$ref": ref}
        target = resolve(defs[name])
        return {**out, "allOf": [*out.get("allOf", []), target]} if out else target

    schema = resolve(defs["resolved_case"])
    schema["$defs"] = {name: defs[name] for name in _RECURSIVE}
    return jsonschema.Draft202012Validator(schema)


# Validating a 100k-number literal element by element costs jsonschema seconds. A list of
# plain numbers is valid as a literal whatever its length, so the view validated keeps
# only its first number; any list holding something else is kept whole, so every error
# the schema can find is still found, at its own line.


def _like(node, values):
    """A copy of located ``node`` holding ``values``, with the same lines."""
    out = type(node)(values)
    out.line = node.line
    if isinstance(node, Map):
        out.key_lines = node.key_lines
    else:
        out.item_lines = node.item_lines if len(values) == len(node) else node.item_lines[:1]
    return out


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compact_literal(value):
    if not isinstance(value, Seq):
        return value
    if len(value) > 1 and all(_is_number(x) for x in value):
        return _like(value, value[:1])
    return _like(value, [_compact_literal(x) for x in value])


def _compact_case(case):
    if not isinstance(case, Map):
        return case
    out = _like(case, case)
    inputs = case.get("inputs")
    if isinstance(inputs, Map):
        out["inputs"] = _like(inputs, {k: _compact_literal(v) for k, v in inputs.items()})
    expected = case.get("expected")
    if isinstance(expected, Map):
        compact = _like(expected, expected)
        if "value" in expected:
            compact["value"] = _compact_literal(expected["value"])
        grads = expected.get("grads")
        if isinstance(grads, Map):
            compact["grads"] = _like(grads, {k: _compact_literal(v) for k, v in grads.items()})
        out["expected"] = compact
    return out


def _check(validator, doc, path: str, prefix: tuple) -> None:
    errors = list(itertools.islice(validator.iter_errors(doc), _MAX_ERRORS))
    if not errors:
        return
    # a wrong value says more than a missing field (often missing because of it)
    errors = [e for e in errors if e.validator != "required"] or errors
    first = min(_line_of(doc, e) for e in errors)
    here = [e for e in errors if _line_of(doc, e) == first]
    # an unknown key (a typo) explains the other errors at its line: name it first
    typos = [e for e in here if e.validator == "additionalProperties" and _extra_keys(e)]
    if typos:
        error = typos[0]
    else:  # the first place in the document, then jsonschema's most relevant error there
        earliest = min(_order(doc, e.absolute_path) for e in here)
        error = best_match(
            (e for e in here if _order(doc, e.absolute_path) == earliest), key=_RELEVANCE
        )
    raise CaseError(path, _line_of(doc, error), _message(error, prefix))


def _node_at(doc, parts) -> tuple[Any, int]:
    """The value at a path of keys/indices in located ``doc``, and its line."""
    node, line = doc, getattr(doc, "line", 1)
    for part in parts:
        if isinstance(node, Map) and part in node:
            line = node.line_of(part)
            node = node[part]
        elif isinstance(node, Seq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.line_at(part)
            node = node[part]
        else:
            break
    return node, line


def _order(doc, parts) -> tuple[int, ...]:
    """Document order of a path: each key replaced by its position in its mapping."""
    out, node = [], doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            out.append(list(node).index(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
        else:
            break
        node = node[part]
    return tuple(out)


def _extra_keys(error: ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    if isinstance(error.instance, dict):
        return [k for k in error.instance if k not in allowed]
    return []


def _line_of(doc, error: ValidationError) -> int:
    node, line = _node_at(doc, error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(node, Map):
        extra = _extra_keys(error)
        if extra:
            return node.line_of(extra[0])
    return line


_TYPE_WORDS = {
    "number": "a number", "integer": "an integer", "string": "text", "array": "a list",
    "object": "a mapping", "boolean": "true or false", "null": "null",
}  # fmt: skip


def _where(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_FIELD_NOUNS = {"params": "parameter", "inputs": "input", "grads": "input", "expected": "field"}
_NOUNS = {"random": "generator", "dtypes": "dtype", "loss": "loss", "reduction": "reduction"}


def _reason(error: ValidationError, hint: str | None) -> tuple[str, str | None]:
    """(what is wrong, the hint still worth adding) for one schema violation."""
    kind, value, arg = error.validator, error.instance, error.validator_value
    if kind == "required":
        missing = [k for k in arg if not (isinstance(value, dict) and k in value)]
        return f"missing {show(missing[0] if missing else arg)}", hint
    if kind == "additionalProperties":
        extra = _extra_keys(error)
        allowed = ", ".join(error.schema.get("properties", {})) or "none"
        names = [p for p in error.absolute_path if isinstance(p, str)]
        noun = _FIELD_NOUNS.get(names[-1] if names else "", "field")
        if extra and hint:
            return f"unknown {noun} {show(extra[0])}", hint
        if extra:
            return f"unknown {noun} {show(extra[0])}; allowed: {allowed}", None
    if kind == "enum":
        names = [p for p in error.absolute_path if isinstance(p, str)]
        noun = _NOUNS.get(names[-1] if names else "", "value")
        return f"unknown {noun} {show(value)}; use one of: {', '.join(map(str, arg))}", None
    return _plain_reason(error), hint


def _plain_reason(error: ValidationError) -> str:
    kind, value, arg = error.validator, error.instance, error.validator_value
    if kind == "const":
        return f"{show(value)} must be {show(arg)}"
    if kind == "type":
        types = [arg] if isinstance(arg, str) else list(arg)
        return f"{show(value)} is not {' or '.join(_TYPE_WORDS.get(t, t) for t in types)}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{show(value)} is below the minimum {arg}"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{show(value)} is above the maximum {arg}"
    if kind in ("minItems", "minProperties"):
        return "must not be empty" if arg == 1 else f"needs at least {arg} entries"
    if kind in ("maxItems", "maxProperties"):
        return f"has more than {arg} entries"
    if kind == "maxLength":
        return f"is longer than {arg} characters"
    if kind == "pattern":
        return f"{show(value)} does not match {arg}"
    if kind == "uniqueItems":
        return "lists a value twice"
    if kind == "not":
        return f"{show(value)} is not allowed here"
    return error.message


def _message(error: ValidationError, prefix: tuple) -> str:
    where = _where((*prefix, *error.absolute_path)) or "top level"
    hint = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    reason, hint = _reason(error, hint)
    return f"{where}: {reason} ({hint})" if hint else f"{where}: {reason}"


#: the markers around the generated losses table in docs/design.md
LOSSES_BEGIN, LOSSES_END = (
    "<!-- losses: generated by `xentcheck schema --losses` -->",
    "<!-- losses end -->",
)

_KIND_NOTES = {"target": " (class indices or probabilities)", "labels": " (class indices)"}


def losses_markdown() -> str:
    """The Markdown table of every loss of the registry: its inputs (optional ones in
    brackets), its parameters with their defaults and choices, and the first line of its
    reference function's docstring (docs/design.md holds it, checked by a test)."""
    lines = [
        "| loss | inputs (optional in brackets) | parameters (default) | what |",
        "|---|---|---|---|",
    ]
    for name, spec in LOSSES.items():
        inputs = ", ".join(
            (f"`{i.name}`" if i.required else f"[`{i.name}`]") + _KIND_NOTES.get(i.kind, "")
            for i in spec.inputs
        )
        params = ", ".join(
            f"`{p}` ({_yaml(d)}"
            + (f"; one of {', '.join(map(_yaml, spec.choices[p]))}" if p in spec.choices else "")
            + ")"
            for p, d in spec.params.items()
        )
        doc = (spec.fn.__doc__ or "").strip().splitlines()
        what = doc[0].replace("``", "`").replace(":func:", "").replace("|", "\\|") if doc else ""
        lines.append(f"| `{name}` | {inputs} | {params or 'none'} | {what} |")
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    """A parameter value as a case file writes it (``none``, ``true``, ``0.25``)."""
    return "none" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)
