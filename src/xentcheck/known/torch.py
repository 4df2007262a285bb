"""Documented differences of torch (see :mod:`xentcheck.known`).

Every entry names a mechanism that PyTorch's documentation (or a maintainer on its issue
tracker) states, and its predicate checks that the finding is an instance of it: the
elements that differ from the reference lie exactly where the mechanism acts (a clamped
``log``, a ``+inf`` logit, a zero target probability ...) and, where the mechanism has a
closed form, torch's output matches that model. A difference an entry does not explain
stays a ``mismatch`` (or ``nonfinite`` / ``error``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xentcheck.known import Finding, Known
from xentcheck.known.facts import (
    class_axis,
    differs,
    differs_only_where,
    first_input,
    floats,
    integer_target,
    kept,
    labels,
    out_of_range,
    tolerance,
)

# ------------------------------------------------------------------------- constants

#: torch's default ``ignore_index`` of cross_entropy / nll_loss
TORCH_IGNORE_INDEX = -100

#: BCELoss clamps ``log`` at this value (forward)
LOG_CLAMP = -100.0

#: BCELoss backward divides by ``max(x (1 - x), EPSILON)``
BCE_GRAD_EPSILON = 1e-12

_CE = ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss")
_NLL = ("torch.nn.functional.nll_loss", "torch.nn.NLLLoss")
_TOKEN = (
    "torch.nn.functional.cross_entropy+view(-1,V)+*",
    "torch.exp(torch.nn.functional.cross_entropy+view(-1,V)+*",
)
_BCE = ("torch.nn.functional.binary_cross_entropy", "torch.nn.BCELoss")
_BCE_LOGITS = ("torch.nn.functional.binary_cross_entropy_with_logits", "torch.nn.BCEWithLogitsLoss")
_FOCAL = ("torchvision.ops.sigmoid_focal_loss+*",)
_KL = ("torch.nn.functional.kl_div", "torch.nn.KLDivLoss")
_SOFTMAX = (
    "torch.nn.functional.softmax",
    "torch.nn.Softmax",
    "torch.nn.functional.log_softmax",
    "torch.nn.LogSoftmax",
    "torch.logsumexp",
)


def _elementwise(f: Finding) -> bool:
    """The quantity has one entry per input element (a gradient, or ``reduction=none``)."""
    return f.quantity.startswith("grad:") or f.params.get("reduction") == "none"


def _reduce(per: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return per
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.sum(per)
        return np.asarray(total if reduction == "sum" else total / per.size)


# ------------------------------------------------------------ label / ignore_index


def _default_ignore_index(f: Finding) -> bool:
    """The case set no ignore_index, a kept label is -100 and every other kept label is a
    valid class: torch skipped the -100 positions by its default ``ignore_index``."""
    if f.expected is not None or f.actual is None or f.params.get("ignore_index") is not None:
        return False
    if not integer_target(f):
        return False
    counted = kept(f)
    minus = counted & (labels(f) == TORCH_IGNORE_INDEX)
    return bool(minus.any()) and not bool(np.any(counted & ~minus & out_of_range(f)))


# ------------------------------------------------------------------------ BCE


def _bce_clamped_value(f: Finding) -> bool:
    """torch's value is the BCE with ``log`` clamped at -100, and the clamp acts."""
    if f.quantity != "value" or f.actual is None:
        return False
    p, y = floats(f.inputs["probs"]), floats(f.inputs["target"])
    w = f.inputs.get("weight")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p, log_q = np.log(p), np.log1p(-p)
        clamped = ((y != 0) & (log_p < LOG_CLAMP)) | ((y != 1) & (log_q < LOG_CLAMP))
        per = -(y * np.maximum(log_p, LOG_CLAMP) + (1 - y) * np.maximum(log_q, LOG_CLAMP))
        if w is not None:
            per = per * floats(w)
            clamped &= np.broadcast_to(floats(w) != 0, clamped.shape)
    if not clamped.any():
        return False
    model = _reduce(per, f.params.get("reduction", "mean"))
    where = clamped if f.params.get("reduction") == "none" else np.asarray(True)
    if not differs_only_where(f, where):
        return False
    # at the differing elements torch must hold the clamped value
    rtol, atol = tolerance(f)
    d = differs(f)
    a, m = floats(f.actual).reshape(d.shape), np.broadcast_to(model, d.shape)
    return bool(np.all(np.abs(a[d] - m[d]) <= 4 * (atol + rtol * np.abs(m[d]))))


def _bce_grad_clamp(f: Finding) -> bool:
    """Differences of ``grad:probs`` only where ``x (1 - x) < 1e-12``: the backward divides
    by ``max(x (1 - x), 1e-12)`` (a constant that rounds to 0 in float16)."""
    if f.quantity != "grad:probs":
        return False
    p = floats(f.inputs["probs"])
    return differs_only_where(f, p * (1 - p) < BCE_GRAD_EPSILON)


def _outside_unit(a) -> bool:
    """Some element is NaN or outside ``[0, 1]`` (torch's range check rejects NaN too)."""
    a = floats(a)
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.isnan(a) | (a < 0) | (a > 1)))


def _bce_range_check(argument: str, name: str) -> Callable[[Finding], bool]:
    """binary_cross_entropy raised its range check on ``argument`` (``input`` or
    ``target``), and the finding's input ``name`` does hold a NaN or a value outside
    ``[0, 1]``."""
    message = f"all elements of {argument} should be between 0 and 1"

    def raised(f: Finding) -> bool:
        return f.actual is None and message in (f.error or "") and _outside_unit(f.inputs[name])

    return raised


def _infinite_logits(f: Finding) -> bool:
    """NaN only at elements with an infinite logit (the whole value when reduced)."""
    x = floats(f.inputs["logits"])
    inf = np.isinf(x)
    if not inf.any():
        return False
    if _elementwise(f):
        return differs_only_where(f, inf, nan_only=True)
    return differs_only_where(f, np.asarray(True), nan_only=True)


# ------------------------------------------------------------------------- KL


def _kl_target_grad_at_zero(f: Finding) -> bool:
    """``grad:target`` is NaN (reference: -inf) only where the target probability is 0:
    ``kl_div`` forms ``xlogy(target, target)``, not differentiable at 0."""
    if f.quantity != "grad:target" or f.params.get("log_target"):
        return False
    t = floats(f.inputs["target"])
    return differs_only_where(f, t == 0, nan_only=True)


# -------------------------------------------------------------------- softmax


def _plus_inf_slices(f: Finding) -> bool:
    """NaN only in the softmax slices that hold a ``+inf`` (cross_entropy's class rows,
    the vocabulary of token losses, ``axis`` of softmax/log_softmax/logsumexp)."""
    x = first_input(f)
    if x.ndim == 0:
        return False
    axis = class_axis(f)
    rows = np.any(x == np.inf, axis=axis, keepdims=True)
    if not rows.any():
        return False
    if f.quantity.startswith("grad:") or f.loss in ("softmax", "log_softmax"):
        where = np.broadcast_to(rows, x.shape)
    elif f.loss == "logsumexp" or f.params.get("reduction") == "none":
        where = np.squeeze(rows, axis=axis)
    else:
        where = np.asarray(True)
    # torch: NaN where inf - inf meets, exp(x - inf) = 0 elsewhere in the slice (where
    # the reference says NaN for a slice with several +inf)
    return differs_only_where(f, where, nan_either=True)


# ------------------------------------------------------ ignore_index, soft targets


def _ignore_index_with_probabilities(f: Finding) -> bool:
    """cross_entropy raised because ``ignore_index`` was set (to anything but its default
    -100) with class-probability targets: it is "only applicable when the target contains
    class indices", and torch rejects the combination instead of ignoring the argument."""
    if f.actual is not None or f.error is None or integer_target(f):
        return False
    index = f.params.get("ignore_index")
    if index is None or index == TORCH_IGNORE_INDEX or f.inputs.get("target") is None:
        return False
    return "ignore_index is not supported for floating point target" in f.error


# ----------------------------------------------------------------------- entries

ENTRIES: list[Known] = [
    Known(
        id="torch-default-ignore-index",
        framework="torch",
        apis=(*_CE, *_NLL, "torch.nn.functional.nll_loss+torch.log", *_TOKEN),
        explanation=(
            "cross_entropy and nll_loss default to ignore_index=-100: a label -100 is "
            "silently skipped (and left out of the mean) even when no ignore_index is set, "
            "where the reference rejects it as out of range."
        ),
        link="https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        when=_default_ignore_index,
        statuses=("error",),
    ),
    Known(
        id="torch-bce-log-clamp",
        framework="torch",
        apis=_BCE,
        explanation=(
            "BCELoss clamps its log outputs at -100, so a probability of exactly 0 or 1 "
            "on the wrong side gives 100 per element instead of +inf."
        ),
        link="https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        when=_bce_clamped_value,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="torch-bce-grad-clamp",
        framework="torch",
        apis=_BCE,
        explanation=(
            "BCELoss's backward computes (x - y) / max(x (1 - x), 1e-12) (the 'linear "
            "backward' its docs promise): the gradient at x near 0 or 1 is capped (0 where "
            "x = y exactly; NaN/inf in float16, where 1e-12 rounds to 0)."
        ),
        link="https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Loss.cpp",
        when=_bce_grad_clamp,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="torch-bce-input-range-check",
        framework="torch",
        apis=_BCE,
        explanation=(
            "binary_cross_entropy checks its input on the CPU and raises 'all elements of "
            "input should be between 0 and 1' (NaN included) where the reference returns "
            "NaN."
        ),
        link="https://github.com/pytorch/pytorch/issues/51866",
        when=_bce_range_check("input", "probs"),
        statuses=("error",),
    ),
    Known(
        id="torch-bce-target-range-check",
        framework="torch",
        apis=_BCE,
        explanation=(
            "BCELoss requires targets between 0 and 1 and raises 'all elements of target "
            "should be between 0 and 1' (NaN included) where the reference extends the "
            "formula."
        ),
        link="https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        when=_bce_range_check("target", "target"),
        statuses=("error",),
    ),
    Known(
        id="torch-bce-with-logits-infinite-logit",
        framework="torch",
        apis=(*_BCE_LOGITS, *_FOCAL),
        explanation=(
            "binary_cross_entropy_with_logits returns NaN for a logit of +inf or -inf "
            "((1 - y) x + log-sum-exp form gives 0 * inf or inf - inf); the limit is 0 or "
            "+inf. Open issue; torchvision's focal loss inherits it."
        ),
        link="https://github.com/pytorch/pytorch/issues/102894",
        when=_infinite_logits,
        statuses=("nonfinite",),
    ),
    Known(
        id="torch-kl-div-target-grad-at-zero",
        framework="torch",
        apis=_KL,
        explanation=(
            "kl_div computes target * log(target) with xlogy, which is not differentiable "
            "at target = 0: the gradient for a zero target is NaN where the one-sided "
            "limit is -inf (maintainers: expected)."
        ),
        link="https://github.com/pytorch/pytorch/issues/89558",
        when=_kl_target_grad_at_zero,
        statuses=("nonfinite",),
        # the issue (torch 1.13, Nov 2022): "The torch version 1.12 works, but returns
        # zero derivative", a different (finite) answer this entry does not describe
        versions=">=1.13",
    ),
    Known(
        id="torch-softmax-plus-inf",
        framework="torch",
        apis=(*_SOFTMAX, *_CE, *_TOKEN),
        explanation=(
            "softmax/log_softmax (and so cross_entropy) return NaN for a slice holding "
            "+inf (inf - inf); the reference takes the limit (one-hot). Maintainers: "
            "the one-hot answer holds only in the limit sense."
        ),
        link="https://github.com/pytorch/pytorch/issues/6864",
        when=_plus_inf_slices,
        statuses=("nonfinite",),
    ),
    Known(
        id="torch-ignore-index-with-probability-target",
        framework="torch",
        apis=_CE,
        explanation=(
            "cross_entropy's ignore_index is only applicable to class-index targets: set "
            "(to anything but -100) with class-probability targets it raises 'ignore_index "
            "is not supported for floating point target', where the reference ignores it."
        ),
        link="https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
        when=_ignore_index_with_probabilities,
        statuses=("error",),
    ),
]
