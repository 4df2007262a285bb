"""Work the harness does once instead of again: generated inputs, the worker's case checks,
the golden-side work shared by the APIs of an instance, and no ml_dtypes at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xentcheck.harness import cases, generators, schema
from xentcheck.harness.cases import load_cases

ROOT = Path(__file__).resolve().parents[2]


def test_a_repeated_generator_request_is_drawn_once_and_handed_out_as_copies(monkeypatch):
    calls = []
    real = generators.GENERATORS["normal"]

    def counting(rng, shape, **options):
        calls.append(shape)
        return real.fn(rng, shape, **options)

    monkeypatch.setitem(
        generators.GENERATORS, "normal", generators.Generator(counting, real.options)
    )
    monkeypatch.setattr(generators, "_made", type(generators._made)())
    first = generators.generate("normal", (3, 4), 11, {"scale": 2.0})
    first[0, 0] = 99.0  # a caller's change does not reach the next one
    again = generators.generate("normal", (3, 4), 11, {"scale": 2.0})
    assert calls == [(3, 4)]
    assert again[0, 0] != 99.0
    assert np.array_equal(again, real.fn(np.random.default_rng(11), (3, 4), scale=2.0))
    generators.generate("normal", (3, 4), 12, {"scale": 2.0})  # another seed: drawn
    assert len(calls) == 2


def test_the_generator_cache_keeps_at_most_its_bytes(monkeypatch):
    monkeypatch.setattr(generators, "_made", type(generators._made)())
    monkeypatch.setattr(generators, "CACHE_BYTES", 3 * 8 * 100)
    for seed in range(5):
        generators.generate("uniform", (100,), seed, {})
    assert sum(a.nbytes for a in generators._made.values()) <= generators.CACHE_BYTES
    assert [k[2] for k in generators._made] == [2, 3, 4]  # the least recently used went


def test_checked_loading_skips_the_checks_and_gives_the_same_cases(monkeypatch):
    suite = ROOT / "cases"
    plain = load_cases([suite])

    def refuse(*args, **kwargs):
        raise AssertionError("validated again")

    for module, name in ((schema, "check_case"), (schema, "check_file"), (cases, "_check_with_reference")):  # fmt: skip
        monkeypatch.setattr(module, name, refuse)
    checked = load_cases([suite], checked=True)
    assert [(c.key, c.source, c.dtypes, c.params) for c in checked] == [
        (c.key, c.source, c.dtypes, c.params) for c in plain
    ]


def test_starting_a_run_does_not_import_ml_dtypes():
    code = "import sys, xentcheck.cli, xentcheck.harness.worker; print('ml_dtypes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from xentcheck.dtypes import numpy_dtype

    assert numpy_dtype("bfloat16").name == "bfloat16"


def test_the_apis_of_an_instance_share_the_golden_side_work(monkeypatch):
    pytest.importorskip("torch", reason="the worker's rows need a framework: torch")
    from xentcheck.adapters import load_framework
    from xentcheck.harness import worker
    from xentcheck.harness.cases import expand

    fw = load_framework("torch")
    fw.setup()
    (case,) = [c for c in load_cases([ROOT / "cases" / "softmax_cross_entropy" / "basic.yaml"])][:1]
    instance = next(expand(case))
    from xentcheck.harness import calls

    made = []
    real_cotangent = calls.cotangent
    monkeypatch.setattr(calls, "cotangent", lambda shape: made.append(shape) or real_cotangent(shape))  # fmt: skip
    rows = worker.run_instance(fw, instance, ["float32"], ["cpu"])
    apis = {r["api"] for r in rows}
    assert len(apis) > 1 and len(made) == 1  # one cotangent for every API
    one_by_one = [
        row
        for api in fw.apis_for(instance.loss)
        for row in worker.run_api(fw, api, instance, *_golden(worker, instance, "float32"))
    ]
    drop = ("elapsed_s", "compile_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in one_by_one
    ]


def _golden(worker, instance, dtype):
    inputs = worker.rounded_inputs(instance, instance.inputs(), dtype)
    return (inputs, dtype, "cpu", *worker.golden_for(instance, inputs))
