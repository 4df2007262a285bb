"""examples/naive_numpy: a user's own float32 kernel with a classic mistake (log of an
unshifted softmax), run as an adapter by the CLI (``--adapter``, and by name once
installed through its entry point) and by the pytest plugin: the large-logit cases
catch it, the ordinary ones pass, and the same cases pass a correct kernel."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xentcheck.adapters import Api, Call, Framework, Output, Unsupported
from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.worker import run_framework
from xentcheck.reference import evaluate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "naive_numpy"
CASES = EXAMPLE / "cases"
XENTCHECK = [sys.executable, "-c", "import sys; from xentcheck.cli import main; sys.exit(main())"]

#: what the naive kernel must do on each case (value; the gradient is checked separately)
EXPECTED_VALUE_STATUS = {
    "small-logits": "pass",
    "logits-up-to-80": "pass",
    "logits-100": "nonfinite",
    "far-below-the-max": "nonfinite",
    "random-scale-1e3": "nonfinite",
}


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    return env


def _rows(path: Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    header = next(r for r in lines if r.get("kind") == "run" and "frameworks" in r)
    return header, [
        r for r in lines if r.get("kind") != "run" and r.get("framework") != "reference"
    ]


def _by_case(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["case"].rsplit("/", 1)[-1], r["quantity"]): r for r in rows}


def test_example_kernel_agrees_with_the_reference_on_ordinary_logits() -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from naive_numpy_xent import cross_entropy
    finally:
        sys.path.remove(str(EXAMPLE))
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(5, 7)).astype(np.float32)
    target = rng.integers(0, 7, size=5)
    golden = evaluate(
        "softmax_cross_entropy", {"logits": logits.astype(np.float64), "target": target}
    )
    value, grad = cross_entropy(logits, target)
    assert value.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(value, golden.value, rtol=1e-5)
    np.testing.assert_allclose(grad, golden.grads["logits"], rtol=1e-4, atol=1e-7)
    # ... and breaks where exp() overflows float32
    with np.errstate(over="ignore", invalid="ignore"):
        big, _ = cross_entropy(np.array([[100.0, 0.0]], np.float32), np.array([0]))
    assert np.isnan(big)


def test_cli_adapter_flag_catches_the_unshifted_softmax(tmp_path: Path) -> None:
    out = tmp_path / "naive.jsonl"
    cmd = [*XENTCHECK, "run", "--adapter", "naive_numpy_xent:adapter", "--cases", str(CASES)]
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--quiet"],
        env=_env(EXAMPLE),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # discrepancies found
    header, rows = _rows(out)
    assert list(header["frameworks"]) == ["naive_numpy"]
    got = _by_case(rows)
    for case, status in EXPECTED_VALUE_STATUS.items():
        assert got[(case, "value")]["status"] == status, case
    assert got[("small-logits", "grad:logits")]["status"] == "pass"
    assert got[("logits-100", "value")]["actual"] == ["nan"]  # inf / inf
    assert got[("far-below-the-max", "value")]["actual"] == ["inf"]  # log(0)
    assert got[("far-below-the-max", "value")]["expected"][0] == pytest.approx(55.2038, abs=1e-4)
    assert got[("random-scale-1e3", "grad:logits")]["status"] == "nonfinite"


def _shifted_run(call: Call) -> Output:
    """The same kernel done right, the control that the cases are fair: the max shift, the
    normaliser as ``log1p`` of the other classes' sum, and the target's ``p - 1`` as
    ``expm1(log p)``. Where ``p`` rounds to 1, ``p - 1`` would be 0 instead of
    ``-exp(-100)``: the ULP criterion flags that (docs/accuracy.md)."""
    if call.dtype != "float32" or not call.integer_target:
        raise Unsupported("float32 class indices only")
    z = call.inputs["logits"].astype(np.float32)
    t = call.inputs["target"]
    n = z.shape[0]
    s = z - z.max(axis=1, keepdims=True)
    others = np.exp(s)
    others[np.arange(n), z.argmax(axis=1)] = 0.0  # the maximum's own exp(0) = 1
    log_p = s - np.log1p(others.sum(axis=1, keepdims=True))
    value = -log_p[np.arange(n), t].mean(dtype=np.float32)
    grad = np.exp(log_p)
    grad[np.arange(n), t] = np.expm1(log_p[np.arange(n), t])
    grad = grad / np.float32(n) * np.float32(call.cotangent)
    return Output(np.float64(value), {"logits": grad.astype(np.float64)}, out_dtype="float32")


def test_the_same_cases_pass_a_kernel_with_the_max_shift() -> None:
    fw = Framework(
        name="shifted",
        apis=[Api("shifted.cross_entropy", "softmax_cross_entropy", _shifted_run)],
        versions=lambda: {},
        devices=lambda: {"cpu": "NumPy", "gpu": None},
    )
    rows: list[dict] = []
    instances = [i for c in load_cases([CASES]) for i in expand(c)]
    run_framework(fw, instances, ["float32"], ["cpu"], rows.append)
    assert len(rows) == 2 * len(EXPECTED_VALUE_STATUS)
    assert {r["status"] for r in rows} == {"pass"}, [
        (r["instance"], r["quantity"], r["status"]) for r in rows if r["status"] != "pass"
    ]


def test_installed_example_is_found_through_its_entry_point(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    proc = subprocess.run(
        [*pip, "--target", str(site), str(src)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        pytest.skip(f"pip could not build the example here: {proc.stderr.strip()[-300:]}")
    check = (
        "from xentcheck.adapters import available_frameworks, load_framework;"
        "print(available_frameworks()[-1], load_framework('naive_numpy').apis[0].name)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check], env=_env(site), capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.split() == ["naive_numpy", "naive_numpy_xent.cross_entropy"], proc.stderr
    out = tmp_path / "by-name.jsonl"
    proc = subprocess.run(
        [*XENTCHECK, "run", "--framework", "naive_numpy", "--cases", str(CASES), "--out", str(out)],
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    got = _by_case(_rows(out)[1])
    assert {c: got[(c, "value")]["status"] for c in EXPECTED_VALUE_STATUS} == EXPECTED_VALUE_STATUS


def test_pytest_plugin_runs_the_example_adapter(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES),
         "--xentcheck-framework", "naive_numpy_xent:adapter", "--rootdir", str(tmp_path)],
        env=_env(EXAMPLE),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:]
    tail = proc.stdout.strip().splitlines()[-1]
    assert "3 failed, 2 passed" in tail, tail
    assert "value: nonfinite" in proc.stdout and "actual  : [nan]" in proc.stdout


def test_every_builtin_framework_declares_its_packages() -> None:
    """available_frameworks() judges a built-in by REQUIRES without importing it: one
    missing there would silently drop out of the CLI's and the plugin's defaults."""
    from xentcheck.adapters import FRAMEWORKS, OWN_PROCESS, REQUIRES, available_frameworks

    assert set(REQUIRES) == set(FRAMEWORKS)
    assert set(FRAMEWORKS) >= OWN_PROCESS
    everything = available_frameworks()
    shared = available_frameworks(one_process=True)
    assert set(shared) == set(everything) - OWN_PROCESS
    if importlib.util.find_spec("torch") is not None:
        assert "torch" in shared
