"""The binary family of the reference against mpmath at 60 digits.

Covers ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``,
``sigmoid_focal_loss``, ``sigmoid`` and ``log_sigmoid``: values and gradients on
hypothesis-drawn inputs (every reduction, weights, pos_weight, soft targets, logits up
to +-3e38, probabilities 0, 1, 1e-300 and 1 - 2**-53) within 4 ULP of the exact value,
or of the larger term where the exact quantity is a difference of terms of opposite
signs; exact edges (0 * log 0, infinite logits, NaN); errors; the worked example.

The oracles below are written from the textbook definitions, independently of the
reference's cancellation-free forms; ``test_oracle_gradients_match_numerical_derivatives``
checks their derivatives against ``mpmath.diff``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference import strategies_binary as sb
from tests.reference.oracle import mpf
from xentcheck.reference import binary, cotangent, evaluate

mp = mpmath
INF = mp.inf
EXAMPLES = 250


# --- oracles --------------------------------------------------------------------------


def sig(x):
    return 1 / (1 + mp.exp(-x))


def sp(x):
    return mp.log1p(mp.exp(x))


def larger_term(*terms):
    """Largest |term| where nonzero terms of both signs meet (the sum cancels), else 0."""
    if any(t > 0 for t in terms) and any(t < 0 for t in terms):
        return max(abs(t) for t in terms)
    return mp.mpf(0)


def digits_for(x: float) -> int:
    """Working digits that resolve ``sigmoid(x) - 1/2`` and ``softplus(-x) - softplus(x)``
    (about ``x``) to 60 digits even for tiny ``x``."""
    ax = abs(float(x))
    return 60 if ax == 0 or ax > 1e-10 or not math.isfinite(ax) else 70 + int(-math.log10(ax))


def bce_logits_exact(x, y, w, pw):
    with mp.workdps(digits_for(x)):
        return _bce_logits_exact(x, y, w, pw)


def _bce_logits_exact(x, y, w, pw):
    X, Y, W, PW = mpf(x), mpf(y), mpf(w), mpf(pw)
    loss = W * (PW * Y * sp(-X) + (1 - Y) * sp(X))
    gx1, gx2 = W * (1 - Y) * sig(X), -W * PW * Y * sig(-X)
    gy1, gy2 = W * PW * sp(-X), -W * sp(X)
    return loss, gx1 + gx2, larger_term(gx1, gx2), gy1 + gy2, larger_term(gy1, gy2)


def _xlog(c, logv):
    """``c * log(v)`` from ``log(v)``, with ``0 * log 0 = 0``."""
    return mp.mpf(0) if c == 0 else c * logv


def _ratio(c, d):
    """``c / d`` with ``0 / 0 = 0`` and ``c / 0 = sign(c) inf``."""
    if c == 0:
        return mp.mpf(0)
    return c / d if d != 0 else (INF if c > 0 else -INF)


def _w(w, v):
    return mp.mpf(0) if w == 0 else w * v


def bce_exact(p, y, w):
    P, Y, W = mpf(p), mpf(y), mpf(w)
    lp = mp.log(P) if p > 0 else -INF
    l1 = mp.log1p(-P) if p < 1 else -INF  # log(1 - p); 1 - p would round at 60 digits
    loss = _w(W, -(_xlog(Y, lp) + _xlog(1 - Y, l1)))
    gp = _w(W, _ratio(-Y, P) + _ratio(1 - Y, 1 - P))
    gy = _w(W, -(lp - l1))
    return loss, gp, gy


def focal_exact(x, y, alpha, gamma):
    """Textbook focal loss and its product-rule derivatives.

    ``1 - p_t`` uses the identity ``1 - (p y + (1 - p)(1 - y)) = (1 - y) p + y (1 - p)``,
    which 60 digits need for logits beyond about 140.
    """
    with mp.workdps(digits_for(x)):
        return _focal_exact(x, y, alpha, gamma)


def _focal_exact(x, y, alpha, gamma):
    X, Y, G = mpf(x), mpf(y), mpf(gamma)
    p, q = sig(X), sig(-X)
    ce = Y * sp(-X) + (1 - Y) * sp(X)
    m = (1 - Y) * p + Y * q
    if alpha is None:
        at, dat = mp.mpf(1), mp.mpf(0)
    else:
        A = mpf(alpha)
        at, dat = A * Y + (1 - A) * (1 - Y), 2 * A - 1
    mg = m**G if m != 0 else (mp.mpf(1) if G == 0 else mp.mpf(0))
    dmg = G * m ** (G - 1) if G != 0 else mp.mpf(0)  # d(m^G)/dm
    loss = at * ce * mg
    # d/dx: ce' = (1 - y) p - y q, m' = (1 - 2y) p q
    gx_terms = (at * (1 - Y) * p * mg, -at * Y * q * mg, at * ce * dmg * (1 - 2 * Y) * p * q)
    # d/dy: alpha_t' ce m^g + alpha_t (sp(-x) - sp(x)) m^g + alpha_t ce g m^(g-1) (q - p)
    # (q - p = sigma(-x) - sigma(x) = -tanh(x/2), which 60 digits cannot subtract for tiny x)
    gy_terms = (dat * ce * mg, -at * X * mg, -at * ce * dmg * mp.tanh(X / 2))
    return (
        loss,
        mp.fsum(gx_terms),
        larger_term(*gx_terms),
        mp.fsum(gy_terms),
        larger_term(*gy_terms),
    )


# --- strategies -----------------------------------------------------------------------


@st.composite
def bce_logits_cases(draw):
    shape = draw(sb.shapes)
    x = sb.array(draw, shape, sb.logits())
    y = sb.array(draw, shape, sb.targets())
    w = pw = None
    if draw(st.booleans()):
        w = sb.array(draw, sb.broadcast_shape_for(draw, shape), sb.weights())
    if draw(st.booleans()):
        pw = sb.array(draw, draw(st.sampled_from([shape[-1:], shape, ()])), sb.pos_weights())
    return x, y, w, pw, draw(st.sampled_from(sb.REDUCTIONS))


@st.composite
def bce_cases(draw):
    shape = draw(sb.shapes)
    p = sb.array(draw, shape, sb.probabilities())
    y = sb.array(draw, shape, sb.targets())
    w = (
        sb.array(draw, sb.broadcast_shape_for(draw, shape), sb.weights())
        if draw(st.booleans())
        else None
    )
    return p, y, w, draw(st.sampled_from(sb.REDUCTIONS))


@st.composite
def focal_cases(draw):
    shape = draw(sb.shapes)
    x = sb.array(draw, shape, sb.logits())
    # (targets between 0 and 1e-290 are outside the focal reference's accuracy claim)
    y = sb.array(draw, shape, sb.targets().filter(lambda t: t == 0 or t >= 1e-290))
    alpha = draw(
        st.one_of(st.none(), st.sampled_from((0.25, 0.5, 1.0, 0.0, -1.0)), st.floats(0, 1))
    )
    gamma = draw(st.one_of(st.sampled_from((0.0, 0.5, 1.0, 2.0, 3.0, 5.0)), st.floats(0.0, 5.0)))
    return x, y, alpha, gamma, draw(st.sampled_from(sb.REDUCTIONS))


def _bcast(a, shape, default):
    return np.broadcast_to(default if a is None else a, shape).ravel()


# --- the checks (shared with one-off measurement runs) --------------------------------


def run_bce_logits(x, y, w, pw, reduction) -> dict[str, float]:
    value, grads = binary.binary_cross_entropy_with_logits(x, y, w, pw, reduction=reduction)
    ex = [
        bce_logits_exact(*args)
        for args in zip(
            x.ravel(), y.ravel(), _bcast(w, x.shape, 1.0), _bcast(pw, x.shape, 1.0), strict=True
        )
    ]
    cols = list(zip(*ex, strict=True))
    return {
        "value": sb.check_value(value, list(cols[0]), reduction, what="value"),
        "grad_x": sb.check_grad(
            grads["logits"], list(cols[1]), x.shape, reduction, list(cols[2]), what="d/dx"
        ),
        "grad_y": sb.check_grad(
            grads["target"], list(cols[3]), x.shape, reduction, list(cols[4]), what="d/dy"
        ),
    }


def run_bce(p, y, w, reduction) -> dict[str, float]:
    value, grads = binary.binary_cross_entropy(p, y, w, reduction=reduction)
    ex = [
        bce_exact(*args) for args in zip(p.ravel(), y.ravel(), _bcast(w, p.shape, 1.0), strict=True)
    ]
    cols = [[sb.to_exact(v) for v in col] for col in zip(*ex, strict=True)]
    return {
        "value": sb.check_value(value, cols[0], reduction, what="value"),
        "grad_p": sb.check_grad(grads["probs"], cols[1], p.shape, reduction, what="d/dp"),
        "grad_y": sb.check_grad(grads["target"], cols[2], p.shape, reduction, what="d/dy"),
    }


def run_focal(x, y, alpha, gamma, reduction) -> dict[str, float]:
    value, grads = binary.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction)
    a = None if alpha is None or alpha < 0 else alpha
    ex = [focal_exact(xi, yi, a, gamma) for xi, yi in zip(x.ravel(), y.ravel(), strict=True)]
    cols = list(zip(*ex, strict=True))
    return {
        "value": sb.check_value(value, list(cols[0]), reduction, what="value"),
        "grad_x": sb.check_grad(
            grads["logits"], list(cols[1]), x.shape, reduction, list(cols[2]), what="d/dx"
        ),
        "grad_y": sb.check_grad(
            grads["target"], list(cols[3]), x.shape, reduction, list(cols[4]), what="d/dy"
        ),
    }


def run_sigmoids(x) -> dict[str, float]:
    ct = [mpf(c) for c in cotangent(x.shape).ravel()]
    xs = [mpf(v) for v in x.ravel()]
    value, grads = binary.sigmoid(x)
    out = {
        "sigmoid": sb.check(value, [sig(v) for v in xs], what="sigmoid"),
        "sigmoid'": sb.check(
            grads["x"], [c * sig(v) * sig(-v) for c, v in zip(ct, xs, strict=True)], what="sigmoid'"
        ),
    }
    value, grads = binary.log_sigmoid(x)
    out["log_sigmoid"] = sb.check(value, [-sp(-v) for v in xs], what="log_sigmoid")
    out["log_sigmoid'"] = sb.check(
        grads["x"], [c * sig(-v) for c, v in zip(ct, xs, strict=True)], what="log_sigmoid'"
    )
    return out


# --- hypothesis tests -----------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None)
@given(bce_logits_cases())
def test_bce_with_logits_matches_mpmath(case):
    run_bce_logits(*case)


@settings(max_examples=EXAMPLES, deadline=None)
@given(bce_cases())
def test_bce_matches_mpmath(case):
    run_bce(*case)


@settings(max_examples=EXAMPLES, deadline=None)
@given(focal_cases())
def test_focal_matches_mpmath(case):
    run_focal(*case)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data())
def test_sigmoid_and_log_sigmoid_match_mpmath(data):
    run_sigmoids(sb.array(data.draw, data.draw(sb.shapes), sb.logits()))


# --- hand-picked extremes against mpmath ------------------------------------------------


@pytest.mark.parametrize("y", [0.0, 1.0, 0.5, 1e-300, 1.0 - 2.0**-53])
def test_bce_with_logits_extreme_logits(y):
    x = np.array([700.0, -700.0, 745.0, -745.0, 1e30, -1e30, 3e38, -3e38, 36.0, -36.0, 1e-300, 0.0])
    for reduction in sb.REDUCTIONS:
        run_bce_logits(x, np.full_like(x, y), None, None, reduction)
        run_bce_logits(
            x, np.full_like(x, y), np.linspace(0.0, 3.0, x.size), np.full_like(x, 2.5), reduction
        )


def test_bce_with_logits_tiny_loss_is_exact():
    # x = 700, y = 1: the loss is softplus(-700) = log1p(exp(-700)), about 9.86e-305.
    value, grads = binary.binary_cross_entropy_with_logits(
        np.array([700.0]), np.array([1.0]), reduction="none"
    )
    exact = mp.log1p(mp.exp(-700))
    assert sb.worst_ulp(value, [exact]) <= 0.5
    assert sb.worst_ulp(grads["logits"], [-sig(mp.mpf(-700))]) <= 0.5
    assert value[0] > 0


def test_bce_with_logits_weighted_subnormal_losses_are_rounded_once():
    # softplus(-744) is a subnormal (about 3 units of 2**-1074): rounding it before the
    # weight 10 * pos_weight 20 would be off by up to 100 units.
    x = np.array([744.0, 740.0, 730.0, -744.0, -740.0])
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    for reduction in sb.REDUCTIONS:
        run_bce_logits(x, y, np.full(5, 10.0), np.full(5, 20.0), reduction)


def test_partial_products_outside_the_normal_range():
    """Products whose partial products under- or overflow, found by hypothesis."""
    # w (p - y) / (p (1 - p)) with a subnormal weight and p = 5e-324: (p - y) / p overflows
    p = np.array([1.36270347e-022, 5e-324, 5e-324])
    y = np.array([1.59635983e-301, 0.25, 1e-300])
    run_bce(p, y, np.array([3.8994774, 2.22507386e-311, 1.81450354]), "sum")
    # pos_weight * y is subnormal, times softplus(3e38)
    x = np.array([-2.80467767e38, 49.099515])
    run_bce_logits(x, np.array([0.81803586, 1.0]), None, np.array([1.11253693e-308, 19.9]), "none")
    # (1 - p_t)^3 is about 3e-323 at x = -248 with y = 2e-158, times |x|
    x = np.array([-49.26244334, 49.43602835, -248.18629089])
    run_focal(x, np.array([1.0, 1.0, 2.15832016e-158]), None, 3.0, "mean")
    # d/dy = -x m^g (1 + g ce) near the smallest normal number, where double-double has
    # no digits to spare
    x = np.array([2.2250738585072014e-308, -3e-305, 5e-324])
    for y in (0.0, 1.0):
        run_focal(x, np.full(3, y), None, 0.5, "none")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sums_of_subnormal_losses_are_rounded_once(reduction):
    # softplus(-745) = 2.8e-324 rounds to 4.9e-324 per element: summing 16 of those
    # rounded values would be 7 units of 2**-1074 off.
    x = np.full((4, 4), 745.0)
    run_bce_logits(x, np.ones((4, 4)), None, None, reduction)
    run_bce_logits(-x, np.zeros((4, 4)), np.full((4, 4), 0.75), None, reduction)
    run_bce(np.full((4, 4), 5e-324), np.zeros((4, 4)), None, reduction)
    run_bce(np.full((4, 4), 0.5), np.full((4, 4), 0.3), np.full(4, 1e-320), reduction)
    run_focal(x, np.ones((4, 4)), 0.25, 0.0, reduction)


def test_bce_extreme_probabilities():
    p = np.array([1e-300, 1.0 - 2.0**-53, 5e-324, 2.0**-53, 0.5, 0.5 + 2.0**-53, 1.0 - 2.0**-52])
    for y in (0.0, 1.0, 0.3, 1e-300):
        for reduction in sb.REDUCTIONS:
            run_bce(p, np.full_like(p, y), None, reduction)


def test_focal_extremes():
    x = np.array([40.0, -40.0, 700.0, -700.0, 746.0, 1e30, -3e38, 0.0, 1e-300])
    for y in (0.0, 1.0, 0.5, 1e-300):
        for gamma in (0.0, 0.5, 2.0, 5.0):
            for alpha in (None, 0.25):
                run_focal(x, np.full_like(x, y), alpha, gamma, "none")


def test_sigmoid_extremes():
    run_sigmoids(
        np.array([-745.0, -746.0, -744.0, -700.0, 700.0, 36.0, -36.0, 1e-300, 0.0, 3e38, -3e38])
    )


# --- exact edges ------------------------------------------------------------------------


def test_worked_example_pytorch_multilabel_snippet():
    """Mean BCE with logits of [0.7, 0.2, 0.1] vs [1, 0, 0] is 0.6485738594468735.

    The exact value is 0.64857385944687355049..., so the correctly rounded float64 is
    0.6485738594468735 (0.34 ULP away); a tutorial's 16 digits (...736) are one ULP above.
    """
    value, _ = binary.binary_cross_entropy_with_logits(
        np.array([0.7, 0.2, 0.1]), np.array([1.0, 0.0, 0.0])
    )
    sp3 = sp(-mpf(0.7)) + sp(mpf(0.2)) + sp(mpf(0.1))
    assert sb.worst_ulp(value, [sp3 / 3]) <= 0.5
    assert float(value) == 0.6485738594468735
    golden = evaluate(
        "binary_cross_entropy_with_logits", {"logits": [0.7, 0.2, 0.1], "target": [1, 0, 0]}
    )
    assert float(golden.value) == float(value)
    assert set(golden.grads) == {"logits", "target"}


def test_bce_zero_log_zero_and_infinities():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 0.5])
    value, grads = binary.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_array_equal(value, [0.0, 0.0, np.inf, np.inf, np.inf, np.inf])
    ct = cotangent(p.shape)
    np.testing.assert_array_equal(
        grads["probs"], ct * [1.0, -1.0, -np.inf, np.inf, -np.inf, np.inf]
    )
    np.testing.assert_array_equal(
        grads["target"], [np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf]
    )
    # a zero weight annihilates an infinite loss (0 * inf = 0)
    value, grads = binary.binary_cross_entropy(p, y, np.zeros(6), reduction="sum")
    assert float(value) == 0.0
    assert not np.any(grads["probs"]) and not np.any(grads["target"])
    assert float(binary.binary_cross_entropy(p[:2], y[:2])[0]) == 0.0


def test_bce_no_clamping():
    # PyTorch would give 100 (log clamped at -100), Keras about 16.1 (p clipped to 1e-7).
    value, _ = binary.binary_cross_entropy(np.array([1e-300]), np.array([1.0]), reduction="sum")
    assert sb.worst_ulp(value, [-mp.log(mp.mpf(1e-300))]) <= 0.5


def test_bce_with_logits_infinite_logits():
    x = np.array([np.inf, np.inf, -np.inf, -np.inf, np.inf, np.nan])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 1.0])
    value, grads = binary.binary_cross_entropy_with_logits(x, y, reduction="sum")
    assert float(value) != float(value)  # the NaN logit poisons the sum
    value, grads = binary.binary_cross_entropy_with_logits(x[:5], y[:5], reduction="none")
    np.testing.assert_array_equal(value, [0.0, np.inf, 0.0, np.inf, np.inf])
    ct = cotangent((5,))
    np.testing.assert_array_equal(grads["logits"], ct * [0.0, 1.0, 0.0, -1.0, 0.75])
    np.testing.assert_array_equal(
        grads["target"], [-np.inf, -np.inf, np.inf, np.inf, -np.inf * ct[4]]
    )
    v, g = binary.binary_cross_entropy_with_logits(x[:2], y[:2], np.zeros(2), reduction="none")
    np.testing.assert_array_equal(v, [0.0, 0.0])
    np.testing.assert_array_equal(g["target"], [0.0, 0.0])


def test_bce_with_logits_huge_logits_exact():
    x = np.array([1e30, -1e30, 3e38])
    value, grads = binary.binary_cross_entropy_with_logits(
        x, np.array([0.0, 1.0, 0.5]), reduction="none"
    )
    np.testing.assert_array_equal(value, [1e30, 1e30, 1.5e38])
    ct = cotangent((3,))
    np.testing.assert_array_equal(grads["logits"], ct * [1.0, -1.0, 0.5])
    np.testing.assert_array_equal(grads["target"], -x * ct)


def test_pos_weight_broadcasts_along_last_axis():
    x = np.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]])
    y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    pw = np.array([1.0, 2.0, 3.0])
    v1, g1 = binary.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    v2, g2 = binary.binary_cross_entropy_with_logits(
        x, y, pos_weight=np.tile(pw, (2, 1)), reduction="none"
    )
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(g1["logits"], g2["logits"])
    # pos_weight scales the positive term only: pw = 3 at (0, 2) triples its loss
    v0, _ = binary.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert sb.worst_ulp([v1[0, 2]], [3 * mpf(v0[0, 2])]) <= 1
    assert v1[1, 0] == v0[1, 0]


def test_weights_do_not_enter_the_mean_denominator():
    x, y = np.array([0.4, -0.3]), np.array([1.0, 0.0])
    mean, _ = binary.binary_cross_entropy_with_logits(x, y, np.array([2.0, 0.0]))
    total, _ = binary.binary_cross_entropy_with_logits(x, y, np.array([2.0, 0.0]), reduction="sum")
    assert float(mean) == float(total) / 2


def test_sigmoid_special_values():
    x = np.array([np.inf, -np.inf, np.nan, -746.0, -745.0])
    value, grads = binary.sigmoid(x)
    np.testing.assert_array_equal(value, [1.0, 0.0, np.nan, 0.0, 5e-324])
    np.testing.assert_array_equal(grads["x"][:4], [0.0, 0.0, np.nan, 0.0])
    assert (
        sb.worst_ulp(grads["x"][4:], [mp.mpf("1.5") * sig(mp.mpf(-745)) * sig(mp.mpf(745))]) <= 0.5
    )
    value, grads = binary.log_sigmoid(x[:3])
    np.testing.assert_array_equal(value, [0.0, -np.inf, np.nan])
    np.testing.assert_array_equal(grads["x"], [0.0, 1.125, np.nan])


def test_focal_confident_and_correct_is_not_zero():
    # torchvision's 1 - p_t rounds to 0 at x = 40, y = 1; the loss is about 1.8e-53.
    value, _ = binary.sigmoid_focal_loss(np.array([40.0]), np.array([1.0]), reduction="sum")
    X = mp.mpf(40)
    assert sb.worst_ulp(value, [mp.mpf("0.25") * sp(-X) * sig(-X) ** 2]) <= 0.5


def test_focal_alpha_conventions():
    x = np.array([0.3, -2.0, 5.0])
    y = np.array([1.0, 0.0, 0.4])
    none, g_none = binary.sigmoid_focal_loss(x, y, alpha=None)
    neg, g_neg = binary.sigmoid_focal_loss(x, y, alpha=-1.0)
    assert float(none) == float(neg)
    np.testing.assert_array_equal(g_none["target"], g_neg["target"])
    # gamma = 0 without alpha is plain BCE with logits
    f0, gf = binary.sigmoid_focal_loss(x, y, alpha=None, gamma=0.0, reduction="none")
    b0, gb = binary.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_array_equal(f0, b0)
    np.testing.assert_array_equal(gf["logits"], gb["logits"])
    np.testing.assert_array_equal(gf["target"], gb["target"])


def test_focal_infinite_logits():
    x = np.array([np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    value, grads = binary.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, reduction="none")
    np.testing.assert_array_equal(value, [0.0, 0.0, np.inf, np.inf])
    ct = cotangent((4,))
    np.testing.assert_array_equal(grads["logits"], ct * [0.0, 0.0, 0.75, -0.25])


def test_binary_returns_float64_arrays_of_input_shapes():
    x = np.zeros((2, 3))
    for fn, args in [
        (binary.binary_cross_entropy, (np.full((2, 3), 0.5), x)),
        (binary.binary_cross_entropy_with_logits, (x, x)),
        (binary.sigmoid_focal_loss, (x, x)),
    ]:
        for reduction in sb.REDUCTIONS:
            value, grads = fn(*args, reduction=reduction)
            assert value.dtype == np.float64
            assert value.shape == ((2, 3) if reduction == "none" else ())
            assert all(g.shape == (2, 3) and g.dtype == np.float64 for g in grads.values())
    v, g = binary.binary_cross_entropy_with_logits(np.float64(0.5), np.float64(1.0))
    assert v.shape == () and g["logits"].shape == ()
    v, _ = binary.binary_cross_entropy_with_logits(np.zeros((0, 3)), np.zeros((0, 3)))
    assert math.isnan(float(v))
    v, _ = binary.binary_cross_entropy_with_logits(
        np.zeros((0, 3)), np.zeros((0, 3)), reduction="sum"
    )
    assert float(v) == 0.0


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [-0.1, 1.0 + 2.0**-52, np.inf, -np.inf])
def test_bce_rejects_probabilities_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary.binary_cross_entropy(np.array([0.5, p]), np.array([1.0, 0.0]))


def test_bce_allows_targets_outside_unit_interval():
    value, _ = binary.binary_cross_entropy(np.array([0.25]), np.array([1.5]), reduction="sum")
    P, Y = mp.mpf("0.25"), mp.mpf("1.5")
    assert sb.worst_ulp(value, [-(Y * mp.log(P) + (1 - Y) * mp.log(1 - P))]) <= 0.5


def test_bce_nan_propagates():
    value, grads = binary.binary_cross_entropy(
        np.array([np.nan, 0.5]), np.array([1.0, 1.0]), reduction="none"
    )
    assert math.isnan(value[0]) and not math.isnan(value[1])
    assert math.isnan(grads["probs"][0]) and math.isnan(grads["target"][0])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: binary.binary_cross_entropy(np.full(3, 0.5), np.zeros(2)), "shape"),
        (
            lambda: binary.binary_cross_entropy(np.full(3, 0.5), np.zeros(3), np.ones(2)),
            "broadcast",
        ),
        (
            lambda: binary.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((3, 2))),
            "shape",
        ),
        (
            lambda: binary.binary_cross_entropy_with_logits(
                np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
            ),
            "broadcast",
        ),
        (
            lambda: binary.binary_cross_entropy_with_logits(
                np.zeros(3), np.zeros(3), weight=np.ones((2, 3))
            ),
            "broadcast",
        ),
        (
            lambda: binary.binary_cross_entropy_with_logits(
                np.zeros(3), np.zeros(3), reduction="avg"
            ),
            "reduction",
        ),
        (lambda: binary.sigmoid_focal_loss(np.zeros(3), np.zeros(2)), "shape"),
        (lambda: binary.sigmoid_focal_loss(np.zeros(2), np.array([0.5, 1.5])), r"\[0, 1\]"),
        (lambda: binary.sigmoid_focal_loss(np.zeros(2), np.zeros(2), gamma=-1.0), "gamma"),
        (
            lambda: binary.sigmoid_focal_loss(np.zeros(2), np.zeros(2), reduction="batchmean"),
            "reduction",
        ),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the oracle's own derivatives ------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "alpha", "gamma"),
    [(0.7, 0.3, 0.25, 2.0), (-2.5, 1.0, None, 0.5), (3.0, 0.0, 0.6, 3.0), (-0.2, 0.9, 0.25, 1.5)],
)
def test_oracle_gradients_match_numerical_derivatives(x, y, alpha, gamma):
    """The textbook derivatives in the oracles agree with ``mpmath.diff``."""
    X, Y = mpf(x), mpf(y)
    _, gx, _, gy, _ = focal_exact(x, y, alpha, gamma)
    assert mp.almosteq(
        gx, mp.diff(lambda t: focal_exact_value(t, Y, alpha, gamma), X), rel_eps=mp.mpf(10) ** -40
    )
    assert mp.almosteq(
        gy, mp.diff(lambda t: focal_exact_value(X, t, alpha, gamma), Y), rel_eps=mp.mpf(10) ** -40
    )
    _, gx, _, gy, _ = bce_logits_exact(x, y, 1.5, 2.0)
    assert mp.almosteq(
        gx,
        mp.diff(lambda t: 1.5 * (2 * Y * sp(-t) + (1 - Y) * sp(t)), X),
        rel_eps=mp.mpf(10) ** -40,
    )
    assert mp.almosteq(
        gy,
        mp.diff(lambda t: 1.5 * (2 * t * sp(-X) + (1 - t) * sp(X)), Y),
        rel_eps=mp.mpf(10) ** -40,
    )
    p = float(sig(X))
    _, gp, gy = bce_exact(p, y, 1.0)
    P = mpf(p)
    assert mp.almosteq(
        gp,
        mp.diff(lambda t: -(Y * mp.log(t) + (1 - Y) * mp.log(1 - t)), P),
        rel_eps=mp.mpf(10) ** -40,
    )
    assert mp.almosteq(
        gy,
        mp.diff(lambda t: -(t * mp.log(P) + (1 - t) * mp.log(1 - P)), Y),
        rel_eps=mp.mpf(10) ** -40,
    )


def focal_exact_value(X, Y, alpha, gamma):
    """The focal loss straight from its definition, for numerical differentiation."""
    p = sig(X)
    pt = p * Y + (1 - p) * (1 - Y)
    ce = -(Y * mp.log(p) + (1 - Y) * mp.log(1 - p))
    at = 1 if alpha is None else alpha * Y + (1 - alpha) * (1 - Y)
    return at * ce * (1 - pt) ** gamma


@pytest.mark.parametrize(
    ("loss", "inputs", "params", "fn", "names"),
    [
        (
            "binary_cross_entropy",
            {"probs": [[0.2, 0.9]], "target": [[0.0, 1.0]], "weight": [2.0, 0.5]},
            {"reduction": "sum"},
            lambda i, p: binary.binary_cross_entropy(i["probs"], i["target"], i["weight"], **p),
            {"probs", "target"},
        ),
        (
            "binary_cross_entropy_with_logits",
            {"logits": [[0.2, -0.9]], "target": [[0.3, 1.0]], "pos_weight": [1.0, 4.0]},
            {"reduction": "none"},
            lambda i, p: binary.binary_cross_entropy_with_logits(
                i["logits"], i["target"], pos_weight=i["pos_weight"], **p
            ),
            {"logits", "target"},
        ),
        (
            "sigmoid_focal_loss",
            {"logits": [1.5, -0.3], "target": [1.0, 0.0]},
            {"alpha": None, "gamma": 1.5},
            lambda i, p: binary.sigmoid_focal_loss(i["logits"], i["target"], **p),
            {"logits", "target"},
        ),
        ("sigmoid", {"x": [0.5, -3.0]}, {}, lambda i, p: binary.sigmoid(i["x"]), {"x"}),
        ("log_sigmoid", {"x": [0.5, -3.0]}, {}, lambda i, p: binary.log_sigmoid(i["x"]), {"x"}),
    ],
)
def test_registry_dispatch(loss, inputs, params, fn, names):
    golden = evaluate(loss, inputs, params)
    value, grads = fn({k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}, params)
    np.testing.assert_array_equal(golden.value, value)
    assert set(golden.grads) == names == set(grads)
    for k in names:
        np.testing.assert_array_equal(golden.grads[k], grads[k])
        assert golden.grads[k].shape == np.shape(inputs[k])
