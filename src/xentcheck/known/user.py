"""Known differences declared by users, in files of their own (``--known FILE``).

Someone checking their own kernel (an ``--adapter``) or a framework build of their own
declares its documented differences with the fields of the built-in entries
(:class:`~xentcheck.known.Known`), in one of two forms:

* **Python** (``*.py``): a file defining ``ENTRIES = [Known(...), ...]``, loaded by path
  (not from ``sys.path``); ``when`` is any predicate over a
  :class:`~xentcheck.known.Finding`, as in ``known/torch.py``.
* **YAML** (any other name): a list of entries, or a mapping ``entries: [...]``. Each
  entry has ``id``, ``framework``, ``apis`` (a name or shell pattern, or a list),
  ``explanation``, ``link``, optional ``statuses`` and ``versions``, and ``when``: the
  declarative conditions of :class:`Conditions`, all of which must hold. ``when`` is
  required and may not be empty: an entry that explains every finding of an API would
  hide the next bug there too (a Python entry can still say ``when=lambda f: True``).

Every file is read and checked when it is loaded, before any work: a missing file, a file
that is not YAML or Python, unknown or missing keys, a value of the wrong kind, a bad
version range, a Python file that raises or has no ``ENTRIES``, and an ``id`` used twice
(in these files or by a built-in entry) raise :class:`KnownFileError`, whose text is one
line ``file:line: reason (fix)``.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import hashlib
import importlib
import importlib.util
import math
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.known import Finding, Known, _parse_range
from xentcheck.reference import LOSSES

__all__ = ["Conditions", "KnownFileError", "load_known"]

#: the statuses an entry may turn into ``known`` (``Known.statuses``)
STATUSES = ("mismatch", "nonfinite", "error")
DEVICES = ("cpu", "gpu")
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


class KnownFileError(ValueError):
    """A known-differences file that cannot be used: ``file:line: reason (fix)``."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(_BREAKS.sub(" ", f"{where}: {message}").strip())


# ------------------------------------------------------------------ the conditions


def _one_of(values: tuple[Any, ...] | None, value: Any) -> bool:
    return values is None or value in values


def _matches_pattern(patterns: tuple[str, ...] | None, value: str) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _within(f: Finding, rtol: float, atol: float) -> bool:
    """Every element of the framework's array lies within ``atol + rtol * |expected|`` of
    the reference's (a NaN or infinity only where the reference has the same)."""
    if f.expected is None or f.actual is None:
        return False
    expected = np.asarray(f.expected, dtype=np.float64)
    actual = np.asarray(f.actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return False
    return bool(np.all(np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)))


@dataclass(frozen=True)
class Conditions:
    """The ``when`` of a YAML entry: it explains a finding when every condition given holds.

    dtype, device, loss: the finding's is one of these; quantity: matches one of these
    shell patterns (``value``, ``grad:*``); params: for every name, the instance's
    parameter is one of the values (``null``: the case does not set it); error_contains:
    the framework's error text contains one of these; expect_error: the case is (or is
    not) one that must be rejected; within: ``(rtol, atol)``, every element of the
    framework's result is that close to the reference's (a finding without both arrays,
    an error say, does not qualify).
    """

    dtype: tuple[str, ...] | None = None
    device: tuple[str, ...] | None = None
    loss: tuple[str, ...] | None = None
    quantity: tuple[str, ...] | None = None
    params: tuple[tuple[str, tuple[Any, ...]], ...] | None = None
    error_contains: tuple[str, ...] | None = None
    expect_error: bool | None = None
    within: tuple[float, float] | None = None

    def __call__(self, f: Finding) -> bool:
        return (
            _one_of(self.dtype, f.dtype)
            and _one_of(self.device, f.device)
            and _one_of(self.loss, f.loss)
            and _matches_pattern(self.quantity, f.quantity)
            and all(f.params.get(name) in values for name, values in self.params or ())
            and (
                self.error_contains is None
                or (f.error is not None and any(s in f.error for s in self.error_contains))
            )
            and (self.expect_error is None or f.expect_error == self.expect_error)
            and (self.within is None or _within(f, *self.within))
        )


# ------------------------------------------------------------ checks of one field
# Each takes a value and returns the reason it is unusable, or None. They judge the
# fields of YAML and Python entries alike.


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be non-empty text"


def _name(value: Any) -> str | None:
    if _text(value) or re.search(r"\s", value):
        return "must be a name without spaces (e.g. my-kernel-bf16-accumulation)"
    return None


def _texts(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        return "must be a non-empty list of names"
    return next((f"{v!r} {why}" for v in value if (why := _text(v))), None)


def _statuses(value: Any) -> str | None:
    bad = _texts(value) or next((repr(v) for v in value if v not in STATUSES), None)
    return bad and f"{bad}: statuses are some of {', '.join(STATUSES)}"


def _versions(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be text, e.g. '>=2.1,<2.14' or 'optax<0.2.5'"
    try:
        if value.strip():
            _parse_range(value, "package")
    except ValueError as exc:
        return str(exc)
    return None


def _callable(value: Any) -> str | None:
    return None if callable(value) else "must be a function of the Finding returning True/False"


#: the fields of an entry -> (required, check)
FIELDS: dict[str, tuple[bool, Callable[[Any], str | None]]] = {
    "id": (True, _name),
    "framework": (True, _name),
    "apis": (True, _texts),
    "explanation": (True, _text),
    "link": (True, _text),
    "statuses": (False, _statuses),
    "versions": (False, _versions),
    "when": (True, _callable),
}


# --------------------------------------------------------------------- YAML files


class _Node:
    """A YAML node read by :func:`_yaml_nodes`: the value, plus the line of it."""

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


def _yaml_nodes(path: Path, text: str) -> _Node | None:
    """``text`` as nested :class:`_Node` (mappings: dict name -> (key line, node); lists:
    list of nodes; scalars: plain values). Aliases, tags other than the core schema's,
    non-text and duplicate keys are refused (aliases, which could nest without end, before
    the document is composed)."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise KnownFileError(path, event.start_mark.line + 1,
                                     "aliases (*name) are not supported (write it out)")  # fmt: skip
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise KnownFileError(
            path,
            mark.line + 1 if mark else None,
            f"invalid YAML: {exc.problem or exc.context} (check the indentation and brackets)",
        ) from None
    except yaml.YAMLError as exc:
        raise KnownFileError(path, None, f"invalid YAML: {exc} (write a YAML file)") from None
    constructor = yaml.SafeLoader("")

    def convert(node: yaml.Node) -> _Node:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            try:
                return _Node(constructor.construct_object(node), line)
            except (yaml.YAMLError, ValueError) as exc:
                raise KnownFileError(path, line, f"bad value {node.value!r}: {exc}") from None
        if isinstance(node, yaml.SequenceNode):
            return _Node([convert(n) for n in node.value], line)
        out: dict[str, tuple[int, _Node]] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = convert(key_node).value
            if not isinstance(key, str):
                raise KnownFileError(path, key_line, f"key {key!r} is not a name (write a name)")
            if key in out:
                raise KnownFileError(
                    path, key_line, f"duplicate key {key!r} (first at line {out[key][0]})"
                )
            out[key] = (key_line, convert(value_node))
        return _Node(out, line)

    return None if root is None else convert(root)


def _plain(node: _Node) -> Any:
    """The Python value of a node: dicts, lists and scalars."""
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, (_, v) in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(n) for n in node.value]
    return node.value


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _choices(options: Sequence[str]) -> Callable[[Any], str | None]:
    def check(values: list[Any]) -> str | None:
        bad = next((repr(v) for v in values if v not in options), None)
        return bad and f"{bad} is not one of {', '.join(options)}"

    return check


def _quantities(values: list[Any]) -> str | None:
    for v in values:
        if not isinstance(v, str) or not re.match(r"^(value|grad:.+)$|.*[*?\[]", v):
            return f"{v!r} is not a quantity: write value, grad:NAME or a pattern like grad:*"
    return None


def _substrings(values: list[Any]) -> str | None:
    return next((f"{v!r} must be non-empty text" for v in values if _text(v)), None)


#: the ``when`` conditions whose value is one item or a list -> the check of the list
LIST_CONDITIONS: dict[str, Callable[[list[Any]], str | None]] = {
    "dtype": _choices(FLOAT_DTYPES),
    "device": _choices(DEVICES),
    "loss": lambda values: _choices(sorted(LOSSES))(values),
    "quantity": _quantities,
    "error_contains": _substrings,
}
#: keys people put in ``when`` that belong elsewhere -> the fix
MISPLACED = {
    "status": "list the statuses in the entry's own 'statuses' field",
    "statuses": "move it out of 'when', to the entry itself",
    "api": "list the APIs in the entry's own 'apis' field",
    "apis": "move it out of 'when', to the entry itself",
    "framework": "move it out of 'when', to the entry itself",
}
CONDITIONS = (*LIST_CONDITIONS, "params", "expect_error", "within")


def _conditions(path: Path, node: _Node) -> Conditions:
    """The :class:`Conditions` of a ``when`` mapping node."""
    if not isinstance(node.value, dict):
        raise KnownFileError(path, node.line, "'when' must be a mapping of conditions (e.g. "
                             "when: {dtype: [float16, bfloat16]})")  # fmt: skip
    if not node.value:
        raise KnownFileError(path, node.line, "'when' is empty; state when the difference "
                             "occurs (dtype, quantity, params, ...)")  # fmt: skip
    found: dict[str, Any] = {}
    for key, (line, child) in node.value.items():
        if key in MISPLACED:
            raise KnownFileError(path, line, f"'{key}' is not a condition ({MISPLACED[key]})")
        if key not in CONDITIONS:
            raise KnownFileError(
                path, line, f"unknown condition {key!r} (use {', '.join(CONDITIONS)})"
            )
        value = _plain(child)
        if key in LIST_CONDITIONS:
            values = _as_list(value)
            if not values or (why := LIST_CONDITIONS[key](values)):
                raise KnownFileError(path, line, f"when.{key}: {why or 'is empty'}")
            found[key] = tuple(values)
        elif key == "params":
            found[key] = _params(path, line, value)
        elif key == "expect_error":
            if not isinstance(value, bool):
                raise KnownFileError(path, line, "when.expect_error must be true or false")
            found[key] = value
        else:
            found[key] = _tolerances(path, line, value)
    return Conditions(**found)


def _params(path: Path, line: int, value: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(value, dict) or not value:
        raise KnownFileError(path, line, "when.params must map parameter names to values "
                             "(e.g. params: {reduction: [mean, sum]})")  # fmt: skip
    out = []
    for name, v in value.items():
        values = _as_list(v)
        if not values or any(isinstance(x, dict | list) for x in values):
            raise KnownFileError(
                path, line, f"when.params.{name}: write a value or a list of values"
            )
        out.append((name, tuple(values)))
    return tuple(out)


def _tolerances(path: Path, line: int, value: Any) -> tuple[float, float]:
    ok = isinstance(value, dict) and value and set(value) <= {"rtol", "atol"}
    numbers = [value.get(k, 0.0) for k in ("rtol", "atol")] if ok else []
    if not ok or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
        for x in numbers
    ):
        raise KnownFileError(path, line, "when.within takes rtol and/or atol, non-negative "
                             "numbers (e.g. within: {rtol: 0.01})")  # fmt: skip
    return float(numbers[0]), float(numbers[1])


def _yaml_entries(path: Path, text: str) -> list[tuple[Known, int]]:
    root = _yaml_nodes(path, text)
    if root is not None and isinstance(root.value, dict) and set(root.value) == {"entries"}:
        root = root.value["entries"][1]
    if root is None or not isinstance(root.value, list) or not root.value:
        raise KnownFileError(path, root.line if root else 1, "no entries: write a list of "
                             "entries (- id: ...), or entries: [...]")  # fmt: skip
    return [(_yaml_entry(path, node), node.line) for node in root.value]


def _yaml_entry(path: Path, node: _Node) -> Known:
    if not isinstance(node.value, dict):
        raise KnownFileError(path, node.line, "an entry must be a mapping (id: ..., "
                             "framework: ..., apis: [...], ...)")  # fmt: skip
    fields: dict[str, Any] = {}
    for key, (line, child) in node.value.items():
        if key not in FIELDS:
            raise KnownFileError(
                path, line, f"unknown key {key!r} (an entry has {', '.join(FIELDS)})"
            )
        if key == "when":
            fields[key] = _conditions(path, child)
            continue
        value = _plain(child)
        if key in ("apis", "statuses"):
            value = tuple(_as_list(value))
        if why := FIELDS[key][1](value):
            raise KnownFileError(path, line, f"{key} {why}")
        fields[key] = value
    missing = [k for k, (required, _) in FIELDS.items() if required and k not in fields]
    if missing:
        raise KnownFileError(path, node.line, f"entry lacks {', '.join(missing)} (add "
                             f"{'them' if len(missing) > 1 else 'it'})")  # fmt: skip
    return Known(**fields)


# ------------------------------------------------------------------- Python files


def _python_entries(path: Path, text: str) -> list[tuple[Known, int]]:
    try:
        tree = ast.parse(text, str(path))
    except SyntaxError as exc:
        raise KnownFileError(
            path, exc.lineno, f"invalid Python: {exc.msg} (fix the syntax)"
        ) from None
    name = "xentcheck_user_known_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        text = " ".join(str(exc).split())[:300]
        raise KnownFileError(path, frames[-1].lineno if frames else None,
                             f"importing it raised {type(exc).__name__}: {text} (fix the file)"
                             ) from None  # fmt: skip
    assigned = _entries_line(tree)
    found = getattr(module, "ENTRIES", None)
    if found is None:
        raise KnownFileError(
            path,
            None,
            "no ENTRIES (define ENTRIES = [Known(...), ...], Known from xentcheck.known)",
        )
    if not isinstance(found, list | tuple):
        raise KnownFileError(path, assigned, "ENTRIES must be a list of Known(...)")
    out = []
    for k in found:
        if not isinstance(k, Known):
            raise KnownFileError(
                path, assigned, f"ENTRIES holds {type(k).__name__}, not Known (make it Known(...))"
            )
        line = _entry_line(tree, k.id) or assigned
        for key, (_, check) in FIELDS.items():
            if why := check(getattr(k, key)):
                raise KnownFileError(path, line, f"entry {k.id!r}: {key} {why}")
        out.append((dataclasses.replace(k, apis=tuple(k.apis), statuses=tuple(k.statuses)), line))
    return out


def _entries_line(tree: ast.Module) -> int | None:
    """The line of the module-level ``ENTRIES = ...``."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "ENTRIES" for t in targets):
            return node.lineno
    return None


def _entry_line(tree: ast.Module, entry_id: str) -> int | None:
    """The line of the ``Known(id=ENTRY_ID, ...)`` call (id as keyword or first argument)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            given = [kw.value for kw in node.keywords if kw.arg == "id"] + node.args[:1]
            if any(isinstance(v, ast.Constant) and v.value == entry_id for v in given):
                return node.lineno
    return None


# ------------------------------------------------------------------------ loading


@cache
def builtin_ids() -> dict[str, str]:
    """Every built-in entry's id -> the framework that first declares it."""
    import xentcheck.known as package

    ids: dict[str, str] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for k in getattr(module, "ENTRIES", ()):
            ids.setdefault(k.id, k.framework)
    return ids


def load_known(paths: Sequence[str | Path]) -> list[Known]:
    """The entries of the known-differences files ``paths``, in order.

    A file named ``*.py`` is Python (its ``ENTRIES``), any other YAML. Raises
    :class:`KnownFileError` (``file:line: reason (fix)``) for the first problem found:
    see the module's docstring; nothing is returned unless every file is usable.
    """
    out: list[Known] = []
    where: dict[str, str] = {}
    for p in paths:
        path = Path(p)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KnownFileError(
                path, None, "no such known-differences file (check the path)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise KnownFileError(
                path, None, f"cannot read it: {reason} (name a UTF-8 text file)"
            ) from None
        read = _python_entries if path.suffix == ".py" else _yaml_entries
        for k, line in read(path, text):
            if k.id in where:
                raise KnownFileError(path, line, f"id {k.id!r} is already used at {where[k.id]} "
                                     "(give each entry its own id)")  # fmt: skip
            if k.id in builtin_ids():
                raise KnownFileError(path, line, f"id {k.id!r} is a built-in entry of "
                                     f"{builtin_ids()[k.id]} (choose another id)")  # fmt: skip
            where[k.id] = f"{path}:{line}"
            out.append(k)
    return out
