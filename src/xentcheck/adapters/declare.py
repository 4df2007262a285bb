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
``Graph("helper.make_node", {"x": "logits", ...}, (Node("Softmax", ("x",)), ...))``
    a few operator nodes that the framework's plumbing builds into a model and runs, for
    frameworks whose calls are graphs rather than Python calls (ONNX).

``keywords`` maps a case parameter (or optional input such as ``weight``) to the
framework keyword it is passed as, exactly when the case set it (:meth:`Call.is_set`);
``always`` holds keywords passed on every call, computed from the call (``dim=axis``).
``traced`` names keywords whose values (converted, ``{"ignore_index": int}``) a tracing
compiler must take as run-time arguments rather than constants (``jax.jit``: no
recompilation per value, no constant folding): the plumbing passes them in with the
tensors (:attr:`Bound.scalars`), and a snippet as variables.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from xentcheck.adapters.base import Api, Call, Output, Unsupported

__all__ = [
    "Bound",
    "Construct",
    "Declaration",
    "Frame",
    "Function",
    "Graph",
    "Keyword",
    "Missing",
    "Node",
    "Recipe",
    "apis",
    "array_literal",
    "const",
    "integer_target",
    "lacks",
    "literal",
    "missing",
    "param",
    "probability_target",
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


def const(value: Any) -> Callable[[Call], Any]:
    """An ``always`` entry passing ``value`` on every call (``from_logits=True``)."""

    def constant(call: Call) -> Any:
        return value

    constant.__name__ = f"const_{value!r}"
    return constant


def integer_target(call: Call) -> bool:
    """``applies`` of an API taking class indices (:attr:`Call.integer_target`)."""
    return call.integer_target


def probability_target(call: Call) -> bool:
    """``applies`` of an API taking probability targets, not class indices."""
    return not call.integer_target


@dataclass(frozen=True)
class Keyword:
    """A ``keywords`` target whose value is converted: the case's value ``v`` is passed
    as ``name=convert(v)`` (a reduction by the framework's own name, say)."""

    name: str
    convert: Callable[[Any], Any]


_WHAT = {"weight": "class/element weight"}


def lacks(api: str, *names: str) -> Callable[[Call, Tensors], None]:
    """A guard: :class:`Unsupported` (``"<api> has no <name> argument"``) for the first of
    ``names`` the case set, parameters or optional inputs ``api`` has no argument for."""

    def guard(call: Call, tensors: Tensors) -> None:
        for name in names:
            if call.is_set(name):
                raise Unsupported(f"{api} has no {_WHAT.get(name, name)} argument")

    return guard


@dataclass(frozen=True)
class Missing:
    """The ``run`` of an API a framework lacks: every call is unsupported, for ``reason``."""

    reason: str

    def __call__(self, call: Call) -> Output:
        raise Unsupported(self.reason)


def missing(name: str, loss: str, reason: str) -> Api:
    """A row saying the framework has no API for ``loss`` (every call ``unsupported`` with
    ``reason``); it has no declaration, hence no snippet and no execution-mode twin."""
    return Api(name=name, loss=loss, run=Missing(reason), doc=reason)


class _Arguments:
    """What every call shape shares: inputs passed positionally, the keyword mapping."""

    args: tuple[str, ...]
    keywords: Mapping[str, str | Keyword]
    always: Mapping[str, Callable[[Call], Any]]
    traced: Mapping[str, Callable[[Any], Any]]

    def kwargs(self, call: Call, tensors: Tensors) -> dict[str, Any]:
        """``{keyword: value}``: inputs as tensors, parameters as the case's values; a
        traced keyword's value is ``tensors[keyword]`` when the plumbing passes one there
        (:attr:`Bound.scalars`), else its converted value."""
        out = {}
        for name, kw in self.keywords.items():
            if call.is_set(name):
                value = tensors[name] if name in call.inputs else call.params[name]
                if isinstance(kw, Keyword):  # a value converted to the framework's
                    kw, value = kw.name, kw.convert(value)
                out[kw] = value
        out |= {kw: f(call) for kw, f in self.always.items()}
        for kw, convert in self.traced.items():
            if out.get(kw) is not None:
                out[kw] = tensors[kw] if kw in tensors else convert(out[kw])
        return out

    def scalars(self, call: Call) -> dict[str, Any]:
        """``{keyword: value}`` of the traced keywords the call passes (None stays a
        constant): Python scalars a tracing compiler takes as arguments."""
        out = self.kwargs(call, dict.fromkeys(call.inputs))
        return {kw: out[kw] for kw in self.traced if out.get(kw) is not None}

    def constants(self, call: Call) -> tuple:
        """What the bound function bakes in besides the declaration: each keyword with its
        value, inputs and traced scalars by name only."""
        names = {k: _Name(k) for k in [*call.inputs, *self.traced]}
        kw = self.kwargs(call, names)
        return tuple(sorted((k, type(v).__name__, repr(v)) for k, v in kw.items()))

    def positional(self, tensors: Tensors) -> list[Any]:
        return [tensors[a] for a in self.args]

    def rendered(self, call: Call) -> tuple[list[str], list[str]]:
        """The positional and keyword argument texts: inputs by name, values literal."""
        names = {k: _Name(k) for k in [*call.inputs, *self.traced]}
        kw = self.kwargs(call, names)
        args = [str(a) for a in self.args]
        return args, [f"{k}={v if isinstance(v, _Name) else literal(v)}" for k, v in kw.items()]


class _Name(str):
    """An input (or traced scalar) passed by its variable name in a snippet."""


@dataclass(frozen=True)
class Function(_Arguments):
    """``path(*args, **keywords)``."""

    path: str
    args: tuple[str, ...]
    keywords: Mapping[str, str | Keyword] = field(default_factory=dict)
    always: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)
    traced: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

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
    keywords: Mapping[str, str | Keyword] = field(default_factory=dict)
    always: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)
    traced: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

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
class Node:
    """One operator node of a :class:`Graph`: ``op`` on ``inputs`` (graph inputs or
    earlier nodes' outputs), writing ``output``.

    Attributes: ``keywords`` maps a case parameter to the attribute it is passed as,
    exactly when the case set it (:meth:`Call.is_set`); ``always`` holds attributes
    computed from the call on every call; ``attributes`` fixed ones. An input naming a
    graph input the call does not feed (an optional input the case left out, such as
    ``weight``) is left out of the node: ONNX's trailing optional inputs.
    """

    op: str
    inputs: tuple[str, ...]
    output: str = "out"
    keywords: Mapping[str, str] = field(default_factory=dict)
    always: Mapping[str, Callable[[Call], Any]] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, call: Call, unfed: Collection[str]) -> tuple:
        """``(op, inputs, [output], attributes)``: the node as its constructor takes it,
        less the inputs in ``unfed``."""
        attrs = dict(self.attributes) | call.kwargs(self.keywords)
        attrs |= {k: f(call) for k, f in self.always.items()}
        return self.op, [i for i in self.inputs if i not in unfed], [self.output], attrs


@dataclass(frozen=True)
class Graph:
    """Operator nodes, each made by ``path(op, inputs, outputs, **attributes)``
    (``onnx.helper.make_node``), that the framework's plumbing builds into a model over
    the fed inputs and runs; the last node writes ``out``.

    feeds:     {graph input: case input}, fed when the case gives it (:meth:`Call.is_set`).
    integer:   graph inputs fed as int64 class indices (a float array is cast, truncating,
               as ``astype(np.int64)`` does).
    constants: {graph input: int64 values} fed on every call (``ReduceSum``'s ``axes``).
    nodes:     the :class:`Node` tuple, or a function of the call giving it (a graph whose
               shape follows a parameter, such as the reduction).

    The bound function gives ``(nodes, feeds)``: the node objects and {graph input: NumPy
    array}; the snippet's expression is the same pair, ``[path(...), ...], {...}``, over
    the input variables. Making the model and running it is the framework's (its
    ``execute`` and its :class:`Frame`), as holding tensors is for a Python-call framework.
    """

    path: str
    feeds: Mapping[str, str]
    nodes: tuple[Node, ...] | Callable[[Call], tuple[Node, ...]]
    integer: tuple[str, ...] = ()
    constants: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def target(self, aliases: Mapping[str, str]) -> Callable[..., Any]:
        return resolve(self.path, aliases)

    def fed(self, call: Call) -> dict[str, str]:
        """{graph input: case input} of the inputs this call feeds."""
        return {g: c for g, c in self.feeds.items() if call.is_set(c)}

    def node_arguments(self, call: Call) -> list[tuple]:
        """Each node's ``(op, inputs, [output], attributes)`` on this call."""
        nodes = self.nodes(call) if callable(self.nodes) else self.nodes
        unfed = self.feeds.keys() - self.fed(call).keys()
        return [n.arguments(call, unfed) for n in nodes]

    def apply(
        self, make: Callable[..., Any], tensors: Tensors, call: Call
    ) -> tuple[list[Any], dict[str, Any]]:
        feeds = {
            g: np.asarray(tensors[c]).astype(np.int64) if g in self.integer else tensors[c]
            for g, c in self.fed(call).items()
        }
        feeds |= {g: np.array(v, dtype=np.int64) for g, v in self.constants.items()}
        return [make(op, i, o, **kw) for op, i, o, kw in self.node_arguments(call)], feeds

    def expression(self, call: Call) -> tuple[str, str]:
        nodes = "".join(
            f"    {self.path}({', '.join([repr(op), repr(i), repr(o), *_keywords(kw)])}),\n"
            for op, i, o, kw in self.node_arguments(call)
        )
        feeds = [
            f"{g!r}: {c}.astype(np.int64)"
            if g in self.integer and call.inputs[c].dtype.kind not in "iu"
            else f"{g!r}: {c}"
            for g, c in self.fed(call).items()
        ]
        feeds += [f"{g!r}: {array_literal(np.array(v))}" for g, v in self.constants.items()]
        return "", f"[\n{nodes}], {{{', '.join(feeds)}}}"


def _keywords(kw: Mapping[str, Any]) -> list[str]:
    return [f"{k}={literal(v)}" for k, v in kw.items()]


@dataclass(frozen=True)
class Declaration:
    """One row of a framework's table: an API (or recipe) computing ``loss``.

    name:     the API as a user writes it; a recipe names what it adds
              (``torch.nn.functional.nll_loss+torch.log``).
    call:     the framework call (:class:`Function`, :class:`Construct`, :class:`Recipe`,
              :class:`Graph`).
    applies:  False for calls a sibling declaration covers (integer labels vs
              probabilities); they produce no row.
    guard:    raises :class:`~xentcheck.adapters.base.Unsupported` for a call the harness
              must not make (one that would poison a CUDA context, say); not in snippets.
    twin_of:  the declaration this one calls the same kernel as (a module form of a
              functional API): execution modes compile the functional one only.
    """

    name: str
    loss: str
    call: Function | Construct | Recipe | Graph
    applies: Callable[[Call], bool] = _always
    guard: Callable[[Call, Tensors], None] | None = None
    twin_of: str | None = None
    doc: str = ""

    def bind(self, call: Call, aliases: Mapping[str, str]) -> Bound:
        """The function of the framework arrays (by input name) that the adapter runs: the
        API resolved here, so a tracer (``torch.compile``) sees only the call itself."""
        target, spec, guard = self.call.target(aliases), self.call, self.guard

        def fn(tensors: Tensors) -> Any:
            if guard is not None:
                guard(call, tensors)
            return spec.apply(target, tensors, call)

        return Bound(fn, self, call)

    def scalars(self, call: Call) -> dict[str, Any]:
        """The traced keywords' values on ``call`` (:meth:`_Arguments.scalars`; none for a
        :class:`Graph`)."""
        return self.call.scalars(call) if isinstance(self.call, _Arguments) else {}

    def source(self, call: Call) -> tuple[str, str]:
        """``(definitions, expression)``: the source a snippet needs before the call (a
        recipe's functions), and the call as one expression over the input variables."""
        return self.call.expression(call)


@dataclass(frozen=True)
class Bound:
    """A declaration bound to a call: ``bound(tensors)`` runs it.

    For a compiling plumbing (``jax.jit``): :attr:`scalars` are the traced keywords'
    values, to add to ``tensors`` so they enter as arguments, and :attr:`key` names all
    the function bakes in (the declaration and its constant keyword values), so one
    compiled function serves every call of the same key and argument signature.
    """

    fn: Callable[[Tensors], Any]
    declaration: Declaration
    call: Call

    def __call__(self, tensors: Tensors) -> Any:
        return self.fn(tensors)

    @property
    def scalars(self) -> dict[str, Any]:
        return self.declaration.scalars(self.call)

    @property
    def key(self) -> tuple:
        # by identity: a name may stand for two declarations (one per loss, or a refusal)
        decl = self.declaration
        return (decl.loss, decl.name, id(decl), decl.call.constants(self.call))


class Frame(Protocol):
    """How a framework's snippets hold inputs and take gradients, mirroring its adapter's
    own execution so a snippet gives the adapter's numbers bit for bit."""

    #: the import lines of a snippet (``import torch``); lines after them (a setting such
    #: as ``jax.config.update(...)``) come after every import the snippet adds
    imports: str

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        """Lines defining variable ``name`` as a framework array of ``array`` (a NumPy
        literal cast to the call's dtype; differentiable when in ``call.grad_inputs``)."""

    def program(self, expression: str, call: Call) -> str:
        """Lines computing ``value`` from ``expression`` and, when the call has
        ``grad_inputs``, ``grads`` (input name -> array), both as float64 NumPy arrays.

        A frame of a framework with traced keywords takes a third argument, ``scalars``:
        the names of the scalar variables (defined before, Python numbers) the expression
        uses besides the inputs; it is passed only when there are some."""


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
    settings = []
    while imports and not imports[-1].startswith(("import ", "from ")):
        settings.insert(0, imports.pop())
    lines = definitions.splitlines()
    while lines and (lines[0].startswith("import ") or not lines[0]):
        if lines[0] and lines[0] not in imports:
            imports.append(lines[0])
        lines.pop(0)
    parts = [f"# {header}" if header else "", "\n".join(imports + settings), "\n".join(lines)]
    parts.append(
        "\n".join(frame.input(k, v, call) for k, v in call.inputs.items() if v is not None)
    )
    scalars = decl.scalars(call)
    if scalars:
        parts.append("\n".join(f"{k} = {literal(v)}" for k, v in scalars.items()))
        parts.append(frame.program(expression, call, tuple(scalars)))  # type: ignore[call-arg]
    else:
        parts.append(frame.program(expression, call))
    return "\n\n".join(p for p in parts if p).strip() + "\n"


def snippets(
    table: Iterable[Declaration],
    frame: Frame,
    versions: Callable[[], Mapping[str, str]],
    rename: Callable[[str], str] | None = None,
) -> Callable[[str, Call], str]:
    """A framework's ``snippet(api, call)``: the script of the declaration named ``api``,
    headed by the framework's versions, the API, dtype and device. ``rename`` names an
    execution mode's rows as :func:`apis` does. A name may stand for one declaration per
    loss (optax's integer-label API computes two); the call's loss picks it."""
    by_name: dict[tuple[str, str], Declaration] = {}
    for d in table:
        by_name.setdefault((d.loss, rename(d.name) if rename is not None else d.name), d)

    def make(api: str, call: Call) -> str:
        if (call.loss, api) not in by_name:
            raise ValueError(f"no declaration named {api!r} for loss {call.loss!r}")
        v = ", ".join(f"{k} {x}" for k, x in versions().items() if k != "python")
        decl = by_name[call.loss, api]
        return snippet(decl, call, frame, f"{v} | {api} | {call.dtype} | {call.device}")

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
