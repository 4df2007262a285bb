"""Reference bugs the oracle found, each with one instance that shows it.

Every entry is a place where the float64 reference leaves the exact answer beyond the
criterion (reported to the reference's owner). :func:`known_reference_bug` tells the
drawn-instance tests to pass over those regions; ``test_known_bugs.py`` asserts that
each instance is still reported, so an entry fails (and must go, with its region) once
the reference is fixed.
"""

from __future__ import annotations

import numpy as np

INF = np.inf

#: name -> (loss, inputs, params, a quantity the oracle names, what is wrong)
KNOWN: dict[str, tuple[str, dict, dict, str, str]] = {
    "smoothing-one-times-infinity": (
        "softmax_cross_entropy",
        {"logits": np.array([[INF, -8.9, 0.5]]), "target": np.array([2])},
        {"label_smoothing": 1.0, "reduction": "none"},
        "value",
        "label_smoothing = 1 makes the target term's coefficient (1 - eps) zero, yet "
        "(1 - eps) * inf gives NaN; the loss is +inf (every class has weight 1/C)",
    ),
    "smoothing-one-target-gradient": (
        "smoothed_binary_cross_entropy",
        {"logits": np.array(INF), "target": np.array(0.9)},
        {"label_smoothing": 1.0, "reduction": "none"},
        "grad:target",
        "d/dy = -(1 - eps) x is 0 at eps = 1 for every x; the reference gives 0 * inf = NaN",
    ),
    "focal-target-gradient-at-infinite-logit": (
        "sigmoid_focal_loss",
        {"logits": np.array(INF), "target": np.array(0.34734812)},
        {"alpha": 0.9, "gamma": 0.0, "reduction": "sum"},
        "grad:target",
        "the limit of d/dy as x -> inf is +inf (144.2 at x = 1e3, 1.4e6 at 1e7); the "
        "fallback forms (2 alpha - 1) ce - alpha_t x = inf - inf = NaN",
    ),
    "kl-log-target-underflow": (
        "kl_divergence",
        {"input": np.array(INF), "target": np.array(-1e300)},
        {"log_target": True, "reduction": "none"},
        "value",
        "exp(t) (t - input) is -inf for finite t and input = +inf; exp(-1e300) underflows "
        "to 0 and 0 * -inf gives NaN",
    ),
    "kl-log-target-overflow": (
        "kl_divergence",
        {"input": np.array([1e300, -1.0]), "target": np.array([1e4, 1e300])},
        {"log_target": True, "reduction": "sum"},
        "value",
        "the exact sum is a finite number beyond float64 (rounds to +inf); each term "
        "overflows to +-inf first and inf - inf gives NaN",
    ),
    "smoothing-negative-weight-infinity": (
        "softmax_cross_entropy",
        {
            "logits": np.array([[0.0, INF]]),
            "target": np.array([[-1.0, 2.0]]),
            "weight": np.array([-1.0, 1.0]),
        },
        {"label_smoothing": 0.5, "reduction": "none"},
        "value",
        "the coefficient w_0 y'_0 = 0.25 > 0 meets -log p_0 = inf: the loss is +inf; the "
        "reference sums the target term (+inf) and the smoothing term (-inf) apart: NaN",
    ),
    "bce-mean-gradient-overflow": (
        "binary_cross_entropy",
        {"probs": np.array([1.1125369292536007e-308, 0.5]), "target": np.array([2.0, 0.5])},
        {"reduction": "mean"},
        "grad:probs",
        "(p - y) / (p (1 - p)) = -1.8e308 overflows before the mean divides it by 2 "
        "(-9e307, finite): -inf",
    ),
    "smoothing-subnormal": (
        "smoothed_binary_cross_entropy",
        {"logits": np.array(INF), "target": np.array(1.0)},
        {"label_smoothing": 5e-324, "reduction": "none"},
        "value",
        "1 - y' = eps / 2 > 0 meets softplus(inf) = inf: the loss is +inf; eps / 2 "
        "underflows to 0 in float64 and the term is dropped (loss 0)",
    ),
    "focal-subnormal-target": (
        "sigmoid_focal_loss",
        {"logits": np.array(-745.0), "target": np.array(5e-324)},
        {"alpha": 0.6843129126274913, "gamma": 0.7167236857637863, "reduction": "sum"},
        "grad:target",
        "11% off (9.98e-230 for 8.998e-230): the accuracy limit the reference documents "
        "for positive targets below 1e-290 at |x| > 708",
    ),
    "bce-logits-infinite-target-gradient": (
        "binary_cross_entropy_with_logits",
        {"logits": np.array([1e-10, 1e-300]), "target": np.array([INF, INF])},
        {"reduction": "none"},
        "grad:target",
        "d/dy = w((pw - 1) softplus(-x) - x) does not depend on y, but with y infinite "
        "the reference takes the plain float64 softplus(-x) - softplus(x): 8e-8 relative "
        "off at x = 1e-10, 0 for -1.375e-300 at x = 1e-300",
    ),
}


def known_reference_bug(loss: str, inputs: dict, params: dict) -> bool:
    """Whether a drawn instance lies in a region of :data:`KNOWN` (over-approximated)."""
    infinite_logit = any(
        np.any(np.isinf(np.asarray(inputs[k], dtype=np.float64)))
        for k in ("logits", "x")
        if k in inputs
    )
    eps = float(params.get("label_smoothing", 0.0))
    if loss in ("softmax_cross_entropy", "smoothed_binary_cross_entropy"):
        if eps == 1.0 and infinite_logit:
            return True
        negative = any(
            np.any(np.asarray(inputs[k], dtype=np.float64) < 0)
            for k in ("weight", "target")
            if k in inputs
        )
        if loss == "softmax_cross_entropy" and eps > 0 and infinite_logit and negative:
            return True
        if loss == "smoothed_binary_cross_entropy" and 0.0 < eps < 1e-300:
            return True
    if loss == "binary_cross_entropy" and params.get("reduction") == "mean":
        p = np.asarray(inputs["probs"], dtype=np.float64)
        return bool(np.any((p > 0) & (p < 1e-306)))
    if loss == "sigmoid_focal_loss":
        y = np.asarray(inputs["target"], dtype=np.float64)
        return infinite_logit or bool(np.any((y > 0) & (y < 1e-290)))
    if loss == "kl_divergence" and params.get("log_target"):
        t = np.asarray(inputs["target"], dtype=np.float64)
        return bool(np.any(np.isfinite(t) & (np.abs(t) > 700)))
    return False
