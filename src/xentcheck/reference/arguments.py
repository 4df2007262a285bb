"""The argument checks of the reference losses, one definition each.

A loss is defined on its arguments only where they agree: shapes that match, a known
reduction, class indices in ``[0, C)``, probabilities in ``[0, 1]``, parameters in their
ranges. Each check here raises the ``ValueError`` that says which (and does nothing
else); the loss functions call them before computing, and the check-only path
(:mod:`xentcheck.reference.checks`) calls the same functions, so the two cannot
disagree. Checks read shapes and dtypes, plus the values of the inputs whose values they
name; none copies an input or converts it to float64 (the ``as_*`` conversions do).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from xentcheck.dtypes import FLOAT_DTYPES

REDUCTIONS = ("none", "sum", "mean")
KL_REDUCTIONS = (*REDUCTIONS, "batchmean")  # kl_divergence's: also the per-sample mean


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(allowed)}")


# ------------------------------------------------------------------------ arrays


def real_array(x, name: str, *, ml_floats: bool = False) -> np.ndarray:
    """``x`` as an array of its own dtype (no copy); ``ValueError`` unless it is real:
    float, int or bool, and with ``ml_floats`` also an ml_dtypes float such as bfloat16."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub" and not (ml_floats and a.dtype.name in FLOAT_DTYPES):
        raise ValueError(f"{name}: expected a real array, got dtype {a.dtype}")
    return a


def as_real(x, name: str) -> np.ndarray:
    """:func:`real_array` converted to float64 (a copy)."""
    return real_array(x, name).astype(np.float64)


def as_float(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; ``ValueError`` for what cannot be one."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a floating array ({exc})") from None
    return a


def as_labels(a, name: str) -> np.ndarray:
    """``a`` as int64 class indices; ValueError unless every value is a finite integer."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name}: class indices must be integers")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name}: class indices must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} has shape {b.shape}, {name_a} has shape {a.shape}: they must match"
        )


def broadcast_weight(w, shape: tuple[int, ...], name: str, of: str) -> np.ndarray | None:
    """``w`` broadcast to ``shape`` (NumPy rules, trailing axes aligned), or None."""
    if w is None:
        return None
    w = as_float(w, name)
    try:
        if np.broadcast_shapes(w.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{name} of shape {w.shape} does not broadcast to the shape {shape} of {of}"
        ) from None
    return np.broadcast_to(w, shape)


def check_axis(axis: int, ndim: int) -> int:
    """``axis`` of an array of ``ndim`` dimensions, made non-negative."""
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


# ------------------------------------------------------------ classes (axis 1)


def n_classes(x: np.ndarray, name: str) -> int:
    """Number of classes of ``x`` (axis 1, or axis 0 of an unbatched 1-D input)."""
    if x.ndim == 0:
        raise ValueError(f"{name}: needs a class axis, got a 0-d array")
    return int(x.shape[1] if x.ndim >= 2 else x.shape[0])


def label_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape of the class indices matching ``x``: ``x.shape`` without axis 1."""
    return (x.shape[0], *x.shape[2:]) if x.ndim >= 2 else ()


def check_target_shape(target: np.ndarray, first: np.ndarray, name: str) -> None:
    """A target of class indices (``first`` without axis 1) or probabilities (``first``'s
    shape, told apart by rank)."""
    want = first.shape if target.ndim == first.ndim else label_shape(first)
    if target.shape != want:
        raise ValueError(
            f"target shape {target.shape} does not match {name} shape {first.shape}: "
            f"class indices need {label_shape(first)}, probabilities {first.shape}"
        )


def check_label_shape(target: np.ndarray, first: np.ndarray, name: str) -> None:
    """A target of class indices only: ``first``'s shape without axis 1."""
    if target.shape != label_shape(first):
        raise ValueError(
            f"target shape {target.shape} does not match {name} shape {first.shape}: "
            f"class indices need {label_shape(first)}"
        )


def kept_labels(t: np.ndarray, ignore_index: int | None, kept=None) -> np.ndarray:
    """Which of the labels ``t`` count: ``kept`` (default all) and not ``ignore_index``."""
    kept = np.ones(t.shape, dtype=bool) if kept is None else kept
    if ignore_index is not None:
        kept = kept & (t != operator.index(ignore_index))
    return kept


def check_labels(t: np.ndarray, kept: np.ndarray, classes: int) -> None:
    """Raise ``ValueError`` naming the first kept label outside ``[0, classes)``."""
    bad = kept & ((t < 0) | (t >= classes))
    if bad.any():
        label = int(t[bad][0])
        raise ValueError(f"target label {label} is out of range [0, {classes}) for C={classes}")


def class_weight(weight, classes: int) -> np.ndarray | None:
    """The class weights ``[C]`` as float64, or None."""
    if weight is None:
        return None
    w = as_real(weight, "weight")
    if w.shape != (classes,):
        raise ValueError(f"weight shape {w.shape} does not match the {classes} classes")
    return w


def check_smoothing(label_smoothing: float) -> float:
    """``label_smoothing`` as a float in ``[0, 1]``."""
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    return eps


# ------------------------------------------------------------------- value ranges


def _outside(a, low: float | None, high: float | None) -> bool:
    """Whether an element of ``a`` lies below ``low`` or above ``high`` (NaN does not)."""
    a = np.asarray(a)
    below = np.any(a < low) if low is not None else False
    return bool(below or (high is not None and np.any(a > high)))


def check_probabilities(p, loss: str) -> None:
    """Probabilities in ``[0, 1]`` (NaN passes: it propagates)."""
    if _outside(p, 0, 1):
        raise ValueError(f"{loss}: probabilities must lie in [0, 1]")


def check_kl_target(target, log_target: bool) -> None:
    """A probability target of ``kl_divergence`` is ``>= 0`` (a log-target is any real)."""
    if not log_target and _outside(target, 0, None):
        raise ValueError("kl_divergence: probability targets must be >= 0")


def check_gamma(gamma: float) -> float:
    """The focusing parameter of ``sigmoid_focal_loss``, finite and ``>= 0``, as a float."""
    gamma = float(gamma)
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"sigmoid_focal_loss: gamma must be finite and >= 0, got {gamma}")
    return gamma


def check_alpha(alpha: float | None) -> None:
    """The class balance of ``sigmoid_focal_loss``: None or a number (negative: off)."""
    if alpha is not None and math.isnan(float(alpha)):
        raise ValueError("sigmoid_focal_loss: alpha is NaN")


def check_focal_target(target) -> None:
    if _outside(target, 0, 1):
        raise ValueError("sigmoid_focal_loss: targets must lie in [0, 1]")


# ------------------------------------------------------------ tokens (axis -1)


def token_labels(z: np.ndarray, target, mask, ignore_index: int | None):
    """The labels ``[M]`` of token logits ``z [..., V]`` and which of them are kept.

    ``target`` has ``z``'s shape without the vocabulary axis, as has ``mask`` (nonzero =
    keep); only kept labels must lie in ``[0, V)``.
    """
    if z.ndim == 0:
        raise ValueError("logits: needs a vocabulary axis, got a 0-d array")
    target = np.asarray(target)
    if target.shape != z.shape[:-1]:
        raise ValueError(
            f"target shape {target.shape} does not match logits shape {z.shape}: "
            f"need {z.shape[:-1]}"
        )
    t = as_labels(target, "target").ravel()
    kept = None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {mask.shape} does not match target shape {target.shape}")
        kept = mask.ravel() != 0
    kept = kept_labels(t, ignore_index, kept)
    check_labels(t, kept, z.shape[-1])
    return t, kept
