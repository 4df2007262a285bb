"""tools/gpu_check.py: a real CPU run (no GPU here), and its CPU-vs-GPU comparison on GPU
rows simulated from real CPU rows (the one part a GPU-less machine cannot run)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
sys.modules["gpu_check"] = gpu_check
SPEC.loader.exec_module(gpu_check)

CASES = ROOT / "cases" / "softmax_cross_entropy" / "compiled_modes.yaml"

# the check runs torch (in the module-scoped fixture)
pytestmark = pytest.mark.torch


def _gpu_check(*argv: str) -> subprocess.CompletedProcess:
    tool = [sys.executable, str(ROOT / "tools" / "gpu_check.py")]
    return subprocess.run([*tool, *argv], capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    """gpu_check on torch over one tagged file, on this GPU-less machine: the command line,
    what it printed, and its results file."""
    out = tmp_path_factory.mktemp("gpu") / "gpu-check.jsonl"
    argv = ["--framework", "torch", "--cases", str(CASES), "--out", str(out), "--jobs", "1"]
    return argv, _gpu_check(*argv), out


def test_without_a_gpu_it_says_so_in_one_line_and_keeps_the_cpu_rows(cpu_run):
    _, done, out = cpu_run
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip().splitlines()
    assert len(printed) == 1
    assert printed[0].startswith("gpu-check: no GPU: torch: ")
    headers, rows = gpu_check.read_jsonl(out)
    assert {r["device"] for r in rows} == {"cpu"}
    assert {r["framework"] for r in rows} == {"reference", "torch"}
    assert all("gpu-smoke" in r["tags"] for r in rows)
    assert gpu_check.devices_seen(headers)["torch"][0] is None


def test_require_gpu_makes_a_gpu_less_machine_fail(cpu_run):
    argv, _, _ = cpu_run
    done = _gpu_check(*argv, "--require-gpu")
    assert done.returncode == 1
    assert "gpu-check: no GPU: torch: " in done.stdout


def _with_gpu_twins(rows):
    """The CPU rows and a GPU twin of each framework row, identical but for the device."""
    twins = []
    for row in rows:
        if row["framework"] != "reference":
            twin = copy.deepcopy(row)
            twin["device"] = "gpu"
            twins.append(twin)
    return rows + twins, twins


def test_identical_gpu_twins_agree(cpu_run):
    _, _, out = cpu_run
    _, rows = gpu_check.read_jsonl(out)
    both, twins = _with_gpu_twins(rows)
    assert len(gpu_check.pairs(both)) == len(twins) > 0
    assert gpu_check.disagreements(both) == []


def test_a_gpu_twin_that_differs_is_reported_by_kind(cpu_run):
    _, _, out = cpu_run
    _, rows = gpu_check.read_jsonl(out)
    both, twins = _with_gpu_twins(rows)
    numeric = [t for t in twins if t["status"] == "pass" and len(t.get("actual") or []) > 1]
    changed_status, far, nan, close = numeric[0], numeric[1], numeric[2], numeric[3]
    changed_status["status"] = "mismatch"
    dtype = far["out_dtype"]
    x = float(far["actual"][1])
    far["actual"][1] = x + 100 * gpu_check.float_ulp_one(x, dtype) * max(1.0, far["allowed_ulp"])
    nan["actual"][0] = "nan"
    y = float(close["actual"][0])
    close["actual"][0] = y + gpu_check.float_ulp_one(y, close["out_dtype"])  # 1 ULP: allowed
    found = {d.key: d for d in gpu_check.disagreements(both)}

    def key(row):
        return tuple(row[k] for k in gpu_check.PAIR_KEY)

    assert set(found) == {key(changed_status), key(far), key(nan)}
    assert found[key(changed_status)].kind == "status"
    assert found[key(far)].kind == "values" and "element 1" in found[key(far)].detail
    assert found[key(nan)].kind == "values" and "non-finite" in found[key(nan)].detail
    assert json.dumps([d.as_json() for d in found.values()])  # serialisable for --json


def test_devices_seen_reads_the_gpu_or_the_reason_from_the_headers():
    headers = [
        {"frameworks": {"torch": {"devices": {"cpu": "x", "gpu": "NVIDIA H100"}}}},
        {"frameworks": {"jax": {"devices": {"cpu": "x", "gpu": None},
                                "skipped": {"gpu": "jaxlib has no CUDA plugin"}}}},
    ]  # fmt: skip
    assert gpu_check.devices_seen(headers) == {
        "torch": ("NVIDIA H100", None),
        "jax": (None, "jaxlib has no CUDA plugin"),
    }


@pytest.mark.parametrize(
    ("x", "y", "dtype", "expected"),
    [
        (1.0, 1.0, "float32", 0.0),
        (1.0, 1.0 + 2.0**-23, "float32", 1.0),
        (1.0, 1.0 + 2.0**-10, "float16", 1.0),
        (float("nan"), float("nan"), "float32", 0.0),
        (float("inf"), float("inf"), "float64", 0.0),
        (float("inf"), 1.0, "float64", float("inf")),
        (float("nan"), 1.0, "float64", float("inf")),
    ],
)
def test_ulp_distance(x, y, dtype, expected):
    assert gpu_check.ulp_distance(x, y, dtype) == expected


def test_the_frameworks_default_to_the_main_job(tmp_path):
    assert gpu_check.main_job_frameworks()[:3] == ["torch", "tensorflow", "jax"]
    ini = tmp_path / "tox.ini"
    ini.write_text("[frameworks]\nall = --framework a --framework b-c\n")
    assert gpu_check.main_job_frameworks(ini) == ["a", "b-c"]
    ini.write_text("[frameworks]\nall =\n")
    with pytest.raises(SystemExit, match="names no --framework"):
        gpu_check.main_job_frameworks(ini)
