"""The shipped suite is package data: found with no --cases, in a checkout and installed.

``src/xentcheck/suite`` links to the top-level ``cases/`` (the real files, where users look),
so a wheel carries the suite as ``xentcheck/suite/`` and an editable install reads
``cases/`` itself; :func:`xentcheck.harness.cases.shipped_suite` finds it either way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xentcheck.harness.cases import load_cases, shipped_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE_FILES = sorted(
    p.relative_to(ROOT / "cases").as_posix()
    for p in (ROOT / "cases").rglob("*")
    if p.suffix in (".yaml", ".json")
)


def test_the_shipped_suite_is_the_top_level_cases_folder():
    """In a checkout the package's suite is a link to cases/; installed, a copy of it."""
    assert (ROOT / "src" / "xentcheck" / "suite").resolve() == (ROOT / "cases").resolve()
    suite = shipped_suite()
    installed = sorted(
        str(p.relative_to(suite)) for p in suite.rglob("*") if p.suffix in (".yaml", ".json")
    )
    assert installed == SUITE_FILES
    assert all((suite / f).read_bytes() == (ROOT / "cases" / f).read_bytes() for f in installed)
    assert [c.key for c in load_cases()] == [c.key for c in load_cases([ROOT / "cases"])]
    assert "case-schema.json" in SUITE_FILES and len(SUITE_FILES) > 50


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the working tree stays untouched)."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    junk = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", ".tox", "reports",
                                  ".hypothesis", "__pycache__", ".*cache")  # fmt: skip
    shutil.copytree(ROOT, src, symlinks=True, ignore=junk)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("xentcheck-*.whl")
    return built


def test_the_wheel_carries_every_suite_file_as_it_is(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for rel in SUITE_FILES:
            assert f"xentcheck/suite/{rel}" in names, rel
            assert z.read(f"xentcheck/suite/{rel}") == (ROOT / "cases" / rel).read_bytes(), rel


def test_the_installed_suite_is_found_from_any_directory(wheel, tmp_path):
    """The wheel's files on sys.path ahead of the checkout, run from an unrelated folder."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import xentcheck\n"
        "from xentcheck.harness.cases import load_cases, shipped_suite\n"
        "print(xentcheck.__file__)\n"
        "print(shipped_suite())\n"
        "print(len(load_cases()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    module, suite, count = done.stdout.split("\n")[:3]
    assert Path(module).is_relative_to(site)
    assert Path(suite) == (site / "xentcheck" / "suite").resolve()
    assert int(count) == len(load_cases([ROOT / "cases"]))
