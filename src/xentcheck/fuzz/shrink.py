"""Shrinking a fuzz case: how big a case is, and the simpler cases to try in its place.

This is the pure part of shrinking; the loop that runs the candidates through the
frameworks and keeps one when its behaviour is unchanged is
:func:`xentcheck.fuzz.driver.shrink`. A case is the fuzz case dict (a plain dict that
``yaml.safe_dump({"cases": [case]})`` turns into a valid case file, with exactly one
dtype). :func:`size` orders cases; :func:`simplifications` proposes at most
:data:`MAX_CANDIDATES` cases, each strictly smaller and each one the reference accepts
exactly when it accepts the case (so ``expect_error`` stays right).

The structure comes from the registry and the reference's layouts
(:data:`LAYOUT_OF`): the class axis is axis 1 of the softmax family (axis 0 of an
unbatched 1-D input), the last axis of the token losses; class indices are the first
input's shape without it; class weights have length C; the weights of the elementwise
losses broadcast against the first input with trailing axes aligned; softmax, log_softmax
and logsumexp work along their ``axis`` parameter. Every axis of the first input is an
axis *group*: shrinking a group takes the same indices of every input that has that axis.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xentcheck.dtypes import FLOAT_DTYPES, quantize
from xentcheck.harness.generators import derived_seed, generate
from xentcheck.reference import LOSSES, LossSpec, check, checks, values_read
from xentcheck.reference.arguments import check_axis

__all__ = [
    "MAX_CANDIDATES", "MAX_MATERIALISED", "accepted", "layout", "simplifications", "size",
    "value_cost",
]  # fmt: skip

#: candidates :func:`simplifications` proposes at most, per call
MAX_CANDIDATES = 60
#: a generator input is written out as a literal only up to this many elements
MAX_MATERIALISED = 256
#: a generator's axis up to this extent may shrink to each one of its indices in turn
KEEP_ONE = 64
#: the cost of a non-finite value: above a power of two (3), so that replacing it with a
#: large finite number is a simplification; still a "simple" value
NONFINITE_COST = 4
#: the cost of one generated element: above any literal value's (2 + 17 digits)
GENERATED_COST = 20
#: dtype precision, lowest first (float16 and bfloat16 are equally simple)
DTYPE_RANK = {"float16": 0, "bfloat16": 0, "float32": 1, "float64": 2}
#: the dtypes a case may move to, nearest first
LOWER_DTYPES = {"float64": ("float32", "bfloat16", "float16"), "float32": ("bfloat16", "float16")}
#: the large finite number a non-finite value may become: a power of two near the top of
#: the dtype's range (exact in it)
LARGE = {"float16": 2.0**15, "bfloat16": 2.0**127, "float32": 2.0**127, "float64": 2.0**1023}

Case = dict[str, Any]


# ------------------------------------------------------------------------------ size


@functools.lru_cache(maxsize=65536)
def value_cost(v: float) -> int:
    """How complex one value is to read: 0 for 0, 1 for +-1, :data:`NONFINITE_COST` for
    inf and NaN, else 2 + the fewer of its significant decimal digits and significant bits
    (so 2, 0.5, 7, 0.1 cost 3; 12 and 2.5 cost 4; a long mantissa up to 19)."""
    if v == 0:
        return 0
    if not math.isfinite(v):
        return NONFINITE_COST
    a = abs(v)
    if a == 1:
        return 1
    return 2 + min(_decimal_digits(a), _binary_digits(a))


def _decimal_digits(a: float) -> int:
    return max(1, len(repr(a).split("e")[0].replace(".", "").strip("0")))


def _binary_digits(a: float) -> int:
    n, _ = a.as_integer_ratio()
    return (n >> ((n & -n).bit_length() - 1)).bit_length()


def _label_cost(v: float) -> int:
    return 0 if v == 0 else 1


def size(case: Mapping[str, Any]) -> tuple[int, ...]:
    """How big a fuzz case is, compared lexicographically (smaller is simpler):

    1. the total number of input elements;
    2. the total number of input dimensions (``[1, C]`` is bigger than ``[C]``);
    3. the number of parameters that differ from the registry's defaults;
    4. the number of optional inputs present;
    5. value complexity: the sum of :func:`value_cost` over the elements of floating
       inputs (a fill counts as its value at every element), 0 or 1 per class index
       (zero or not), :data:`GENERATED_COST` per generated element (any input kind, so
       writing a generator out as its literal is a step);
    6. dtype precision (:data:`DTYPE_RANK`);
    7. the number of parameters written (one equal to its default still counts here).

    Every candidate of :func:`simplifications` is strictly smaller.
    """
    spec = LOSSES[case["loss"]]
    inputs = case["inputs"]
    shapes = {name: _shape(raw) for name, raw in inputs.items()}
    params = case.get("params") or {}
    first = shapes.get(spec.inputs[0].name, ())
    value = sum(
        _input_cost(raw, _value_kind(spec, name, shapes[name], first))
        for name, raw in inputs.items()
    )
    return (
        sum(math.prod(s) for s in shapes.values()),
        sum(len(s) for s in shapes.values()),
        sum(1 for k, v in params.items() if not _is_default(spec, k, v)),
        sum(1 for i in spec.inputs if not i.required and i.name in inputs),
        value,
        sum(DTYPE_RANK[d] for d in case.get("dtypes") or FLOAT_DTYPES),
        len(params),
    )


def _is_default(spec: LossSpec, name: str, value: Any) -> bool:
    default = spec.params.get(name)
    return value == default and isinstance(value, bool) == isinstance(default, bool)


def _value_kind(spec: LossSpec, name: str, shape: tuple[int, ...], first: tuple[int, ...]) -> str:
    """``float`` (floating values), ``labels`` (class indices) or ``mask``."""
    kind = spec.input(name).kind
    if kind == "target":
        return "float" if len(shape) == len(first) else "labels"
    return {"weight": "float"}.get(kind, kind)


def _input_cost(raw: Any, kind: str) -> int:
    n = math.prod(_shape(raw))
    form = _form(raw)
    if form == "random":
        return GENERATED_COST * n
    if kind == "mask":
        return 0
    cost = value_cost if kind == "float" else _label_cost
    if form == "fill":
        return n * cost(float(raw["fill"]))
    return sum(cost(float(v)) for v in _array(raw).ravel())


# ------------------------------------------------------------------- input forms


def _form(raw: Any) -> str:
    """``random`` (a generator mapping), ``fill`` or ``literal``."""
    if isinstance(raw, Mapping):
        return "random" if "random" in raw else "fill"
    return "literal"


def _shape(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, Mapping):
        return tuple(raw["shape"])
    return np.shape(raw)


def _array(raw: Any) -> np.ndarray:
    """A literal as the case loader reads it: int64 when all integers, else float64."""
    a = np.asarray(raw)
    return a.astype(np.int64) if a.dtype.kind in "biu" else a.astype(np.float64)


def _literal(a: np.ndarray) -> Any:
    """An array as a YAML-ready literal: nested lists of ints or floats (0-d: a number)."""
    a = np.asarray(a)
    return (a.astype(np.int64) if a.dtype.kind in "biu" else a.astype(np.float64)).tolist()


def _options(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in ("random", "shape", "seed")}


def _materialise(case: Mapping[str, Any], name: str) -> np.ndarray:
    return _generated(case["inputs"][name], case["id"], name)


def _generated(raw: Any, case_id: str, name: str) -> np.ndarray:
    """The values of an input as the harness makes them."""
    form = _form(raw)
    if form == "literal":
        return _array(raw)
    if form == "fill":
        return np.full(_shape(raw), float(raw["fill"]))
    seed = raw.get("seed", derived_seed(case_id, name))
    return generate(raw["random"], _shape(raw), seed, _options(raw))


def _written_if_small(raw: Any, case_id: str, name: str, elements: int) -> Any:
    """A generator input as its literal where the result of a change has at most
    :data:`MAX_MATERIALISED` elements (so shrinking keeps its values); else as it is."""
    if _form(raw) == "random" and elements <= MAX_MATERIALISED:
        return _literal(_generated(raw, case_id, name))
    return raw


def _stand_in(raw: Any) -> np.ndarray:
    """A zero of the input's shape that holds no memory (literals: themselves)."""
    if _form(raw) == "literal":
        return _array(raw)
    zero = np.int64(0) if raw.get("random") == "labels" else np.float64(0)
    return np.broadcast_to(zero, _shape(raw))


# ------------------------------------------------------------ the reference's verdict


def accepted(case: Mapping[str, Any]) -> tuple[bool, ...]:
    """Whether the reference accepts the case's inputs, at each of its dtypes, with the
    floating inputs it reads rounded to the dtype (as the case loader asks it)."""
    loss = case["loss"]
    spec, read = LOSSES[loss], values_read(loss)
    raw = {
        name: _materialise(case, name) if name in read else _stand_in(value)
        for name, value in case["inputs"].items()
    }
    first = np.shape(raw.get(spec.inputs[0].name, ()))
    rounded = [
        n for n in read & raw.keys() if _value_kind(spec, n, np.shape(raw[n]), first) == "float"
    ]
    out = []
    for dtype in case.get("dtypes") or FLOAT_DTYPES:
        inputs = {**raw, **{n: quantize(raw[n].astype(np.float64), dtype) for n in rounded}}
        try:
            check(loss, inputs, case.get("params") or {})
        except ValueError:
            out.append(False)
        else:
            out.append(True)
    return tuple(out)


# ---------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Axis:
    """One dimension of an input: the axis group it belongs to; ``tied=False`` for a
    weight's broadcast dimension of extent 1 (left alone when the group shrinks, removed
    with it when the group's axis is removed)."""

    group: str
    tied: bool = True


@dataclass(frozen=True)
class Layout:
    """How the inputs of one case share axes.

    dims:      input name -> its dimensions (:class:`Axis`), for every input with axes
               tied to the first input's;
    extents:   group -> its extent, in the order the groups are shrunk;
    classes:   the group that class indices refer to (None: none does);
    labels:    the inputs holding class indices of ``classes``;
    removable: the groups whose axis may be removed (index 0 kept);
    axis_param: the parameter naming an axis of the first input (adjusted on removal).
    """

    dims: dict[str, tuple[Axis, ...]]
    extents: dict[str, int]
    classes: str | None = None
    labels: tuple[str, ...] = ()
    removable: tuple[str, ...] = ()
    axis_param: str | None = None


def _layout(
    shapes: Mapping[str, tuple[int, ...]], dims: Mapping[str, tuple[Axis | str, ...]], **kw: Any
) -> Layout | None:
    """A :class:`Layout`, or None where the shapes disagree with ``dims`` (a rejected case)."""
    extents: dict[str, int] = {}
    out: dict[str, tuple[Axis, ...]] = {}
    for name, axes in dims.items():
        axes = tuple(a if isinstance(a, Axis) else Axis(a) for a in axes)
        shape = shapes[name]
        if len(shape) != len(axes):
            return None
        for a, n in zip(axes, shape, strict=True):
            if not a.tied:
                if n != 1:
                    return None
            elif extents.setdefault(a.group, n) != n:
                return None
        out[name] = axes
    return Layout(out, extents, **kw)


def _class_axis_layout(spec: LossSpec, shapes, params) -> Layout | None:
    """Softmax family: ``[N, C, d1, ...]`` (``[C]`` unbatched); targets of class indices
    ``[N, d1, ...]`` or probabilities of the first input's shape; weight ``[C]``."""
    first = spec.inputs[0].name
    n = len(shapes[first])
    if n == 0:
        return None
    groups = ("C",) if n == 1 else ("N", "C", *(f"S{k}" for k in range(1, n - 1)))
    dims: dict[str, tuple[str, ...]] = {first: groups}
    labels: tuple[str, ...] = ()
    if "target" in shapes:
        if spec.input("target").kind == "target" and len(shapes["target"]) == n:
            dims["target"] = groups
        else:
            dims["target"] = tuple(g for g in groups if g != "C")
            labels = ("target",)
    if "weight" in shapes:
        dims["weight"] = ("C",)
    removable = ("N",) if n == 2 else groups[2:]
    return _layout(shapes, dims, classes="C", labels=labels, removable=removable)


def _token_layout(spec: LossSpec, shapes, params) -> Layout | None:
    """Token losses: logits ``[..., V]`` (vocabulary last), target and mask ``[...]``."""
    n = len(shapes["logits"])
    if n == 0:
        return None
    rows = tuple(f"T{k}" for k in range(n - 1))
    dims = {"logits": (*rows, "V"), **{k: rows for k in ("target", "mask") if k in shapes}}
    return _layout(shapes, dims, classes="V", labels=("target",), removable=rows)


def _elementwise_layout(spec: LossSpec, shapes, params) -> Layout | None:
    """Elementwise losses: inputs of the first input's shape; weights broadcast against
    it with trailing axes aligned (``pos_weight [C]`` along the last axis)."""
    first = spec.inputs[0].name
    x = shapes[first]
    groups = tuple(f"E{k}" for k in range(len(x)))
    dims: dict[str, tuple[Axis | str, ...]] = {first: groups}
    for i in spec.inputs[1:]:
        if i.name not in shapes:
            continue
        s = shapes[i.name]
        if i.kind != "weight":
            dims[i.name] = groups
            continue
        if len(s) > len(x):
            return None
        lead = len(x) - len(s)
        dims[i.name] = tuple(
            Axis(groups[lead + j], tied=e == x[lead + j] or e != 1) for j, e in enumerate(s)
        )
    return _layout(shapes, dims, removable=groups)


def _along_layout(spec: LossSpec, shapes, params) -> Layout | None:
    """softmax, log_softmax, logsumexp: any shape; the ``axis`` parameter's axis stays."""
    n = len(shapes["x"])
    try:
        axis = check_axis(params.get("axis", spec.params["axis"]), n)
    except (TypeError, ValueError):
        return None
    groups = tuple(f"E{k}" for k in range(n))
    removable = tuple(g for k, g in enumerate(groups) if k != axis)
    return _layout(shapes, {"x": groups}, removable=removable, axis_param="axis")


#: the layout of each loss, by its check (the check says what the reference reads)
LAYOUT_OF: dict[Callable[..., Any], Callable[..., Layout | None]] = {
    checks.softmax_cross_entropy: _class_axis_layout,
    checks.categorical_cross_entropy: _class_axis_layout,
    checks.nll: _class_axis_layout,
    checks.token_cross_entropy: _token_layout,
    checks.binary_cross_entropy: _elementwise_layout,
    checks.binary_cross_entropy_with_logits: _elementwise_layout,
    checks.smoothed_binary_cross_entropy: _elementwise_layout,
    checks.kl_divergence: _elementwise_layout,
    checks.sigmoid_focal_loss: _elementwise_layout,
    checks.elementwise: _elementwise_layout,
    checks.softmax: _along_layout,
    checks.logsumexp: _along_layout,
}


def layout(case: Mapping[str, Any]) -> Layout | None:
    """The case's :class:`Layout`; None for a loss without one or shapes that disagree."""
    spec = LOSSES[case["loss"]]
    make = LAYOUT_OF.get(spec.check)
    if make is None:
        return None
    shapes = {name: _shape(raw) for name, raw in case["inputs"].items()}
    return make(spec, shapes, case.get("params") or {})


# ------------------------------------------------------------ structural changes


def _take(raw: Any, dim: int, index: list[int] | int) -> Any:
    """The input with only ``index`` along ``dim`` (an int: that index, the dim removed);
    None where that cannot be written. A generator (which the caller leaves one only
    where the result is large) takes a smaller shape: only a first part of an axis
    (its values change), never its own axis removed."""
    if _form(raw) == "literal":
        return _literal(np.take(_array(raw), index, axis=dim))
    shape = list(raw["shape"])
    out = dict(raw)
    if isinstance(index, list):
        if _form(raw) == "random" and index != list(range(len(index))):
            return None
        shape[dim] = len(index)
    else:
        del shape[dim]
        if raw.get("random") in ("probabilities", "one_hot"):  # their axis option, default 1
            axis = raw.get("axis", 1) % len(raw["shape"])
            if axis == dim:
                return None
            out.pop("axis", None)
            if axis - (dim < axis) != 1:
                out["axis"] = axis - (dim < axis)
    out["shape"] = shape
    return out


def _relabeller(classes: int, kept: list[int], ignore: Any) -> Callable[[int], int | None] | None:
    """The map of old class indices to new ones when only ``kept`` classes stay: kept
    classes renumbered, dropped ones made the nearest kept class (below first), indices
    out of range kept out of range, ``ignore`` (the ``ignore_index``) kept meaningful.
    None where the ignored class itself would go."""
    pos = {c: k for k, c in enumerate(kept)}
    shift = classes - len(kept)

    def base(v: int) -> int | None:
        if v < 0:
            return v
        return v - shift if v >= classes else pos.get(v)

    new_ignore = None
    if isinstance(ignore, int) and not isinstance(ignore, bool):
        new_ignore = base(ignore)
        if new_ignore is None:
            return None

    def relabel(v: int) -> int | None:
        new = base(v)
        if new is not None:
            return new
        nearest = [c for c in reversed(kept) if c < v] + [c for c in kept if c > v]
        return next((pos[c] for c in nearest if pos[c] != new_ignore), None)

    return relabel


def _relabel_input(raw: Any, relabel: Callable[[int], int | None], classes: int, kept: int) -> Any:
    """Class indices ``raw`` renumbered (non-integral values, which only a rejected case
    holds, as they are); None where one has no new index."""

    def one(v: float) -> float | None:
        if not (math.isfinite(v) and v == round(v)):
            return v
        return relabel(int(v))

    form = _form(raw)
    if form == "literal":
        a = _array(raw)
        out = [one(float(v)) for v in a.ravel()]
        if any(v is None for v in out):
            return None
        return _literal(np.asarray(out, dtype=a.dtype).reshape(a.shape))
    if form == "fill":
        v = one(float(raw["fill"]))
        return None if v is None else {**raw, "fill": float(v)}
    if raw["random"] != "labels":
        return raw
    out = dict(raw)  # a labels generator draws from [0, classes): keep that range's relation to C
    k = raw["classes"]
    out["classes"] = min(k, kept) if k <= classes else k - (classes - kept)
    if "ignore_index" in raw:
        v = relabel(raw["ignore_index"])
        if v is None:
            return None
        out["ignore_index"] = v
    return out


def _restructure(case: Case, lay: Layout, group: str, index: list[int] | int) -> Case | None:
    """``case`` with only ``index`` along ``group`` in every input that has it (an int:
    that index, the axis removed); class indices renumbered when ``group`` is the class
    group; the axis parameter moved when an axis is removed. None where impossible."""
    inputs = dict(case["inputs"])
    params = dict(case.get("params") or {})
    for name, axes in lay.dims.items():
        raw = inputs[name]
        touched = [
            d
            for d, a in enumerate(axes)
            if a.group == group and (a.tied or not isinstance(index, list))
        ]
        if not touched:
            continue
        shape = list(_shape(raw))
        for d in touched:
            shape[d] = len(index) if isinstance(index, list) else 1
        raw = _written_if_small(raw, case["id"], name, math.prod(shape))
        for d in reversed(touched):
            raw = _take(raw, d, index)
            if raw is None:
                return None
        inputs[name] = raw
    if group == lay.classes and isinstance(index, list):
        classes = lay.extents[group]
        relabel = _relabeller(classes, index, params.get("ignore_index"))
        if relabel is None:
            return None
        for name in (n for n in lay.labels if n in inputs):
            raw = inputs[name]
            raw = _written_if_small(raw, case["id"], name, math.prod(_shape(raw)))
            new = _relabel_input(raw, relabel, classes, len(index))
            if new is None:
                return None
            inputs[name] = new
        if isinstance(params.get("ignore_index"), int):
            params["ignore_index"] = relabel(params["ignore_index"])
    if isinstance(index, int) and lay.axis_param in params:
        first = next(iter(lay.dims.values()))
        n, j = len(first), [a.group for a in first].index(group)
        axis = params[lay.axis_param]
        pos = axis % n
        new = pos - (j < pos)
        params[lay.axis_param] = new if axis >= 0 else new - (n - 1)
    return _with(case, inputs=inputs, params=params)


def _with(case: Case, **changes: Any) -> Case:
    out = {**case, **changes}
    if not out.get("params"):
        out.pop("params", None)
    return out


def _halves(extent: int) -> list[list[int]]:
    """The first index, the first half, the last half (of the same length)."""
    half = extent // 2
    return [[0], list(range(half)), list(range(extent - half, extent))]


def _structural(case: Case, lay: Layout) -> Iterator[Case | None]:
    """Fewer rows, classes, spatial extents and axes, most aggressive first: every group
    to 1 at once; per group its first index, first half, last half; each axis removed."""
    shrinkable = [g for g, e in lay.extents.items() if e > 1]
    if len(shrinkable) > 1:
        out: Case | None = case
        for g in shrinkable:
            out = out and _restructure(out, lay, g, [0])
        yield out
    for g in shrinkable:
        for kept in _halves(lay.extents[g]):
            yield _restructure(case, lay, g, kept)
    for g in lay.removable:
        if lay.extents[g] > 0:  # an empty axis has no index to keep
            yield _restructure(case, lay, g, 0)


def _per_generated_index(case: Case, lay: Layout, group: str) -> list[int]:
    """Elements per index of ``group`` of each generator input that has that axis."""
    return [
        math.prod(_shape(raw)) // lay.extents[group]
        for name, axes in lay.dims.items()
        if _form(raw := case["inputs"][name]) == "random" and group in {a.group for a in axes}
    ]


def _drop_one(case: Case, lay: Layout) -> Iterator[Case | None]:
    """One index fewer along a group, each index in order (not along the axis of a
    generator that would stay one: that would only draw other values)."""
    for g, e in lay.extents.items():
        if e > 1 and all(
            n * (e - 1) <= MAX_MATERIALISED for n in _per_generated_index(case, lay, g)
        ):
            for i in range(e):
                yield _restructure(case, lay, g, [k for k in range(e) if k != i])


def _keep_one(case: Case, lay: Layout) -> Iterator[Case | None]:
    """Along the axis of a generator too large to write out, each single index kept (up
    to :data:`KEEP_ONE` of them) where that is small enough to write out with its values."""
    for g, e in lay.extents.items():
        generated = _per_generated_index(case, lay, g)
        if 1 < e <= KEEP_ONE and generated and all(n <= MAX_MATERIALISED for n in generated):
            for i in range(e):
                yield _restructure(case, lay, g, [i])


# ------------------------------------------------------------- other candidates


def _optional_dropped(case: Case, spec: LossSpec) -> Iterator[Case]:
    for i in spec.inputs:
        if not i.required and i.name in case["inputs"]:
            yield _with(case, inputs={k: v for k, v in case["inputs"].items() if k != i.name})


def _materialised(case: Case) -> Iterator[Case]:
    """Small generator inputs as their literals: all at once, then one at a time."""
    small = [
        name
        for name, raw in case["inputs"].items()
        if _form(raw) == "random" and math.prod(_shape(raw)) <= MAX_MATERIALISED
    ]
    groups = ([small] if len(small) > 1 else []) + [[name] for name in small]
    for names in groups:
        written = {name: _literal(_materialise(case, name)) for name in names}
        yield _with(case, inputs={**case["inputs"], **written})


def _params_reset(case: Case, spec: LossSpec, defaults: bool) -> Iterator[Case]:
    """Each parameter back to its default (left out); ``defaults``: those already equal."""
    params = case.get("params") or {}
    for k, v in params.items():
        if _is_default(spec, k, v) == defaults:
            yield _with(case, params={p: x for p, x in params.items() if p != k})


def _dtypes_lowered(case: Case) -> Iterator[Case]:
    dtypes = case.get("dtypes") or []
    if len(dtypes) == 1:
        for lower in LOWER_DTYPES.get(dtypes[0], ()):
            yield _with(case, dtypes=[lower])


def _power_of_two(v: float) -> float:
    exponent = min(1023, max(-1074, round(math.log2(abs(v)))))
    return math.copysign(math.ldexp(1.0, exponent), v)


#: simpler values, in the order tried: 0, +-1, the nearest integer, the nearest power of
#: two, 3 and 2 significant digits (each used only where it costs less)
VALUE_STEPS: tuple[Callable[[float], float], ...] = (
    lambda v: 0.0,
    lambda v: math.copysign(1.0, v),
    lambda v: float(round(v)),
    _power_of_two,
    lambda v: float(f"{v:.3g}"),
    lambda v: float(f"{v:.2g}"),
)


def _simpler(v: float, step: Callable[[float], float]) -> float | None:
    """``step(v)`` where it is simpler than ``v`` (finite values only), else None."""
    if not math.isfinite(v) or v == 0:
        return None
    new = step(v)
    return new if value_cost(new) < value_cost(v) else None


def _label_zero(v: float, ignore: Any) -> float | None:
    """A class index as 0 (not an ignored one, nor a negative or non-integral one)."""
    return 0.0 if v > 0 and math.isfinite(v) and v == round(v) and v != ignore else None


def _change(step: Callable[[float], float], kind: str, ignore: Any):
    """The change ``step`` makes to one value of an input of ``kind`` (None: none)."""
    if kind != "labels":
        return functools.partial(_simpler, step=step)
    return functools.partial(_label_zero, ignore=ignore) if step is VALUE_STEPS[0] else None


def _large(v: float, dtype: str) -> float | None:
    """A non-finite ``v`` as a large finite number of the dtype's range (NaN: positive)."""
    if math.isfinite(v):
        return None
    return math.copysign(LARGE[dtype], v) if math.isinf(v) else LARGE[dtype]


def _value_inputs(case: Case, spec: LossSpec) -> list[tuple[str, str]]:
    """(name, value kind) of the inputs whose values may get simpler, registry order."""
    shapes = {name: _shape(raw) for name, raw in case["inputs"].items()}
    first = shapes.get(spec.inputs[0].name, ())
    out = []
    for i in spec.inputs:
        if i.name in shapes:
            kind = _value_kind(spec, i.name, shapes[i.name], first)
            if kind != "mask":
                out.append((i.name, kind))
    return out


def _with_values(case: Case, name: str, raw: Any, change: Callable[[float], float | None],
                 at: int | None = None) -> Case | None:  # fmt: skip
    """``case`` with ``change`` applied to the values of input ``name`` (all of them, or
    the flat element ``at``); None where nothing changes."""
    if _form(raw) == "fill":
        new = change(float(raw["fill"]))
        if new is None or at is not None:
            return None
        return _with(case, inputs={**case["inputs"], name: {**raw, "fill": new}})
    a = _array(raw)
    flat = a.astype(np.float64).ravel()
    idx = range(flat.size) if at is None else [at]
    changed = False
    for k in idx:
        new = change(float(flat[k]))
        if new is not None:
            flat[k], changed = new, True
    if not changed:
        return None
    if a.dtype.kind == "i" and np.all((flat == np.round(flat)) & (np.abs(flat) < 2.0**53)):
        flat = flat.astype(np.int64)
    return _with(case, inputs={**case["inputs"], name: _literal(flat.reshape(a.shape))})


def _values(case: Case, spec: LossSpec) -> Iterator[Case | None]:
    """Simpler values: whole inputs first (generators as fills of 0 and 1), then element
    by element; non-finite values as a large finite number last."""
    dtype = (case.get("dtypes") or ["float64"])[0]
    ignore = (case.get("params") or {}).get("ignore_index")
    targets = _value_inputs(case, spec)
    for name, kind in targets:
        raw = case["inputs"][name]
        if _form(raw) == "random":
            for fill in (0.0, 1.0) if kind == "float" else (0.0,):
                yield _with(
                    case, inputs={**case["inputs"], name: {"fill": fill, "shape": raw["shape"]}}
                )
            continue
        for step in VALUE_STEPS:
            change = _change(step, kind, ignore)
            if change is not None:
                yield _with_values(case, name, raw, change)
    literal = [
        (n, k)
        for n, k in targets
        if _form(case["inputs"][n]) == "literal"
        and math.prod(_shape(case["inputs"][n])) <= MAX_MATERIALISED
    ]
    for step in VALUE_STEPS:
        for name, kind in literal:
            raw = case["inputs"][name]
            change = _change(step, kind, ignore)
            for at in range(math.prod(_shape(raw))) if change is not None else ():
                yield _with_values(case, name, raw, change, at)
    large = functools.partial(_large, dtype=dtype)
    for name, kind in targets:
        if kind == "float" and _form(case["inputs"][name]) != "random":
            yield _with_values(case, name, case["inputs"][name], large)
    for name, kind in literal:
        if kind == "float":
            for at in range(math.prod(_shape(case["inputs"][name]))):
                yield _with_values(case, name, case["inputs"][name], large, at)


def _proposals(case: Case) -> Iterator[Case | None]:
    """Every proposal, most aggressive first (duplicates, bigger ones and ones the
    reference judges differently are filtered by :func:`simplifications`)."""
    spec = LOSSES[case["loss"]]
    lay = layout(case)
    if lay is not None:
        yield from _structural(case, lay)
    yield from _optional_dropped(case, spec)
    yield from _materialised(case)
    yield from _params_reset(case, spec, defaults=False)
    if lay is not None:
        yield from _drop_one(case, lay)
    yield from _dtypes_lowered(case)
    yield from _values(case, spec)
    yield from _params_reset(case, spec, defaults=True)
    if lay is not None:
        yield from _keep_one(case, lay)


def _key(case: Mapping[str, Any]) -> str:
    return json.dumps(_with(dict(case)), sort_keys=True, default=str)


def simplifications(case: Mapping[str, Any]) -> Iterator[Case]:
    """Candidate simpler cases, most aggressive first, at most :data:`MAX_CANDIDATES`.

    Each is a new fuzz case dict (same id, loss, tags, description, ``expect_error``)
    with a strictly smaller :func:`size`, which the reference accepts at its dtype
    exactly when it accepts ``case``; none is a duplicate or ``case`` itself. The order
    is fixed (the same case gives the same candidates), so a caller may resume with
    ``itertools.islice``. Kinds, in order: every axis to 1 at once; per axis group (rows,
    classes, spatial extents) the first index, the first half, the last half; removing an
    axis (unbatched, a spatial axis); dropping each optional input; small generators
    written out; each parameter back to its default; dropping one index of each group; a
    lower dtype; simpler values, whole inputs then element by element (:data:`VALUE_STEPS`;
    class indices to 0; generators as fills); non-finite values as a large finite number;
    parameters written equal to their defaults left out; along a large generator's axis,
    each single index. Dropping classes renumbers class indices (``ignore_index`` follows
    its class, which is never dropped). A generator input whose result is small enough
    (:data:`MAX_MATERIALISED`) is written out before it shrinks, so its values stay; a
    larger one takes a smaller shape, which draws other values.
    """
    case = dict(case)
    own, status = size(case), accepted(case)
    seen = {_key(case)}
    count = 0
    for candidate in _proposals(case):
        if candidate is None:
            continue
        key = _key(candidate)
        if key in seen:
            continue
        seen.add(key)
        if not size(candidate) < own or accepted(candidate) != status:
            continue
        yield copy.deepcopy(candidate)
        count += 1
        if count == MAX_CANDIDATES:
            return
