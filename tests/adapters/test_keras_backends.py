"""Keras 3 on the JAX and PyTorch backends (frameworks keras-jax, keras-torch).

Keras fixes its backend at first import, so every check runs in a fresh interpreter: the
real worker on a small case file, compared with the reference by the harness, and a
direct call of the adapters from a short script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[2]

BACKENDS = {
    "keras-jax": ("jax", "xentcheck.adapters.keras_jax_adapter"),
    "keras-torch": ("torch", "xentcheck.adapters.keras_torch_adapter"),
}

CASES = """\
cases:
  - id: sparse-logits
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [6, 5], seed: 1}
      target: {random: labels, shape: [6], classes: 5, seed: 2}
    params: {reduction: [none, sum, mean]}
    dtypes: [float64, float32]
  - id: soft-targets-smoothing
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [4, 3], seed: 3}
      target: {random: probabilities, shape: [4, 3], seed: 4}
    params: {label_smoothing: 0.1}
    dtypes: [float64, float32]
  - id: bce-logits
    loss: binary_cross_entropy_with_logits
    inputs:
      logits: {random: normal, shape: [4, 3], seed: 5}
      target: {random: binary, shape: [4, 3], seed: 6}
    dtypes: [float32]
  - id: log-softmax
    loss: log_softmax
    inputs: {x: {random: normal, shape: [3, 4], seed: 7}}
    params: {axis: 1}
    dtypes: [float64, float32]
"""


def _skip_without(backend: str) -> None:
    pytest.importorskip(backend)


def _run_worker(framework: str, tmp_path: Path) -> list[dict]:
    cases = tmp_path / "keras_cases.yaml"
    cases.write_text(CASES)
    out = tmp_path / f"{framework}.jsonl"
    cmd = [sys.executable, "-m", "xentcheck.harness.worker", "--framework", framework]
    cmd += ["--cases", str(cases), "--out", str(out), "--quiet", "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=500, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    header = lines[0]
    assert header["frameworks"][framework]["versions"]["keras_backend"] == BACKENDS[framework][0]
    return [r for r in lines[1:] if r.get("framework") == framework and "status" in r]


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_worker_runs_keras_rows_with_gradients(framework, tmp_path):
    _skip_without(BACKENDS[framework][0])
    rows = _run_worker(framework, tmp_path)
    apis = {r["api"] for r in rows}
    assert "keras.losses.SparseCategoricalCrossentropy(from_logits=True)" in apis
    assert "keras.losses.categorical_crossentropy(from_logits=True)" in apis
    assert "keras.ops.log_softmax" in apis
    grads = [r for r in rows if r["quantity"].startswith("grad:")]
    assert grads and all(r["status"] != "unsupported" for r in grads)
    # float32 rows of these ordinary inputs agree with the reference, value and gradients
    f32 = Counter(r["status"] for r in rows if r["dtype"] == "float32")
    assert f32["pass"] > 0 and f32["error"] == 0 and f32["crash"] == 0


_DIRECT = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from test_compiled_modes import make_call
from xentcheck.adapters import load_framework
fw = load_framework({framework!r})
apis = {{a.name: a for a in fw.apis}}
logits = [[0.2, 0.3, 0.5], [1.5, -0.25, 0.75], [-1.0, 2.0, 0.125]]
call, golden = make_call("softmax_cross_entropy", {{"logits": logits, "target": [2, 1, 0]}},
                         {{"reduction": "none"}}, "float64")
out = apis["keras.ops.sparse_categorical_crossentropy(from_logits=True)"].run(call)
err = float(np.max(np.abs(out.grads["logits"] - golden.grads["logits"])))
call, golden = make_call("log_softmax", {{"x": logits}}, {{"axis": 1}}, "float64")
out2 = apis["keras.ops.log_softmax"].run(call)
import keras
print(keras.backend.backend(), out.out_dtype, err,
      float(np.max(np.abs(out2.value - golden.value))),
      float(np.max(np.abs(out2.grads["x"] - golden.grads["x"]))))
"""


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_direct_calls_use_the_backends_autodiff(framework):
    backend, _ = BACKENDS[framework]
    _skip_without(backend)
    code = _DIRECT.format(tests=str(ROOT / "tests" / "adapters"), framework=framework)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, out_dtype, grad_err, value_err, lsm_grad_err = proc.stdout.split()[-5:]
    assert name == backend
    assert out_dtype == "float64"
    assert float(grad_err) < 1e-6  # Keras may compute parts in float32; a wrong VJP is O(1)
    assert float(value_err) < 1e-12 and float(lsm_grad_err) < 1e-12


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_refuses_keras_imported_with_another_backend(framework):
    backend, module = BACKENDS[framework]
    _skip_without(backend)
    other = "numpy"
    code = textwrap.dedent(f"""
        import os
        os.environ["KERAS_BACKEND"] = {other!r}
        import keras
        try:
            import {module}
        except ImportError as exc:
            print("refused:", exc)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert "refused:" in proc.stdout and "'numpy' backend" in proc.stdout, proc.stderr[-2000:]


_BF16 = """
import sys
sys.path.insert(0, {tests!r})
from test_compiled_modes import make_call
from xentcheck.adapters import load_framework
apis = {{a.name: a for a in load_framework({framework!r}).apis}}
call, golden = make_call("log_softmax", {{"x": [[0.5, 1.0, -2.0]]}}, {{"axis": 1}}, "bfloat16")
out = apis["keras.ops.log_softmax"].run(call)
print(out.out_dtype, sorted(out.grads))
"""


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_bfloat16_inputs_are_differentiated(framework):
    _skip_without(BACKENDS[framework][0])
    code = _BF16.format(tests=str(ROOT / "tests" / "adapters"), framework=framework)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["bfloat16", "['x']"]


_SNIPPETS = """
import pathlib, sys, tempfile
sys.path.insert(0, {root!r})
from {module} import test_snippets_equal_adapter_bit_for_bit as check
with tempfile.TemporaryDirectory() as folder:
    check({framework!r}, pathlib.Path(folder))
print("snippets equal the adapter")
"""


@pytest.mark.parametrize("framework", sorted(BACKENDS))
def test_snippets_equal_adapter_bit_for_bit(framework):
    """tests/adapters/test_snippets.py's check, for the Keras backends it leaves out (they
    need their own interpreter): every Keras declaration's snippet gives the adapter's
    value and gradients bit for bit."""
    _skip_without(BACKENDS[framework][0])
    module = os.environ.get("XENTCHECK_SNIPPET_TEST", "tests.adapters.test_snippets")
    code = _SNIPPETS.format(root=str(ROOT), module=module, framework=framework)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "snippets equal the adapter" in proc.stdout
