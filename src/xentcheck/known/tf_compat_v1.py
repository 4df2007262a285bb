"""Documented differences of ``tf.compat.v1.losses`` (framework ``tf-compat-v1``; see
:mod:`xentcheck.known`).

Every loss of TensorFlow 1 ends in ``compute_weighted_loss``, which casts the losses and
the weights to float32, multiplies, reduces with ``div_no_nan`` and casts the result back
to the input's dtype; ``log_loss`` casts ``predictions`` and ``labels`` to float32 first,
and adds ``epsilon`` inside both logs. Each predicate rebuilds what that code computes
(the reference's answer rounded to float32, the log-loss formula in float32 arithmetic,
a zero for a mean over nothing) and asks the framework's output to match it, so a fault
of another kind on the same rows stays a ``mismatch``. Two mechanisms of the kernels
underneath are TensorFlow's own, shared with the ``tensorflow`` registry: the softmax
kernel's gradient assumes label rows summing to 1, and ``tf.one_hot`` maps a bad label to
a row of zeros.

Source: ``tensorflow/python/ops/losses/losses_impl.py``. The casts are there since
TensorFlow 1.x (``math_ops.to_float`` then, ``math_ops.cast(..., dtypes.float32)`` in 2.x)
and in every 2.x release to 2.21, so the entries carry no version range.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xentcheck.accuracy import DEFAULT_TOLERANCE, rounding_allowance
from xentcheck.known import Finding, Known
from xentcheck.known import tensorflow as tf_entries
from xentcheck.known.facts import (
    class_axis,
    differs,
    first_input,
    first_input_name,
    floats,
    integer_target,
    labels,
    not_ignored,
)
from xentcheck.reference import cotangent, evaluate

#: losses_impl.py as of the TensorFlow release the adapter was written against
SOURCE = "https://github.com/tensorflow/tensorflow/blob/v2.21.0/tensorflow/python/ops/losses/losses_impl.py"

#: TensorFlow's flush of denormals (``port::ScopedFlushDenormal``), set on its CPU threads
DENORMAL = (
    "https://github.com/tensorflow/tensorflow/blob/v2.21.0/tensorflow/core/platform/denormal.h"
)

#: ``log_loss``'s default ``epsilon``
EPSILON = 1e-7

_V1 = "tf.compat.v1.losses"
#: losses whose weight is element-wise (the adapter's ``ELEMENT_WEIGHTED``)
ELEMENT_WEIGHTED = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})
_WEIGHTED_LOSS_APIS = (
    f"{_V1}.softmax_cross_entropy*",
    f"{_V1}.sparse_softmax_cross_entropy*",
    f"{_V1}.sigmoid_cross_entropy*",
)
_LOG_LOSS_APIS = (f"{_V1}.log_loss*",)
#: the log_loss rows that keep the default epsilon (not ``log_loss(epsilon=0.0...)``)
_DEFAULT_EPSILON_APIS = (f"{_V1}.log_loss", f"{_V1}.log_loss(reduction=*")

#: (rtol, atol) per dtype, the harness's table, loosened twice (as known/tensorflow.py)
_TOL = {k: (2 * r, 2 * a) for k, (r, a) in DEFAULT_TOLERANCE.items()}


def matches_at(actual, model, dtype: str) -> bool:
    """``actual`` matches ``model`` at twice the tolerance of ``dtype``, NaN and Inf in
    the same places (``model`` reshaped to ``actual`` when only the shape differs): a
    model of what TensorFlow computed, judged at the accuracy of the dtype it computed in
    (``known/tf_keras.py`` judges its models with it too)."""
    if actual is None or model is None:
        return False
    a, m = floats(actual), floats(model)
    if a.shape != m.shape:
        if a.size != m.size:
            return False
        m = m.reshape(a.shape)
    with np.errstate(invalid="ignore"):
        if not (
            np.array_equal(np.isnan(a), np.isnan(m))
            and np.array_equal(a == np.inf, m == np.inf)
            and np.array_equal(a == -np.inf, m == -np.inf)
        ):
            return False
    fin = np.isfinite(a)
    rtol, atol = _TOL[dtype]
    return bool(np.all(np.abs(a[fin] - m[fin]) <= atol + rtol * np.abs(m[fin])))


def _float32_numbers(a) -> bool:
    """Every finite element of ``a`` is a float32 number (the result of a float32 cast)."""
    a = floats(a)
    fin = np.isfinite(a)
    with np.errstate(over="ignore"):
        return bool(np.array_equal(a[fin].astype(np.float32).astype(np.float64), a[fin]))


def _in_float32(f: Finding) -> np.ndarray | None:
    """The reference's array as float32 holds it: rounded, beyond float32's range the
    infinity the cast gives (``expected`` as given for a gradient, which flows back
    through the casts into the float64 kernel)."""
    if f.expected is None:
        return None
    e = floats(f.expected)
    if f.quantity != "value":
        return e
    with np.errstate(over="ignore"):
        return e.astype(np.float32).astype(np.float64)


# ------------------------------------------------------- compute_weighted_loss: float32


def _weighted_loss_in_float32(f: Finding) -> bool:
    """A float64 call: the value is float32 numbers (the cast back keeps them), within
    float32 accuracy of the reference's value rounded to float32 (an overflow of float32
    included); a gradient within float32 accuracy (its cotangent, weights and mean
    divisor were float32)."""
    if f.dtype != "float64" or f.actual is None:
        return False
    if f.quantity == "value" and not _float32_numbers(f.actual):
        return False
    return matches_at(f.actual, _in_float32(f), "float32")


# --------------------------------------------------- log_loss: its formula in float32


def _row_epsilon(f: Finding) -> float:
    """The epsilon the row passed: 0 for the ``log_loss(epsilon=0.0...)`` rows."""
    return 0.0 if "epsilon=0.0" in f.api else EPSILON


def _dtype_of(f: Finding) -> str:
    """The dtype ``log_loss``'s result of the quantity holds: float32 for the value; a
    gradient flows back through the casts into the input's dtype, so float32 accuracy in
    a float32 or float64 one, the input dtype's in float16 and bfloat16."""
    if f.quantity == "value" or f.dtype in ("float32", "float64"):
        return "float32"
    return f.dtype


def _log_loss_model(
    f: Finding, epsilon: float, arithmetic: type = np.float32, flush: bool = False
) -> np.ndarray | None:
    """What ``log_loss`` computes for the finding's quantity, in ``arithmetic`` (float32,
    as TensorFlow does it): ``-y log(p + eps) - (1 - y) log(1 - p + eps)``, times the
    weights, reduced (``mean`` over the element count: the only mean a log_loss row runs
    with weights, and the same as the others' without; ``div_no_nan``'s 0 for nothing),
    and its gradients, all formed as the formula is (``0 * log 0`` is NaN); ``flush``:
    subnormal inputs read as 0, as TensorFlow's CPU kernels read them."""
    if "probs" not in f.inputs or "target" not in f.inputs:
        return None
    t = arithmetic
    p, y = floats(f.inputs["probs"]).astype(t), floats(f.inputs["target"]).astype(t)
    if flush:  # denormals-are-zero: a subnormal input reads as 0
        tiny = np.finfo(t).tiny
        p, y = (np.where(np.abs(a) < tiny, t(0), a) for a in (p, y))
    w = f.inputs.get("weight")
    w = np.broadcast_to(floats(w).astype(t), p.shape) if w is not None else np.ones_like(p)
    eps, one = t(epsilon), t(1)
    reduction = str(f.params.get("reduction", "mean"))
    n = t(p.size)
    with np.errstate(all="ignore"):
        lp, lq = np.log(p + eps), np.log(one - p + eps)
        if f.quantity == "value":
            per = (-(y * lp) - (one - y) * lq) * w
            if reduction == "none":
                return per.astype(np.float64)
            total = np.sum(per, dtype=t)
            if reduction == "sum":
                return np.asarray(total, dtype=np.float64)
            return np.asarray(total / n if n else t(0), dtype=np.float64)
        if reduction == "none":
            u = cotangent(p.shape).astype(t) * w
        elif reduction == "sum":
            u = w
        else:
            u = w / n if n else np.zeros_like(w)
        if f.quantity == "grad:probs":
            return (u * (-y / (p + eps) + (one - y) / (one - p + eps))).astype(np.float64)
        if f.quantity == "grad:target":
            return (u * (lq - lp)).astype(np.float64)
    return None


def acts_beyond_rounding(model: np.ndarray | None, without: np.ndarray | None, dtype: str) -> bool:
    """``model`` differs from ``without`` (the same computation without the mechanism)
    beyond the rounding of ``dtype`` (8 ULPs), or in its NaN/Inf pattern, somewhere: the
    mechanism acts (``known/tf_keras.py`` asks it too)."""
    if model is None or without is None or np.shape(model) != np.shape(without):
        return False
    m, w = floats(model), floats(without)
    fin = np.isfinite(m) & np.isfinite(w)
    with np.errstate(invalid="ignore"):
        pattern = ~fin & ~((m == w) | (np.isnan(m) & np.isnan(w)))
    excess = np.abs(m[fin] - w[fin]) > rounding_allowance(w[fin], dtype)
    return bool(pattern.any() or excess.any())


def _new_nan(f: Finding) -> bool:
    """``actual`` is NaN somewhere the reference is not."""
    a, e = floats(f.actual), floats(f.expected)
    return a.shape == e.shape and bool(np.any(np.isnan(a) & ~np.isnan(e)))


def _log_loss_epsilon(f: Finding) -> bool:
    """The row is ``log_loss``'s formula with epsilon, in float32, and the epsilon is what
    moves it: the same formula without it differs beyond float32's rounding."""
    if f.actual is None:
        return False
    with_eps = _log_loss_model(f, EPSILON)
    if not acts_beyond_rounding(with_eps, _log_loss_model(f, 0.0), _dtype_of(f)):
        return False
    return matches_at(f.actual, with_eps, _dtype_of(f))


def _log_loss_in_float32(f: Finding) -> bool:
    """A float64 call of ``log_loss`` is its formula (with the row's epsilon) computed in
    float32 on the inputs cast to float32: float32 numbers, no NaN the reference lacks
    (``0 * log 0`` is another entry's), close to that model, where the same formula in
    float64 arithmetic is off beyond float64's rounding."""
    if f.dtype != "float64" or f.actual is None or f.expected is None:
        return False
    if not _float32_numbers(f.actual) or _new_nan(f):
        return False
    eps = _row_epsilon(f)
    if not acts_beyond_rounding(f.actual, _log_loss_model(f, eps, np.float64), f.dtype):
        return False
    return matches_at(f.actual, _log_loss_model(f, eps), "float32")


def _log_loss_flushes_subnormals(f: Finding) -> bool:
    """A probability that is subnormal in float32 (below 1.2e-38), which ``log_loss``'s
    cast makes of it, reads as 0 in TensorFlow's CPU kernels (denormals are flushed): the
    row is the float32 formula with those inputs at 0, and the flush changes it."""
    if f.actual is None:
        return False
    eps = _row_epsilon(f)
    flushed = _log_loss_model(f, eps, flush=True)
    if not acts_beyond_rounding(flushed, _log_loss_model(f, eps), _dtype_of(f)):
        return False
    return matches_at(f.actual, flushed, _dtype_of(f))


def _log_loss_zero_times_log_zero(f: Finding) -> bool:
    """With ``epsilon=0.0`` a probability of 0 or 1 (after the cast to float32) puts
    ``log 0 = -inf`` next to a zero coefficient (``y = 0`` or ``1 - y = 0``): the formula
    gives ``0 * -inf = NaN`` where the reference's limit is 0. The row is that formula,
    NaN exactly where it is."""
    if f.actual is None or f.expected is None or _row_epsilon(f) != 0.0 or not _new_nan(f):
        return False
    p, y = (floats(f.inputs[k]).astype(np.float32) for k in ("probs", "target"))
    if not np.any(((p == 0) & (y == 0)) | ((p == 1) & (y == 1))):
        return False
    return matches_at(f.actual, _log_loss_model(f, 0.0), _dtype_of(f))


def _log_loss_checks_nothing(f: Finding) -> bool:
    """A probability outside ``[0, 1]``, which the reference rejects: ``log_loss`` checks
    nothing and returns its formula's value there (NaN where a log's argument is below 0),
    with the row's own epsilon."""
    if not f.expect_error or f.actual is None or f.quantity != "value":
        return False
    if "probs" not in f.inputs or "target" not in f.inputs:
        return False
    p = floats(f.inputs["probs"])
    with np.errstate(invalid="ignore"):
        if not np.any((p < 0) | (p > 1)):
            return False
    return matches_at(f.actual, _log_loss_model(f, _row_epsilon(f)), "float32")


# ------------------------------------------------ weights multiply: 0 * inf, 0 * NaN


def _unweighted_losses(f: Finding) -> np.ndarray | None:
    """The reference's loss per position without weights (ignored labels read as class
    0, the label the recipe passes there), or None for a loss without weights."""
    params = {"reduction": "none"}
    try:
        if f.loss in ELEMENT_WEIGHTED:
            first = first_input_name(f)
            inputs = {first: f.inputs[first], "target": f.inputs["target"]}
        elif f.loss == "softmax_cross_entropy" and integer_target(f):
            shape = np.shape(f.inputs["target"])
            safe = np.where(not_ignored(f), labels(f), 0).reshape(shape)
            inputs = {"logits": f.inputs["logits"], "target": safe}
            params["label_smoothing"] = f.params.get("label_smoothing", 0.0)
        else:
            return None
        return floats(evaluate(f.loss, inputs, params).value)
    except ValueError:  # a label or probability the reference rejects: no model
        return None


def _zero_weights(f: Finding, shape: tuple[int, ...]) -> np.ndarray | None:
    """Per position, whether the row passed weight 0 there (an element weight of 0, a
    class weight of 0, an ignored label); None when it passed no weights."""
    w = f.inputs.get("weight")
    if f.loss in ELEMENT_WEIGHTED:
        return None if w is None else np.broadcast_to(floats(w) == 0, shape)
    kept = not_ignored(f)
    zero = ~kept
    if w is not None:
        zero = zero | (floats(w)[np.where(kept, labels(f), 0)] == 0)
    elif f.params.get("ignore_index") is None:
        return None
    return zero.reshape(shape)


def _zero_weight_times_nonfinite(f: Finding) -> bool:
    """``compute_weighted_loss`` multiplies the losses by the weights: where a position's
    loss is inf or NaN (a probability of 0 on the wrong side, NaN logits), weight 0 gives
    ``0 * inf = NaN`` (and NaN gradients there), where the reference's zero weight removes
    the term. The row's NaNs lie only there, its other numbers are the reference's."""
    if f.actual is None or f.expected is None or not _new_nan(f):
        return False
    per = _unweighted_losses(f)
    zero = None if per is None else _zero_weights(f, per.shape)
    if zero is None:
        return False
    bad = zero & ~np.isfinite(per)
    a, e = floats(f.actual), floats(f.expected)
    nan = np.isnan(a) & ~np.isnan(e)
    if not bad.any():
        return False
    if a.size > 1:
        if a.shape != per.shape:  # a gradient of the logits: positions along the class axis
            bad = np.broadcast_to(np.expand_dims(bad, class_axis(f) % a.ndim), a.shape)
        if a.shape != bad.shape or not np.all(bad[nan]):
            return False
    rest = ~nan
    return matches_at(a[rest], e[rest], "float32" if f.dtype == "float64" else f.dtype)


# ------------------------------------------------------------ div_no_nan: nothing is 0


def _denominator(f: Finding) -> float:
    """The reference's mean divisor, which every row's mean mode shares by construction:
    the summed class weights of the kept positions for class indices, else the number of
    per-sample losses."""
    if f.loss == "softmax_cross_entropy" and integer_target(f):
        t, kept = labels(f), not_ignored(f)
        w = f.inputs.get("weight")
        if w is None:
            return float(np.sum(kept))
        return float(np.sum(floats(w)[np.where(kept, t, 0)][kept]))
    x = first_input(f)
    if f.loss == "softmax_cross_entropy":
        return float(x.size // x.shape[1 if x.ndim > 1 else 0]) if x.size else 0.0
    return float(x.size)


def _mean_of_nothing_is_zero(f: Finding) -> bool:
    """A mean whose divisor is 0 (no element, every position ignored or weighted 0): the
    reference's 0/0 is NaN, ``div_no_nan`` gives 0, and 0 flows back as the gradient."""
    if str(f.params.get("reduction", "mean")) != "mean" or f.actual is None:
        return False
    d = differs(f)
    if d is None or not d.any() or _denominator(f) != 0.0:
        return False
    a, e = floats(f.actual).reshape(d.shape), floats(f.expected).reshape(d.shape)
    return bool(np.all(np.isnan(e[d]) & (a[d] == 0.0)))


# --------------------------------------------------------------------------- entries


def _shared(entry_id: str, new_id: str, apis: tuple[str, ...]) -> Known:
    """A ``tensorflow`` entry of a kernel mechanism the v1 losses share, re-registered."""
    k = next(k for k in tf_entries.ENTRIES if k.id == entry_id)
    return dataclasses.replace(k, id=new_id, framework="tf-compat-v1", apis=apis)


ENTRIES: list[Known] = [
    Known(
        id="tf-compat-v1-weighted-loss-in-float32",
        framework="tf-compat-v1",
        apis=_WEIGHTED_LOSS_APIS,
        explanation=(
            "compute_weighted_loss casts the losses and weights to float32, reduces and "
            "casts back: a float64 call returns float64 holding float32 numbers (inf where "
            "the loss exceeds float32's range), and its gradient passes float32 weights "
            "and mean divisors."
        ),
        link=SOURCE,
        when=_weighted_loss_in_float32,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="tf-compat-v1-log-loss-epsilon",
        framework="tf-compat-v1",
        apis=_DEFAULT_EPSILON_APIS,
        explanation=(
            "log_loss computes -y log(p + epsilon) - (1 - y) log(1 - p + epsilon) with "
            "epsilon = 1e-7 (float32): a probability of 0 or 1 gives about 16.1 instead "
            "of inf, and small probabilities lose digits (epsilon=0.0 removes it)."
        ),
        link=SOURCE,
        when=_log_loss_epsilon,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="tf-compat-v1-log-loss-in-float32",
        framework="tf-compat-v1",
        apis=_LOG_LOSS_APIS,
        explanation=(
            "log_loss casts predictions and labels to float32 before anything else: "
            "float64 input gives a float32 loss and float32-accurate gradients."
        ),
        link=SOURCE,
        when=_log_loss_in_float32,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="tf-compat-v1-log-loss-flushes-subnormal-probabilities",
        framework="tf-compat-v1",
        apis=_LOG_LOSS_APIS,
        explanation=(
            "log_loss casts probabilities to float32, and TensorFlow's CPU kernels flush "
            "float32 subnormals to zero: a probability below 1.2e-38 is read as 0, so with "
            "epsilon=0.0 its loss is inf (and its gradient -inf) instead of about 87.5."
        ),
        link=DENORMAL,
        when=_log_loss_flushes_subnormals,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="tf-compat-v1-log-loss-zero-times-log-zero",
        framework="tf-compat-v1",
        apis=(f"{_V1}.log_loss(epsilon=0.0*",),
        explanation=(
            "log_loss's epsilon is what keeps it finite: with epsilon=0.0 a probability of "
            "exactly 0 or 1 (after the cast to float32) gives 0 * log(0) = NaN where the "
            "label's coefficient is 0, whose limit is 0."
        ),
        link=SOURCE,
        when=_log_loss_zero_times_log_zero,
        statuses=("nonfinite",),
    ),
    Known(
        id="tf-compat-v1-zero-weight-times-nonfinite-loss",
        framework="tf-compat-v1",
        apis=(f"{_V1}.*",),
        explanation=(
            "compute_weighted_loss multiplies losses by weights: a zero weight (an ignored "
            "position included) on an infinite or NaN loss gives 0 * inf = NaN in the value "
            "and the gradient, where the reference drops the term."
        ),
        link=SOURCE,
        when=_zero_weight_times_nonfinite,
        statuses=("nonfinite",),
    ),
    Known(
        id="tf-compat-v1-log-loss-checks-no-range",
        framework="tf-compat-v1",
        apis=_LOG_LOSS_APIS,
        explanation=(
            "log_loss checks neither predictions nor labels: a probability outside [0, 1] "
            "gives the formula's number (NaN where a log's argument is negative) instead of "
            "an error."
        ),
        link=SOURCE,
        when=_log_loss_checks_nothing,
        statuses=("error",),
    ),
    Known(
        id="tf-compat-v1-mean-of-nothing-is-zero",
        framework="tf-compat-v1",
        apis=(f"{_V1}.*",),
        explanation=(
            "compute_weighted_loss divides with div_no_nan: a mean over no element (or "
            "only ignored / zero-weight ones) is 0, not NaN, and so is its gradient."
        ),
        link=SOURCE,
        when=_mean_of_nothing_is_zero,
        statuses=("nonfinite",),
    ),
    _shared(
        "tf-softmax-xent-gradient-assumes-normalised-labels",
        "tf-compat-v1-softmax-xent-gradient-assumes-normalised-labels",
        (f"{_V1}.softmax_cross_entropy", f"{_V1}.softmax_cross_entropy(reduction=*)"),
    ),
    _shared(
        "tf-one-hot-zero-row-for-bad-label",
        "tf-compat-v1-one-hot-zero-row-for-bad-label",
        ("*one_hot*",),
    ),
]
