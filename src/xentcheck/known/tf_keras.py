"""Documented differences of Keras 2 (framework ``tf-keras``, the ``tf_keras`` package; see
:mod:`xentcheck.known`).

Keras 2's losses are the code Keras 3 grew from, so most Keras-level mechanisms of the
``tensorflow`` registry hold here too, on the same rows renamed into Keras 2's namespaces
(:func:`xentcheck.adapters.keras2_names.keras2_name`): probabilities clipped to
``[epsilon, 1 - epsilon]``, categorical probabilities renormalised, binary losses averaged
over the last axis, KL summed over the class axis, ``sum_over_batch_size`` dividing by the
element count, and the TensorFlow kernels' own (the softmax gradient assuming label rows
summing to 1, ``tf.one_hot``'s zero row, the sparse op checking masked labels). Their
predicates are the ``tensorflow`` ones, unchanged (:func:`xentcheck.known.modes.derive`).

Not carried over, because Keras 2 does otherwise (``tf_keras/src``, 2.21):

* ``keras-loss-object-computes-in-floatx``: Keras 2's ``Loss`` objects compute in the
  input's dtype (``LossFunctionWrapper.call`` casts nothing; ``compute_weighted_loss``
  casts only non-float losses), so a float64 call stays float64;
* the clip for ``binary_focal_crossentropy(from_logits=True)``: Keras 2 takes
  ``sigmoid_cross_entropy_with_logits`` on the logits, unclipped (Keras 3 goes through
  probabilities).

Keras 2's own: ``backend.binary_crossentropy`` on probabilities clips them to
``[epsilon, 1 - epsilon]`` and then adds ``epsilon`` again inside both logs (TensorFlow
2.2's tf.keras onward; kept in tf-keras), so every probability, not only the clipped ones,
is moved by about ``epsilon / p``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xentcheck.adapters.keras2_names import keras2_name
from xentcheck.known import Finding, Known
from xentcheck.known import tensorflow as tf_entries
from xentcheck.known.facts import first_input_name, floats
from xentcheck.known.modes import derive
from xentcheck.known.tf_compat_v1 import acts_beyond_rounding, matches_at
from xentcheck.reference import cotangent

#: Keras 2's ``backend.epsilon()``
EPSILON = 1e-7

#: the ``tensorflow`` entries that do not hold for Keras 2, and why (see the docstring)
NOT_CARRIED = {
    "keras-loss-object-computes-in-floatx": "Keras 2's Loss objects keep the input's dtype",
    "tf-where-propagates-nan-gradients": "a tf.nn recipe of the tensorflow adapter only",
}

#: per entry id, the original API patterns Keras 2 does not share
_NOT_IN_KERAS2 = {
    "keras-probabilities-clipped-to-epsilon": ("keras.losses.binary_focal_crossentropy*",
                                               "keras.losses.BinaryFocalCrossentropy*"),
}  # fmt: skip


def _keras2_id(entry_id: str) -> str:
    return "tf-keras-" + entry_id.removeprefix("keras-").removeprefix("tf-")


def _carried(k: Known) -> list[Known]:
    """``k`` for Keras 2's rows: its Keras API patterns renamed, its predicate unchanged."""
    left_out = _NOT_IN_KERAS2.get(k.id, ())

    def runs(pattern: str) -> bool:
        keras = pattern.startswith("keras.") or pattern.startswith("*")
        return keras and pattern not in left_out

    return [
        dataclasses.replace(d, id=_keras2_id(k.id))
        for d in derive([k], "tf-keras", keras2_name, runs)
    ]


# ------------------------------------------- binary_crossentropy: epsilon after the clip

_BCE_APIS = (
    "tf_keras.losses.binary_crossentropy",
    "tf_keras.losses.BinaryCrossentropy",
    "tf_keras.backend.binary_crossentropy",
)


def _keras2_bce(f: Finding, epsilon_in_log: bool) -> np.ndarray | None:
    """What Keras 2's probability BCE row computes for the finding's quantity: ``p``
    clipped to ``[eps, 1 - eps]``, ``-(y log(p + eps) + (1 - y) log(1 - p + eps))`` (the
    second ``eps`` only with ``epsilon_in_log``), averaged over the last axis by
    ``tf_keras.losses`` (not by ``tf_keras.backend``), then reduced; the gradient is 0
    where the clip acts."""
    p, y = floats(f.inputs["probs"]), floats(f.inputs["target"])
    backend = f.api.startswith("tf_keras.backend.")
    if p.ndim == 0 and not backend:
        return None  # the last-axis mean needs an axis: Keras raises
    eps = EPSILON
    e2 = eps if epsilon_in_log else 0.0
    c = np.clip(p, eps, 1.0 - eps)
    reduction = str(f.params.get("reduction", "mean"))
    length = 1 if backend else p.shape[-1]
    with np.errstate(all="ignore"):
        lp, lq = np.log(c + e2), np.log(1.0 - c + e2)
        if f.quantity == "value":
            per = -(y * lp + (1.0 - y) * lq)
            if not backend:
                per = np.mean(per, axis=-1)
            if reduction == "none":
                return per
            return np.asarray(np.sum(per) if reduction == "sum" else np.mean(per))
        if reduction == "none":
            if not backend:
                return None  # per-sample values: no gradient against the reference
            u = cotangent(p.shape)
        else:
            u = np.full(p.shape, 1.0 / length if reduction == "sum" else 1.0 / p.size)
        inside = (p >= eps) & (p <= 1.0 - eps)
        if f.quantity == "grad:probs":
            return np.where(inside, u * (-y / (c + e2) + (1.0 - y) / (1.0 - c + e2)), 0.0)
        if f.quantity == "grad:target":
            return u * (lq - lp)
    return None


def _epsilon_after_clip(f: Finding) -> bool:
    """The row is Keras 2's probability BCE with epsilon inside the logs, and that epsilon
    is what moves it: the same computation without it differs at the dtype's tolerance."""
    if f.actual is None or f.dtype not in ("float64", "float32"):
        return False
    if "probs" not in f.inputs or "target" not in f.inputs:
        return False
    model, without = _keras2_bce(f, True), _keras2_bce(f, False)
    if not acts_beyond_rounding(model, without, f.dtype):
        return False
    return matches_at(f.actual, model, f.dtype)


# ---------------------------------------------- sum_over_batch_size: divide_no_nan


def _empty_mean_is_zero(f: Finding) -> bool:
    """A ``Loss`` object's mean of an empty input: ``sum_over_batch_size`` divides with
    ``divide_no_nan`` (``losses_utils._safe_mean``), so 0 elements give 0 where the
    reference's 0/0 is NaN."""
    if f.quantity != "value" or f.actual is None or f.expected is None:
        return False
    if str(f.params.get("reduction", "mean")) not in ("mean", "batchmean"):
        return False
    first = f.inputs.get(first_input_name(f))
    if first is None or np.size(first) != 0:
        return False
    a, e = floats(f.actual), floats(f.expected)
    return a.size == 1 and e.size == 1 and bool(np.isnan(e).all() and (a == 0).all())


# --------------------------------------------------------------------------- entries

#: Keras 2's reductions (``compute_weighted_loss``, ``_safe_mean``), as of tf-keras 2.21
_LOSSES_UTILS = (
    "https://github.com/keras-team/tf-keras/blob/v2.21.0/tf_keras/src/utils/losses_utils.py"
)

_DOUBLE_EPSILON = Known(
    id="tf-keras-binary-crossentropy-epsilon-after-clip",
    framework="tf-keras",
    apis=_BCE_APIS,
    explanation=(
        "Keras 2's binary_crossentropy on probabilities clips them to [1e-7, 1 - 1e-7] and "
        "then computes -(y log(p + 1e-7) + (1 - y) log(1 - p + 1e-7)): every probability is "
        "moved by about 1e-7/p (a clipped 0 gives -log(2e-7), 15.42, not 16.12)."
    ),
    link="https://github.com/tensorflow/tensorflow/issues/51675",
    when=_epsilon_after_clip,
    statuses=("mismatch", "nonfinite"),
)

ENTRIES: list[Known] = [
    *(d for k in tf_entries.ENTRIES if k.id not in NOT_CARRIED for d in _carried(k)),
    _DOUBLE_EPSILON,
    Known(
        id="tf-keras-empty-mean-is-zero",
        framework="tf-keras",
        apis=("tf_keras.losses.[A-Z]*", "tf_keras.backend.exp(tf_keras.losses.[A-Z]*"),
        explanation=(
            "Keras 2's sum_over_batch_size reduction divides with divide_no_nan: the mean "
            "of an empty batch is 0, not NaN."
        ),
        link=_LOSSES_UTILS,
        when=_empty_mean_is_zero,
        statuses=("nonfinite",),
    ),
]
