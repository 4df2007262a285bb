"""The inputs part of a reproduction script: the exact arrays an instance gave a framework.

The instance is found again from its case file (the text the run recorded in its header,
else the file on disk), its inputs are rebuilt and rounded to the dtype exactly as the
worker rounds them, and written out as NumPy-only Python:

* small arrays (and every literal of the case file) are embedded value by value
  (``repr`` of a float64 round-trips exactly; ``inf``/``nan`` are names the script defines);
* large generated arrays are regenerated: the generator's code is copied from
  :mod:`xentcheck.harness.generators` and called with the same seed, then rounded with the
  script's NumPy-only ``repro_quantize``. The code is run here once and its arrays compared
  bit for bit with the worker's; if they ever differed the values would be embedded instead.

The golden (the reference's float64 value and gradients) is embedded when small, so the
script can print expected values and recompute the errors itself.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xentcheck.findings.instances import CaseSources  # noqa: F401  (moved; re-exported)
from xentcheck.harness.cases import Instance
from xentcheck.harness.generators import GENERATORS
from xentcheck.harness.goldens import GoldenCache
from xentcheck.harness.worker import golden_for, rounded_inputs
from xentcheck.reference import LOSSES, differentiable_inputs, is_probability_target
from xentcheck.report.repro_source import copied_functions

Row = dict[str, Any]

EMBED_LIMIT = 4096  # elements: an input or golden array up to this size is written out
LINE = 72  # characters of values per line of an embedded array


@dataclass
class Prepared:
    """What a script needs of one instance at one dtype."""

    text: str  # the inputs part
    grad_inputs: tuple[str, ...]
    value_shape: tuple[int, ...] | None  # None: the reference rejects the input
    rejected: str | None
    explicit: tuple[str, ...]
    embedded: dict[str, bool] = field(default_factory=dict)  # input -> written out


def prepare(
    instance: Instance, dtype: str, source: str | None = None, goldens: GoldenCache | None = None
) -> Prepared:
    """The inputs part of ``instance`` at ``dtype`` (inputs and, when small, the golden).

    ``source``: the case file's path as the results name it (for the script's comment);
    ``goldens``: where the run kept its goldens (looked up before computing one).
    """
    raw = instance.inputs()
    with np.errstate(all="ignore"):  # the worker rounds (and overflows) the same way
        inputs = rounded_inputs(instance, raw, dtype)
        golden, rejected = golden_for(instance, inputs, goldens)
    spec = LOSSES[instance.loss]
    probability_target = is_probability_target(spec, raw)
    lines: list[str] = []
    generators: list[str] = []
    embedded: dict[str, bool] = {}
    for name, arr in inputs.items():
        d = instance.case.inputs[name]
        if d.literal is not None or np.size(arr) <= EMBED_LIMIT:
            lines.append(f"inputs[{name!r}] = {array_literal(arr)}")
            embedded[name] = True
            continue
        kind = spec.input(name).kind
        if d.fill is not None:
            make = f"np.full({tuple(d.shape)!r}, {d.fill!r}, dtype=np.float64)"
        else:
            fn = GENERATORS[str(d.generator)].fn.__name__
            generators.append(fn)
            opts = "".join(f", {k}={v!r}" for k, v in d.options.items())
            make = f"{fn}(np.random.default_rng({d.seed}), {tuple(d.shape)!r}{opts})"
        lines.append(f"# {name}: {json.dumps(d.describe())}")
        lines.append(f"inputs[{name!r}] = {_rounding(make, kind, probability_target, dtype)}")
        embedded[name] = False
    gold_lines = []
    if golden is not None:
        quantities = {"value": golden.value, **{f"grad:{k}": g for k, g in golden.grads.items()}}
        for q, g in quantities.items():
            if np.size(g) <= EMBED_LIMIT:
                gold_lines.append(f"golden[{q!r}] = {array_literal(np.asarray(g, np.float64))}")
            else:
                gold_lines.append(f"# golden[{q!r}]: {np.size(g)} elements, not embedded")
    defs = copied_functions("xentcheck.harness.generators", generators) if generators else ""
    body = "\n".join(
        [
            *([defs.strip("\n"), ""] if defs else []),
            "inputs = {}",
            *lines,
            "golden = {}  # the reference's float64 value and gradients (from these inputs)",
            *gold_lines,
            "return inputs, golden",
        ]
    )
    case = instance.case
    head = [
        f"# {'=' * 76}",
        f"# inputs of {instance.name} at {dtype}",
        f"# (case {case.key}, {source or case.source.file}:{case.source.line}); as the",
        f"# framework receives them: floating inputs rounded to {dtype} (held as float64),",
        "# class indices int64, masks bool",
        "def repro_inputs():",
    ]
    text = "\n".join(head) + "\n" + textwrap.indent(body, "    ") + "\n\n\n"
    text += "INPUTS, GOLDEN = repro_inputs()\n"
    if not all(embedded.values()):
        _verify(text, inputs)
    return Prepared(
        text=text,
        grad_inputs=differentiable_inputs(instance.loss, inputs) if golden is not None else (),
        value_shape=tuple(np.shape(golden.value)) if golden is not None else None,
        rejected=rejected,
        explicit=tuple(sorted(instance.params)),
        embedded=embedded,
    )


def _rounding(make: str, kind: str, probability_target: bool, dtype: str) -> str:
    """The worker's rounding (``rounded_inputs``) of a generated array, as script code."""
    if kind == "mask":
        return f"np.asarray({make}) != 0"
    if kind == "labels" or (kind == "target" and not probability_target):
        return f"repro_labels({make})"
    return f"repro_quantize({make}, {dtype!r})"


def _verify(text: str, inputs: dict[str, np.ndarray]) -> None:
    """Run the inputs part and check it rebuilds the worker's arrays bit for bit."""
    from xentcheck.report import repro_runtime

    ns: dict[str, Any] = dict(vars(repro_runtime))
    exec(compile(text, "<repro inputs>", "exec"), ns)  # our own generated code
    got = ns["INPUTS"]
    for name, want in inputs.items():
        g = np.asarray(got[name])
        if (
            g.dtype != want.dtype
            or g.shape != want.shape
            or not np.array_equal(g, want, equal_nan=want.dtype.kind == "f")
        ):
            raise AssertionError(f"the script's generator code does not rebuild input {name!r}")


def _number(x: Any) -> str:
    if isinstance(x, bool | np.bool_):
        return "True" if x else "False"
    if isinstance(x, int | np.integer):
        return str(int(x))
    f = float(x)
    if f != f:
        return "nan"
    if f in (np.inf, -np.inf):
        return "inf" if f > 0 else "-inf"
    return repr(f)


def array_literal(a: np.ndarray) -> str:
    """Python text rebuilding ``a`` exactly: values, dtype (float64, int64 or bool), shape."""
    a = np.asarray(a)
    dtype = {"b": "np.bool_", "i": "np.int64", "u": "np.int64"}.get(a.dtype.kind, "np.float64")
    items = [_number(x) for x in a.ravel().tolist()]
    chunks, cur = [], ""
    for it in items:
        piece = it + ", "
        if cur and len(cur) + len(piece) > LINE:
            chunks.append(cur.rstrip())
            cur = ""
        cur += piece
    if cur:
        chunks.append(cur.rstrip())
    if len(chunks) <= 1:
        body = "[" + (chunks[0].rstrip(",") if chunks else "") + "]"
    else:
        body = "[\n" + "\n".join("    " + c for c in chunks) + "\n]"
    shape = tuple(a.shape)
    return f"np.array({body}, dtype={dtype}).reshape({shape!r})"
