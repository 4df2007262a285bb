"""Hypothesis strategies: an instance ``(inputs, params)`` of each loss of the registry.

:func:`instances` draws every parameter the registry lists (each reduction, ignore_index,
label smoothing, weights, pos_weight, masks, log targets, alpha None / negative /
numbers, gamma, axis), class indices or probability targets, and 0-d to 3-d shapes
(K-dimensional class-axis inputs, empty batches). ``values`` picks the element values:
``"ordinary"`` (moderate reals) or ``"extreme"`` (+-1e4, +-700, 1e-300, subnormals,
+-inf, probabilities 0 and 1, ties).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xentcheck.reference import LOSSES
from xentcheck.reference.arguments import KL_REDUCTIONS, REDUCTIONS

TINY = 5e-324
EXTREME_REALS = (
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, -1e-300, TINY, -TINY, 2.2250738585072014e-308,
    1e4, -1e4, 700.0, -700.0, 745.0, -745.0, 1e300, -1e300, 30.0, -30.0, 2.0, -3.5,
)  # fmt: skip
EXTREME_LOGITS = (*EXTREME_REALS, float("inf"), float("-inf"))
EXTREME_PROBS = (0.0, 1.0, 0.5, 1e-300, TINY, 1 - 2.0**-53, 2.0**-53, 0.25, 0.9, 1e-20)

Draw = Callable[..., object]


def _reals(values: str, lo: float = -20.0, hi: float = 20.0, pool=EXTREME_REALS):
    if values == "ordinary":
        return st.floats(lo, hi, allow_nan=False, width=64)
    return st.one_of(st.sampled_from(pool), st.floats(lo, hi, allow_nan=False))


def _logits(values: str):
    return _reals(values, pool=EXTREME_LOGITS)


def _probs(values: str):
    if values == "ordinary":
        return st.floats(0.0, 1.0, width=64)
    return st.one_of(st.sampled_from(EXTREME_PROBS), st.floats(0.0, 1.0))


def _soft(values: str):
    """Targets of the binary losses: mostly in [0, 1], some outside (the formula holds)."""
    return st.one_of(_probs(values), st.sampled_from((0.0, 1.0)), st.floats(-2.0, 3.0))


def _array(draw: Draw, shape, elements) -> np.ndarray:
    return draw(hnp.arrays(np.float64, shape, elements=elements))


def _class_shape(draw: Draw) -> tuple[int, ...]:
    """``[C]``, ``[N, C]`` or ``[N, C, d]``: class axis 1 (0 for 1-D)."""
    classes = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(("1d", "2d", "2d", "kd")))
    if kind == "1d":
        return (classes,)
    n = draw(st.integers(0, 3))
    return (n, classes) if kind == "2d" else (n, classes, draw(st.integers(1, 2)))


def _labels(draw: Draw, shape, classes: int, ignore_index) -> np.ndarray:
    pool = list(range(classes)) + ([ignore_index] if ignore_index is not None else [])
    return np.array(draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(pool))))


def _class_target(draw: Draw, shape, values: str, ignore_index, soft_values):
    label_shape = (shape[0], *shape[2:]) if len(shape) >= 2 else ()
    classes = shape[1] if len(shape) >= 2 else shape[0]
    if draw(st.booleans()):
        return _array(draw, shape, soft_values)
    return _labels(draw, label_shape, classes, ignore_index)


def _ignore(draw: Draw, classes: int):
    return draw(st.sampled_from((None, -100, 0, classes - 1)))


def softmax_cross_entropy(draw: Draw, values: str):
    shape = _class_shape(draw)
    classes = shape[1] if len(shape) >= 2 else shape[0]
    ignore = _ignore(draw, classes)
    target = _class_target(
        draw, shape, values, ignore, st.one_of(_probs(values), st.floats(-1.0, 2.0))
    )
    inputs = {"logits": _array(draw, shape, _logits(values)), "target": target}
    if draw(st.booleans()):
        inputs["weight"] = _array(draw, (classes,), st.one_of(_probs(values), st.floats(-2, 3)))
    params = {
        "ignore_index": ignore,
        "label_smoothing": draw(st.one_of(st.sampled_from((0.0, 1.0)), _probs(values))),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return inputs, params


def categorical_cross_entropy(draw: Draw, values: str):
    shape = _class_shape(draw)
    target = _class_target(draw, shape, values, None, st.one_of(_probs(values), st.floats(-1, 2)))
    inputs = {"probs": _array(draw, shape, _probs(values)), "target": target}
    return inputs, {"reduction": draw(st.sampled_from(REDUCTIONS))}


def nll(draw: Draw, values: str):
    shape = _class_shape(draw)
    classes = shape[1] if len(shape) >= 2 else shape[0]
    ignore = _ignore(draw, classes)
    label_shape = (shape[0], *shape[2:]) if len(shape) >= 2 else ()
    inputs = {
        "log_probs": _array(draw, shape, _logits(values)),
        "target": _labels(draw, label_shape, classes, ignore),
    }
    if draw(st.booleans()):
        inputs["weight"] = _array(draw, (classes,), st.one_of(_probs(values), st.floats(-2, 3)))
    params = {"ignore_index": ignore, "reduction": draw(st.sampled_from(REDUCTIONS))}
    return inputs, params


def _elementwise_shape(draw: Draw) -> tuple[int, ...]:
    return draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))


def _broadcastable(draw: Draw, shape, elements):
    """None, or an array of a trailing part of ``shape`` (some sides 1)."""
    if not draw(st.booleans()):
        return None
    k = draw(st.integers(0, len(shape)))
    sub = tuple(draw(st.sampled_from((1, n))) for n in shape[len(shape) - k :])
    return _array(draw, sub, elements)


def binary_cross_entropy(draw: Draw, values: str):
    shape = _elementwise_shape(draw)
    inputs = {
        "probs": _array(draw, shape, _probs(values)),
        "target": _array(draw, shape, _soft(values)),
    }
    w = _broadcastable(draw, shape, st.one_of(_probs(values), st.floats(-2, 3)))
    if w is not None:
        inputs["weight"] = w
    return inputs, {"reduction": draw(st.sampled_from(REDUCTIONS))}


def binary_cross_entropy_with_logits(draw: Draw, values: str):
    shape = _elementwise_shape(draw)
    inputs = {
        "logits": _array(draw, shape, _logits(values)),
        "target": _array(draw, shape, _soft(values)),
    }
    for name in ("weight", "pos_weight"):
        w = _broadcastable(draw, shape, st.one_of(_probs(values), st.floats(0, 5)))
        if w is not None:
            inputs[name] = w
    return inputs, {"reduction": draw(st.sampled_from(REDUCTIONS))}


def smoothed_binary_cross_entropy(draw: Draw, values: str):
    shape = _elementwise_shape(draw)
    inputs = {
        "logits": _array(draw, shape, _logits(values)),
        "target": _array(draw, shape, _soft(values)),
    }
    params = {
        "label_smoothing": draw(st.one_of(st.sampled_from((0.0, 1.0)), _probs(values))),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return inputs, params


def kl_divergence(draw: Draw, values: str):
    shape = _elementwise_shape(draw)
    log_target = draw(st.booleans())
    target = _logits(values) if log_target else st.one_of(_probs(values), st.floats(0, 3))
    inputs = {
        "input": _array(draw, shape, _logits(values)),
        "target": _array(draw, shape, target),
    }
    params = {"log_target": log_target, "reduction": draw(st.sampled_from(KL_REDUCTIONS))}
    return inputs, params


def sigmoid_focal_loss(draw: Draw, values: str):
    shape = _elementwise_shape(draw)
    inputs = {
        "logits": _array(draw, shape, _logits(values)),
        "target": _array(draw, shape, _probs(values)),
    }
    params = {
        "alpha": draw(st.one_of(st.sampled_from((None, -1.0, 0.0, 1.0, 0.25)), _probs(values))),
        "gamma": draw(st.one_of(st.sampled_from((0.0, 0.5, 1.0, 2.0)), st.floats(0, 4))),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return inputs, params


def _tokens(draw: Draw, values: str):
    vocab = draw(st.integers(1, 5))
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    ignore = _ignore(draw, vocab)
    inputs = {
        "logits": _array(draw, (*lead, vocab), _logits(values)),
        "target": _labels(draw, lead, vocab, ignore),
    }
    if draw(st.booleans()):
        inputs["mask"] = draw(hnp.arrays(np.bool_, lead))
    return inputs, {"ignore_index": ignore}


def _along_axis(draw: Draw, values: str):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return {"x": _array(draw, shape, _logits(values))}, {"axis": axis}


def _elementwise(draw: Draw, values: str):
    return {"x": _array(draw, _elementwise_shape(draw), _logits(values))}, {}


BUILDERS: dict[str, Callable[[Draw, str], tuple[dict, dict]]] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "categorical_cross_entropy": categorical_cross_entropy,
    "nll": nll,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "smoothed_binary_cross_entropy": smoothed_binary_cross_entropy,
    "kl_divergence": kl_divergence,
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "token_cross_entropy": _tokens,
    "perplexity": _tokens,
    "softmax": _along_axis,
    "log_softmax": _along_axis,
    "logsumexp": _along_axis,
    "sigmoid": _elementwise,
    "log_sigmoid": _elementwise,
}


@st.composite
def instances(draw: Draw, loss: str, values: str = "ordinary"):
    """``(inputs, params)`` of registry loss ``loss``; every parameter of the registry set."""
    inputs, params = BUILDERS[loss](draw, values)
    assert set(params) == set(LOSSES[loss].params), f"{loss}: draw every parameter"
    return inputs, params
