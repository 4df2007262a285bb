"""Copying xentcheck's own source into a standalone script, without its package imports.

A reproduction script must run where xentcheck is not installed, yet call a framework
API exactly as the adapter did. So the adapter module is copied whole, and each
``from xentcheck... import name`` in it is replaced by the definition of ``name`` copied
from its module, with the module-level names that definition needs in turn (its
functions, classes, constants and third-party imports), dependencies first.

Everything is read from the installed modules' source files with :mod:`ast`, so the
script carries the code that produced the report, not a second hand-written version.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from dataclasses import dataclass, field

_FUTURE = "__future__"


def _is_ours(module: str | None, level: int = 0) -> bool:
    """A module of xentcheck itself (or a relative import inside it)."""
    return level > 0 or module == "xentcheck" or (module or "").startswith("xentcheck.")


@dataclass
class _Module:
    """One module's source, its top-level statements and the names they bind."""

    name: str
    lines: list[str]
    tree: ast.Module
    binds: dict[str, ast.stmt] = field(default_factory=dict)

    @classmethod
    @functools.cache
    def load(cls, name: str) -> _Module:
        """The parsed module (once per process: every framework's script shares it; read
        only after loading)."""
        src = _read_source(name)
        m = cls(name, src.splitlines(), ast.parse(src))
        for stmt in m.tree.body:
            for bound in _bound_names(stmt):
                m.binds.setdefault(bound, stmt)
        return m

    def text(self, stmt: ast.stmt) -> str:
        decorators = getattr(stmt, "decorator_list", [])
        start = min([stmt.lineno, *(d.lineno for d in decorators)])
        return "\n".join(self.lines[start - 1 : stmt.end_lineno])


def _read_source(module: str) -> str:
    """The text of ``module``'s file, found without importing it (nor its framework)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"no Python source for module {module!r}")
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [a.asname or a.name.split(".")[0] for a in stmt.names]
    if isinstance(stmt, ast.Assign):
        return [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _used_names(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}


#: xentcheck modules whose definitions are copied one by one into the script's namespace;
#: any other xentcheck module (another adapter, say) that a copied module imports is
#: embedded whole and run as a module of its own (``repro_module``), so its private names
#: can never collide with the adapter's
FLAT_MODULES = (
    "xentcheck.adapters.base",
    "xentcheck.dtypes",
    "xentcheck.harness.results",
    "xentcheck.harness.generators",
)


def _source_literal(text: str) -> str:
    """A Python string literal of ``text``: a raw triple-quoted block when that is exact."""
    if "'''" not in text and text.endswith("\n"):
        return "r'''\n" + text + "'''"
    return repr(text)


class SourceCopier:
    """Collects definitions (with their module-level dependencies) into one text.

    ``require(module, name)`` adds ``name`` from ``module``; ``text()`` returns the third-
    party imports they need, then the definitions in dependency order, each module's
    block headed by a comment naming the file it was copied from.
    """

    def __init__(self) -> None:
        self._modules: dict[str, _Module] = {}
        self._done: set[tuple[str, str]] = set()
        self._entries: list[tuple[str, str]] = []  # (module, text), dependencies first
        self._seen_stmts: set[int] = set()
        self._embedded: dict[str, str] = {}  # module -> the variable holding it
        self.imports: dict[str, None] = {}

    def _module(self, name: str) -> _Module:
        if name not in self._modules:
            self._modules[name] = _Module.load(name)
        return self._modules[name]

    def require(self, module: str, name: str) -> None:
        """Copy ``name`` of ``module`` and, first, what it needs."""
        if (module, name) in self._done:
            return
        self._done.add((module, name))
        if module not in FLAT_MODULES:
            holder = self.require_module(module)
            self._entries.append((module, f"{name} = {holder}.{name}"))
            return
        m = self._module(module)
        stmt = m.binds.get(name)
        if stmt is None:  # a builtin, or a name bound inside a function
            return
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            self._require_import(stmt, name)
            return
        if id(stmt) in self._seen_stmts:
            return
        self._seen_stmts.add(id(stmt))
        for used in sorted(_used_names(stmt)):
            if used != name:
                self.require(module, used)
        self._entries.append((module, m.text(stmt)))

    def require_imports_of(self, stmt: ast.ImportFrom) -> None:
        """Resolve a ``from xentcheck.x import a, b`` of a copied module into copies."""
        for alias in stmt.names:
            self._require_alias(stmt, alias)

    def _require_import(self, stmt: ast.Import | ast.ImportFrom, name: str) -> None:
        for alias in stmt.names:
            if (alias.asname or alias.name.split(".")[0]) != name:
                continue
            if isinstance(stmt, ast.Import):
                if _is_ours(alias.name):
                    raise ValueError(f"cannot copy 'import {alias.name}' into a script")
                line = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                self.imports[line] = None
            elif stmt.module == _FUTURE:
                continue
            elif _is_ours(stmt.module, stmt.level):
                self._require_alias(stmt, alias)
            else:
                line = f"from {stmt.module} import {alias.name}"
                self.imports[line + (f" as {alias.asname}" if alias.asname else "")] = None

    def _require_alias(self, stmt: ast.ImportFrom, alias: ast.alias) -> None:
        if stmt.level:
            raise ValueError("relative imports are not supported in copied xentcheck modules")
        bind = alias.asname or alias.name
        target = f"{stmt.module}.{alias.name}"
        if _is_module(target):  # ``from xentcheck.adapters import torch_adapter as eager``
            holder = self.require_module(target)
            self._entries.append((target, f"{bind} = {holder}"))
            return
        self.require(str(stmt.module), alias.name)
        if bind != alias.name:
            self._entries.append((str(stmt.module), f"{bind} = {alias.name}"))

    def require_module(self, module: str) -> str:
        """Embed ``module`` whole (run by ``repro_module``); the variable that holds it."""
        if module in self._embedded:
            return self._embedded[module]
        holder = "repro_mod_" + module.rsplit(".", 1)[-1]
        self._embedded[module] = holder
        m = self._module(module)
        lines: list[str | None] = list(m.lines)
        provided: dict[str, str] = {}
        for stmt in m.tree.body:
            if isinstance(stmt, ast.Import) and any(_is_ours(a.name) for a in stmt.names):
                raise ValueError(f"{module}: cannot copy 'import xentcheck...' into a script")
            if not (isinstance(stmt, ast.ImportFrom) and _is_ours(stmt.module, stmt.level)):
                continue
            for alias in stmt.names:
                bind = alias.asname or alias.name
                target = f"{stmt.module}.{alias.name}"
                if _is_module(target):
                    provided[bind] = self.require_module(target)
                elif stmt.module in FLAT_MODULES:
                    self.require(str(stmt.module), alias.name)
                    provided[bind] = alias.name
                else:
                    provided[bind] = f"{self.require_module(str(stmt.module))}.{alias.name}"
            names = ", ".join(a.name for a in stmt.names)
            lines[stmt.lineno - 1] = f"# from {stmt.module} import {names}: given by the script"
            for i in range(stmt.lineno, stmt.end_lineno or stmt.lineno):
                lines[i] = None
        source = "\n".join(line for line in lines if line is not None).strip("\n") + "\n"
        given = "{" + ", ".join(f"{k!r}: {v}" for k, v in provided.items()) + "}"
        short = module.rsplit(".", 1)[-1]
        self._entries.append(
            (
                module,
                f"{holder} = repro_module(\n    {short!r},\n    {given},\n    "
                f"{_source_literal(source)},\n)",
            )
        )
        return holder

    def bound_names(self) -> set[str]:
        """Top-level names the copied definitions bind (to check for collisions)."""
        names: set[str] = set()
        for _, text in self._entries:
            for stmt in ast.parse(text).body:
                names.update(_bound_names(stmt))
        return names

    def text(self) -> str:
        """Imports, then the copied definitions (grouped by module, dependencies first)."""
        out = list(self.imports)
        last = None
        for module, text in self._entries:
            if module != last:
                path = module.replace(".", "/") + ".py"
                how = "copied from" if module in FLAT_MODULES else "embedded whole:"
                out += ["", "", f"# --- {how} {path}"]
                last = module
            elif "\n" in text or not text.split("=")[0].strip().isidentifier():
                out += ["", ""]
            out.append(text)
        return "\n".join(out) + "\n"


def standalone_module(module: str) -> str:
    """The source of ``module`` made independent of xentcheck.

    Its ``from __future__`` line is dropped (the script states it once, first); each
    ``from xentcheck... import`` is replaced by a comment, and the imported definitions
    (with what they need) are copied in front of the module's own code.
    """
    m = _Module.load(module)
    copier = SourceCopier()
    lines: list[str | None] = list(m.lines)
    for stmt in m.tree.body:
        if not isinstance(stmt, ast.ImportFrom):
            continue
        if stmt.module == _FUTURE:
            replacement = ""
        elif _is_ours(stmt.module, stmt.level):
            copier.require_imports_of(stmt)
            names = ", ".join(a.name for a in stmt.names)
            replacement = f"# from {stmt.module} import {names}: copied above"
        else:
            continue
        lines[stmt.lineno - 1] = replacement
        for i in range(stmt.lineno, stmt.end_lineno or stmt.lineno):
            lines[i] = None
    own = {n for stmt in m.tree.body for n in _bound_names(stmt)}
    clash = {
        n
        for n in own & copier.bound_names()
        if not isinstance(m.binds[n], ast.Import | ast.ImportFrom)
    }
    if clash:
        raise ValueError(f"{module} redefines {sorted(clash)}, which its copied imports define")
    body = "\n".join(line for line in lines if line is not None)
    path = module.replace(".", "/") + ".py"
    return (
        copier.text()
        + f"\n\n# {'=' * 70}\n# --- {path}, as it is (xentcheck imports replaced)\n"
        + body.strip("\n")
        + "\n"
    )


def copied_functions(module: str, names: list[str]) -> str:
    """The named definitions of ``module`` and their module-level dependencies."""
    copier = SourceCopier()
    for name in names:
        copier.require(module, name)
    return copier.text()
