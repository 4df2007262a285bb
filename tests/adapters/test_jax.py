"""The JAX adapter against the float64 reference, on the real jax/optax (no mocks)."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

os.environ.setdefault("XENTCHECK_JAX_COMPILE_THREADS", "0")  # no speculative compiles here

from tests.adapters import calls
from xentcheck.adapters import Unsupported, load_framework
from xentcheck.known import Finding, explain
from xentcheck.reference import LOSSES, evaluate

pytestmark = pytest.mark.jax

FW = load_framework("jax")
FW.setup()

# generalized KL differs from KL by exp(input) - target per element (its own test below)
_DIFFERENT_LOSS = "optax.losses.generalized_kl_divergence"


def make_call(loss, inputs, params=None, dtype="float64", device="cpu"):
    """The worker's Call (without its golden; see tests.adapters.calls)."""
    return calls.make_call(loss, inputs, params, dtype, device)[0]


def routed(call):
    apis = [a for a in FW.apis_for(call.loss) if a.applies(call)]
    return apis


# --------------------------------------------------------------------------- call matrix

_RNG = np.random.default_rng(7)
_Z = _RNG.normal(size=(4, 5)) * 2
_T = np.array([0, 4, 2, 1])
_W = np.array([0.5, 1.0, 2.0, 1.5, 0.25])
_Y = _RNG.dirichlet(np.ones(5), size=4)
_REDS = ("none", "sum", "mean")


def _matrix():
    """(loss, inputs, params) covering every routing of every API."""
    out = []
    for red, weight, ignore, ls in itertools.product(_REDS, (False, True), (None, 4), (None, 0.1)):
        p = {"reduction": red}
        if ignore is not None:
            p["ignore_index"] = ignore
        if ls is not None:
            p["label_smoothing"] = ls
        w = {"weight": _W} if weight else {}
        out.append(("softmax_cross_entropy", {"logits": _Z, "target": _T, **w}, p))
        if ignore is None:
            out.append(("softmax_cross_entropy", {"logits": _Z, "target": _Y, **w}, p))
        if ls is None:
            out.append(("nll", {"log_probs": _Z, "target": _T, **w}, dict(p)))
    x = _RNG.normal(size=(3, 4))
    prob = 1 / (1 + np.exp(-x))
    y = _RNG.uniform(0.05, 0.95, size=(3, 4))
    lq = np.log(_RNG.dirichlet(np.ones(4), size=3))
    tp = _RNG.dirichlet(np.ones(4), size=3)
    for red in _REDS:
        p = {"reduction": red}
        out.append(("categorical_cross_entropy", {"probs": _Y, "target": _T}, p))
        out.append(("categorical_cross_entropy", {"probs": _Y, "target": _Y}, p))
        for w in ({}, {"weight": y}):
            out.append(("binary_cross_entropy", {"probs": prob, "target": y, **w}, p))
            out.append(("binary_cross_entropy_with_logits", {"logits": x, "target": y, **w}, p))
        out.append(("sigmoid_focal_loss", {"logits": x, "target": y}, p))
        # two labels per row: optax's smoothing towards 1/C is the reference's towards 1/2
        out.append(
            (
                "smoothed_binary_cross_entropy",
                {"logits": x[:, :2], "target": y[:, :2]},
                {**p, "label_smoothing": 0.1},
            )
        )
    out.append(
        ("binary_cross_entropy_with_logits", {"logits": x, "target": y, "pos_weight": y}, {})
    )
    for red in (*_REDS, "batchmean"):
        out.append(("kl_divergence", {"input": lq, "target": tp}, {"reduction": red}))
        out.append(
            (
                "kl_divergence",
                {"input": lq, "target": np.log(tp)},
                {"reduction": red, "log_target": True},
            )
        )
    z3 = _RNG.normal(size=(2, 3, 6))
    t3 = np.array([[1, 5, -100], [0, 2, 3]])
    mask = np.array([[True, False, True], [True, True, True]])
    for loss in ("token_cross_entropy", "perplexity"):
        out.append((loss, {"logits": z3, "target": np.abs(t3) % 6}, {}))
        out.append((loss, {"logits": z3, "target": np.abs(t3) % 6, "mask": mask}, {}))
        out.append((loss, {"logits": z3, "target": t3, "mask": mask}, {"ignore_index": -100}))
    for loss in ("softmax", "log_softmax", "logsumexp"):
        out.append((loss, {"x": _Z}, {}))
        out.append((loss, {"x": _Z}, {"axis": 0}))
    out.append(("sigmoid", {"x": x * 4}, {}))
    out.append(("log_sigmoid", {"x": x * 4}, {}))
    return out


_MATRIX = _matrix()


def test_every_api_runs_and_matches_the_reference_in_float64():
    seen: set[int] = set()
    mismatches = []
    for loss, inputs, params in _MATRIX:
        call = make_call(loss, inputs, params)
        golden = evaluate(loss, inputs, params)
        apis = routed(call)
        assert len(apis) >= 1, (loss, params)
        for api in apis:
            if id(api) in seen:
                continue
            seen.add(id(api))
            try:
                out = api.run(call)
            except Unsupported:
                continue
            assert out.out_dtype == "float64", api.name
            if api.name.startswith(_DIFFERENT_LOSS):
                continue
            np.testing.assert_allclose(out.value, golden.value, rtol=1e-10, atol=1e-12)
            for name, g in golden.grads.items():
                if name not in out.grads:
                    mismatches.append((api.name, name, "missing"))
                    continue
                if not np.allclose(out.grads[name], g, rtol=1e-10, atol=1e-12):
                    mismatches.append((api.name, name, float(np.max(np.abs(out.grads[name] - g)))))
    assert not mismatches, mismatches
    missed = sorted({a.name for a in FW.apis if id(a) not in seen})
    assert not missed, f"APIs no call routed to: {missed}"


def test_each_call_routes_to_one_api_per_family():
    """Integer vs probability targets, reductions and recipes never overlap."""
    for loss, inputs, params in _MATRIX:
        names = [a.name for a in routed(make_call(loss, inputs, params))]
        assert len(names) == len(set(names)), (loss, params, names)
        bases = [n.split("+")[0] for n in names]
        assert len(bases) == len(set(bases)), (loss, params, names)


def test_registry_lists_the_expected_api_names():
    names = {a.name for a in FW.apis}
    expected = {
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "optax.losses.softmax_cross_entropy_with_integer_labels+mean",
        "optax.losses.softmax_cross_entropy_with_integer_labels+weight[target]+where+mean",
        "optax.losses.softmax_cross_entropy+one_hot+smooth_labels+mean",
        "optax.losses.softmax_cross_entropy+sum",
        "optax.losses.safe_softmax_cross_entropy+mean",
        "optax.losses.sigmoid_binary_cross_entropy+mean",
        "optax.losses.sigmoid_focal_loss+mean",
        "optax.losses.kl_divergence+sum/batch",
        "optax.losses.kl_divergence_with_log_targets+sum",
        "optax.losses.generalized_kl_divergence+sum",
        "optax.losses.kl_divergence(axis=())",
        "optax.losses.kl_divergence(axis=())+mean",
        "optax.losses.kl_divergence_with_log_targets(axis=())+mean",
        "-jnp.take_along_axis+where+mean",
        "-jnp.take_along_axis(jnp.log(probs))+mean",
        "-jnp.sum(jax.scipy.special.xlogy(target,probs))",
        "-(jax.scipy.special.xlogy+xlog1py)+mean",
        "optax.losses.softmax_cross_entropy_with_integer_labels+where+mean",
        "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels+mean)",
        "jax.nn.softmax",
        "jax.nn.log_softmax",
        "jax.nn.logsumexp",
        "jax.nn.sigmoid",
        "jax.nn.log_sigmoid",
    }
    assert expected <= names, sorted(expected - names)
    assert {a.loss for a in FW.apis} == set(LOSSES)


@pytest.mark.parametrize(
    ("loss", "inputs", "params", "value"),
    [
        (
            "softmax_cross_entropy",
            {"logits": np.array([[0.2, 0.3, 0.5]]), "target": np.array([2])},
            {},
            0.9398310608444602,
        ),
        (
            "binary_cross_entropy_with_logits",
            {"logits": np.array([0.7, 0.2, 0.1]), "target": np.array([1.0, 0.0, 0.0])},
            {"reduction": "mean"},
            0.6485738594468736,
        ),
        (
            "categorical_cross_entropy",
            {"probs": np.array([[0.2, 0.7, 0.1]]), "target": np.array([1])},
            {},
            0.35667494393873245,
        ),
    ],
)
def test_worked_examples(loss, inputs, params, value):
    call = make_call(loss, inputs, params)
    (api,) = routed(call)
    np.testing.assert_allclose(api.run(call).value, value, rtol=1e-15)


def test_reduction_none_keeps_zeros_at_ignored_positions():
    call = make_call("softmax_cross_entropy", {"logits": _Z, "target": np.array([0, -100, 2, -100])},
                     {"ignore_index": -100, "reduction": "none"})  # fmt: skip
    (api,) = routed(call)
    assert api.name == "optax.losses.softmax_cross_entropy_with_integer_labels+where"
    out = api.run(call)
    assert out.value[1] == 0.0 and out.value[3] == 0.0
    assert np.all(out.grads["logits"][[1, 3]] == 0.0)


def test_scalar_parameters_are_traced_arguments_not_constants():
    """label_smoothing (as ignore_index, alpha, gamma) enters the jitted function as an
    argument: a new value reuses the executable, gives that value's result, and the
    snippet passes it as a variable into the jitted call."""
    from xentcheck.adapters import jax_compile

    inputs = {"logits": _Z, "target": _T, "weight": _W}
    first = make_call("softmax_cross_entropy", inputs, {"label_smoothing": 0.1, "ignore_index": 4})
    (api,) = routed(first)
    assert (
        api.name
        == "optax.losses.softmax_cross_entropy+one_hot+smooth_labels+labels*weight+where+mean"
    )
    api.run(first)
    compiled = jax_compile._compiles[0]
    params = {"label_smoothing": 0.3, "ignore_index": 2}
    second = make_call("softmax_cross_entropy", inputs, params)
    out = api.run(second)
    assert jax_compile._compiles[0] == compiled  # the same executable
    golden = evaluate("softmax_cross_entropy", inputs, params)
    np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)
    snippet = FW.snippet(api.name, second)
    assert "ignore_index = 2\nlabel_smoothing = 0.3\n" in snippet
    assert "label_smoothing=label_smoothing" in snippet and "ignore_index=ignore_index" in snippet


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_calls_report_their_dtype(dtype):
    from xentcheck.dtypes import quantize

    call = make_call("softmax_cross_entropy", {"logits": quantize(_Z, dtype), "target": _T},
                     {"reduction": "mean"}, dtype=dtype)  # fmt: skip
    (api,) = routed(call)
    out = api.run(call)
    assert out.out_dtype == dtype
    assert out.grads["logits"].dtype == np.float64
    np.testing.assert_allclose(out.value, evaluate(call.loss, call.inputs, {}).value, rtol=0.05)


def test_versions_devices_and_missing_gpu():
    v = FW.versions()
    assert {"jax", "jaxlib", "optax"} <= set(v)
    d = FW.devices()
    assert d["cpu"]
    if d["gpu"] is None:
        assert FW.gpu_missing_reason()
        call = make_call("sigmoid", {"x": np.array([0.5])}, device="gpu")
        with pytest.raises(Unsupported):
            FW.apis_for("sigmoid")[0].run(call)
    else:
        assert FW.gpu_missing_reason() is None


def test_unsupported_variants_raise_unsupported():
    call = make_call("binary_cross_entropy_with_logits",
                     {"logits": np.array([0.5, -1.0]), "target": np.array([1.0, 0.0]),
                      "pos_weight": np.array([2.0, 2.0])})  # fmt: skip
    (api,) = routed(call)
    with pytest.raises(Unsupported, match="pos_weight"):
        api.run(call)


def test_elementwise_kl_uses_optax_with_an_empty_axis_tuple():
    lq, tp = np.log([[0.5, 0.5], [0.1, 0.9]]), np.array([[0.2, 0.8], [0.3, 0.7]])
    call = make_call("kl_divergence", {"input": lq, "target": tp}, {"reduction": "none"})
    names = {a.name for a in routed(call)}
    assert names == {
        "optax.losses.kl_divergence(axis=())",
        "optax.losses.generalized_kl_divergence(axis=())",
    }
    api = next(a for a in routed(call) if a.name == "optax.losses.kl_divergence(axis=())")
    out = api.run(call)
    assert out.value.shape == (2, 2)
    np.testing.assert_allclose(out.value, tp * (np.log(tp) - lq), rtol=1e-13)


# --------------------------------------------------------------------------- known differences


def finding(call, api, out, status, quantity="value"):
    try:
        golden = evaluate(call.loss, call.inputs, {k: call.params[k] for k in call.explicit})
        expected = golden.value if quantity == "value" else golden.grads[quantity[5:]]
    except ValueError:
        expected = None
    actual = out.value if quantity == "value" else out.grads[quantity[5:]]
    return Finding("jax", api.name, call.loss, dict(call.params), call.inputs, call.dtype,
                   call.device, quantity, status, expected, actual, None, expected is None)  # fmt: skip


def test_equal_huge_logits_cancel_and_the_known_entry_explains_it():
    z = np.array([[1e30, 1e30, -1e30], [1.0, 2.0, 3.0]])
    call = make_call("softmax_cross_entropy", {"logits": z, "target": np.array([0, 2])},
                     {"reduction": "none"})  # fmt: skip
    (api,) = routed(call)
    out = api.run(call)
    assert out.value[0] == 0.0  # the reference: log 2
    np.testing.assert_allclose(
        evaluate(call.loss, call.inputs, {"reduction": "none"}).value[0], np.log(2)
    )
    k = explain(finding(call, api, out, "mismatch"))
    assert k is not None and k.id == "optax-integer-labels-unshifted-log-normalizer"
    # an error the rounding of the logits cannot explain stays a mismatch
    f = finding(call, api, out, "mismatch")
    wrong = Finding(**{**f.__dict__, "actual": np.array([0.0, f.expected[1] + 0.5])})
    assert explain(wrong) is None


def test_out_of_range_labels_give_nan_or_wrap_and_are_explained():
    base = {"logits": _Z, "target": np.array([0, 5, 2, 1])}
    call = make_call("softmax_cross_entropy", base, {"reduction": "none"})
    (api,) = routed(call)
    out = api.run(call)
    assert np.isnan(out.value[1]) and np.all(np.isfinite(out.value[[0, 2, 3]]))
    assert explain(finding(call, api, out, "error")).id == "jax-out-of-range-label-nan"

    call = make_call("softmax_cross_entropy", {**base, "target": np.array([0, -1, 2, 1])},
                     {"reduction": "none"})  # fmt: skip
    out = api.run(call)
    wrapped = evaluate(
        call.loss, {"logits": _Z, "target": np.array([0, 4, 2, 1])}, {"reduction": "none"}
    )
    np.testing.assert_allclose(out.value, wrapped.value, rtol=1e-12)  # -1 read as class 4
    assert explain(finding(call, api, out, "error")).id == "jax-negative-label-wraps"


def test_focal_target_gradient_at_hard_labels_and_its_entry():
    call = make_call("sigmoid_focal_loss",
                     {"logits": np.array([0.3, -1.2, 2.0]), "target": np.array([1.0, 0.0, 1.0])},
                     {"reduction": "sum"})  # fmt: skip
    (api,) = routed(call)
    out = api.run(call)
    golden = evaluate(call.loss, call.inputs, {"reduction": "sum"})
    np.testing.assert_allclose(out.grads["logits"], golden.grads["logits"], rtol=1e-10)
    assert not np.allclose(out.grads["target"], golden.grads["target"], rtol=1e-3)
    assert (
        explain(finding(call, api, out, "mismatch", "grad:target")).id
        == "jax-logsumexp-b-zero-jacobian"
    )


def test_generalized_kl_differs_by_its_extra_term_and_the_entry_checks_it():
    lq = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    tp = np.array([[0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
    call = make_call("kl_divergence", {"input": lq, "target": tp}, {"reduction": "sum"})
    api = next(a for a in routed(call) if a.name == "optax.losses.generalized_kl_divergence+sum")
    out = api.run(call)
    golden = evaluate(call.loss, call.inputs, {"reduction": "sum"})
    np.testing.assert_allclose(out.value, golden.value, rtol=1e-12)  # normalised: same value
    np.testing.assert_allclose(out.grads["input"], golden.grads["input"] + np.exp(lq), rtol=1e-12)
    f = finding(call, api, out, "mismatch", "grad:input")
    assert explain(f).id == "optax-generalized-kl-extra-term"
    assert explain(Finding(**{**f.__dict__, "actual": f.actual + 0.01})) is None
    # element-wise (axis=()): every term carries exp(input) - target
    call = make_call("kl_divergence", {"input": lq, "target": tp}, {"reduction": "none"})
    api = next(
        a for a in routed(call) if a.name == "optax.losses.generalized_kl_divergence(axis=())"
    )
    out = api.run(call)
    golden = evaluate(call.loss, call.inputs, {"reduction": "none"})
    np.testing.assert_allclose(out.value, golden.value + np.exp(lq) - tp, rtol=1e-12, atol=1e-15)
    assert explain(finding(call, api, out, "mismatch")).id == "optax-generalized-kl-extra-term"


def test_kl_zero_target_gradient_is_nan_and_explained():
    lq = np.log(np.array([[0.2, 0.3, 0.5]]))
    tp = np.array([[0.0, 0.4, 0.6]])
    call = make_call("kl_divergence", {"input": lq, "target": tp}, {"reduction": "sum"})
    api = next(a for a in routed(call) if a.name == "optax.losses.kl_divergence+sum")
    out = api.run(call)
    assert np.isnan(out.grads["target"][0, 0]) and np.all(np.isfinite(out.grads["target"][0, 1:]))
    f = finding(call, api, out, "nonfinite", "grad:target")
    assert explain(f).id == "optax-kl-zero-target-nan-grad"


def test_known_entries_are_well_formed_and_name_real_apis():
    import fnmatch

    from xentcheck.known import entries

    known = entries("jax")
    assert len({k.id for k in known}) == len(known)
    names = [a.name for a in FW.apis]
    for k in known:
        assert k.framework == "jax" and k.link.startswith("https://"), k.id
        assert k.explanation and k.statuses, k.id
        for pattern in k.apis:
            assert any(fnmatch.fnmatchcase(n, pattern) for n in names), (k.id, pattern)
