"""Standalone reproduction scripts, one per discrepancy of a report.

A script needs only NumPy and the one framework. It rebuilds the exact inputs of the
row's instance at its dtype (embedded, or regenerated from the seed: see
:mod:`xentcheck.report.repro_inputs`), carries the adapter code that made the call
(copied from xentcheck, see :mod:`xentcheck.report.repro_source`), builds the same
``Call`` (parameters, explicit parameters, dtype, device, inputs to differentiate,
cotangent) and runs the row's API on it, then prints, for the row's quantity::

    actual[1, 2] = 2.3046875
    expected[1, 2] = 2.302585092994046
    max_abs_err=0.0021... max_rel_err=... max_ulp=...
    reproduced: yes

and exits 0 when the printed actual samples equal the report's (1 when they differ).

A script is the concatenation of parts, most of them shared (the HTML page embeds each
once): ``head:<framework>`` (comment and ``from __future__`` line), ``runtime`` (NumPy
helpers), ``inputs:<instance>@<dtype>``, ``framework:<framework>`` (the adapter), then the
row's own call text. :func:`bundle` returns them all; :func:`script` one whole script.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Sequence
from typing import Any

from xentcheck import __version__
from xentcheck.adapters import FRAMEWORKS
from xentcheck.harness.goldens import GoldenCache
from xentcheck.report.repro_inputs import CaseSources, Prepared, prepare
from xentcheck.report.repro_source import standalone_module

Row = dict[str, Any]

#: statuses that get a script
SCRIPTED = ("mismatch", "nonfinite", "error", "known")
#: row fields the script compares against, printed as "reported"
REPORTED_KEYS = (
    "status", "max_abs_err", "max_rel_err", "max_ulp", "expected", "actual",
    "rtol", "atol", "shape", "message",
)  # fmt: skip


def needs_script(row: Row, statuses: Sequence[str] = SCRIPTED) -> bool:
    """A framework row with a discrepancy (or a known difference) gets a script."""
    return row.get("status") in statuses and row.get("framework") not in (None, "reference")


def _module_body(name: str) -> list[str]:
    """The source lines of module ``name`` below its docstring."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin
    with open(spec.origin, encoding="utf-8") as f:
        text = f.read()
    doc = ast.parse(text).body[0]
    lines = text.splitlines()
    return lines[doc.end_lineno :] if isinstance(doc, ast.Expr) else lines


def _runtime_source() -> str:
    """xentcheck.floats, then repro_runtime without its import of it: the script's helpers."""
    floats = _module_body("xentcheck.floats")
    runtime = [
        line
        for line in _module_body("xentcheck.report.repro_runtime")
        if not line.startswith("from xentcheck.floats import")
    ]
    rule = f"# {'=' * 76}\n"
    return (
        f"{rule}# float formats (NumPy only; xentcheck/floats.py)\n"
        + "\n".join(floats).strip("\n")
        + f"\n\n\n{rule}# helpers (NumPy only; xentcheck/report/repro_runtime.py)\n"
        + "\n".join(runtime).strip("\n")
        + "\n\n\n"
    )


def _adapter(framework: str) -> tuple[str, str]:
    """(module, attribute) holding the Framework of a results row's ``framework``."""
    if framework in FRAMEWORKS:
        return FRAMEWORKS[framework], "FRAMEWORK"
    if ":" in framework:
        module, _, attr = framework.partition(":")
        return module, attr
    adapters = importlib.import_module("xentcheck.adapters")
    plugins = getattr(adapters, "entry_point_adapters", dict)()
    if framework in plugins:
        module, _, attr = plugins[framework].partition(":")
        return module, attr
    raise LookupError(f"no adapter module known for framework {framework!r}")


def _framework_part(framework: str) -> str:
    module, attr = _adapter(framework)
    text = standalone_module(module)
    if attr != "FRAMEWORK":
        text += f"\nFRAMEWORK = {attr}\n"
    clash = _top_level_names(text) & _RUNTIME_NAMES
    if clash:  # the adapter would shadow the script's helpers
        raise RuntimeError(f"{module} defines {sorted(clash)}, names the script's helpers use")
    return f"# {'=' * 76}\n# the {framework} adapter of xentcheck {__version__}\n" + text + "\n\n"


def _top_level_names(text: str) -> set[str]:
    names: set[str] = set()
    for stmt in ast.parse(text).body:
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


_RUNTIME_NAMES = (
    _top_level_names(_runtime_source()) | {"INPUTS", "GOLDEN", "CALL", "API", "REPORTED"}
) - {"math", "sys", "np"}


def _header(headers: Sequence[Row], framework: str, variant: str = "") -> Row:
    """The run header of ``framework``'s rows of label ``variant`` (a framework merged at
    several version sets: :mod:`xentcheck.harness.merge`), else the first naming it."""
    for h in headers:
        info = (h.get("frameworks") or {}).get(framework)
        if variant and isinstance(info, dict) and info.get("variant") == variant:
            return h
    for h in headers:
        if framework in (h.get("frameworks") or {}) or h.get("framework") == framework:
            return h
    return {}


def _head_part(headers: Sequence[Row], framework: str, variant: str = "") -> str:
    h = _header(headers, framework, variant)
    info = (h.get("frameworks") or {}).get(framework, {})
    versions = info.get("versions") or {}
    used = ", ".join(f"{k} {v}" for k, v in versions.items()) or "(not recorded)"
    adapters = importlib.import_module("xentcheck.adapters")
    needs = getattr(adapters, "REQUIRES", {}).get(framework, (framework.partition(":")[0],))
    made = h.get("xentcheck_version", __version__)
    lines = [
        f"# Reproduces one result of an xentcheck report (xentcheck {made}; this script was",
        f"# written by xentcheck {__version__}). Needs Python 3.11+, numpy and "
        f"{', '.join(needs)}; nothing else.",
        f"# The run used: {used}",
        f"# on {h.get('cpu') or h.get('platform') or 'an unrecorded machine'}.",
        "#",
        "# Run it:  python this_file.py",
        "# It prints the API's output next to the reference's (expected[...]) for the row's",
        "# quantity and exits 0 when the report's numbers are reproduced, 1 when not.",
        "# Layout: NumPy helpers; the instance's exact inputs (and the golden, when small);",
        "# the adapter code xentcheck ran, copied as it is; last, this row's call.",
        "from __future__ import annotations",
        "",
        "",
    ]
    return "\n".join(lines)


def _literal(x: Any) -> str:
    return repr(x)


def _call_text(row: Row, prep: Prepared, where: tuple[int, str] | None = None) -> str:
    quantity = str(row.get("quantity", "value"))
    reported = {k: row[k] for k in REPORTED_KEYS if k in row}
    if prep.rejected is not None:
        reported["rejected"] = prep.rejected
    cot = (
        "np.asarray(1.0)" if prep.value_shape is None else f"repro_cotangent({prep.value_shape!r})"
    )
    lines = [
        f"# --- this row: {row.get('api')} | {row.get('loss')} | {row.get('dtype')} | "
        f"{row.get('device')} | {quantity} | {row.get('status')}",
        f"# instance {row.get('instance')}",
    ]
    if where is not None:
        lines.append(f"# the adapter code defines this API near line {where[0]} ({where[1]})")
    if row.get("status") == "known":
        lines.append(f"# known difference {row.get('known_id')}: {row.get('explanation', '')}")
        lines.append(f"#   {row.get('link', '')}")
    lines += [
        f"CALL = Call(loss={row.get('loss')!r}, inputs=INPUTS, dtype={row.get('dtype')!r}, "
        f"device={row.get('device')!r},",
        f"            params={_literal(dict(row.get('params') or {}))},",
        f"            explicit=frozenset({list(prep.explicit)!r}),",
        f"            grad_inputs={prep.grad_inputs!r}, cotangent={cot})",
        "FRAMEWORK.setup()",
        f"API = repro_find_api(FRAMEWORK, {row.get('api')!r}, CALL)",
        f"REPORTED = {_literal(reported)}",
        f"repro_exit(repro_show(API, CALL, {quantity!r}, {row.get('index')!r}, "
        f"GOLDEN.get({quantity!r}), REPORTED))",
    ]
    return "\n".join(lines) + "\n"


def _unavailable(row: Row, reason: str) -> str:
    msg = f"xentcheck cannot reproduce {row.get('instance')} ({row.get('api')}): {reason}"
    return f"# {'=' * 76}\n# No reproduction: {reason}\nraise SystemExit({msg!r})\n"


class _Builder:
    """Parts shared between rows, made once each."""

    def __init__(self, headers: Sequence[Row], goldens: GoldenCache | None = None) -> None:
        self.headers = headers
        self.goldens = goldens
        self.sources = CaseSources(headers)
        self.parts: dict[str, str] = {}
        self.prepared: dict[tuple[str, str, str], Prepared | str] = {}
        self.api_lines: dict[tuple[str, str], tuple[int, str] | None] = {}

    def _part(self, key: str, make) -> str:
        if key not in self.parts:
            self.parts[key] = make()
        return key

    def row(self, row: Row) -> list[str]:
        fw = str(row.get("framework"))
        variant = str(row.get("variant") or "")
        head = self._part(f"head:{fw}|{variant}" if variant else f"head:{fw}",
                          lambda: _head_part(self.headers, fw, variant))  # fmt: skip
        dtype = str(row.get("dtype"))
        key = (str((row.get("source") or {}).get("file")), str(row.get("instance")), dtype)
        if key not in self.prepared:
            inst = self.sources.instance(row)
            try:
                self.prepared[key] = (
                    inst if isinstance(inst, str) else prepare(inst, dtype, key[0], self.goldens)
                )
            except Exception as exc:  # a script that cannot be made never fails the report
                self.prepared[key] = f"rebuilding its inputs failed ({type(exc).__name__}: {exc})"
        prep = self.prepared[key]
        if isinstance(prep, str):
            return [head, _unavailable(row, prep)]
        try:
            fw_key = self._part(f"framework:{fw}", lambda: _framework_part(fw))
        except (LookupError, ValueError, RuntimeError, OSError, SyntaxError) as exc:
            return [head, _unavailable(row, f"its adapter code cannot be copied ({exc})")]
        runtime = self._part("runtime", _runtime_source)
        inputs = self._part(f"inputs:{key[1]}@{dtype}", lambda: prep.text)
        api = (fw_key, str(row.get("api")))
        if api not in self.api_lines:
            self.api_lines[api] = _api_line(self.parts[fw_key], api[1])
        where = self.api_lines[api]
        if where is not None:
            before = sum(self.parts[k].count("\n") for k in (head, runtime, inputs))
            where = (before + where[0], where[1])
        return [head, runtime, inputs, fw_key, _call_text(row, prep, where)]


def _api_line(adapter: str, api: str) -> tuple[int, str] | None:
    """(1-based line, text searched) where the adapter code names ``api``, to point at it.

    The full name when it is written out, else the framework function the recipe starts
    with (``optax.losses.sigmoid_focal_loss`` of ``optax.losses.sigmoid_focal_loss+mean``).
    """
    base = re.split(r"[+(*\[]", api, maxsplit=1)[0]
    for needle in (f'"{api}"', f"'{api}'", f'"{base}', f"'{base}"):
        at = adapter.find(needle)
        if at >= 0 and base:
            return adapter.count("\n", 0, at) + 1, needle.strip("'\"")
    return None


def bundle(
    rows: list[Row],
    headers: list[Row],
    statuses: Sequence[str] = SCRIPTED,
    goldens: GoldenCache | None = None,
) -> dict[str, Any]:
    """Scripts of every row that needs one, as shared parts and per-row lists.

    Returns ``{"parts": {key: text}, "rows": {row_id: [part_key, ..., call_text]}}``
    where ``row_id`` is the row's index in ``rows`` (as a string); a row's script is its
    parts' texts in order, followed by its call text. ``statuses`` narrows the rows that
    get one (``("mismatch", "nonfinite", "error")``: the unexplained ones only).
    ``goldens``: the run's golden cache, looked up before a golden is computed.
    """
    b = _Builder(headers, goldens)
    out_rows = {str(i): b.row(r) for i, r in enumerate(rows) if needs_script(r, statuses)}
    return {"parts": b.parts, "rows": out_rows}


def script(row: Row, headers: list[Row]) -> str:
    """The whole reproduction script of one row."""
    b = _Builder(headers)
    items = b.row(row)
    return "".join(b.parts[k] for k in items[:-1]) + items[-1]


def assemble(bundled: dict[str, Any], row_id: str) -> str:
    """One script back from a :func:`bundle` (what the HTML page does in the browser)."""
    items = bundled["rows"][row_id]
    return "".join(bundled["parts"][k] for k in items[:-1]) + items[-1]
