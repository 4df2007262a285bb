"""The layers point one way: the harness builds on the adapters, ``known/`` and the
reference, findings on the harness, fuzz and the report on findings, never the other way
round; the reference stands on its own, and ``exact`` (the mpmath oracle) on the
reference's registry alone.

Read from the sources with :mod:`ast` (every ``import`` and ``from ... import``, at any
depth, relative ones resolved, and ``importlib.import_module("...")`` with a literal
name), not from what importing a module happens to load.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "xentcheck"

#: a module or package of xentcheck -> the xentcheck modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "adapters": ("xentcheck.harness",),
    "known": ("xentcheck.harness",),
    "reference": ("xentcheck.harness", "xentcheck.adapters", "xentcheck.known", "xentcheck.exact"),
    "accuracy.py": ("xentcheck.harness", "xentcheck.adapters", "xentcheck.known"),
    "harness": ("xentcheck.findings", "xentcheck.fuzz", "xentcheck.report", "xentcheck.cli"),
    "findings": ("xentcheck.fuzz", "xentcheck.report", "xentcheck.cli"),
    "fuzz": ("xentcheck.report", "xentcheck.cli"),
    "report": ("xentcheck.cli", "xentcheck.fuzz"),
    "exact": (
        "xentcheck.harness",
        "xentcheck.adapters",
        "xentcheck.known",
        "xentcheck.findings",
        "xentcheck.fuzz",
        "xentcheck.report",
        "xentcheck.cli",
    ),
}


def module_name(path: Path, root: Path = SRC) -> str:
    """``root/xentcheck/known/torch.py`` -> ``xentcheck.known.torch`` (a package's
    ``__init__.py`` -> the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = SRC) -> set[str]:
    """The absolute names of the modules ``path`` (under ``root``) imports: ``from a
    import b`` names both ``a`` and ``a.b``, which may be a submodule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path, root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a relative import starts from
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def violations(path: Path, forbidden: tuple[str, ...], root: Path = SRC) -> list[str]:
    """The imports of ``path`` that are (or lie under) a ``forbidden`` module."""
    return sorted(
        name
        for name in imports(path, root)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def _files(part: str) -> list[Path]:
    target = PACKAGE / part
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("part", list(FORBIDDEN))
def test_the_layer_imports_nothing_above_it(part: str) -> None:
    files = _files(part)
    assert files, f"no sources under {part}"
    found = {str(p.relative_to(SRC)): violations(p, FORBIDDEN[part]) for p in files}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize(
    "source",
    [
        "from xentcheck.harness.compare import DEFAULT_TOLERANCE\n",
        "import xentcheck.harness.worker as worker\n",
        "from xentcheck import harness\n",
        "from ..harness import cases\n",
        "from .. import harness\n",
        "def late():\n    from xentcheck.harness.compare import compare\n",
        "import importlib\nimportlib.import_module('xentcheck.harness.compare')\n",
    ],
)
def test_every_form_of_import_is_seen(tmp_path: Path, source: str) -> None:
    """A harness import in a module of known/, written any way Python allows, is found
    (the probe stands where known/'s modules do, so relative imports resolve alike)."""
    probe = tmp_path / "xentcheck" / "known" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source)
    assert violations(probe, FORBIDDEN["known"], root=tmp_path)


def test_a_neighbour_of_the_harness_is_not_the_harness(tmp_path: Path) -> None:
    probe = tmp_path / "xentcheck" / "known" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from xentcheck.harnessed import x\nfrom ..accuracy import agrees\n")
    assert violations(probe, FORBIDDEN["known"], root=tmp_path) == []
    assert imports(probe, root=tmp_path) >= {"xentcheck.accuracy.agrees"}
