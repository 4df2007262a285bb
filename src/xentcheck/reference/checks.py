"""The check-only path of the reference: what ``evaluate`` would reject, without arithmetic.

For each loss, a function taking the loss function's arguments (after the registry's
conversions, see :func:`xentcheck.reference.check`) that raises the ``ValueError`` the
loss function raises, and otherwise returns the shape of the value it would compute.
Both paths call the same checks (:mod:`xentcheck.reference.arguments`), in the same
order; the tests hold them to the same answers (``tests/harness/test_rejected_inputs.py``).
Only the inputs in :data:`VALUES_READ` need their values; any other may be a stand-in
of the right shape and dtype (``numpy.broadcast_to(0.0, shape)``). A rejection is an
:class:`InputRejected`, a ``ValueError`` naming the input or parameter it is about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from xentcheck.reference import arguments as arg

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


def _reduced(shape: Shape, reduction: str) -> Shape:
    return shape if reduction == "none" else ()


def _reduction(reduction: str, allowed: tuple[str, ...] = arg.REDUCTIONS) -> None:
    with about("params.reduction"):
        arg.check_reduction(reduction, allowed)


def _class_axis(
    first: str, x, target, target_shape: Callable[..., None] = arg.check_target_shape
) -> int:
    """The checks of a class-axis input ``x`` named ``first`` and of its ``target``'s shape
    (by default class indices or probabilities); returns the number of classes."""
    with about(first):
        arg.real_array(x, first)
        classes = arg.n_classes(x, first)
    with about("target"):
        target_shape(target, x, first)
    return classes


def _labels_in_range(target: np.ndarray, ignore_index, classes: int) -> None:
    t = target.ravel()
    with about("target"):
        arg.check_labels(t, arg.kept_labels(t, ignore_index), classes)


def softmax_cross_entropy(
    logits, target, weight=None, *, ignore_index=None, label_smoothing=0.0, reduction="mean"
) -> Shape:
    classes = _class_axis("logits", logits, target)
    _reduction(reduction)
    with about("params.label_smoothing"):
        arg.check_smoothing(label_smoothing)
    with about("weight"):
        arg.class_weight(weight, classes)
    if target.ndim != logits.ndim:
        _labels_in_range(target, ignore_index, classes)
    return _reduced(arg.label_shape(logits), reduction)


def categorical_cross_entropy(probs, target, *, reduction="mean") -> Shape:
    classes = _class_axis("probs", probs, target)
    _reduction(reduction)
    with about("probs"):
        arg.check_probabilities(probs, "categorical_cross_entropy")
    if target.ndim != probs.ndim:
        _labels_in_range(target, None, classes)
    return _reduced(arg.label_shape(probs), reduction)


def nll(log_probs, target, weight=None, *, ignore_index=None, reduction="mean") -> Shape:
    classes = _class_axis("log_probs", log_probs, target, arg.check_label_shape)
    _reduction(reduction)
    with about("weight"):
        arg.class_weight(weight, classes)
    _labels_in_range(target, ignore_index, classes)
    return _reduced(arg.label_shape(log_probs), reduction)


def _elementwise(first: str, x, target, weights: dict[str, object]) -> None:
    with about("target"):
        arg.check_same_shape(x, target, first, "target")
    for name, w in weights.items():
        with about(name):
            arg.broadcast_weight(w, x.shape, name, first)


def binary_cross_entropy(probs, target, weight=None, *, reduction="mean") -> Shape:
    _elementwise("probs", probs, target, {"weight": weight})
    _reduction(reduction)
    with about("probs"):
        arg.check_probabilities(probs, "binary_cross_entropy")
    return _reduced(probs.shape, reduction)


def binary_cross_entropy_with_logits(
    logits, target, weight=None, pos_weight=None, *, reduction="mean"
) -> Shape:
    _elementwise("logits", logits, target, {"weight": weight, "pos_weight": pos_weight})
    _reduction(reduction)
    return _reduced(logits.shape, reduction)


def smoothed_binary_cross_entropy(
    logits, target, *, label_smoothing=0.0, reduction="mean"
) -> Shape:
    _elementwise("logits", logits, target, {})
    arg.check_smoothing(label_smoothing)
    _reduction(reduction)
    return _reduced(logits.shape, reduction)


def kl_divergence(input, target, *, log_target=False, reduction="mean") -> Shape:
    _elementwise("input", input, target, {})
    _reduction(reduction, arg.KL_REDUCTIONS)
    with about("target"):
        arg.check_kl_target(target, log_target)
    return _reduced(input.shape, reduction)


def sigmoid_focal_loss(logits, target, *, alpha=0.25, gamma=2.0, reduction="mean") -> Shape:
    _elementwise("logits", logits, target, {})
    _reduction(reduction)
    with about("params.gamma"):
        arg.check_gamma(gamma)
    with about("params.alpha"):
        arg.check_alpha(alpha)
    with about("target"):
        arg.check_focal_target(target)
    return _reduced(logits.shape, reduction)


def token_cross_entropy(logits, target, mask=None, *, ignore_index=None) -> Shape:
    try:
        arg.token_labels(
            arg.real_array(logits, "logits", ml_floats=True), target, mask, ignore_index
        )
    except ValueError as exc:  # its messages start with the input they are about
        field = next((n for n in ("logits", "mask") if str(exc).startswith(n)), "target")
        raise InputRejected(field, str(exc)) from None
    return ()


def _along(x, axis: int, reduced: bool) -> Shape:
    with about("x"):
        arg.real_array(x, "x")
    with about("params.axis"):
        axis = arg.check_axis(axis, x.ndim)
    if not reduced:
        return x.shape
    return tuple(n for k, n in enumerate(x.shape) if k != axis)


def elementwise(x) -> Shape:
    return np.shape(x)


def softmax(x, *, axis=-1) -> Shape:
    return _along(x, axis, reduced=False)


def logsumexp(x, *, axis=-1) -> Shape:
    return _along(x, axis, reduced=True)
