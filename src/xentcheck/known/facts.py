"""What a known-difference predicate reads off a :class:`~xentcheck.known.Finding`.

One definition of each fact the framework modules (``known/torch.py`` ...) ask about a
finding, so that they hold only their mechanisms: which input carries the classes, where
its class axis is, the labels and which of them count, where the framework's output
differs from the reference and whether that is only where a mechanism acts.

Conventions: arrays come back as float64 (``floats``), labels as flat int64 in C order,
and per-label flags (``kept``, ``out_of_range`` ...) flat in the same order. A fact that
needs an input the finding lacks raises (``KeyError``); a predicate asks for what its
entry's APIs always have, or checks first (``integer_target``).
"""

from __future__ import annotations

import numpy as np

from xentcheck.accuracy import DEFAULT_TOLERANCE, disagreeing
from xentcheck.known import Finding
from xentcheck.reference import LOSSES

#: losses over a sequence: ``[..., V]`` logits, the vocabulary last
TOKEN_LOSSES = frozenset({"token_cross_entropy", "perplexity"})

#: losses over one axis chosen by the ``axis`` parameter
AXIS_LOSSES = frozenset({"softmax", "log_softmax", "logsumexp"})


def floats(a) -> np.ndarray:
    """``a`` as a float64 array."""
    return np.asarray(a, dtype=np.float64)


def has_nan(a) -> bool:
    """``a`` is given and holds a NaN."""
    return a is not None and bool(np.isnan(floats(a)).any())


# --------------------------------------------------------------------- the class axis


def is_token_loss(f: Finding) -> bool:
    """The loss is over token sequences (the vocabulary is the last axis)."""
    return f.loss in TOKEN_LOSSES


def first_input_name(f: Finding) -> str:
    """The loss's first input, the one whose class axis the loss runs over (``logits``,
    ``probs``, ``log_probs``, ``input``, ``x``): the registry's first input."""
    return LOSSES[f.loss].inputs[0].name


def first_input(f: Finding) -> np.ndarray:
    """The first input (see :func:`first_input_name`), float64."""
    return floats(f.inputs[first_input_name(f)])


def class_axis(f: Finding) -> int:
    """The first input's class axis: the ``axis`` parameter of softmax / log_softmax /
    logsumexp, the last axis for token losses and 1-D inputs, else axis 1 (``[N, C, d..]``)."""
    if f.loss in AXIS_LOSSES:
        return int(f.params.get("axis", -1))
    if is_token_loss(f) or np.ndim(f.inputs[first_input_name(f)]) == 1:
        return -1
    return 1


def num_classes(f: Finding) -> int:
    """The length of the first input's class axis (the vocabulary of token losses)."""
    return int(np.shape(f.inputs[first_input_name(f)])[class_axis(f)])


def as_rows(f: Finding, a) -> np.ndarray:
    """``a``, an array shaped like the first input, as float64 rows ``[M, C]``: its class
    axis moved last, the other axes flattened in C order (one row per label)."""
    a = np.moveaxis(floats(a), class_axis(f), -1)
    return a.reshape(-1, a.shape[-1])


def rows(f: Finding) -> np.ndarray:
    """The first input as rows ``[M, C]`` (see :func:`as_rows`)."""
    return as_rows(f, f.inputs[first_input_name(f)])


def from_rows(f: Finding, r) -> np.ndarray:
    """Rows ``[M, C]`` (or their ``M * C`` elements in order) back in the first input's
    shape: the inverse of :func:`as_rows`."""
    shape = np.shape(f.inputs[first_input_name(f)])
    axis = class_axis(f) % len(shape)
    moved = (*shape[:axis], *shape[axis + 1 :], shape[axis])
    return np.moveaxis(np.asarray(r).reshape(moved), -1, axis)


# -------------------------------------------------------------------------- labels


def integer_target(f: Finding) -> bool:
    """The finding has a ``target`` and it holds class indices (an integer array)."""
    t = f.inputs.get("target")
    return t is not None and np.asarray(t).dtype.kind in "iu"


def labels(f: Finding) -> np.ndarray:
    """The class indices of ``target``, flat int64."""
    return np.asarray(f.inputs["target"]).astype(np.int64).ravel()


def not_ignored(f: Finding) -> np.ndarray:
    """Per label: it is not the ``ignore_index`` (all True when none is set)."""
    t = labels(f)
    ignore = f.params.get("ignore_index")
    return t != int(ignore) if ignore is not None else np.ones(t.shape, dtype=bool)


def unmasked(f: Finding) -> np.ndarray:
    """Per label: the ``mask`` input keeps it (all True without a mask)."""
    mask = f.inputs.get("mask")
    if mask is None:
        return np.ones(labels(f).shape, dtype=bool)
    return np.asarray(mask, dtype=bool).ravel()


def kept(f: Finding) -> np.ndarray:
    """Per label: the reference counts it (neither ignored nor masked out)."""
    return not_ignored(f) & unmasked(f)


def out_of_range(f: Finding) -> np.ndarray:
    """Per label: it lies outside ``[0, C)``, ``C`` = :func:`num_classes`."""
    t = labels(f)
    return (t < 0) | (t >= num_classes(f))


def rejected_labels(f: Finding) -> np.ndarray:
    """The labels the reference rejects: kept ones outside ``[0, C)``, in C order."""
    return labels(f)[kept(f) & out_of_range(f)]


# ----------------------------------------------------------- where the output differs


def tolerance(f: Finding) -> tuple[float, float]:
    """``(rtol, atol)`` of the finding's dtype: the harness's default."""
    return DEFAULT_TOLERANCE[f.dtype]


def differs(f: Finding) -> np.ndarray | None:
    """Where ``actual`` differs from ``expected`` at the default tolerance (a value off,
    or another NaN/Inf), as a bool array of ``expected``'s shape; None when either is
    missing or their sizes differ."""
    if f.expected is None or f.actual is None:
        return None
    return disagreeing(f.expected, f.actual, *tolerance(f))


def differs_only_where(
    f: Finding, where, *, nan_only: bool = False, nan_either: bool = False
) -> bool:
    """True when ``f`` differs somewhere (:func:`differs`) and only where ``where`` holds.

    ``where`` has the quantity's shape (an element-wise quantity) or is reduced to one
    flag (a scalar quantity: the mechanism acts on at least one element). ``nan_only``:
    the differing elements must be NaN in the framework's output; ``nan_either``: NaN in
    the framework's output or in the reference's.
    """
    d = differs(f)
    if d is None or not d.any():
        return False
    w = np.asarray(where, dtype=bool)
    if w.shape != d.shape:
        if d.size != 1:
            return False
        w = np.asarray(w.any()).reshape(d.shape)
    if not np.all(w[d]):
        return False
    a = floats(f.actual).reshape(d.shape)
    if nan_only:
        return bool(np.all(np.isnan(a[d])))
    if nan_either:
        return bool(np.all(np.isnan(a[d]) | np.isnan(floats(f.expected)[d])))
    return True


def new_nan(f: Finding) -> np.ndarray:
    """Where ``actual`` is NaN and ``expected`` is not (both must be given; NumPy's
    broadcasting of their shapes)."""
    return np.isnan(floats(f.actual)) & ~np.isnan(floats(f.expected))


def new_nan_only_where(f: Finding, where: np.ndarray) -> bool:
    """``actual`` is NaN somewhere the reference is not, and only where ``where`` holds
    (``expected``, ``actual`` and ``where`` of one shape; False otherwise)."""
    if f.expected is None or f.actual is None:
        return False
    if np.shape(f.actual) != np.shape(where) or np.shape(f.expected) != np.shape(f.actual):
        return False
    nan = new_nan(f)
    return bool(nan.any()) and bool(np.all(~nan | where))
