"""Findings of a real run reproduce: every script, run alone with xentcheck hidden, exits 0.

``xentcheck run`` (a subprocess, no cache) runs a few shipped case files chosen for
findings of several kinds (wrong numbers, NaN/Inf patterns, error behaviour, documented
differences, and a 4 x 131072 input that the script regenerates with seeded NumPy) on
torch and on JAX; the findings' scripts then run one by one, each in a fresh
interpreter where ``import xentcheck`` fails, from a folder outside the repository.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xentcheck.findings import build
from xentcheck.findings.verify import verify
from xentcheck.harness.cases import shipped_suite
from xentcheck.harness.results import read_runs as load

#: shipped case files whose findings cover several kinds under either criterion: wrong or
#: imprecise numbers, NaN/Inf patterns, error behaviour, documented differences, and
#: inputs of 4 x 131072 elements that the scripts regenerate with seeded NumPy
CASE_FILES = (
    "sigmoid/basic.yaml",
    "softmax/basic.yaml",
    "kl_divergence/large_vocab.yaml",
    "categorical_cross_entropy/errors.yaml",
)
#: the top-level modules a framework's scripts may import
ALLOWED = {"torch": {"numpy", "torch"}, "jax": {"numpy", "jax", "optax", "functools"}}


@pytest.fixture(scope="module", params=["torch", "jax"])
def real(request, tmp_path_factory):
    framework = request.param
    pytest.importorskip(framework, reason=f"{framework} is not installed")
    tmp = tmp_path_factory.mktemp("real")
    for name in CASE_FILES:  # case keys are relative to the folder: keep loss/file.yaml
        (tmp / "cases" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shipped_suite() / name, tmp / "cases" / name)
    out = tmp / f"{framework}.jsonl"
    cases = ["--cases", str(tmp / "cases")]
    done = subprocess.run(
        [sys.executable, "-m", "xentcheck", "run", "--framework", framework, *cases,
         "--no-cache", "--quiet", "--fail-on", "never", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    headers, rows = load([out])
    return framework, build(rows, headers)


def test_every_finding_of_a_real_run_has_a_script_that_reproduces_it(real):
    framework, found = real
    found = [f for f in found if f["framework"] == framework]
    kinds = {f["kind"] for f in found}
    assert {"nonfinite", "error-behaviour", "semantic"} <= kinds, kinds
    assert kinds & {"wrong", "precision"}, kinds
    assert all(f["repro"] for f in found), [f["repro_note"] for f in found if not f["repro"]]
    assert any("np.random.default_rng" in f["repro"] for f in found), "no regenerated input"
    verdicts = verify(found, timeout=300)
    failed = [
        (f["id"], f["summary"], v.output)
        for f, v in zip(found, verdicts, strict=True)
        if not v.reproduced
    ]
    assert not failed, failed[:3]


def test_a_script_imports_only_numpy_and_its_framework(real):
    framework, found = real
    for f in found:
        tree = ast.parse(f["repro"])
        imported = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        imported |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
        }
        assert imported <= ALLOWED[framework], (f["id"], imported)


def test_a_script_that_does_not_reproduce_exits_1(real, tmp_path: Path):
    """The verdict is the script's own: with the expected number replaced by what the
    framework computes, the same script says "not reproduced" and exits 1."""
    _, found = real
    f = next(
        f for f in found if f["kind"] in ("wrong", "precision") and "\nexpected = " in f["repro"]
    )
    lines = f["repro"].splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("reproduced = "))
    fixed = [*lines[:at], "expected = actual; err = 0.0", *lines[at:]]
    (v,) = verify([{"id": f["id"], "repro": "\n".join(fixed) + "\n"}])
    assert v.reproduced is False and v.returncode == 1 and "not reproduced" in v.output
