"""The softmax-family reference against mpmath, at its exact edges, and on worked examples.

Accuracy targets (ULP of float64): values with ``reduction='none'`` within 4 ULP of the
exact value; gradients within 4 ULP of the exact value, or of the larger term where the
gradient is a difference that may cancel (``W p - w y'`` with soft or smoothed targets,
the VJPs of softmax and log-softmax); sums and means within 4 ULP of the sum of the
absolute terms. Near underflow the checks add an absolute allowance of a few multiples
of 2**-1074 times the factors applied afterwards (``strategies.underflow_slack``).
"""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.oracle import mpf
from tests.reference.strategies import (
    REDUCTIONS,
    check,
    class_shapes,
    exact_row,
    float_arrays,
    logit_values,
    logits_and_labels,
    prob_values,
    rows_back,
    rows_last,
    smoothing_values,
    underflow_slack,
    weight_values,
)
from xentcheck.reference import cotangent, evaluate
from xentcheck.reference.softmax import (
    categorical_cross_entropy,
    log_softmax,
    logsumexp,
    nll,
    softmax,
    softmax_cross_entropy,
)

# ------------------------------------------------------------------- exact oracles


def _reduce_exact(per: list, reduction: str, denominator, slack: float):
    """Exact reduced value, its scale (sum of |terms|), the rows' upstream, and the
    underflow slacks of the value and of the gradients, given ``slack`` per position."""
    cot = [mpf(c) for c in cotangent((len(per),)).ravel()]
    if reduction == "none":
        return per, None, cot, slack, 2 * slack
    total = mpmath.fsum(per)
    size = mpmath.fsum(abs(x) for x in per)
    if reduction == "sum":
        return [total], [size], [mpf(1)] * len(per), slack * len(per), slack
    if denominator == 0:  # IEEE x/0: NaN over nothing, else an infinity
        return [math.nan if total == 0 else math.copysign(math.inf, total)], None, None, 0, 0
    up = [1 / denominator] * len(per)
    d = float(denominator)
    return [total / denominator], [size / denominator], up, slack * len(per) / d, slack / min(d, 1)


def exact_softmax_cross_entropy(z, target, weight, ignore_index, eps, reduction):
    """Exact value and gradients: ``(value, value_scale, {name: (exact, scale)})``.

    Gradients are None when a mean has denominator 0 (checked by the edge tests).
    """
    classes = z.shape[1]
    soft = target.ndim == z.ndim
    zr = rows_last(z, 1)
    yr = rows_last(target, 1) if soft else None
    tr = target.ravel()
    w = [mpf(1)] * classes if weight is None else [mpf(v) for v in weight]
    e = mpf(eps)
    per, gz, gz_scale, gy = [], [], [], []
    denominator = mpf(0)
    for i, row in enumerate(zr):
        kept = soft or ignore_index is None or tr[i] != ignore_index
        if not kept:
            per.append(mpf(0))
            gz.append([mpf(0)] * classes)
            gz_scale.append([mpf(0)] * classes)
            continue
        x = exact_row(row)
        with mpmath.workprec(x.prec):
            y = [mpf(v) for v in yr[i]] if soft else [int(c == tr[i]) for c in range(classes)]
            ys = [(1 - e) * yc + e / classes for yc in y]
            a = [wc * yc for wc, yc in zip(w, ys, strict=True)]
            big_w = mpmath.fsum(a)
            per.append(mpmath.fsum(ac * lc for ac, lc in zip(a, x.neg_log_p, strict=True) if ac))
            if soft or eps:
                gz.append([big_w * pk - ak for pk, ak in zip(x.p, a, strict=True)])
            else:  # w_t (p - onehot(t)), with 1 - p_t from the sum of the others
                gz.append([big_w * (-x.q[c] if c == tr[i] else pc) for c, pc in enumerate(x.p)])
            gz_scale.append([max(abs(big_w * pk), abs(ak)) for pk, ak in zip(x.p, a, strict=True)])
            if soft:
                gy.append(
                    [
                        (1 - e) * wc * lc if wc else mpf(0)
                        for wc, lc in zip(w, x.neg_log_p, strict=True)
                    ]
                )
        denominator += mpf(1) if soft else w[tr[i]]
    if soft:
        denominator = mpf(len(zr))
    strict = not soft and eps == 0.0
    wmax = 1.0 if weight is None else float(np.max(weight, initial=1.0))
    value, value_scale, up, slack, grad_slack = _reduce_exact(
        per, reduction, denominator, underflow_slack(classes + 2, 2 * wmax)
    )
    if up is None:
        return value, value_scale, None, slack

    def grad(rows, scales):
        out = rows_back([[u * g for g in r] for u, r in zip(up, rows, strict=True)], z.shape, 1)
        sc = rows_back(
            [[abs(u) * s for s in r] for u, r in zip(up, scales, strict=True)], z.shape, 1
        )
        return list(out.ravel()), list(sc.ravel())

    grads = {}
    g, sc = grad(gz, gz_scale)
    grads["logits"] = (g, None if strict else sc, grad_slack)
    if soft:
        g, _ = grad(gy, gy)
        grads["target"] = (g, None, grad_slack)
    return value, value_scale, grads, slack


def check_softmax_cross_entropy(tag, z, target, weight, ignore_index, eps, reduction):
    value, grads = softmax_cross_entropy(
        z, target, weight, ignore_index=ignore_index, label_smoothing=eps, reduction=reduction
    )
    ex_value, ex_scale, ex_grads, slack = exact_softmax_cross_entropy(
        z, target, weight, ignore_index, eps, reduction
    )
    check(f"{tag} value {reduction}", value, ex_value, ex_scale, slack)
    assert set(grads) == ({"logits", "target"} if target.ndim == z.ndim else {"logits"})
    for name, g in grads.items():
        assert g.shape == z.shape and g.dtype == np.float64
        if ex_grads is not None:
            exact, scale, slack = ex_grads[name]
            check(f"{tag} grad:{name} {reduction}", g, exact, scale, slack)


# ------------------------------------------------------ softmax_cross_entropy (mpmath)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_softmax_cross_entropy_class_indices(data):
    shape = data.draw(class_shapes(), "shape")
    z, t = data.draw(logits_and_labels(shape), "logits, target")
    classes = shape[1]
    ignore_index = data.draw(st.one_of(st.none(), st.just(-100), st.integers(0, classes - 1)))
    if ignore_index == -100 and t.size:
        hide = data.draw(float_arrays(t.shape, st.booleans()).map(lambda a: a.astype(bool)))
        t = np.where(hide, -100, t)
    weight = data.draw(st.one_of(st.none(), float_arrays(classes, weight_values())), "weight")
    eps = data.draw(smoothing_values(), "label_smoothing")
    reduction = data.draw(st.sampled_from(REDUCTIONS), "reduction")
    tag = "sce-hard" + ("-smooth" if eps else "") + ("-weighted" if weight is not None else "")
    check_softmax_cross_entropy(tag, z, t, weight, ignore_index, eps, reduction)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_softmax_cross_entropy_probabilities(data):
    shape = data.draw(class_shapes(), "shape")
    z = data.draw(float_arrays(shape, logit_values()), "logits")
    y = data.draw(float_arrays(shape, prob_values()), "target")
    weight = data.draw(st.one_of(st.none(), float_arrays(shape[1], weight_values())), "weight")
    eps = data.draw(smoothing_values(), "label_smoothing")
    reduction = data.draw(st.sampled_from(REDUCTIONS), "reduction")
    check_softmax_cross_entropy("sce-soft", z, y, weight, None, eps, reduction)


@pytest.mark.parametrize(
    ("logits", "target"),
    [
        ([[50.0, 0.0, 0.0]], [0]),  # loss 2 e^-50 ~ 4e-22
        ([[46.0, 0.0]], [0]),  # loss ~ 1e-20
        ([[700.0, 10.0, 0.0]], [0]),  # loss ~ 1e-300
        ([[745.0, 0.0, 0.0]], [0]),  # loss subnormal
        ([[1e30, 0.0, -1e30]], [0]),  # loss exactly 0 in float64
        ([[1e30, 0.0, -1e30]], [1]),  # loss 1e30
        ([[1e30, 1e30 - 2**50, 0.1]], [1]),  # large equal-magnitude logits
        ([[3e38, -3e38, 0.0]], [1]),  # float32-max scale
        ([[0.1, 30.000000000000004, 29.9]], [0]),  # x - max rounds: carries its error
        ([[1e-5 + 2**-60, 30.0, 1e-300]], [0]),
        ([[-1e300, 1e300, 0.0]], [0]),  # loss 2e300
        ([[0.5, 0.5, 0.5, 0.5]], [3]),  # ties: log 4
    ],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_extremes(logits, target, reduction):
    z, t = np.array(logits), np.array(target)
    check_softmax_cross_entropy("sce-extreme", z, t, None, None, 0.0, reduction)
    check_softmax_cross_entropy(
        "sce-extreme", z, t, np.array([0.5, 2.0, 3.0, 1.0][: z.shape[1]]), None, 0.1, reduction
    )


def test_logit_gap_beyond_float64_rounds_to_inf():
    """-log p = 3.4e308 overflows: +inf, with the finite gradient p - y."""
    value, grads = softmax_cross_entropy(
        np.array([[-1.7e308, 1.7e308]]), np.array([0]), reduction="none"
    )
    assert value[0] == math.inf
    assert np.array_equal(grads["logits"], [[-1.0, 1.0]])


def test_tiny_losses_keep_their_digits():
    """-log p_t where the target dominates by 50 and by 700: log1p, not lse - x."""
    for margin in (50.0, 700.0):
        value, grads = softmax_cross_entropy(
            np.array([[margin, 0.0]]), np.array([0]), reduction="none"
        )
        exact = mpmath.log1p(mpmath.exp(-mpf(margin)))
        assert abs(mpf(value[0]) - exact) <= 2 * mpf(math.ulp(float(exact)))
        assert grads["logits"][0, 0] == pytest.approx(-float(exact), rel=4e-16)


# ------------------------------------------------ categorical_cross_entropy (mpmath)


def exact_categorical(p, target, reduction):
    """Exact value and gradients of categorical cross-entropy (``0 log 0 = 0``)."""
    soft = target.ndim == p.ndim
    pr = rows_last(p, 1)
    yr = rows_last(target, 1) if soft else None
    tr = target.ravel()
    classes = p.shape[1]
    per, gp, gy = [], [], []
    for i, row in enumerate(pr):
        ps = [mpf(v) for v in row]
        y = [mpf(v) for v in yr[i]] if soft else [mpf(int(c == tr[i])) for c in range(classes)]
        neg_log = [-mpmath.log(pc) if pc else mpmath.inf for pc in ps]
        per.append(mpmath.fsum(yc * nl for yc, nl in zip(y, neg_log, strict=True) if yc))
        gp.append(
            [
                -yc / pc if pc else -mpmath.inf if yc else mpf(0)
                for pc, yc in zip(ps, y, strict=True)
            ]
        )
        gy.append(neg_log)
    value, scale, up, slack, grad_slack = _reduce_exact(
        per, reduction, mpf(len(per)), underflow_slack(classes + 1, 2)
    )
    if up is None:  # an empty mean: the edge tests cover it
        return value, scale, None, slack, 0

    def grad(rows):
        return list(
            rows_back(
                [[u * g for g in r] for u, r in zip(up, rows, strict=True)], p.shape, 1
            ).ravel()
        )

    grads = {"probs": grad(gp)}
    if soft:
        grads["target"] = grad(gy)
    return value, scale, grads, slack, grad_slack


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_categorical_cross_entropy(data):
    shape = data.draw(class_shapes(), "shape")
    p = data.draw(float_arrays(shape, prob_values()), "probs")
    if data.draw(st.booleans(), "probability target"):
        target = data.draw(float_arrays(shape, prob_values()), "target")
    else:
        target = data.draw(float_arrays(shape[:1] + shape[2:], st.integers(0, shape[1] - 1)))
        target = target.astype(np.int64)
    reduction = data.draw(st.sampled_from(REDUCTIONS), "reduction")
    value, grads = categorical_cross_entropy(p, target, reduction=reduction)
    ex_value, ex_scale, ex_grads, slack, grad_slack = exact_categorical(p, target, reduction)
    check(f"categorical value {reduction}", value, ex_value, ex_scale, slack)
    assert set(grads) == ({"probs", "target"} if target.ndim == p.ndim else {"probs"})
    for name, g in grads.items():
        assert g.shape == p.shape
        if ex_grads is not None:
            check(f"categorical grad:{name} {reduction}", g, ex_grads[name], None, grad_slack)


# ------------------------------------------------------------------- nll (mpmath)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_nll(data):
    shape = data.draw(class_shapes(), "shape")
    classes = shape[1]
    x = data.draw(float_arrays(shape, logit_values()), "log_probs")
    t = data.draw(float_arrays(shape[:1] + shape[2:], st.integers(0, classes - 1))).astype(np.int64)
    ignore_index = data.draw(st.one_of(st.none(), st.integers(0, classes - 1)), "ignore_index")
    weight = data.draw(st.one_of(st.none(), float_arrays(classes, weight_values())), "weight")
    reduction = data.draw(st.sampled_from(REDUCTIONS), "reduction")
    value, grads = nll(x, t, weight, ignore_index=ignore_index, reduction=reduction)

    xr, tr = rows_last(x, 1), t.ravel()
    w = [mpf(1)] * classes if weight is None else [mpf(v) for v in weight]
    kept = [ignore_index is None or ti != ignore_index for ti in tr]
    per = [-w[ti] * mpf(xr[i, ti]) if kept[i] else mpf(0) for i, ti in enumerate(tr)]
    den = mpmath.fsum(w[ti] for i, ti in enumerate(tr) if kept[i])
    ex_value, ex_scale, up, slack, grad_slack = _reduce_exact(
        per, reduction, den, underflow_slack(1, 2)
    )
    check(f"nll value {reduction}", value, ex_value, ex_scale, slack)
    if up is not None:
        rows = [
            [-u * w[ti] if kept[i] and c == ti else mpf(0) for c in range(classes)]
            for i, (u, ti) in enumerate(zip(up, tr, strict=True))
        ]
        exact = rows_back(rows, shape, 1).ravel()
        check(f"nll grad:log_probs {reduction}", grads["log_probs"], exact, None, grad_slack)


# ---------------------------------------------- softmax, log_softmax, logsumexp (mpmath)


@st.composite
def x_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    while int(np.prod(shape)) > 24:
        shape = shape[1:]
    x = draw(float_arrays(shape, logit_values()))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return x, axis


@settings(max_examples=100, deadline=None)
@given(xa=x_and_axis())
def test_softmax_functions(xa):
    x, axis = xa
    ax = axis % x.ndim
    xr = rows_last(x, ax)
    cot = rows_last(cotangent(x.shape), ax)
    out_shape = x.shape[:ax] + x.shape[ax + 1 :]
    cot_lse = cotangent(out_shape).ravel()
    sm, sm_g, sm_s, ls, ls_g, ls_s, lse, lse_g, lse_s = ([] for _ in range(9))
    for row, g, gl in zip(xr, cot, cot_lse, strict=True):
        ex = exact_row(row)
        with mpmath.workprec(ex.prec):
            gs = [mpf(v) for v in g]
            inner = mpmath.fsum(pc * gc for pc, gc in zip(ex.p, gs, strict=True))
            total = mpmath.fsum(gs)
            sm.append(ex.p)
            sm_g.append([pk * (gk - inner) for pk, gk in zip(ex.p, gs, strict=True)])
            sm_s.append([pk * max(abs(gk), abs(inner)) for pk, gk in zip(ex.p, gs, strict=True)])
            ls.append([-v for v in ex.neg_log_p])
            ls_g.append([gk - pk * total for pk, gk in zip(ex.p, gs, strict=True)])
            ls_s.append([max(abs(gk), abs(pk * total)) for pk, gk in zip(ex.p, gs, strict=True)])
            lse.append(ex.lse)
            lse_s.append(max(abs(mpf(row.max())), abs(ex.lse - mpf(row.max()))))
            lse_g.append([mpf(gl) * pk for pk in ex.p])

    def flat(rows):
        return list(rows_back(rows, x.shape, ax).ravel())

    value, grads = softmax(x, axis=axis)
    check("softmax value", value, flat(sm))
    check("softmax grad:x", grads["x"], flat(sm_g), flat(sm_s))
    value, grads = log_softmax(x, axis=axis)
    check("log_softmax value", value, flat(ls))
    check("log_softmax grad:x", grads["x"], flat(ls_g), flat(ls_s))
    value, grads = logsumexp(x, axis=axis)
    assert value.shape == out_shape
    check("logsumexp value", value, lse, lse_s)
    check("logsumexp grad:x", grads["x"], flat(lse_g))


def test_softmax_vjp_near_one_hot_is_exact():
    """p_a = 1 - 1e-20: the VJP bracket g_a - <p, g> is ~1e-21, computed without cancelling."""
    x = np.array([[50.0, 0.0, 4.0]])
    _, grads = softmax(x)
    ex = exact_row(x[0])
    g = [mpf(v) for v in cotangent(x.shape).ravel()]
    with mpmath.workprec(ex.prec):
        inner = mpmath.fsum(p * gc for p, gc in zip(ex.p, g, strict=True))
        exact = [p * (gk - inner) for p, gk in zip(ex.p, g, strict=True)]
    check("softmax grad:x near one-hot", grads["x"], exact)
    _, grads = log_softmax(x)
    with mpmath.workprec(ex.prec):
        total = mpmath.fsum(g)
        exact = [gk - p * total for p, gk in zip(ex.p, g, strict=True)]
    check("log_softmax grad:x near one-hot", grads["x"], exact)


# ----------------------------------------------------------------------- exact edges

inf, nan = math.inf, math.nan


def _sce(logits, target, **kw):
    return softmax_cross_entropy(np.array(logits), np.array(target), **kw)


def test_plus_inf_logit_is_the_limit():
    value, grads = _sce([[inf, 0.0, 1.0]], [0], reduction="none")
    assert value[0] == 0.0
    assert np.array_equal(grads["logits"], [[0.0, 0.0, 0.0]])
    value, grads = _sce([[inf, 0.0, 1.0]], [1], reduction="none")
    assert value[0] == inf
    assert np.array_equal(grads["logits"], [[1.0, -1.0, 0.0]])


def test_indeterminate_rows_are_nan_and_stay_in_their_row():
    z = [[inf, inf, 0.0], [-inf, -inf, -inf], [nan, 0.0, 1.0], [0.0, 1.0, 2.0]]
    value, grads = _sce(z, [0, 0, 1, 2], reduction="none")
    assert np.all(np.isnan(value[:3])) and np.isfinite(value[3])
    assert np.all(np.isnan(grads["logits"][:3])) and np.all(np.isfinite(grads["logits"][3]))
    value, grads = _sce(z, [0, 0, 1, 2], reduction="sum")
    assert math.isnan(value)
    assert np.all(np.isfinite(grads["logits"][3]))


def test_minus_inf_at_target_is_infinite_with_finite_gradient():
    value, grads = _sce([[-inf, 0.0, 0.0]], [0], reduction="none")
    assert value[0] == inf
    assert np.allclose(grads["logits"], [[-1.0, 0.5, 0.5]], rtol=0, atol=0)
    value, _ = _sce([[-inf, 0.0, 0.0]], [1], reduction="none")
    assert value[0] == pytest.approx(math.log(2), rel=1e-16)


def test_zero_weight_or_probability_removes_an_infinite_term():
    value, _ = _sce([[-inf, 0.0]], [0], weight=np.array([0.0, 1.0]), reduction="sum")
    assert value == 0.0
    value, grads = _sce([[-inf, 0.0]], [[0.0, 1.0]], reduction="sum")
    assert value == 0.0
    assert grads["target"][0, 0] == inf  # d/dy of -y log p at p = 0
    value, _ = _sce([[-inf, 0.0]], [[0.5, 0.5]], reduction="sum")
    assert value == inf
    value, _ = nll(np.array([[-inf, 0.0]]), np.array([0]), np.array([0.0, 1.0]), reduction="sum")
    assert value == 0.0


@pytest.mark.parametrize("fn", [softmax_cross_entropy, nll])
def test_bad_labels_raise(fn):
    with pytest.raises(ValueError, match=r"label 3 .*C=3"):
        fn(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 .*C=3"):
        fn(np.zeros((2, 3)), np.array([-1, 0]))
    fn(np.zeros((2, 3)), np.array([-100, 0]), ignore_index=-100)  # ignored: fine


def test_bad_labels_raise_in_categorical():
    with pytest.raises(ValueError, match=r"label 5 .*C=2"):
        categorical_cross_entropy(np.full((1, 2), 0.5), np.array([5]))


@pytest.mark.parametrize(
    ("fn", "first", "target"),
    [
        (softmax_cross_entropy, np.zeros((2, 3)), np.array([0, 1, 2])),
        (softmax_cross_entropy, np.zeros((2, 3)), np.zeros((2, 4))),
        (softmax_cross_entropy, np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=np.int64)),
        (categorical_cross_entropy, np.zeros((2, 3)), np.zeros((3, 3))),
        (nll, np.zeros((2, 3)), np.zeros((2, 3), dtype=np.int64)),
    ],
)
def test_shape_mismatch_raises(fn, first, target):
    with pytest.raises(ValueError, match="shape"):
        fn(first, target)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="weight"):
        _sce([[0.0, 1.0]], [0], weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        _sce([[0.0, 1.0]], [0], label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        _sce([[0.0, 1.0]], [0], reduction="avg")
    with pytest.raises(ValueError, match="axis"):
        softmax(np.zeros((2, 3)), axis=2)


def test_mean_over_nothing_is_nan():
    value, grads = _sce([[0.0, 1.0], [2.0, 3.0]], [-100, -100], ignore_index=-100)
    assert math.isnan(value)
    assert np.array_equal(grads["logits"], np.zeros((2, 2)))
    value, grads = _sce(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert math.isnan(value) and grads["logits"].shape == (0, 3)
    value, grads = nll(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert math.isnan(value) and grads["log_probs"].shape == (0, 3)
    value, _ = categorical_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert math.isnan(value)
    value, _ = _sce(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), reduction="sum")
    assert value == 0.0 and value.shape == ()


def test_empty_batch_none_and_k_dims():
    value, grads = _sce(np.zeros((0, 3, 2)), np.zeros((0, 2), dtype=np.int64), reduction="none")
    assert value.shape == (0, 2) and grads["logits"].shape == (0, 3, 2)
    value, grads = _sce(
        np.zeros((2, 3, 4, 5)), np.zeros((2, 4, 5), dtype=np.int64), reduction="none"
    )
    assert value.shape == (2, 4, 5)
    assert np.allclose(value, math.log(3), rtol=1e-15, atol=0)


def test_categorical_edges():
    value, grads = categorical_cross_entropy(np.array([[0.0, 1.0]]), np.array([0]), reduction="sum")
    assert value == inf and grads["probs"][0, 0] == -inf and grads["probs"][0, 1] == 0.0
    y = np.array([[0.0, 1.0]])
    value, grads = categorical_cross_entropy(np.array([[0.0, 1.0]]), y, reduction="sum")
    assert value == 0.0
    assert np.array_equal(grads["probs"], [[0.0, -1.0]])
    assert np.array_equal(grads["target"], [[inf, 0.0]])
    value, _ = categorical_cross_entropy(np.array([[nan, 1.0]]), y, reduction="sum")
    assert math.isnan(value)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # a probability outside [0, 1]
        categorical_cross_entropy(np.array([[-0.5, 1.0]]), np.array([0]), reduction="sum")


def test_softmax_function_edges():
    x = np.array(
        [[inf, 0.0, 1.0], [inf, inf, 0.0], [-inf, -inf, -inf], [nan, 0.0, 0.0], [-inf, 0.0, 0.0]]
    )
    p, gp = softmax(x)
    assert np.array_equal(p[0], [1.0, 0.0, 0.0]) and np.array_equal(gp["x"][0], [0.0, 0.0, 0.0])
    assert np.all(np.isnan(p[1:4])) and np.all(np.isnan(gp["x"][1:4]))
    assert np.array_equal(p[4], [0.0, 0.5, 0.5])
    lp, glp = log_softmax(x)
    assert np.array_equal(lp[0], [0.0, -inf, -inf])
    assert np.all(np.isfinite(glp["x"][0]))
    assert np.all(np.isnan(lp[1:4]))
    assert lp[4, 0] == -inf and lp[4, 1] == pytest.approx(-math.log(2), rel=1e-16)
    lse, glse = logsumexp(x)
    assert lse[0] == inf and lse[1] == inf and lse[2] == -inf and math.isnan(lse[3])
    assert lse[4] == pytest.approx(math.log(2), rel=1e-16)
    assert np.array_equal(glse["x"][0], [1.0, 0.0, 0.0]) and np.all(np.isnan(glse["x"][1:4]))
    value, grads = logsumexp(np.zeros((2, 0)))
    assert np.array_equal(value, [-inf, -inf]) and grads["x"].shape == (2, 0)


# ---------------------------------------------------------- worked examples (evaluate)


@pytest.mark.parametrize(
    ("loss", "inputs", "expected"),
    [
        (
            "categorical_cross_entropy",
            {"probs": [0.1, 0.5, 0.1, 0.1, 0.2], "target": 0},
            2.302585092994046,
        ),
        (
            "categorical_cross_entropy",
            {"probs": [0.1, 0.6, 0.1, 0.1, 0.1], "target": 0},
            2.302585092994046,
        ),
        (
            "categorical_cross_entropy",
            {"probs": [[0.2, 0.7, 0.1]], "target": [1]},
            0.35667494393873245,
        ),
        ("categorical_cross_entropy", {"probs": [[0.9, 0.1]], "target": [0]}, 0.10536051565782628),
        ("categorical_cross_entropy", {"probs": [[0.9, 0.1]], "target": [1]}, 2.302585092994046),
        ("categorical_cross_entropy", {"probs": [[0.35, 0.65]], "target": [1]}, 0.4307829160924542),
        (
            "categorical_cross_entropy",
            {"probs": [[0.9999, 0.0001]], "target": [1]},
            9.210340371976182,
        ),
        ("softmax_cross_entropy", {"logits": [[0.2, 0.3, 0.5]], "target": [2]}, 0.9398310608444602),
        (
            "softmax_cross_entropy",
            {"logits": [[1.0, 2.0, 3.0]], "target": [2], "weight": [0.5, 1.0, 2.0]},
            0.4076059644443803,
        ),
        (
            "token_cross_entropy",
            {"logits": [[[0.0, math.log(0.65 / 0.35)]]], "target": [[1]]},
            0.4307829160924542,
        ),
        ("perplexity", {"logits": [[[0.0, 0.0, 0.0, 0.0]]], "target": [[2]]}, 4.0),
    ],
)
def test_worked_examples(loss, inputs, expected):
    golden = evaluate(loss, inputs, {})
    assert golden.value.shape == ()
    # the published figures are float64 computations themselves: within 2 ULP
    assert abs(float(golden.value) - expected) <= 2 * math.ulp(expected)


def test_worked_example_gradient_depends_on_the_wrong_classes():
    """Same loss for both, but the gradient with respect to the logits differs."""
    a = evaluate(
        "softmax_cross_entropy", {"logits": np.log([[0.1, 0.5, 0.1, 0.1, 0.2]]), "target": [0]}
    )
    b = evaluate(
        "softmax_cross_entropy", {"logits": np.log([[0.1, 0.6, 0.1, 0.1, 0.1]]), "target": [0]}
    )
    assert float(a.value) == pytest.approx(float(b.value), rel=1e-15)
    assert not np.allclose(a.grads["logits"], b.grads["logits"])
    assert np.allclose(a.grads["logits"], [[-0.9, 0.5, 0.1, 0.1, 0.2]], rtol=1e-14, atol=1e-15)


def test_evaluate_probability_target_gets_target_gradient():
    golden = evaluate("softmax_cross_entropy", {"logits": [[0.0, 1.0]], "target": [[0.25, 0.75]]})
    assert set(golden.grads) == {"logits", "target"}
    golden = evaluate("nll", {"log_probs": [[-1.0, -0.5]], "target": [1]})
    assert set(golden.grads) == {"log_probs"}


# ------------------------------------------------------------------ large vocabularies


def test_large_vocabulary_is_fast_and_consistent():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(64, 32000)) * 8.0
    t = rng.integers(0, 32000, 64)
    start = time.perf_counter()
    value, grads = softmax_cross_entropy(z, t, reduction="none")
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"64 x 32000 took {elapsed:.1f} s"
    m = z.max(axis=1)
    naive = m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - z[np.arange(64), t]
    assert np.allclose(value, naive, rtol=1e-13, atol=0)
    g = grads["logits"]
    assert np.allclose(g.sum(axis=1), 0.0, atol=1e-14)
    ex = exact_row(z[0])
    check("large vocab value[0]", value[:1], [ex.neg_log_p[t[0]]])


def test_categorical_nan_off_target_does_not_enter_a_class_index_loss():
    probs = np.array([[0.5, np.nan, 0.5]])
    g = evaluate(
        "categorical_cross_entropy",
        {"probs": probs, "target": np.array([0])},
        {"reduction": "none"},
    )
    assert g.value[0] == -np.log(0.5)
    np.testing.assert_array_equal(g.grads["probs"], [[-2.0, 0.0, 0.0]])
    soft = evaluate(
        "categorical_cross_entropy",
        {"probs": probs, "target": np.array([[1.0, 0.0, 0.0]])},
        {"reduction": "none"},
    )
    assert np.isnan(soft.value[0])  # 0 * log(NaN) is NaN for a probability target
