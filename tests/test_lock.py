"""The lock (requirements/lock.txt): the running environment holds exactly its versions, and it
agrees with its inputs (constraints.txt, the virtualenv seed, pyproject's build-system requires).

The first test checks the environment it runs in, so it runs where tox.ini says the
environment is locked (``XENTCHECK_LOCKED_ENV=1``, set for every tox environment) and skips
in a hand-made development venv, which holds tools the lock does not. The second holds
everywhere. The rest feed tools/lock.py's checks deliberately wrong
files and installed distributions, so that a check that cannot fail would show here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xentcheck_lock_tool", ROOT / "tools/lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


lock = _load_lock_tool()
INPUTS = (lock.CONSTRAINTS, lock.PYPROJECT, lock.SEED, lock.LOCK)


@pytest.mark.skipif(
    os.environ.get("XENTCHECK_LOCKED_ENV") != "1",
    reason="not a locked environment: tox sets XENTCHECK_LOCKED_ENV=1 (run `tox -e tests`)",
)
def test_installed_distributions_match_the_lock() -> None:
    pins = lock.read_pins(ROOT / lock.LOCK)
    offenders = lock.installed_offenders(pins, lock.installed_distributions(), lock.project_name())
    assert offenders == [], "\n".join(offenders)


def test_vendored_copies_on_sys_path_are_not_installs() -> None:
    """setuptools puts its _vendor folder (wheel, packaging, ...) on sys.path once imported."""
    pytest.importorskip("setuptools", reason="needs setuptools, which vendors its dependencies")
    import setuptools  # noqa: F401  (imports put setuptools/_vendor on sys.path)

    vendored = [d for d in importlib.metadata.distributions() if "_vendor" in str(d._path)]
    if not vendored:
        pytest.skip("this setuptools vendors nothing on sys.path")
    found = {str(d._path) for d in lock.installed_distributions()}
    assert not found.intersection(str(d._path) for d in vendored)


def test_the_lock_agrees_with_its_inputs() -> None:
    problems = lock.consistency_problems(ROOT)
    assert problems == [], "\n".join(problems)


def test_torch_is_locked_at_its_cpu_build() -> None:
    pins = lock.read_pins(ROOT / lock.LOCK)
    constraint = lock.read_pins(ROOT / lock.CONSTRAINTS)["torch"].version
    assert constraint.local is None  # constraints.txt names the public release
    assert pins["torch"].version.public == constraint.public
    assert pins["torch"].version.local == "cpu"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the lock and its inputs, to break one at a time."""
    for name in INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _pin_line(path: Path, name: str) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith(f"{name}=="))


@pytest.mark.parametrize(
    ("file", "old", "new", "named"),
    [
        (lock.CONSTRAINTS, "jax==", "jax==0.0.1\n#", "constraints.txt pins 0.0.1"),
        (lock.CONSTRAINTS, "keras==", "keras>=", "not an exact pin"),
        (lock.SEED, "pip==", "pip==1.0\n#", "requirements/seed.in pins 1.0"),
        (lock.PYPROJECT, '"setuptools==', '"setuptools>=', "not an exact pin"),
        (lock.PYPROJECT, '"setuptools==', '"setuptools==1.0", "x==', "lacks it"),
        (lock.LOCK, "torch==2.13.0+cpu", "torch==2.13.0", "torch==2.13.0 is not the +cpu build"),
        (lock.LOCK, "numpy==", "numpy==1.0+local\n#", "numpy==1.0+local is a local build"),
    ],
)
def test_a_disagreeing_input_is_named(tree: Path, file: str, old: str, new: str, named: str):
    _edit(tree / file, old, new)
    problems = lock.consistency_problems(tree)
    assert any(named in p for p in problems), problems


def test_a_missing_constraint_pin_is_named(tree: Path) -> None:
    line = _pin_line(tree / lock.LOCK, "onnx")
    _edit(tree / lock.LOCK, line + "\n", "")
    problems = lock.consistency_problems(tree)
    assert any("constraints.txt pins onnx==" in p and "lacks it" in p for p in problems)


class _Dist(importlib.metadata.Distribution):
    """An installed distribution as importlib.metadata reads it, from its METADATA text."""

    def __init__(self, name: str, version: str) -> None:
        self._text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"

    def read_text(self, filename: str) -> str | None:
        return self._text if filename == "METADATA" else None

    def locate_file(self, path: str | Path) -> Path:
        return Path(path)


def test_each_offending_distribution_is_named() -> None:
    pins = lock.read_pins(ROOT / lock.LOCK)
    numpy = str(pins["numpy"].version)
    installed = [
        _Dist("numpy", numpy),  # as locked
        _Dist("PyYAML", "0.1"),  # another version
        _Dist("torch", "2.13.0"),  # the CUDA build of the locked release
        _Dist("not-in-any-lock", "1.0"),  # not locked at all
        _Dist("XentCheck", "0.1.0"),  # the project: exempt
    ]
    offenders = lock.installed_offenders(pins, installed, "xentcheck")
    assert len(offenders) == 3, offenders
    text = "\n".join(offenders)
    assert f"pyyaml 0.1 is installed, the lock pins {pins['pyyaml'].version}" in text
    assert "torch 2.13.0 is installed, the lock pins 2.13.0+cpu" in text
    assert "not-in-any-lock 1.0 is installed but not locked" in text
