"""The JSON Schema of case files, and validation of loaded YAML against it.

``case-schema.json`` (JSON Schema draft 2020-12, shipped as package data) is the one
machine-readable description of the case format: editors use it through the
``# yaml-language-server: $schema=...`` line of each case file, and the loader validates
every document against it (:func:`check_file`, then :func:`check_case` once a file's
``defaults`` are merged into each case). A schema violation becomes a one-line
:class:`CaseError` ``path:line: where: reason (how to fix)``, the line found through the
locations :mod:`xentcheck.harness.yamlnodes` keeps.

What a schema cannot say (ragged literals, element counts of shapes, an axis in range for
a shape, unique ids) is checked by :mod:`xentcheck.harness.cases`.
"""

from __future__ import annotations

import functools
import itertools
import json
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match, by_relevance

from xentcheck.harness.errors import CaseError, show
from xentcheck.harness.yamlnodes import Map, Seq

SCHEMA_FILE = "case-schema.json"
_MAX_ERRORS = 100  # errors looked at to find the first one in the file
# a "not" says what a value must not be (a ULP bound in a case's tolerance): its hint
# explains the other errors at the same place
_RELEVANCE = by_relevance(strong=frozenset({"not"}))


@functools.cache
def _schema_text() -> str:
    return resources.files("xentcheck.harness").joinpath(SCHEMA_FILE).read_text("utf-8")


def case_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a case file, as a fresh dict."""
    return json.loads(_schema_text())


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
    """Validate one case with the file's defaults merged in (it must name id, loss, inputs)."""
    _check(_validator("resolved_case"), _compact_case(case), path, ("cases", index))


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
