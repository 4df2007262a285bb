"""A short reproduction script per finding: NumPy and the framework, nothing else.

The script is the framework's own snippet of the finding's example row
(``Framework.snippet(api, call)``: the versions, the inputs, the single call with its
gradient, giving the row's numbers bit for bit), followed by the check:

* a wrong number or lost precision: the reference's expected number at the worst
  element, the allowance, actual vs expected in ULPs, and the verdict;
* a NaN/Inf pattern: the expected and actual class (finite, NaN, +Inf, -Inf) there;
* error behaviour: the call runs under ``try``; it reproduces when it raises the same
  exception type (where the input is valid) or returns (where the input must be rejected);
* a crash or timeout: the snippet runs in a child interpreter (``python -c``); it
  reproduces when that child dies of a signal or runs past the run's timeout.

The script exits 0 when the behaviour reproduces, 1 when it does not. The example row is
the finding's smallest (fewest input elements; of equals, the worst). An input of more
than :data:`SMALL` elements is regenerated with seeded NumPy (the case's generator, its
seed, the worker's rounding to the dtype) instead of written out; the code is run here and
checked bit for bit against the worker's arrays, and the literal stays when it differs.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np

from xentcheck.adapters.declare import array_literal
from xentcheck.dtypes import saturate, ulp
from xentcheck.findings.instances import Rebuilt
from xentcheck.harness import generators
from xentcheck.harness.calls import make_call
from xentcheck.reference import LOSSES, is_probability_target

Row = Mapping[str, Any]

#: inputs (and cotangents) of more elements than this are regenerated, not written out
SMALL = 64

#: NumPy-only rounding of float64 to each dtype, as xentcheck's (round to nearest even)
ROUNDING = {
    "float64": "def to_dtype(x):\n    return np.asarray(x, dtype=np.float64)",
    "float32": "def to_dtype(x):\n    return np.asarray(x).astype(np.float32).astype(np.float64)",
    "float16": "def to_dtype(x):\n    return np.asarray(x).astype(np.float16).astype(np.float64)",
    "bfloat16": (
        "def to_dtype(x):  # round to nearest even at 8 significant bits, bfloat16's range\n"
        "    m, e = np.frexp(np.asarray(x, dtype=np.float64))\n"
        "    r = np.where(e < -125, np.round(x * 2.0**133) / 2.0**133,\n"
        "                 np.ldexp(np.round(np.ldexp(m, 8)), e - 8))\n"
        "    return np.where(np.abs(r) > 3.3895313892515355e38, np.copysign(np.inf, x), r)"
    ),
}


#: the snippet's own prints of whole arrays, left out (the check prints what matters)
QUIET = frozenset({'print("value", value)\n', 'print("grads", grads)\n'})


def number(x: float) -> str:
    """Python source of a float (``float('nan')`` for the non-finite ones)."""
    x = float(x)
    return repr(x) if math.isfinite(x) else f"float({str(x)!r})"


def _generator_source(fn_name: str) -> str:
    """The source of a generator of :mod:`xentcheck.harness.generators` and the module's
    functions it calls (``_probabilities`` calls ``_softmax_along``)."""
    fn = getattr(generators, fn_name)
    names = [n for n in fn.__code__.co_names if n.startswith("_") and hasattr(generators, n)]
    parts = [inspect.getsource(getattr(generators, n)) for n in names]
    return "\n".join([*parts, inspect.getsource(fn)]).strip()


def _regenerated(rebuilt: Rebuilt, name: str, dtype: str) -> tuple[list[str], str] | None:
    """(definitions, expression) rebuilding input ``name`` as the worker passed it, or None
    when it cannot be regenerated (a literal of the case file)."""
    d = rebuilt.instance.case.inputs[name]
    spec = LOSSES[rebuilt.instance.loss]
    if d.literal is not None:
        return None
    defs: list[str] = []
    if d.fill is not None:
        make = f"np.full({tuple(d.shape)!r}, {d.fill!r}, dtype=np.float64)"
    else:
        fn = generators.GENERATORS[str(d.generator)].fn.__name__
        defs.append(_generator_source(fn))
        opts = "".join(f", {k}={v!r}" for k, v in d.options.items())
        make = f"{fn}(np.random.default_rng({d.seed}), {tuple(d.shape)!r}{opts})"
    kind = spec.input(name).kind
    raw = {k: v.stand_in() for k, v in rebuilt.instance.case.inputs.items()}
    if kind == "mask":
        return defs, f"np.asarray({make}) != 0"
    if kind == "labels" or (kind == "target" and not is_probability_target(spec, raw)):
        return defs, f"np.asarray({make}).astype(np.int64)"
    return [*defs, ROUNDING[dtype]], f"to_dtype({make})"


def _same(a: Any, b: np.ndarray) -> bool:
    a = np.asarray(a)
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and bool(np.array_equal(a, b, equal_nan=b.dtype.kind == "f"))
    )


def shorten(snippet: str, rebuilt: Rebuilt, call: Any) -> str:
    """``snippet`` with every input and cotangent literal of more than :data:`SMALL`
    elements replaced by seeded NumPy that rebuilds it (checked bit for bit here)."""
    defs: list[str] = []
    assigns: list[str] = []
    replace: dict[str, str] = {}
    for name, arr in call.inputs.items():
        if arr is None or np.size(arr) <= SMALL:
            continue
        found = _regenerated(rebuilt, name, call.dtype)
        lit = array_literal(arr)
        if found is None or lit not in snippet:
            continue
        code = "\n\n".join(dict.fromkeys(found[0])) + f"\n\n{name}_np = {found[1]}"
        ns: dict[str, Any] = {"np": np}
        with np.errstate(all="ignore"):
            exec(compile(code, "<regenerate>", "exec"), ns)  # our own generated code
        if not _same(ns[f"{name}_np"], np.asarray(arr)):
            continue
        defs += [d for d in found[0] if d not in defs]
        assigns.append(f"{name}_np = {found[1]}")
        replace[lit] = f"{name}_np"
    cot = np.asarray(call.cotangent, dtype=np.float64)
    if cot.size > SMALL and array_literal(cot) in snippet:
        assigns.append(
            f"cotangent_np = (1.0 + (np.arange({cot.size}) % 8) / 8.0).reshape({cot.shape!r})"
        )
        replace[array_literal(cot)] = "cotangent_np"
    if not replace:
        return snippet
    for lit, var in replace.items():
        snippet = snippet.replace(lit, var)
    prelude = "\n\n".join(
        [*defs, "# inputs too large to write out: the case's seeded generator", *assigns]
    )
    parts = snippet.split("\n\n")
    at = after_imports(parts)
    return "\n\n".join([*parts[:at], prelude, *parts[at:]])


def after_imports(parts: list[str]) -> int:
    """The index after a snippet's last import block (its parts are split at blank lines:
    header, imports, a setting such as ``os.environ[...]``, more imports, definitions ...)."""
    return max(
        (i + 1 for i, p in enumerate(parts) if p.startswith(("import ", "from "))), default=0
    )


def _element(idx: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """The worst element of ``got`` by its C-order position: a framework may return the
    reference's elements in another shape of the same size (``[N, 1]`` for ``[N]``)."""
    flat = int(np.ravel_multi_index(idx, shape)) if shape else 0
    return f"np.asarray(got, dtype=np.float64).reshape(-1)[{flat}]"


def _got(quantity: str) -> str:
    if quantity.startswith("grad:"):
        return f"got = grads.get({quantity[5:]!r})"
    return "got = value"


def numeric_check(row: Row, rebuilt: Rebuilt) -> list[str]:
    """The check of a wrong or imprecise number at the row's worst element."""
    q = str(row.get("quantity", "value"))
    golden = rebuilt.golden
    assert golden is not None
    full = golden.value if q == "value" else golden.grads[q[5:]]
    if row.get("index") is None:  # the shape differs
        return [
            _got(q),
            f"expected_shape = {tuple(np.shape(full))!r}",
            'print("shape", None if got is None else np.shape(got), "expected", expected_shape)',
            "reproduced = got is not None and np.shape(got) != expected_shape",
        ]
    dtype = str(row.get("dtype"))
    out_dtype = str(row.get("out_dtype") or dtype)
    out_dtype = out_dtype if out_dtype in ROUNDING else dtype
    idx = tuple(int(i) for i in row["index"])
    expected = float(saturate(np.asarray(full, dtype=np.float64), out_dtype)[idx])
    one = float(ulp(np.asarray(expected), dtype))
    if row.get("allowed_ulp") is not None:
        allowed = float(row["allowed_ulp"]) * one
        rule = f"{number(row['allowed_ulp'])} ULP ({row.get('criterion', 'ulp')} criterion)"
    else:
        allowed = float(row.get("atol") or 0.0) + float(row.get("rtol") or 0.0) * abs(expected)
        rule = f"atol {row.get('atol')} + rtol {row.get('rtol')} * |expected|"
    return [
        f"# the reference (float64, checked against mpmath) at element {list(idx)}",
        f"expected = {number(expected)}",
        f"allowed = {number(allowed)}  # {rule}",
        f"ulp = {number(one)}  # one ULP of expected in {dtype}",
        _got(q),
        f"actual = float({_element(idx, np.shape(full))}) if got is not None else float('nan')",
        "err = abs(actual - expected)",
        'print(f"actual {actual!r}, expected {expected!r}: off by {err / ulp:.4g} ULP, '
        'allowed {allowed / ulp:.4g} ULP")',
        "reproduced = got is not None and not err <= allowed",
    ]


def pattern_check(row: Row, rebuilt: Rebuilt) -> list[str]:
    """The check of a NaN/Inf pattern at the first element where it differs."""
    q = str(row.get("quantity", "value"))
    golden = rebuilt.golden
    assert golden is not None
    full = golden.value if q == "value" else golden.grads[q[5:]]
    idx = tuple(int(i) for i in row.get("index") or ())
    expected = float(np.asarray(full, dtype=np.float64)[idx])
    return [
        "def klass(x):",
        '    return "NaN" if x != x else "+Inf" if x == np.inf else "-Inf" if x == -np.inf else "finite"',
        "",
        f"expected = {number(expected)}  # the reference at element {list(idx)}",
        _got(q),
        f"actual = float({_element(idx, np.shape(full))}) if got is not None else 0.0",
        'print(f"actual {actual!r} ({klass(actual)}), expected {expected!r} ({klass(expected)})")',
        "reproduced = got is not None and klass(actual) != klass(expected)",
    ]


def guarded(snippet: str) -> str:
    """``snippet`` with everything after its imports run under ``try``: ``raised`` holds the
    exception's type name, or None."""
    parts = snippet.rstrip("\n").split("\n\n")
    at = after_imports(parts)
    body = textwrap.indent("\n\n".join(parts[at:]), "    ")
    return "\n\n".join(
        [
            *parts[:at],
            f"raised = None\ntry:\n{body}\nexcept Exception as exc:\n"
            '    print("raised", type(exc).__name__ + ":", exc)\n'
            "    raised = type(exc).__name__",
        ]
    )


def behaviour_of(row: Row) -> str:
    """What a row's script checks: ``number``, ``pattern``, ``returns``, ``raises`` or ``crash``
    (from the row's own status, before a known entry explained it)."""
    status = str(row.get("unexplained_status") or row.get("status"))
    if status in ("crash", "timeout"):
        return "crash"
    if status == "nonfinite":
        return "pattern"
    if status == "error":
        msg = str(row.get("message") or "")
        return (
            "returns"
            if msg.startswith("returned") or row.get("behaviour", "").startswith("returned")
            else "raises"
        )
    return "number"


def script(framework: Any, row: Row, rebuilt: Rebuilt, title: str, timeout: float = 300.0) -> str:
    """The reproduction script of ``row`` (its instance ``rebuilt``) for ``framework`` (a
    loaded :class:`~xentcheck.adapters.Framework` with a ``snippet``); ``title`` heads it."""
    dtype, device = str(row.get("dtype")), str(row.get("device"))
    call = make_call(rebuilt.instance, rebuilt.inputs, dtype, device, rebuilt.golden)
    snippet = framework.snippet(str(row.get("api")), call)
    snippet = shorten(snippet, rebuilt, call)
    snippet = "".join(line for line in snippet.splitlines(keepends=True) if line not in QUIET)
    head = (
        f"# {title}\n# example: {row.get('instance')}, {row.get('quantity')}\n"
        "# exits 0 when the behaviour reproduces, 1 when it does not\n"
    )
    how = behaviour_of(row)
    if how == "crash":
        return head + "\n".join(
            [
                "import subprocess",
                "import sys",
                "",
                f"SNIPPET = {snippet!r}",
                "try:",
                f"    child = subprocess.run([sys.executable, '-c', SNIPPET], timeout={timeout!r})",
                '    print("exit status", child.returncode)',
                "    reproduced = child.returncode < 0  # killed by a signal",
                "except subprocess.TimeoutExpired:",
                f'    print("no result after {timeout:g} s")',
                "    reproduced = True",
                'print("reproduced" if reproduced else "not reproduced")',
                "raise SystemExit(0 if reproduced else 1)",
                "",
            ]
        )
    if how in ("returns", "raises"):
        body = guarded(snippet)
        if how == "returns":
            check = [
                f"# the reference rejects this input: {row.get('message', '')}",
                "if raised is None:",
                '    print("returned", value)',
                "reproduced = raised is None  # returned a value instead of raising",
            ]
        else:
            exc = str(row.get("message") or "").split(":", 1)[0]
            check = [f"reproduced = raised == {exc!r}  # the reference computes a value here"]
    else:
        body = snippet.rstrip("\n")
        check = numeric_check(row, rebuilt) if how == "number" else pattern_check(row, rebuilt)
    tail = [
        'print("reproduced" if reproduced else "not reproduced")',
        "raise SystemExit(0 if reproduced else 1)",
    ]
    return head + body + "\n\n" + "\n".join(check + tail) + "\n"
