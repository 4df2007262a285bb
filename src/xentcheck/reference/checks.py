"""The reference's input checks without its arithmetic: what ``evaluate`` would reject.

Each loss has a function here taking the same arguments as the loss function (after the
registry's conversions, see :func:`xentcheck.reference.check`) that raises the
``ValueError`` the loss function raises for the input, with the same message, and
otherwise returns the shape of the value it would compute. The helpers that produce
those messages are the loss functions' own; the tests hold both paths to the same
answers (``tests/harness/test_rejected_inputs.py``).

The checks read the *values* only of the inputs in :data:`VALUES_READ` (class indices,
and the inputs whose range is checked); every other input may be a stand-in of the right
shape and dtype (``numpy.broadcast_to(0.0, shape)``), so checking a large-vocabulary
case costs no memory. No array here is copied or converted to float64.

A rejection is an :class:`InputRejected`: a ``ValueError`` that also names the input or
parameter it is about (``field``), so a case file's error can point at its line.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Iterator

import numpy as np

from xentcheck.reference._elementwise import (
    REDUCTIONS,
    broadcast_weight,
    check_reduction,
    check_same_shape,
)
from xentcheck.reference.softmax import (
    _check_labels,
    _check_reduction,
    _check_target_shape,
    _classes,
    _label_shape,
    _weight,
)
from xentcheck.reference.tokens import _kept_rows

Shape = tuple[int, ...]


class InputRejected(ValueError):
    """The reference rejects an input: ``field`` names it (``target``, ``params.gamma``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@contextlib.contextmanager
def about(field: str) -> Iterator[None]:
    """Re-raise a ``ValueError`` of the block as an :class:`InputRejected` naming ``field``."""
    try:
        yield
    except InputRejected:
        raise
    except ValueError as exc:
        raise InputRejected(field, str(exc)) from None


def _real(x: np.ndarray, name: str) -> None:
    with about(name):
        if np.asarray(x).dtype.kind not in "fiub":
            raise ValueError(f"{name}: expected a real array, got dtype {np.asarray(x).dtype}")


def _outside(a: np.ndarray, low: float | None, high: float | None) -> bool:
    """Whether an element of ``a`` lies below ``low`` or above ``high`` (NaN does not)."""
    below = np.any(a < low) if low is not None else False
    return bool(below or (high is not None and np.any(a > high)))


def _in_range(a, name: str, low: float | None, high: float | None, message: str) -> None:
    with about(name):
        if _outside(np.asarray(a), low, high):
            raise ValueError(message)


def _reduced(shape: Shape, reduction: str) -> Shape:
    return shape if reduction == "none" else ()


def _reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    with about("params.reduction"):
        check_reduction(reduction, allowed)


def softmax_cross_entropy(
    logits, target, weight=None, *, ignore_index=None, label_smoothing=0.0, reduction="mean"
) -> Shape:
    _real(logits, "logits")
    with about("logits"):
        classes = _classes(logits, "logits")
    with about("target"):
        _check_target_shape(target, logits, "logits")
    with about("params.reduction"):
        _check_reduction(reduction)
    with about("params.label_smoothing"):
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    with about("weight"):
        _weight(weight, classes)
    if target.ndim != logits.ndim:
        _labels_in_range(target, ignore_index, classes)
    return _reduced(_label_shape(logits), reduction)


def _labels_in_range(target: np.ndarray, ignore_index, classes: int) -> None:
    t = target.ravel()
    kept = np.ones(t.shape, dtype=bool)
    if ignore_index is not None:
        kept = t != operator.index(ignore_index)
    with about("target"):
        _check_labels(t, kept, classes)


def categorical_cross_entropy(probs, target, *, reduction="mean") -> Shape:
    _real(probs, "probs")
    with about("probs"):
        classes = _classes(probs, "probs")
    with about("target"):
        _check_target_shape(target, probs, "probs")
    with about("params.reduction"):
        _check_reduction(reduction)
    _in_range(probs, "probs", 0, 1, "categorical_cross_entropy: probabilities must lie in [0, 1]")
    if target.ndim != probs.ndim:
        _labels_in_range(target, None, classes)
    return _reduced(_label_shape(probs), reduction)


def nll(log_probs, target, weight=None, *, ignore_index=None, reduction="mean") -> Shape:
    _real(log_probs, "log_probs")
    with about("log_probs"):
        classes = _classes(log_probs, "log_probs")
    with about("target"):
        if target.shape != _label_shape(log_probs):
            raise ValueError(
                f"target shape {target.shape} does not match log_probs shape {log_probs.shape}: "
                f"class indices need {_label_shape(log_probs)}"
            )
    with about("params.reduction"):
        _check_reduction(reduction)
    with about("weight"):
        _weight(weight, classes)
    _labels_in_range(target, ignore_index, classes)
    return _reduced(_label_shape(log_probs), reduction)


def _elementwise(first: str, x, target, weights: dict[str, object]) -> None:
    with about("target"):
        check_same_shape(x, target, first, "target")
    for name, w in weights.items():
        with about(name):
            broadcast_weight(w, x.shape, name, first)


def binary_cross_entropy(probs, target, weight=None, *, reduction="mean") -> Shape:
    _elementwise("probs", probs, target, {"weight": weight})
    _reduction(reduction)
    _in_range(probs, "probs", 0, 1, "binary_cross_entropy: probabilities must lie in [0, 1]")
    return _reduced(probs.shape, reduction)


def binary_cross_entropy_with_logits(
    logits, target, weight=None, pos_weight=None, *, reduction="mean"
) -> Shape:
    _elementwise("logits", logits, target, {"weight": weight, "pos_weight": pos_weight})
    _reduction(reduction)
    return _reduced(logits.shape, reduction)


def kl_divergence(input, target, *, log_target=False, reduction="mean") -> Shape:
    _elementwise("input", input, target, {})
    _reduction(reduction, (*REDUCTIONS, "batchmean"))
    if not log_target:
        _in_range(target, "target", 0, None, "kl_divergence: probability targets must be >= 0")
    return _reduced(input.shape, reduction)


def sigmoid_focal_loss(logits, target, *, alpha=0.25, gamma=2.0, reduction="mean") -> Shape:
    _elementwise("logits", logits, target, {})
    _reduction(reduction)
    with about("params.gamma"):
        if not (math.isfinite(float(gamma)) and float(gamma) >= 0):
            raise ValueError(f"sigmoid_focal_loss: gamma must be finite and >= 0, got {gamma}")
    with about("params.alpha"):
        if alpha is not None and math.isnan(float(alpha)):
            raise ValueError("sigmoid_focal_loss: alpha is NaN")
    _in_range(target, "target", 0, 1, "sigmoid_focal_loss: targets must lie in [0, 1]")
    return _reduced(logits.shape, reduction)


def token_cross_entropy(logits, target, mask=None, *, ignore_index=None) -> Shape:
    try:
        _kept_rows(logits, target, mask, ignore_index, to_float64=False)
    except ValueError as exc:  # its messages start with the input they are about
        field = next((n for n in ("logits", "mask") if str(exc).startswith(n)), "target")
        raise InputRejected(field, str(exc)) from None
    return ()


def _along(x, axis: int, reduced: bool) -> Shape:
    _real(x, "x")
    with about("params.axis"):
        axis = operator.index(axis)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of bounds for an array of dimension {x.ndim}")
    if not reduced:
        return x.shape
    return tuple(n for k, n in enumerate(x.shape) if k != axis % x.ndim)


def elementwise(x) -> Shape:
    return np.shape(x)


#: loss -> its check; each takes the loss function's arguments and returns the value's shape
CHECKS: dict[str, Callable[..., Shape]] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "categorical_cross_entropy": categorical_cross_entropy,
    "nll": nll,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_divergence": kl_divergence,
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "token_cross_entropy": token_cross_entropy,
    "perplexity": token_cross_entropy,
    "softmax": lambda x, *, axis=-1: _along(x, axis, reduced=False),
    "log_softmax": lambda x, *, axis=-1: _along(x, axis, reduced=False),
    "logsumexp": lambda x, *, axis=-1: _along(x, axis, reduced=True),
    "sigmoid": elementwise,
    "log_sigmoid": elementwise,
}

#: loss -> the inputs whose values (not only shapes) the checks read
VALUES_READ: dict[str, frozenset[str]] = {
    "softmax_cross_entropy": frozenset({"target"}),
    "categorical_cross_entropy": frozenset({"probs", "target"}),
    "nll": frozenset({"target"}),
    "binary_cross_entropy": frozenset({"probs"}),
    "kl_divergence": frozenset({"target"}),
    "sigmoid_focal_loss": frozenset({"target"}),
    "token_cross_entropy": frozenset({"target", "mask"}),
    "perplexity": frozenset({"target", "mask"}),
}
