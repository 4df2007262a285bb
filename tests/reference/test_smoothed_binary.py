"""smoothed_binary_cross_entropy against mpmath at 60 digits, on ordinary and extreme
logits and targets, and its relation to the unsmoothed loss."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from xentcheck.reference import cotangent, evaluate

mp = mpmath
mp.mp.dps = 60

LOGITS = [0.0, 0.5, -2.0, 3.25, 1e-300, -1e-8, 30.0, -45.5, 700.0, -710.0, 1e4, -1e30]
TARGETS = [0.0, 1.0, 0.3, 0.999, 1e-12]
SMOOTHING = [0.0, 0.1, 1e-9, 0.5, 1.0]


def _exact(x: float, y: float, eps: float) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
    """Loss, d/dx and d/dy at 60 digits, from the definition."""
    x, y, eps = mp.mpf(x), mp.mpf(y), mp.mpf(eps)
    ys = (1 - eps) * y + eps / 2

    def softplus(t):
        return mp.log1p(mp.exp(-abs(t))) + max(t, 0)

    loss = ys * softplus(-x) + (1 - ys) * softplus(x)
    return loss, 1 / (1 + mp.exp(-x)) - ys, -(1 - eps) * x


def _ulps(got: float, want: mpmath.mpf, scale: mpmath.mpf | None = None) -> float:
    """|got - want| in float64 ULPs of ``scale`` (of ``want`` when not given); the ULP of
    a subnormal or zero is the smallest subnormal's, so an exact value below float64's
    range that rounds to 0 counts as right."""
    ref = abs(want if scale is None else scale)
    ulp = (
        mp.mpf(2) ** -1074
        if ref == 0
        else max(mp.mpf(2) ** (mp.floor(mp.log(ref, 2)) - 52), mp.mpf(2) ** -1074)
    )
    return float(abs(mp.mpf(got) - want) / ulp)


@pytest.mark.parametrize("eps", SMOOTHING)
def test_values_and_gradients_match_mpmath(eps: float) -> None:
    xs, ys = np.meshgrid(LOGITS, TARGETS)
    g = evaluate("smoothed_binary_cross_entropy", {"logits": xs, "target": ys},
                 {"label_smoothing": eps, "reduction": "none"})  # fmt: skip
    cot = cotangent(xs.shape)
    worst = {"value": 0.0, "logits": 0.0, "target": 0.0}
    for idx in np.ndindex(xs.shape):
        loss, dx, dy = _exact(xs[idx], ys[idx], eps)
        c = mp.mpf(cot[idx])
        ys_ = (1 - mp.mpf(eps)) * mp.mpf(ys[idx]) + mp.mpf(eps) / 2
        # d/dx cancels (sigma(x) - y'): judged relative to its larger term
        larger = max(abs(1 / (1 + mp.exp(-mp.mpf(xs[idx])))), abs(ys_)) * c
        worst["value"] = max(worst["value"], _ulps(g.value[idx], loss))
        worst["logits"] = max(worst["logits"], _ulps(g.grads["logits"][idx], dx * c, larger))
        worst["target"] = max(worst["target"], _ulps(g.grads["target"][idx], dy * c))
    assert worst["value"] <= 1.0, worst
    assert worst["logits"] <= 1.0, worst
    assert worst["target"] <= 1.0, worst


def test_no_smoothing_is_the_unsmoothed_loss_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(0, 8, (6, 5)), rng.uniform(0, 1, (6, 5))
    for reduction in ("none", "sum", "mean"):
        a = evaluate(
            "smoothed_binary_cross_entropy", {"logits": x, "target": y}, {"reduction": reduction}
        )
        b = evaluate(
            "binary_cross_entropy_with_logits", {"logits": x, "target": y}, {"reduction": reduction}
        )
        assert a.value.tobytes() == b.value.tobytes()
        assert a.grads["logits"].tobytes() == b.grads["logits"].tobytes()


def test_full_smoothing_ignores_the_target() -> None:
    x = np.array([[-3.0, 0.0, 2.5]])
    a = evaluate("smoothed_binary_cross_entropy", {"logits": x, "target": np.array([[0.0, 1.0, 1.0]])},
                 {"label_smoothing": 1.0})  # fmt: skip
    b = evaluate("smoothed_binary_cross_entropy", {"logits": x, "target": np.array([[1.0, 0.0, 0.3]])},
                 {"label_smoothing": 1.0})  # fmt: skip
    assert a.value == b.value and not a.grads["target"].any()


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan")])
def test_smoothing_outside_the_unit_interval_is_rejected(eps: float) -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        evaluate("smoothed_binary_cross_entropy", {"logits": np.zeros(2), "target": np.zeros(2)},
                 {"label_smoothing": eps})  # fmt: skip
