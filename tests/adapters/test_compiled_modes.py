"""Compiled execution modes: torch.compile, tf.function(jit_compile=True), JAX without jit.

Real frameworks, called directly on a few instances and compared with the reference;
each framework runs in this process only when its module can be imported alongside the
others (Keras's backend is TensorFlow here, as in the tensorflow adapter).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.adapters.calls import make_call
from xentcheck.adapters import load_framework
from xentcheck.adapters.compiled_modes import CASE_TAG, CASE_TAGS, mode_name
from xentcheck.harness.cases import expand, load_cases
from xentcheck.reference import LOSSES

ROOT = Path(__file__).resolve().parents[2]
LOGITS = [[0.2, 0.3, 0.5, -1.0], [1.5, -0.25, 0.75, 0.0], [-1.0, 2.0, 0.125, 3.0]]
TARGET = [2, 1, 3]


def _apis(framework: str) -> dict:
    return {a.name: a for a in load_framework(framework).apis}


def _check(api, loss, inputs, params, dtype="float32", rtol=2e-6):
    call, golden = make_call(loss, inputs, params, dtype)
    out = api.run(call)
    np.testing.assert_allclose(out.value, golden.value, rtol=rtol, atol=1e-6)
    assert set(out.grads) == set(golden.grads)
    for k, g in golden.grads.items():
        np.testing.assert_allclose(out.grads[k], g, rtol=rtol, atol=1e-6)
    return out


def test_shipped_compiled_mode_cases_carry_the_tag():
    cases = [c for c in load_cases([ROOT / "cases"]) if CASE_TAG in c.tags]
    assert cases and all(CASE_TAG in c.tags for c in cases)
    instances = [i for c in cases for i in expand(c)]
    assert 10 <= len(instances) <= 20  # a representative dozen, not the suite
    assert mode_name("m", "f") == "m(f)"


@pytest.mark.parametrize("framework", ["torch-compile", "tensorflow-xla", "jax-eager"])
def test_compiled_frameworks_run_only_tagged_cases(framework):
    pytest.importorskip(
        {"torch-compile": "torch", "tensorflow-xla": "tensorflow"}.get(framework, "jax")
    )
    fw = load_framework(framework)
    assert fw.case_tags == CASE_TAGS
    assert fw.apis and all("(" in a.name for a in fw.apis)


def test_torch_compile_compiles_and_matches_the_reference():
    torch = pytest.importorskip("torch")
    fw = load_framework("torch-compile")
    fw.setup()
    apis = _apis("torch-compile")
    eager = {a.name for a in load_framework("torch").apis}
    # every compiled row wraps an existing eager row
    assert {n.removeprefix("torch.compile(")[:-1] for n in apis} <= eager
    torch._dynamo.utils.counters.clear()
    api = apis["torch.compile(torch.nn.functional.cross_entropy)"]
    for params in ({}, {"reduction": "none"}, {"label_smoothing": 0.1}):
        _check(api, "softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, params)
    # Dynamo really captured graphs (no silent eager fallback)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 3
    _check(apis["torch.compile(torch.nn.functional.log_softmax)"], "log_softmax",
           {"x": LOGITS}, {"axis": 1})  # fmt: skip


def test_torch_compile_raises_on_an_out_of_range_label():
    pytest.importorskip("torch")
    api = _apis("torch-compile")["torch.compile(torch.nn.functional.cross_entropy)"]
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, {})
    bad = dataclasses.replace(
        call, inputs={**call.inputs, "target": np.array([2, 4, 0])}, grad_inputs=()
    )
    with pytest.raises(Exception, match=r"out of bounds|index"):
        api.run(bad)


def test_tensorflow_xla_matches_the_reference_and_returns_nan_for_a_bad_label():
    pytest.importorskip("tensorflow")
    apis = _apis("tensorflow-xla")
    sparse = "tf.function(jit_compile=True)(tf.nn.sparse_softmax_cross_entropy_with_logits)"
    _check(apis[sparse], "softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, {})
    keras_cls = (
        "tf.function(jit_compile=True)(keras.losses.CategoricalCrossentropy(from_logits=True))"
    )
    soft = [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]
    _check(apis[keras_cls], "softmax_cross_entropy", {"logits": LOGITS, "target": soft}, {})
    # XLA kernels cannot raise: the eager op's InvalidArgumentError becomes a NaN
    call, _ = make_call("softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, {})
    bad = dataclasses.replace(
        call, inputs={**call.inputs, "target": np.array([2, 4, 0])}, grad_inputs=()
    )
    assert np.isnan(apis[sparse].run(bad).value).all()
    eager = {a.name: a for a in load_framework("tensorflow").apis}
    with pytest.raises(Exception, match=r"(?i)received a label value of 4"):
        eager["tf.nn.sparse_softmax_cross_entropy_with_logits"].run(bad)


def test_jax_eager_rows_match_the_jitted_rows():
    pytest.importorskip("optax")
    eager_apis = _apis("jax-eager")
    jitted = _apis("jax")
    assert {n.removeprefix("jax.disable_jit(")[:-1] for n in eager_apis} == set(jitted)
    name = "optax.losses.softmax_cross_entropy_with_integer_labels+mean"
    out = _check(
        eager_apis[mode_name("jax.disable_jit", name)],
        "softmax_cross_entropy",
        {"logits": LOGITS, "target": TARGET},
        {},
        "float64",
        rtol=1e-12,
    )
    call, _ = make_call(
        "softmax_cross_entropy", {"logits": LOGITS, "target": TARGET}, {}, "float64"
    )
    ref = jitted[name].run(call)
    np.testing.assert_allclose(out.value, ref.value, rtol=1e-14)


def _finding(framework, api, loss, inputs, params, status, expected, actual, expect_error):
    from xentcheck.known import Finding

    return Finding(
        framework, api, loss, params, inputs, "float32", "cpu", "value", status,
        expected, actual, None, expect_error,
    )  # fmt: skip


def test_derived_known_entries_explain_compiled_rows_like_eager_ones():
    from xentcheck.known import tensorflow_xla, torch_compile

    params = dict(LOSSES["softmax_cross_entropy"].params)
    inputs = {"logits": np.asarray(LOGITS), "target": np.array([2, -100, 3])}
    # torch's default ignore_index=-100 skips the label; the reference rejects it
    ok = np.array([1.0])
    f = _finding("torch-compile", "torch.compile(torch.nn.functional.cross_entropy)",
                 "softmax_cross_entropy", inputs, params, "error", None, ok, True)  # fmt: skip
    ids = [k.id for k in torch_compile.ENTRIES if k.matches(f)]
    assert "torch-default-ignore-index" in ids
    # the same finding under another API name is not explained
    other = dataclasses.replace(f, api="torch.compile(torch.nn.functional.softmax)")
    assert not any(k.matches(other) for k in torch_compile.ENTRIES)
    # XLA: NaN for a bad label where eager raises
    bad = {"logits": np.asarray(LOGITS), "target": np.array([2, 7, 3])}
    api = "tf.function(jit_compile=True)(tf.nn.sparse_softmax_cross_entropy_with_logits)"
    nan = _finding("tensorflow-xla", api, "softmax_cross_entropy", bad, params, "error", None,
                   np.array([np.nan]), True)  # fmt: skip
    assert [k.id for k in tensorflow_xla.ENTRIES if k.matches(nan)] == [
        "xla-sparse-xent-bad-label-nan"
    ]
    finite = dataclasses.replace(nan, actual=np.array([1.0]))
    assert not any(k.matches(finite) for k in tensorflow_xla.ENTRIES)


def test_keras_torch_inherits_torch_default_ignore_index_entry():
    from xentcheck.known import keras_torch

    params = dict(LOSSES["softmax_cross_entropy"].params)
    inputs = {"logits": np.asarray(LOGITS), "target": np.array([2, -100, 3])}
    api = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    f = _finding("keras-torch", api, "softmax_cross_entropy", inputs, params, "error", None,
                 np.array([1.0]), True)  # fmt: skip
    assert [k.id for k in keras_torch.ENTRIES if k.matches(f)] == [
        "keras-torch-default-ignore-index"
    ]
    seven = {**inputs, "target": np.array([2, 7, 3])}
    assert not any(k.matches(dataclasses.replace(f, inputs=seven)) for k in keras_torch.ENTRIES)
