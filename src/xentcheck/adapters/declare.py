"""APIs as data: one :class:`Declaration` per public API (or user recipe), in one table per
framework, written the way PyTorch's OpInfo entries are.

A declaration says which loss an API computes, the framework call it makes with its
argument mapping, and which calls it applies to. Two things come from it, from the same
data, so they cannot drift apart:

* the callable the worker runs (:meth:`Declaration.evaluate`, wrapped into an
  :class:`~xentcheck.adapters.base.Api` by the framework's plumbing, see :func:`apis`);
* a short standalone Python snippet of that call (:meth:`Declaration.source`): NumPy and
  the one framework, the inputs, the call, the value and the gradients
  (:func:`snippet`, given the framework's :class:`Frame`).

Three shapes of call:

``Function("torch.nn.functional.cross_entropy", ("logits", "target"), keywords=...)``
    ``path(*args, **keywords)``.
``Construct("torch.nn.CrossEntropyLoss", ("logits", "target"), keywords=...)``
    a loss object: ``path(**keywords)(*args)``.
``Recipe(token_ce, ("logits", "target"), keywords=...)``
    a user function written in plain framework code where no single API does the job; the
    snippet carries its source (and that of the module-level helpers it calls).

``keywords`` maps a case parameter (or optional input such as ``weight``) to the
framework keyword it is passed as, exactly when the case set it (:meth:`Call.is_set`);
``always`` holds keywords passed on every call, computed from the call (``dim=axis``).
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from xentcheck.adapters.base import Api, Call, Output

__all__ = [
    "Construct",
    "Declaration",
    "Frame",
    "Function",
    "Recipe",
    "apis",
    "array_literal",
    "literal",
    "param",
    "resolve",
    "snippet",
    "snippets",
]

Tensors = Mapping[str, Any]


def _always(call: Call) -> bool:
    return True


def resolve(path: str, aliases: Mapping[str, str]) -> Any:
    """The object a dotted path names, its first part read through ``aliases``
    (``{"tf": "tensorflow"}``): ``resolve("tf.nn.softmax", ...)`` is ``tf.nn.softmax``."""
    head, *rest = path.split(".")
    obj: Any = importlib.import_module(aliases.get(head, head))
    for part in rest:
        obj = getattr(obj, part)
    return obj


def literal(value: Any) -> str:
    """Python source for a parameter value (numbers, strings, booleans, None, tuples)."""
    if isinstance(value, float) and not np.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, np.generic):
        return literal(value.item())
    return repr(value)


def param(name: str, default: Any = None) -> Callable[[Call], Any]:
    """An ``always`` entry passing parameter ``name`` whether set or not (its registry
    default when the case leaves it out; ``default`` when the loss has no such parameter)."""

    def value(call: Call) -> Any:
        return call.params.get(name, default)

    value.__name__ = f"param_{name}"
    return value


class _Arguments:
    """What every call shape shares: inputs passed positionally, the keyword mapping."""

    args: tuple[str, ...]
    keywords: Mapping[str, str]
    always: Mapping[str, Callable[[Call], Any]]

    def kwargs(self, call: Call, tensors: Tensors) -> dict[str, Any]:
        """``{keyword: value}``: inputs as tensors, parameters as the case's values."""
        out = {}
        for name, kw in self.keywords.items():
            if call.is_set(name):
                out[kw] = tensors[name] if name in call.inputs else call.params[name]
        return out | {kw: f(call) for kw, f in self.always.items()}

    def positional(self, tensors: Tensors) -> list[Any]:
        return [tensors[a] for a in self.args]

    def rendered(self, call: Call) -> tuple[list[str], list[str]]:
        """The positional and keyword argument texts: inputs by name, values literal."""
        names = {k: _Name(k) for k in call.inputs}
        kw = self.kwargs(call, names)
        args = [str(a) for a in self.args]
        return args, [f"{k}={v if isinstance(v, _Name) else literal(v)}" for k, v in kw.items()]


class _Name(str):
    """An input passed by its variable name in a snippet."""


@dataclass(frozen=True)
class Function(_Arguments):
    """``path(*args, **keywords)``."""

    path: str
    args: tuple[str, ...]
    keywords: Mapping[str, str] = field(default_factory=dict)
    always: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)

    def target(self, aliases: Mapping[str, str]) -> Callable[..., Any]:
        return resolve(self.path, aliases)

    def apply(self, fn: Callable[..., Any], tensors: Tensors, call: Call) -> Any:
        return fn(*self.positional(tensors), **self.kwargs(call, tensors))

    def expression(self, call: Call) -> tuple[str, str]:
        args, kw = self.rendered(call)
        return "", f"{self.path}({', '.join(args + kw)})"


@dataclass(frozen=True)
class Construct(Function):
    """A loss object: ``path(**keywords)(*args)``."""

    def apply(self, cls: Callable[..., Any], tensors: Tensors, call: Call) -> Any:
        return cls(**self.kwargs(call, tensors))(*self.positional(tensors))

    def expression(self, call: Call) -> tuple[str, str]:
        args, kw = self.rendered(call)
        return "", f"{self.path}({', '.join(kw)})({', '.join(args)})"


@dataclass(frozen=True)
class Recipe(_Arguments):
    """A user function ``fn(*args, **keywords)`` in plain framework code."""

    fn: Callable[..., Any]
    args: tuple[str, ...]
    keywords: Mapping[str, str] = field(default_factory=dict)
    always: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)

    def target(self, aliases: Mapping[str, str]) -> Callable[..., Any]:
        return self.fn

    def apply(self, fn: Callable[..., Any], tensors: Tensors, call: Call) -> Any:
        return fn(*self.positional(tensors), **self.kwargs(call, tensors))

    def expression(self, call: Call) -> tuple[str, str]:
        args, kw = self.rendered(call)
        return _sources(self.fn), f"{self.fn.__name__}({', '.join(args + kw)})"


def _sources(fn: Callable[..., Any]) -> str:
    """The source of ``fn`` and of the functions and constants of its module it uses,
    after the imports of the modules they name (``import torch.nn.functional as F``)."""
    module = inspect.getmodule(fn)
    imports: dict[str, str] = {}
    seen: dict[str, str] = {}

    def visit(f: types.FunctionType) -> None:
        if f.__name__ in seen:
            return
        seen[f.__name__] = ""  # claimed: recursion stops here
        for name in sorted(_names(f.__code__)):
            obj = f.__globals__.get(name)
            if isinstance(obj, types.ModuleType):
                mod = obj.__name__
                imports[name] = f"import {mod}" if mod == name else f"import {mod} as {name}"
            elif isinstance(obj, types.FunctionType) and inspect.getmodule(obj) is module:
                visit(obj)
            elif name.isupper() and isinstance(obj, int | float | str | bool):
                seen.setdefault(name, f"{name} = {obj!r}")
        seen[f.__name__] = textwrap.dedent(inspect.getsource(f))

    visit(fn)
    defs = "\n\n".join(reversed(list(seen.values())))
    return "\n".join(sorted(imports.values())) + "\n\n\n" + defs


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


@dataclass(frozen=True)
class Declaration:
    """One row of a framework's table: an API (or recipe) computing ``loss``.

    name:     the API as a user writes it; a recipe names what it adds
              (``torch.nn.functional.nll_loss+torch.log``).
    call:     the framework call (:class:`Function`, :class:`Construct`, :class:`Recipe`).
    applies:  False for calls a sibling declaration covers (integer labels vs
              probabilities); they produce no row.
    guard:    raises :class:`~xentcheck.adapters.base.Unsupported` for a call the harness
              must not make (one that would poison a CUDA context, say); not in snippets.
    twin_of:  the declaration this one calls the same kernel as (a module form of a
              functional API): execution modes compile the functional one only.
    """

    name: str
    loss: str
    call: Function | Construct | Recipe
    applies: Callable[[Call], bool] = _always
    guard: Callable[[Call, Tensors], None] | None = None
    twin_of: str | None = None
    doc: str = ""

    def bind(self, call: Call, aliases: Mapping[str, str]) -> Callable[[Tensors], Any]:
        """The function of the framework arrays (by input name) that the adapter runs: the
        API resolved here, so a tracer (``torch.compile``) sees only the call itself."""
        target, spec, guard = self.call.target(aliases), self.call, self.guard

        def fn(tensors: Tensors) -> Any:
            if guard is not None:
                guard(call, tensors)
            return spec.apply(target, tensors, call)

        return fn

    def source(self, call: Call) -> tuple[str, str]:
        """``(definitions, expression)``: the source a snippet needs before the call (a
        recipe's functions), and the call as one expression over the input variables."""
        return self.call.expression(call)


class Frame(Protocol):
    """How a framework's snippets hold inputs and take gradients, mirroring its adapter's
    own execution so a snippet gives the adapter's numbers bit for bit."""

    #: the import lines of a snippet (``import torch``)
    imports: str

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        """Lines defining variable ``name`` as a framework array of ``array`` (a NumPy
        literal cast to the call's dtype; differentiable when in ``call.grad_inputs``)."""

    def program(self, expression: str, call: Call) -> str:
        """Lines computing ``value`` from ``expression`` and, when the call has
        ``grad_inputs``, ``grads`` (input name -> array), both as float64 NumPy arrays."""


def array_literal(array: np.ndarray) -> str:
    """``np.array([...], dtype=...)`` giving ``array`` exactly (float64 repr round-trips)."""
    a = np.asarray(array)
    kind = {"b": "bool_", "i": "int64", "u": "int64"}.get(a.dtype.kind, "float64")
    flat = a.astype(kind).ravel().tolist()
    items = ", ".join(literal(v) if kind == "float64" else repr(v) for v in flat)
    if a.ndim == 0:
        return f"np.array({items}, dtype=np.{kind})"
    shape = "" if a.ndim == 1 else f".reshape({tuple(a.shape)!r})"
    return f"np.array([{items}], dtype=np.{kind}){shape}"


def snippet(decl: Declaration, call: Call, frame: Frame, header: str = "") -> str:
    """A standalone script of ``decl`` on ``call``: imports, inputs, the call, the value
    and gradients (variables ``value`` and ``grads``, float64 NumPy arrays)."""
    definitions, expression = decl.source(call)
    imports = frame.imports.splitlines()
    lines = definitions.splitlines()
    while lines and (lines[0].startswith("import ") or not lines[0]):
        if lines[0] and lines[0] not in imports:
            imports.append(lines[0])
        lines.pop(0)
    parts = [f"# {header}" if header else "", "\n".join(imports), "\n".join(lines)]
    parts.append(
        "\n".join(frame.input(k, v, call) for k, v in call.inputs.items() if v is not None)
    )
    parts.append(frame.program(expression, call))
    return "\n\n".join(p for p in parts if p).strip() + "\n"


def snippets(
    table: Iterable[Declaration], frame: Frame, versions: Callable[[], Mapping[str, str]]
) -> Callable[[str, Call], str]:
    """A framework's ``snippet(api, call)``: the script of the declaration named ``api``,
    headed by the framework's versions, the API, dtype and device."""
    by_name = {d.name: d for d in table}

    def make(api: str, call: Call) -> str:
        if api not in by_name:
            raise ValueError(f"no declaration named {api!r}")
        v = ", ".join(f"{k} {x}" for k, x in versions().items() if k != "python")
        return snippet(by_name[api], call, frame, f"{v} | {api} | {call.dtype} | {call.device}")

    return make


def apis(
    table: Iterable[Declaration],
    execute: Callable[[Call, Callable[[Tensors], Any]], Output],
    aliases: Mapping[str, str],
    wrap: Callable[[Callable[[Tensors], Any], Call], Callable[[Tensors], Any]] | None = None,
    rename: Callable[[str], str] | None = None,
) -> list[Api]:
    """The harness's :class:`Api` objects of a table, run by the framework's ``execute``.

    ``wrap(fn, call)`` turns the eager function into an execution mode's (``torch.compile``)
    and ``rename`` names its rows; a mode runs each kernel once, so twins are left out.
    """
    out = []
    for decl in table:
        if wrap is not None and decl.twin_of is not None:
            continue

        def run(call: Call, decl: Declaration = decl) -> Output:
            fn = decl.bind(call, aliases)
            return execute(call, fn if wrap is None else wrap(fn, call))

        name = rename(decl.name) if rename is not None else decl.name
        run.__name__ = f"run_{name}"
        out.append(Api(name=name, loss=decl.loss, run=run, applies=decl.applies, doc=decl.doc))
    return out
