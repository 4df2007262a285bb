"""Smoke test of the benchmark (``python -m bench``) on tiny sizes, with real PyTorch.

The figures themselves depend on the machine; this checks that every code path runs,
that ``reports/bench.json`` has the fields the issue names with sane values, and that
the pieces measure what they say (peak memory covers the input, the bare loop makes the
harness's calls).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import llm
from bench.measure import GIB, child_env, peak_rss_bytes
from bench.report import goal_rows, met, table

ROOT = Path(__file__).resolve().parent.parent

CASE = """\
cases:
  - id: tiny
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 5], seed: 1}
      target: {random: labels, shape: [3], classes: 5, seed: 2}
    params:
      reduction: [none, mean]
    dtypes: [float64, float32]
  - id: bad-label
    loss: softmax_cross_entropy
    inputs: {logits: [[1.0, 2.0]], target: [2]}
    expect_error: true
    dtypes: [float32]
"""


@pytest.mark.torch
def test_quick_bench_writes_every_figure(tmp_path):
    pytest.importorskip("torch")
    cases = tmp_path / "tiny.yaml"
    cases.write_text(CASE)
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "bench", "--quick", "--framework", "torch", "--cases", str(cases),
           "--device", "cpu", "--llm-shape", "8,2048", "--out", str(out)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["mode"] == "quick"
    assert set(doc["method"]) >= {
        "overhead_ratio",
        "compile_share",
        "suite_wall_s",
        "llm_reference",
    }
    assert doc["overhead_ratio"]["torch"] > 0
    torch_run = doc["frameworks"]["torch"]
    # 2 instances x 2 dtypes of `tiny` + 1 of `bad-label`, each through both cross-entropy APIs
    assert torch_run["goldens"] == 5
    assert torch_run["calls"] == 10
    # D where a verdict needs it: timed apart, and the ratio with it on the bare side
    assert torch_run["bare_sensitivity_s"] >= 0
    assert 0 <= torch_run["sensitivities"] <= torch_run["goldens"]
    with_d = doc["overhead_ratio_with_sensitivity"]["torch"]
    assert 0 < with_d <= doc["overhead_ratio"]["torch"]
    denominator = torch_run["bare_api_s"] + torch_run["bare_reference_s"]
    assert with_d == pytest.approx(
        torch_run["harness_wall_s"] / (denominator + torch_run["bare_sensitivity_s"]), rel=1e-2
    )
    assert doc["compile_share"]["torch"] == 0.0
    assert doc["compile"]["torch"]["count"] == 0
    suite = doc["suite_wall_s"]
    assert suite["sequential"] > 0 and suite["parallel"] > 0
    assert suite["speedup"] == pytest.approx(suite["sequential"] / suite["parallel"], rel=1e-2)
    assert "GPU" in doc["gpu"]["summary"]
    inc = doc["incremental"]
    # cold computes every row, the rerun reuses them all, the added case alone is computed
    assert inc["cold"]["reused_rows"] == 0 and inc["cold"]["computed_rows"] > 0
    # (the reference's own rows are always computed: counted as computed in every run)
    cold, warm, one = inc["cold"], inc["warm"], inc["one_case"]
    assert warm["reused_rows"] == cold["computed_rows"] - warm["computed_rows"] > 0
    assert one["reused_rows"] == warm["reused_rows"]
    assert one["computed_rows"] > warm["computed_rows"]
    assert doc["warm_rerun_s"] < doc["cold_main_job_s"]
    assert doc["warm_rerun_ratio"] == pytest.approx(
        doc["warm_rerun_s"] / doc["cold_main_job_s"], rel=1e-2
    )
    ref = doc["llm_reference"]
    assert ref["shape"] == [8, 2048]
    assert ref["bitwise_equal_to_unchunked"] is True
    for key in ("value_peak_rss_minus_input_gib", "grad_peak_rss_minus_2x_input_gib"):
        assert -1.0 < ref[key] < 1.0  # tiny input: the interpreter dominates
    assert ref["value_time_ratio_vs_exp_pass"] > 1
    assert "overhead_ratio[torch]" in p.stdout and "written:" in p.stdout


def test_llm_measure_counts_the_input_in_peak_memory():
    out = llm.measure("grad", 64, 4096)  # in-process: the peak includes at least the input
    assert out["peak_rss_gib"] >= out["input_gib"]
    assert out["seconds"] > 0 and np.isfinite(out["value"])
    assert peak_rss_bytes() / GIB >= 2 * out["input_gib"]  # input and float32 gradient


def test_exp_pass_times_every_element():
    z = np.ones((10, 1000), np.float32)
    assert llm.exp_pass_seconds(z, block_elements=3000) > 0


def test_bitwise_check_detects_a_difference(monkeypatch):
    assert llm.bitwise_check([(6, 50)])["equal"] is True
    real = llm.token_cross_entropy_chunked

    def off_by_one_ulp(*args, **kwargs):  # one gradient entry one ULP off
        value, grad = real(*args, **kwargs)
        flat = grad.reshape(-1)
        k = np.flatnonzero(np.isfinite(flat) & (flat != 0))[-1]
        flat[k] = np.nextafter(flat[k], np.inf)
        return value, grad

    monkeypatch.setattr(llm, "token_cross_entropy_chunked", off_by_one_ulp)
    assert llm.bitwise_check([(6, 50)])["equal"] is False


def test_goals_and_table():
    assert met("overhead_ratio", 1.5) is True
    assert met("overhead_ratio", 1.51) is False
    assert met("bitwise_equal_to_unchunked", True) is True
    assert met("bitwise_equal_to_unchunked", False) is False
    doc = {
        "mode": "quick",
        "overhead_ratio": {"torch": 1.2},
        "compile_share": {"jax": 0.7},
        "llm_reference": {"value_time_ratio_vs_exp_pass": 40.0, "bitwise_equal_to_unchunked": True},
    }
    rows = {name: ok for name, _, _, ok in goal_rows(doc)}
    assert rows == {
        "overhead_ratio[torch]": True,
        "compile_share[jax]": False,
        "llm_reference.value_time_ratio_vs_exp_pass": False,
        "llm_reference.bitwise_equal_to_unchunked": True,
    }
    text = table(doc)
    assert "compile_share[jax]" in text and "NO" in text


@pytest.mark.torch
def test_the_bare_loop_computes_d_where_the_worker_does(monkeypatch):
    pytest.importorskip("torch")
    from bench import bare
    from xentcheck.adapters import load_framework
    from xentcheck.harness import worker
    from xentcheck.harness.cases import expand, load_cases

    case = ROOT / "cases" / "softmax" / "basic.yaml"
    seen: list[tuple[str, str]] = []
    real = worker.sensitivity

    def counting(instance, inputs, dtype, *args, **kwargs):
        seen.append((instance.name, dtype))
        return real(instance, inputs, dtype, *args, **kwargs)

    monkeypatch.setattr(worker, "sensitivity", counting)
    fw = load_framework("torch")
    fw.setup()
    for instance in (i for c in load_cases([case]) for i in expand(c)):
        worker.run_instance(fw, instance, None, ["cpu"])
    by_the_worker = list(seen)
    seen.clear()
    out = bare.bare_run("torch", [str(case)], device="cpu")
    assert seen == by_the_worker
    assert out["sensitivities"] == len(by_the_worker) > 0
    assert out["sensitivity_s"] > 0
