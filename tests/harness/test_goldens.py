"""The golden cache: keys, atomic entries, and sharing across frameworks and runs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.goldens import GoldenCache, golden_key
from xentcheck.harness.results import read_results
from xentcheck.harness.worker import golden_for, rounded_inputs
from xentcheck.reference import evaluate

ROOT = Path(__file__).resolve().parents[2]
CASES = """\
cases:
  - id: ce
    loss: softmax_cross_entropy
    inputs:
      logits: {random: normal, shape: [3, 4], seed: 1}
      target: {random: labels, shape: [3], classes: 4, seed: 2}
    params: {reduction: [none, mean]}
    dtypes: [float64, float32]
  - id: bad
    loss: softmax_cross_entropy
    inputs: {logits: [[0.1, 0.2]], target: [5]}
    expect_error: true
    dtypes: [float32]
  - id: sig
    loss: sigmoid
    inputs: {x: [-3.0, 0.5, 40.0]}
    dtypes: [float64, float16]
"""


@pytest.fixture
def instances(tmp_path):
    (tmp_path / "g.yaml").write_text(CASES)
    return [i for c in load_cases([tmp_path / "g.yaml"]) for i in expand(c)]


def test_key_follows_loss_params_and_input_bytes_dtype_shape():
    x = {"x": np.array([1.0, 2.0])}
    k = golden_key("sigmoid", {}, x)
    assert k == golden_key("sigmoid", {}, {"x": np.array([1.0, 2.0])})
    assert k != golden_key("log_sigmoid", {}, x)
    assert k != golden_key("sigmoid", {"axis": 0}, x)
    assert k != golden_key("sigmoid", {}, {"x": np.array([1.0, 2.5])})
    assert k != golden_key("sigmoid", {}, {"x": np.array([1.0, 2.0], dtype=np.float32)})
    assert k != golden_key("sigmoid", {}, {"x": np.array([[1.0, 2.0]])})


def test_second_lookup_hits_with_the_same_golden_and_rejections_are_cached(tmp_path, instances):
    cache = GoldenCache(tmp_path / "c")
    for inst in instances:
        inputs = rounded_inputs(inst, inst.inputs(), inst.case.dtypes[-1])
        first = golden_for(inst, inputs, cache)
        again = golden_for(inst, inputs, cache)
        try:
            direct = evaluate(inst.loss, inputs, inst.params)
        except ValueError as exc:
            assert first == again == (None, str(exc))
            continue
        for g in (first[0], again[0]):
            np.testing.assert_array_equal(g.value, direct.value)
            assert g.grads.keys() == direct.grads.keys()
            for k in g.grads:
                np.testing.assert_array_equal(g.grads[k], direct.grads[k])
    assert cache.misses == cache.hits == len(instances)
    assert not list((tmp_path / "c").rglob("*.tmp"))  # atomic writes leave no temporaries


def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path, instances):
    cache = GoldenCache(tmp_path)
    inst = instances[0]
    inputs = rounded_inputs(inst, inst.inputs(), "float64")
    golden_for(inst, inputs, cache)
    (entry,) = tmp_path.rglob("*.npz")
    entry.write_bytes(b"torn")
    golden, err = golden_for(inst, inputs, cache)
    assert err is None and golden is not None and cache.hits == 0 and cache.misses == 2
    assert GoldenCache(tmp_path).get(golden_key(inst.loss, inst.params, inputs)) is not None


def _run(tmp_path, out, cache, *frameworks):
    cmd = [sys.executable, "-m", "xentcheck.cli", "run", "--cases", str(tmp_path / "g.yaml"), "--out", str(out),
           "--fail-on", "never", "--quiet", "--jobs", "1", "--no-cache"]  # fmt: skip
    cmd += ["--golden-cache", str(cache)] if cache else []
    for fw in frameworks:
        cmd += ["--adapter", fw] if ":" in fw else ["--framework", fw]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, timeout=600, env=env, capture_output=True)
    headers, rows = read_results(out)
    timing = {
        fw: {k: info["timing"][k] for k in ("golden_hits", "golden_misses")}
        for fw, info in headers[0]["frameworks"].items()
    }
    return timing, rows


@pytest.mark.torch
def test_frameworks_and_later_runs_share_goldens(tmp_path, instances):
    cache = tmp_path / "goldens"
    lookups = sum(len(i.case.dtypes) for i in instances)  # one per instance and dtype
    sig_lookups = sum(len(i.case.dtypes) for i in instances if i.loss == "sigmoid")
    timing, rows = _run(
        tmp_path, tmp_path / "a.jsonl", cache, "torch", "tests.harness.faulty_adapter:FRAMEWORK"
    )
    assert timing["torch"]["golden_hits"] + timing["torch"]["golden_misses"] == lookups
    # the second framework finds every sigmoid golden the first one computed
    assert timing["faulty"] == {"golden_hits": sig_lookups, "golden_misses": 0}
    timing2, rows2 = _run(tmp_path, tmp_path / "b.jsonl", cache, "torch")
    assert timing2["torch"] == {"golden_hits": lookups, "golden_misses": 0}
    _, uncached = _run(tmp_path, tmp_path / "c.jsonl", None, "torch")

    def goldens(rs):
        return [(r["instance"], r["api"], r["dtype"], r["quantity"], r["expected"], r.get("shape"))
                for r in rs if r["framework"] == "torch"]  # fmt: skip

    assert goldens(rows) == goldens(rows2) == goldens(uncached)
    assert goldens(uncached)


def test_a_scalar_and_a_one_element_vector_have_different_keys():
    # np.ascontiguousarray turns a 0-d array into shape (1,): keyed on that, softmax of the
    # scalar inf (rejected: no axis) and of [inf] shared an entry, and a run that had the
    # scalar first called the vector rejected (fuzz found it: 0-d and [1] inputs meet there)
    scalar = golden_key("softmax", {"axis": -1}, {"x": np.array(np.inf)})
    vector = golden_key("softmax", {"axis": -1}, {"x": np.array([np.inf])})
    assert scalar != vector
