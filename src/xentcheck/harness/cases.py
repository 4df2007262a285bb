"""Case files: loading, schema validation and sweep expansion.

A case file is YAML with a top-level ``cases:`` list (and optional ``defaults:`` merged
into every case); ``xentcheck schema`` prints its JSON Schema. A file is read in three
guarded steps, each refusing bad input before it costs memory: its size
(:data:`MAX_FILE_BYTES`) and UTF-8 encoding; safe YAML with node-count and nesting
limits (:mod:`xentcheck.harness.yamlnodes`); the JSON Schema ``case-schema.json``
(:mod:`xentcheck.harness.schema`). This module then checks what a schema cannot say
(ragged literals, the element count of a shape, an axis within a shape, unique ids), and
asks the reference's input checks about every instance at every dtype: an input the
reference rejects is a case error unless the case says ``expect_error: true`` (and
``expect_error`` on an input it accepts is one too). Every violation is a
:class:`CaseError` naming the file, the line and the fix.

``load_cases(paths)`` returns :class:`Case` objects (``load_cases()``: the shipped suite,
:func:`shipped_suite`); ``expand(case)`` yields its :class:`Instance` objects, one per
point of the parameter sweep. Inputs are materialised on demand (``Instance.inputs()``),
so a suite with large vocabularies does not hold every array in memory at once.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xentcheck.dtypes import FLOAT_DTYPES, quantize
from xentcheck.harness.errors import CaseError, show
from xentcheck.harness.generators import GENERATORS, MAX_ELEMENTS, derived_seed, generate
from xentcheck.harness.yamlnodes import Map, Seq, load_located
from xentcheck.reference import (
    LOSSES,
    InputRejected,
    check,
    differentiable_inputs,
    is_probability_target,
    values_read,
)

CASE_KEYS = {
    "id", "loss", "description", "inputs", "params", "dtypes", "tags",
    "expected", "tolerance", "expect_error",
}  # fmt: skip
FILE_KEYS = {"cases", "defaults"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_FILE_BYTES = 4 * 1024 * 1024  # YAML parsing in Python costs ~100x the text in memory
MAX_INSTANCES = 10_000  # points of one case's parameter sweep

# parameter -> (accepted Python types, description for messages)
PARAM_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "reduction": ((str,), "one of the reductions"),
    "ignore_index": ((int, type(None)), "an integer or null"),
    "label_smoothing": ((int, float), "a number in [0, 1]"),
    "log_target": ((bool,), "true or false"),
    "alpha": ((int, float, type(None)), "a number or null"),
    "gamma": ((int, float), "a non-negative number"),
    "axis": ((int,), "an integer axis"),
}


@dataclass(frozen=True)
class Source:
    """Where a case was written: file path and 1-based line."""

    file: str
    line: int


@dataclass(frozen=True)
class InputDef:
    """One input as the case wrote it: a literal array, or a generator with its options."""

    literal: np.ndarray | None = None
    generator: str | None = None
    shape: tuple[int, ...] = ()
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    fill: float | None = None

    def materialise(self) -> np.ndarray:
        if self.literal is not None:
            return self.literal
        if self.fill is not None:
            return np.full(self.shape, self.fill, dtype=np.float64)
        return generate(self.generator, self.shape, self.seed, self.options)

    def stand_in(self) -> np.ndarray:
        """A zero of :meth:`materialise`'s shape and dtype kind that holds no memory."""
        if self.literal is not None:
            return self.literal
        zero = np.int64(0) if self.generator == "labels" else np.float64(0)
        return np.broadcast_to(zero, self.shape)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for results and reproduction scripts)."""
        if self.literal is not None:
            return {"literal_shape": list(self.literal.shape)}
        if self.fill is not None:
            return {"fill": self.fill, "shape": list(self.shape)}
        return {
            "random": self.generator,
            "shape": list(self.shape),
            "seed": self.seed,
            **self.options,
        }


@dataclass(frozen=True)
class Case:
    """One validated case of a file."""

    key: str  # "<file path relative to its cases root, no suffix>/<id>"
    id: str
    loss: str
    description: str
    inputs: dict[str, InputDef]
    params: dict[str, list[Any]]  # every value a list; more than one value = a sweep
    swept: tuple[str, ...]
    dtypes: tuple[str, ...]
    tags: tuple[str, ...]
    expected: dict[str, Any] | None  # value, grads, tolerance ({ulp} or {rtol, atol})
    tolerance: dict[str, dict[str, float]]  # dtype (or "*") -> {rtol, atol}
    expect_error: bool
    source: Source


@dataclass(frozen=True)
class Instance:
    """One point of a case's sweep: single parameter values."""

    case: Case
    name: str
    params: dict[str, Any]

    @property
    def loss(self) -> str:
        return self.case.loss

    def inputs(self) -> dict[str, np.ndarray]:
        return {k: v.materialise() for k, v in self.case.inputs.items()}


def expand(case: Case) -> Iterator[Instance]:
    """The instances of ``case``: the Cartesian product of its swept parameter values."""
    names = list(case.params)
    for values in itertools.product(*(case.params[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        label = ",".join(f"{n}={_fmt(params[n])}" for n in case.swept)
        yield Instance(case, f"{case.key}[{label}]" if label else case.key, params)


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def shipped_suite() -> Path:
    """The folder of the suite shipped with xentcheck, for ``--cases`` left out.

    Installed from a wheel, it is the package's ``suite`` folder; in a checkout or an
    editable install, ``src/xentcheck/suite`` links to the top-level ``cases/``, returned
    resolved so that messages name ``cases/...``. Raises CaseError where neither exists.
    """
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "suite", package.parent.parent / "cases"):
        if folder.is_dir():
            return folder.resolve()
    raise CaseError(
        str(package / "suite"),
        None,
        "the shipped suite is missing; reinstall xentcheck, or pass --cases FOLDER",
    )


def discover(paths: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(file, root) pairs for every ``*.yaml``/``*.yml`` under ``paths`` (sorted)."""
    found: list[tuple[Path, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")])
            found.extend((f, p) for f in files)
        elif p.is_file():
            found.append((p, p.parent))
        else:
            raise CaseError(
                str(p), None, "no such file or directory; pass a case file or a folder of them"
            )
    return found


def load_cases(paths: Iterable[str | Path] | None = None, *, checked: bool = False) -> list[Case]:
    """Load and validate every case file under ``paths`` (default: :func:`shipped_suite`);
    raise CaseError on the first problem.

    ``checked``: the files were validated by the process that started this one (a worker
    of the runner, which loaded the same files before starting it), so the JSON Schema
    and the reference's verdict on each input are not asked again; the cases are the same.
    """
    if paths is None:
        paths = [shipped_suite()]
    cases: list[Case] = []
    seen: dict[str, Source] = {}
    for file, root in discover(paths):
        for case in load_file(file, root, checked=checked):
            if case.key in seen:
                other = seen[case.key]
                raise CaseError(
                    str(file),
                    case.source.line,
                    f"case {case.key!r} also defined at {other.file}:{other.line}",
                )
            seen[case.key] = case.source
            cases.append(case)
    return cases


def load_file(file: Path, root: Path | None = None, *, checked: bool = False) -> list[Case]:
    """Load and validate one case file (``checked``: see :func:`load_cases`)."""
    path = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CaseError(
                path,
                None,
                f"file is {size} bytes; case files are limited to {MAX_FILE_BYTES} (use a generator for large inputs)",
            )
        with file.open("rb") as f:  # the file may grow after stat(): read at most the limit
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CaseError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CaseError(
            path,
            None,
            f"file is larger than {MAX_FILE_BYTES} bytes (use a generator for large inputs)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CaseError(path, line, "not UTF-8 text; save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")
    doc = load_located(text, path)
    if not isinstance(doc, Map):
        raise CaseError(
            path, getattr(doc, "line", 1), "top level must be a mapping with a 'cases:' list"
        )
    if not checked:
        _schema().check_file(doc, path)
    _check_keys(doc, FILE_KEYS, path, "file")
    if "cases" not in doc or not isinstance(doc["cases"], Seq):
        raise CaseError(path, doc.line, "missing 'cases:' list")
    defaults = doc.get("defaults") or Map()
    if not isinstance(defaults, Map):
        raise CaseError(
            path, doc.line_of("defaults"), "'defaults' must be a mapping of case fields"
        )
    _check_keys(defaults, CASE_KEYS - {"id"}, path, "defaults")
    stem = str(file.relative_to(root).with_suffix("")) if root else file.stem
    ids: dict[str, int] = {}
    out = []
    for index, entry in enumerate(doc["cases"]):
        if not isinstance(entry, Map):
            raise CaseError(
                path,
                getattr(entry, "line", doc.line_of("cases")),
                "each case must be a mapping with id, loss and inputs",
            )
        merged = Map({**defaults, **entry})
        merged.line = entry.line
        default_lines = getattr(defaults, "key_lines", {})
        merged.key_lines = {**default_lines, **entry.key_lines}
        if not checked:
            _schema().check_case(merged, path, index)
        case = _parse_case(merged, path, stem)
        if case.id in ids:
            raise CaseError(
                path,
                entry.line,
                f"duplicate id {case.id!r} (first at line {ids[case.id]}); ids must be unique within a file",
            )
        ids[case.id] = entry.line
        if not checked:
            _check_with_reference(case, merged)
        out.append(case)
    return out


def _schema():
    """:mod:`xentcheck.harness.schema`, imported when a file is first validated: a worker,
    which loads files the runner validated, never imports jsonschema."""
    from xentcheck.harness import schema

    return schema


def _check_keys(m: Map, allowed: set[str], path: str, what: str) -> None:
    for k in m:
        if k not in allowed:
            hint = ", ".join(sorted(allowed))
            raise CaseError(path, m.line_of(k), f"unknown {what} field {show(k)}; allowed: {hint}")


def _parse_case(m: Map, path: str, stem: str) -> Case:
    _check_keys(m, CASE_KEYS, path, "case")
    cid = m.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise CaseError(
            path, m.line_of("id"), "'id' must be a name of letters, digits, '.', '_' or '-'"
        )
    loss = m.get("loss")
    if loss not in LOSSES:
        raise CaseError(
            path, m.line_of("loss"), f"unknown loss {show(loss)}; use one of: {', '.join(LOSSES)}"
        )
    spec = LOSSES[loss]
    description = m.get("description", "")
    if not isinstance(description, str):
        raise CaseError(path, m.line_of("description"), "'description' must be text")
    key = f"{stem}/{cid}"
    expect_error = m.get("expect_error", False)
    inputs = _parse_inputs(m, spec, path, key, expect_error is True)
    params, swept = _parse_params(m, spec, path)
    points = math.prod(len(v) for v in params.values())
    if points > MAX_INSTANCES:
        raise CaseError(
            path,
            m.line_of("params"),
            f"the parameter sweeps make {points} instances; the limit is {MAX_INSTANCES} "
            "per case (split the case)",
        )
    dtypes = _parse_str_list(m, "dtypes", path, allowed=FLOAT_DTYPES) or FLOAT_DTYPES
    tags = _parse_str_list(m, "tags", path)
    if not isinstance(expect_error, bool):
        raise CaseError(path, m.line_of("expect_error"), "'expect_error' must be true or false")
    expected = _parse_expected(m, spec, path)
    tolerance = _parse_tolerance(m, path)
    return Case(key, cid, loss, description, inputs, params, swept, tuple(dtypes), tuple(tags),
                expected, tolerance, expect_error, Source(path, m.line))  # fmt: skip


def _parse_inputs(m: Map, spec, path: str, key: str, expect_error: bool) -> dict[str, InputDef]:
    raw = m.get("inputs")
    if not isinstance(raw, Map):
        raise CaseError(
            path,
            m.line_of("inputs"),
            "'inputs' must be a mapping of input name -> literal or generator",
        )
    names = [i.name for i in spec.inputs]
    out: dict[str, InputDef] = {}
    for name, value in raw.items():
        line = raw.line_of(name)
        if name not in names:
            raise CaseError(
                path,
                line,
                f"{spec.name} has no input {show(name)}; its inputs are: {', '.join(names)}",
            )
        kind = spec.input(name).kind
        out[name] = _parse_input(value, kind, path, line, key, name, expect_error)
    for i in spec.inputs:
        if i.required and i.name not in out:
            raise CaseError(path, raw.line, f"missing input {i.name!r} for {spec.name}")
    return out


def _parse_input(
    value, kind: str, path: str, line: int, key: str, name: str, expect_error: bool = False
) -> InputDef:
    if isinstance(value, Map):
        line = value.line
        if "fill" in value:
            shape = _parse_shape(value, path)
            fill = value["fill"]
            if set(value) - {"fill", "shape"} or not _is_number(fill):
                raise CaseError(path, line, "a fill input is {fill: NUMBER, shape: [..]}")
            return InputDef(fill=float(fill), shape=shape)
        gen = value.get("random")
        if gen not in GENERATORS:
            raise CaseError(
                path,
                line,
                f"unknown generator {show(gen)}; use random: one of {', '.join(GENERATORS)} (or fill:)",
            )
        g = GENERATORS[gen]
        shape = _parse_shape(value, path)
        seed = value.get("seed", derived_seed(key, name))
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise CaseError(path, value.line_of("seed"), "'seed' must be a non-negative integer")
        options = {}
        for k, v in value.items():
            if k in ("random", "shape", "seed"):
                continue
            if k not in g.options:
                allowed = ", ".join(["shape", "seed", *g.options])
                raise CaseError(
                    path,
                    value.line_of(k),
                    f"generator {show(gen)} has no option {show(k)}; allowed: {allowed}",
                )
            if not isinstance(v, g.options[k]) or isinstance(v, bool):
                raise CaseError(
                    path,
                    value.line_of(k),
                    f"option {k!r} of {show(gen)} has the wrong type ({type(v).__name__})",
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise CaseError(
                    path,
                    value.line_of(k),
                    f"option {k!r} of {show(gen)} is {v}; generator options must be finite",
                )
            options[k] = v
        for r in g.required:
            if r not in options:
                raise CaseError(path, line, f"generator {show(gen)} needs {r!r}")
        if gen == "labels" and options["classes"] < 1:
            raise CaseError(path, value.line_of("classes"), "'classes' must be at least 1")
        if gen == "labels" and kind not in ("labels", "target"):
            raise CaseError(path, line, f"input {name!r} takes floating values, not labels")
        if gen in ("probabilities", "one_hot") and len(shape) == 0:
            raise CaseError(
                path, line, f"generator {show(gen)} needs a shape with at least one axis"
            )
        if gen in ("probabilities", "one_hot"):
            axis = options.get("axis", 1)
            if not -len(shape) <= axis < len(shape):
                raise CaseError(path, line, f"axis {axis} out of range for shape {list(shape)}")
        return InputDef(generator=gen, shape=shape, seed=seed, options=options)
    if isinstance(value, Seq) or _is_number(value):
        arr = _literal(value, path, line)
        if kind == "labels" and arr.dtype.kind == "f" and not expect_error:
            raise CaseError(
                path,
                line,
                f"input {name!r} holds class indices: write integers "
                "(or set expect_error: true to check that frameworks reject non-integer labels)",
            )
        if kind in ("float", "weight"):
            arr = arr.astype(np.float64)
        return InputDef(literal=arr)
    raise CaseError(
        path, line, f"input {name!r} must be a number, a nested list, or a generator mapping"
    )


def _parse_shape(value: Map, path: str) -> tuple[int, ...]:
    shape = value.get("shape")
    if not isinstance(shape, Seq) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in shape
    ):
        raise CaseError(
            path, value.line_of("shape"), "'shape' must be a list of non-negative integers"
        )
    if any(s < 0 for s in shape):
        raise CaseError(path, value.line_of("shape"), f"negative dimension in shape {list(shape)}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise CaseError(
            path,
            value.line_of("shape"),
            f"shape {show(list(shape))} has {math.prod(shape)} elements; "
            f"the limit is {MAX_ELEMENTS} (2 GiB of float64): use a smaller shape",
        )
    return tuple(shape)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _literal(value, path: str, line: int) -> np.ndarray:
    def check(v, depth=0):
        if isinstance(v, list):
            for x in v:
                check(x, depth + 1)
        elif not _is_number(v):
            raise CaseError(
                path,
                getattr(v, "line", line),
                f"literal holds {show(v)}; only numbers (.inf, -.inf, .nan allowed)",
            )
        elif isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX:
            raise CaseError(
                path, line, f"integer {show(v)} does not fit in 64 bits; write it as a float"
            )

    check(value)
    try:
        arr = np.array(value)
    except (ValueError, OverflowError):
        raise CaseError(path, line, "ragged literal: every row must have the same length") from None
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise CaseError(path, line, "ragged literal: every row must have the same length")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _parse_params(m: Map, spec, path: str) -> tuple[dict[str, list[Any]], tuple[str, ...]]:
    raw = m.get("params") or Map()
    if not isinstance(raw, Map):
        raise CaseError(
            path,
            m.line_of("params"),
            "'params' must be a mapping of parameter -> value or list of values",
        )
    params: dict[str, list[Any]] = {}
    swept = []
    for name, value in raw.items():
        line = raw.line_of(name)
        if name not in spec.params:
            allowed = ", ".join(spec.params) or "none"
            raise CaseError(
                path, line, f"{spec.name} has no parameter {show(name)}; its parameters: {allowed}"
            )
        values = list(value) if isinstance(value, Seq) else [value]
        if not values:
            raise CaseError(path, line, f"parameter {name!r} sweeps over an empty list")
        types, what = PARAM_TYPES[name]
        for v in values:
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                raise CaseError(path, line, f"parameter {name!r} must be {what}, got {show(v)}")
            choices = spec.choices.get(name)
            if choices and v not in choices:
                raise CaseError(
                    path, line, f"{name}={show(v)} is not one of {', '.join(map(str, choices))}"
                )
            if name == "label_smoothing" and not 0 <= v <= 1:
                raise CaseError(path, line, f"label_smoothing={v} must lie in [0, 1]")
        params[name] = values
        if isinstance(value, Seq):
            swept.append(name)
    return params, tuple(swept)


def _parse_str_list(m: Map, key: str, path: str, allowed: Iterable[str] | None = None) -> list[str]:
    value = m.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseError(path, m.line_of(key), f"'{key}' must be a list of names")
    if allowed is not None:
        allowed = tuple(allowed)
        for v in value:
            if v not in allowed:
                raise CaseError(
                    path, m.line_of(key), f"unknown dtype {show(v)}; use: {', '.join(allowed)}"
                )
    return list(value)


def _parse_expected(m: Map, spec, path: str) -> dict[str, Any] | None:
    raw = m.get("expected")
    if raw is None:
        return None
    if (
        not isinstance(raw, Map)
        or not set(raw) <= {"value", "grads", "tolerance"}
        or not set(raw) & {"value", "grads"}
    ):
        raise CaseError(
            path,
            m.line_of("expected"),
            "'expected' must be {value: ..., grads: {input: ...}, tolerance: {ulp: N}}",
        )
    out: dict[str, Any] = {}
    if "value" in raw:
        out["value"] = _literal(raw["value"], path, raw.line_of("value")).astype(np.float64)
    if "grads" in raw:
        grads = raw["grads"]
        if not isinstance(grads, Map):
            raise CaseError(path, raw.line_of("grads"), "'grads' must map input names to arrays")
        names = [i.name for i in spec.inputs]
        for k in grads:
            if k not in names:
                raise CaseError(
                    path,
                    grads.line_of(k),
                    f"{spec.name} has no input {show(k)}; its inputs are: {', '.join(names)}",
                )
        out["grads"] = {
            k: _literal(v, path, grads.line_of(k)).astype(np.float64) for k, v in grads.items()
        }
    if "tolerance" in raw:
        out["tolerance"] = _one_tolerance(
            raw["tolerance"], path, raw.line_of("tolerance"), ulp=True
        )
    return out


def _one_tolerance(t, path: str, line: int, ulp: bool = False) -> dict[str, float]:
    """``{rtol, atol}`` (either may be left out), or with ``ulp`` allowed ``{ulp: N}``."""
    forms = [{"rtol", "atol"}, {"ulp"}] if ulp else [{"rtol", "atol"}]
    if (
        not isinstance(t, Map)
        or not t
        or not any(set(t) <= keys for keys in forms)
        or not all(_is_number(v) and v >= 0 for v in t.values())
    ):
        what = " or {ulp: NUMBER >= 0}" if ulp else ""
        raise CaseError(
            path, line, f"a tolerance is {{rtol: NUMBER >= 0, atol: NUMBER >= 0}}{what}"
        )
    return {k: float(v) for k, v in t.items()}


def _parse_tolerance(m: Map, path: str) -> dict[str, dict[str, float]]:
    raw = m.get("tolerance")
    if raw is None:
        return {}
    if not isinstance(raw, Map):
        raise CaseError(
            path,
            m.line_of("tolerance"),
            "'tolerance' must be {rtol: x, atol: y} or {DTYPE: {rtol, atol}}",
        )

    if set(raw) <= {"rtol", "atol"}:
        return {"*": _one_tolerance(raw, path, raw.line)}
    out = {}
    for k, v in raw.items():
        if k not in FLOAT_DTYPES:
            raise CaseError(
                path, raw.line_of(k), f"tolerance key {show(k)} is neither rtol/atol nor a dtype"
            )
        out[k] = _one_tolerance(v, path, raw.line_of(k))
    return out


# ------------------------------------------------------------ the reference's verdict

_FIX_REJECTED = "set expect_error: true if frameworks must reject this input, or correct the input"


def _check_with_reference(case: Case, m: Map) -> None:
    """Hold every instance at every dtype of ``case`` to what the case claims.

    Without ``expect_error`` the reference must accept the input; with it, it must reject
    it; each at every dtype the case lists, with its floating inputs rounded to it as a
    framework receives them (rounding can move a probability into or out of [0, 1]). An
    ``expected`` value or gradient must have the shape the reference computes (or be one
    number). Uses :func:`xentcheck.reference.check`, which does no arithmetic: only the
    inputs whose values it reads are materialised.
    """
    spec = LOSSES[case.loss]
    read = values_read(case.loss)
    raw = {n: d.materialise() if n in read else d.stand_in() for n, d in case.inputs.items()}
    per_dtype = {dtype: _as_received(spec, raw, read, dtype) for dtype in case.dtypes}
    for instance in expand(case):
        accepted = []
        for dtype, inputs in per_dtype.items():
            try:
                shape = check(case.loss, inputs, instance.params)
            except ValueError as exc:
                if not case.expect_error:
                    field = exc.field if isinstance(exc, InputRejected) else None
                    what = _field_words(field)
                    raise CaseError(
                        case.source.file,
                        _field_line(m, field),
                        f"case {case.id!r}, instance {instance.name!r} at {dtype}: the reference "
                        f"rejects {what}: {exc} ({_FIX_REJECTED})",
                    ) from None
                continue
            accepted.append(dtype)
            _check_expected_shapes(case, m, instance, inputs, shape)
        if case.expect_error and accepted:
            raise CaseError(
                case.source.file,
                m.line_of("expect_error"),
                f"case {case.id!r} sets expect_error: true, but the reference accepts instance "
                f"{instance.name!r} at {', '.join(accepted)} (make the input one the loss is "
                "undefined for, or remove expect_error; list only the rejected dtypes)",
            )


def _as_received(spec, raw: dict[str, np.ndarray], read: frozenset[str], dtype: str):
    """``raw`` as a framework receives it at ``dtype`` (see the worker's ``rounded_inputs``):
    floating inputs rounded to ``dtype``; class indices and stand-ins as they are."""
    out = dict(raw)
    for name in read & raw.keys():
        kind = spec.input(name).kind
        if kind in ("float", "weight") or (kind == "target" and is_probability_target(spec, raw)):
            out[name] = quantize(raw[name], dtype)
    return out


def _field_words(field: str | None) -> str:
    if field is None:
        return "the input"
    group, _, name = field.rpartition(".")
    return f"parameter {name!r}" if group == "params" else f"input {name!r}"


def _field_line(m: Map, field: str | None) -> int:
    """The line of an input (``target``) or parameter (``params.gamma``) in case ``m``."""
    group, _, name = (field or "").rpartition(".")
    node = m.get(group or "inputs")
    if field and isinstance(node, Map) and name in node:
        return node.line_of(name)
    return m.line


def _check_expected_shapes(case: Case, m: Map, instance: Instance, inputs, shape) -> None:
    """An ``expected`` value or gradient has the reference's shape, or is one number."""
    if case.expected is None:
        return
    node = m["expected"]
    wanted = []  # (name in expected, its array, the reference's shape, line)
    if "value" in case.expected:
        wanted.append(("value", case.expected["value"], shape, node.line_of("value")))
    grads = node.get("grads") or Map()
    has_grad = differentiable_inputs(case.loss, inputs)
    for name, value in case.expected.get("grads", {}).items():
        if name not in has_grad:
            raise CaseError(
                case.source.file,
                grads.line_of(name),
                f"case {case.id!r}: expected.grads.{name}: the reference has no gradient for "
                f"{name!r} (it differentiates: {', '.join(has_grad) or 'nothing'})",
            )
        wanted.append((f"grads.{name}", value, np.shape(inputs[name]), grads.line_of(name)))
    for name, value, reference_shape, line in wanted:
        if value.ndim and value.shape != tuple(reference_shape):
            raise CaseError(
                case.source.file,
                line,
                f"case {case.id!r}, instance {instance.name!r}: expected.{name} has shape "
                f"{list(value.shape)}, but the reference computes shape {list(reference_shape)} "
                "(write one number, or an array of the reference's shape)",
            )
