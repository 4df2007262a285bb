"""Where the losses are defined: the oracle's own argument checks and array layout.

Each check raises ``ValueError`` for an argument outside the loss's domain (a label out
of range, shapes that do not match, a probability outside ``[0, 1]``, an unknown
reduction). Written independently of the reference's checks: where the two disagree on
an input, :func:`xentcheck.exact.reference_disagreements` reports it.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = [
    "REDUCTIONS",
    "axis_rows",
    "broadcast",
    "check_labels",
    "check_range",
    "check_reduction",
    "class_rows",
    "floats",
    "labels",
    "same_shape",
    "smoothing",
]

REDUCTIONS = ("none", "sum", "mean")


def floats(a, name: str) -> np.ndarray:
    """``a`` as a float64 array (real numbers only)."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        try:
            a = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: not a real array (dtype {a.dtype})") from None
    return a.astype(np.float64)


def labels(a, name: str = "target") -> np.ndarray:
    """Class indices as int64: integers, or floats with integral finite values."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a))):
        raise ValueError(f"{name}: class indices must be integers")
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name}: class indices must be integers (dtype {a.dtype})")
    return a.astype(np.int64)


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction {reduction!r}: use one of {allowed}")


def same_shape(a: np.ndarray, b: np.ndarray, name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name} has shape {b.shape}, expected {a.shape}")


def broadcast(w, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """``w`` broadcast to ``shape`` (trailing axes aligned, the result ``shape``), or None."""
    if w is None:
        return None
    w = floats(w, name)
    try:
        if np.broadcast_shapes(w.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {w.shape} does not broadcast to {shape}") from None
    return np.broadcast_to(w, shape)


def check_range(a: np.ndarray, low: float | None, high: float | None, what: str) -> None:
    """Every non-NaN element of ``a`` in ``[low, high]`` (None: unbounded)."""
    if (low is not None and np.any(a < low)) or (high is not None and np.any(a > high)):
        raise ValueError(f"{what} outside [{low}, {high}]")


def smoothing(eps) -> float:
    eps = float(eps)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing {eps} outside [0, 1]")
    return eps


def check_labels(t: np.ndarray, kept: np.ndarray, classes: int) -> None:
    """Every kept label in ``[0, classes)``."""
    bad = kept & ((t < 0) | (t >= classes))
    if np.any(bad):
        raise ValueError(f"label {int(t[bad][0])} outside [0, {classes})")


def axis_rows(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Flat C-order indices of an array of ``shape`` as rows ``[M, n]`` along ``axis``
    (the other axes in C order): row ``i`` lists the elements of the ``i``-th slice."""
    n = shape[axis]
    idx = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    m = math.prod(shape[:axis] + shape[axis + 1 :])
    return np.moveaxis(idx, axis, -1).reshape(m, n)


def class_rows(shape: tuple[int, ...]) -> np.ndarray:
    """:func:`axis_rows` along the class axis: 1 (``[N, C, d1, ...]``), or 0 for ``[C]``."""
    if len(shape) == 0:
        raise ValueError("a class axis is needed, got a 0-d array")
    return axis_rows(shape, 1 if len(shape) >= 2 else 0)


def normal_axis(axis, ndim: int) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range for {ndim} dimensions")
    return axis % ndim
