"""Keras 3 APIs of the registry, declared once in ``keras.ops`` so every backend runs them.

``keras.losses.*`` (functional and class forms), ``keras.ops.*`` and
``keras.activations.*``: one table, :data:`DECLARATIONS`, that three frameworks run with
their own plumbing (the backend's autodiff for the VJP): ``tensorflow`` (Keras on its
TensorFlow backend), ``keras-jax`` and ``keras-torch``. This module imports ``keras``:
the importing adapter selects the backend (``KERAS_BACKEND``) beforehand.

How a call is made, the way a user would:

* Class axis: the reference has it at 1 (``[N, C, d1..]``); Keras is channels-last, so
  K-dim inputs get their class axis moved last (``keras.ops.transpose``).
* A framework argument is passed exactly when the case set the parameter
  (:meth:`Call.is_set <xentcheck.adapters.base.Call.is_set>`, ``0.0`` and the default
  included), and a recipe standing for a missing argument is applied exactly then. The
  rows' own arguments are passed always: ``from_logits``, ``axis`` of
  ``keras.ops.logsumexp`` (whose default reduces every axis), ``apply_class_balancing``
  of the focal loss (``True``, ``False`` where the case turns alpha off: null or
  negative, torchvision's convention).
* Functional losses return per-sample losses: the reduction is the user's
  (``keras.ops.sum``; ``keras.ops.mean``, or the sum over the kept elements' count when
  an ignore class is in play).
* ``Loss`` objects get the reduction by name (``batchmean`` is ``sum_over_batch_size``)
  and compute in ``keras.backend.floatx()`` as Keras documents.
* A parameter an API lacks is covered by the idiomatic recipe (``+sample_weight=...``),
  run as its own row; otherwise the row is ``Unsupported`` (a guard).

The recipes below are user code in ``keras.ops`` (their source is the snippet).
"""

from __future__ import annotations

from typing import Any

import keras

from xentcheck.adapters.base import Api, Call
from xentcheck.adapters.declare import (
    Construct,
    Declaration,
    Function,
    Keyword,
    Recipe,
    const,
    integer_target,
    lacks,
    missing,
    param,
    probability_target,
)

__all__ = [
    "ALIASES",
    "AXIS_DEFAULT_ALL",
    "DECLARATIONS",
    "TOKEN_KERAS",
    "keras_versions",
    "no_nll",
]

# ------------------------------------------------------------------------ user recipes


def class_last(x):
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = len(x.shape)
    if nd <= 2:
        return x
    return keras.ops.transpose(x, [0, *range(2, nd), 1])


def reduce_loss(per, reduction, denominator=None, batch=None):
    """The reduction a user writes around a loss returning per-sample values."""
    if reduction == "none":
        return per
    if reduction == "sum":
        return keras.ops.sum(per)
    if reduction == "mean":
        if denominator is None:
            return keras.ops.mean(per)
        return keras.ops.sum(per) / denominator
    if reduction == "batchmean":
        n = batch if batch is not None else (per.shape[0] if len(per.shape) else 1)
        return keras.ops.sum(per) / keras.ops.cast(n, per.dtype)
    raise ValueError(f"unknown reduction {reduction!r}")


def categorical_crossentropy(target, pred, reduction, **kwargs):
    per = keras.losses.categorical_crossentropy(class_last(target), class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def ops_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = keras.ops.categorical_crossentropy(class_last(target), class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def sparse_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = keras.losses.sparse_categorical_crossentropy(target, class_last(pred), **kwargs)
    if "ignore_class" not in kwargs:
        return reduce_loss(per, reduction)
    # the functional form zeroes ignored elements: the mean is over the kept ones
    kept = keras.ops.cast(keras.ops.not_equal(target, kwargs["ignore_class"]), per.dtype)
    return reduce_loss(per, reduction, keras.ops.sum(kept))


def ops_sparse_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = keras.ops.sparse_categorical_crossentropy(target, class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def categorical_crossentropy_object(target, pred, **config):
    loss = keras.losses.CategoricalCrossentropy(**config)
    return loss(class_last(target), class_last(pred))


def one_hot_categorical_crossentropy_object(target, pred, **config):
    """Class indices through ``CategoricalCrossentropy`` (label smoothing): one_hot first."""
    loss = keras.losses.CategoricalCrossentropy(**config)
    pred = class_last(pred)
    return loss(keras.ops.one_hot(target, pred.shape[-1], dtype=pred.dtype), pred)


def sparse_categorical_crossentropy_object(target, pred, weight=None, **config):
    """``SparseCategoricalCrossentropy``; class weights as Keras users pass them,
    ``sample_weight=take(weight, target)`` (class 0 where the ignore class stands)."""
    loss = keras.losses.SparseCategoricalCrossentropy(**config)
    sample_weight = None
    if weight is not None:
        safe = target
        if "ignore_class" in config:
            kept = keras.ops.not_equal(target, config["ignore_class"])
            safe = keras.ops.where(kept, target, keras.ops.zeros_like(target))
        sample_weight = keras.ops.take(weight, safe)
    return loss(target, class_last(pred), sample_weight=sample_weight)


def binary_crossentropy(target, pred, reduction, **kwargs):
    return reduce_loss(keras.losses.binary_crossentropy(target, pred, **kwargs), reduction)


def ops_binary_crossentropy(target, pred, reduction, **kwargs):
    return reduce_loss(keras.ops.binary_crossentropy(target, pred, **kwargs), reduction)


def binary_focal_crossentropy(target, logits, reduction, **kwargs):
    return reduce_loss(keras.losses.binary_focal_crossentropy(target, logits, **kwargs), reduction)


def kl_probabilities(target, log_pred, log_target):
    """Keras takes probabilities: ``y_pred = exp(input)``; ``y_true = exp(target)`` for
    log-targets. The class axis is moved last: Keras sums over the last axis."""
    y_pred = keras.ops.exp(class_last(log_pred))
    y_true = class_last(target)
    if log_target:
        y_true = keras.ops.exp(y_true)
    return y_true, y_pred


def kl_divergence(target, log_pred, reduction, log_target=False):
    per = keras.losses.kl_divergence(*kl_probabilities(target, log_pred, log_target))
    batch = int(log_pred.shape[0]) if len(log_pred.shape) else 1
    return reduce_loss(per, reduction, batch=batch)


def kl_divergence_object(target, log_pred, log_target=False, **config):
    loss = keras.losses.KLDivergence(**config)
    return loss(*kl_probabilities(target, log_pred, log_target))


def token_cross_entropy(target, logits, mask=None, **config):
    """``SparseCategoricalCrossentropy(from_logits=True[, ignore_class])`` with
    ``sample_weight=mask``, default reduction."""
    loss = keras.losses.SparseCategoricalCrossentropy(**config)
    return loss(target, logits, sample_weight=mask)


def perplexity(target, logits, mask=None, **config):
    return keras.ops.exp(token_cross_entropy(target, logits, mask, **config))


# ------------------------------------------------------------------------------ table

AXIS_DEFAULT_ALL = "the framework default reduces every axis"

TOKEN_KERAS = (
    "keras.losses.SparseCategoricalCrossentropy(from_logits=True,ignore_class)+sample_weight=mask"
)

_NO_NLL = (
    "Keras has no negative-log-likelihood loss on log-probabilities "
    "(sparse_categorical_crossentropy(from_logits=True) re-normalises its input)"
)

#: the case's reduction by Keras's name (``Loss(reduction=...)``)
KERAS_REDUCTION = {"none": "none", "sum": "sum", "mean": "mean", "batchmean": "sum_over_batch_size"}


def _smoothing(call: Call) -> bool:
    return call.is_set("label_smoothing")


def _bare(call: Call) -> bool:
    """No weights, ignore_index or label smoothing: the calls the ``keras.ops`` forms are
    for (their ``keras.losses`` siblings carry those parameters)."""
    return not any(map(call.is_set, ("weight", "pos_weight", "ignore_index", "label_smoothing")))


def _sparse_plain(call: Call) -> bool:
    return call.integer_target and not _smoothing(call) and not call.is_set("weight")


def _class_weights(call: Call) -> bool:
    return call.integer_target and not _smoothing(call) and call.is_set("weight")


def _log_target(call: Call) -> bool:
    return bool(call.params.get("log_target", False))


def _not_log_target(call: Call) -> bool:
    return not _log_target(call)


def _balancing(call: Call) -> bool:
    """alpha weighting (``alpha*t + (1-alpha)*(1-t)``) is ``apply_class_balancing`` in
    Keras: on, but where the case turned it off (``alpha: null`` or negative)."""
    alpha = call.params.get("alpha")
    return not (call.is_set("alpha") and (alpha is None or float(alpha) < 0))


_REDUCE = {"reduction": param("reduction", "mean")}
_LOGITS = {"from_logits": const(True)}
_PROBS = {"from_logits": const(False)}
_SMOOTH = {"label_smoothing": "label_smoothing"}
_IGNORE = {"ignore_index": "ignore_class"}
_OBJ = {"reduction": Keyword("reduction", KERAS_REDUCTION.__getitem__)}
_FOCAL = {"alpha": "alpha", "gamma": "gamma"}
_BALANCE = {"apply_class_balancing": _balancing}
_KL = {"log_target": param("log_target", False)}
_AXIS = {"axis": "axis"}

_CCE, _SCCE = (
    "keras.losses.categorical_crossentropy",
    "keras.losses.sparse_categorical_crossentropy",
)
_CCE_OBJ, _SCCE_OBJ = (
    "keras.losses.CategoricalCrossentropy",
    "keras.losses.SparseCategoricalCrossentropy",
)
_OPS_CCE, _OPS_SCCE = (
    "keras.ops.categorical_crossentropy",
    "keras.ops.sparse_categorical_crossentropy",
)
_BCE, _BCE_OBJ, _OPS_BCE = (
    "keras.losses.binary_crossentropy",
    "keras.losses.BinaryCrossentropy",
    "keras.ops.binary_crossentropy",
)
_KL_FN, _KL_OBJ = "keras.losses.kl_divergence", "keras.losses.KLDivergence()"
_FOCAL_NAME = "(from_logits=True,apply_class_balancing=True)"
_SOFTMAX, _CATEGORICAL = "softmax_cross_entropy", "categorical_cross_entropy"
_BINARY, _BINARY_LOGITS = "binary_cross_entropy", "binary_cross_entropy_with_logits"
_LOGITS_NAME = "(from_logits=True)"

D = Declaration
DECLARATIONS: list[Declaration] = [
    # softmax cross-entropy on logits
    D(f"{_CCE}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(categorical_crossentropy, ("target", "logits"), _SMOOTH, _LOGITS | _REDUCE),
      applies=probability_target, guard=lacks(_CCE, "weight", "ignore_index")),
    D(f"{_CCE_OBJ}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(categorical_crossentropy_object, ("target", "logits"), _SMOOTH | _OBJ, _LOGITS),
      applies=probability_target, guard=lacks(_CCE_OBJ, "weight", "ignore_index")),
    D(f"{_CCE_OBJ}{_LOGITS_NAME}+one_hot(target)", _SOFTMAX,
      Recipe(one_hot_categorical_crossentropy_object, ("target", "logits"), _SMOOTH | _OBJ, _LOGITS),
      applies=lambda c: integer_target(c) and _smoothing(c), guard=lacks(_CCE_OBJ, "weight", "ignore_index"),
      doc="class indices with label smoothing: the Keras recipe on one_hot(target)"),
    D(f"{_SCCE}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(sparse_categorical_crossentropy, ("target", "logits"), _IGNORE, _LOGITS | _REDUCE),
      applies=_sparse_plain, guard=lacks(_SCCE, "weight", "label_smoothing")),
    D(f"{_SCCE_OBJ}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(sparse_categorical_crossentropy_object, ("target", "logits"), _IGNORE | _OBJ, _LOGITS),
      applies=_sparse_plain, guard=lacks(_SCCE_OBJ, "weight", "label_smoothing")),
    D(f"{_SCCE_OBJ}{_LOGITS_NAME}+sample_weight=weight[target]", _SOFTMAX,
      Recipe(sparse_categorical_crossentropy_object, ("target", "logits"),
             {"weight": "weight"} | _IGNORE | _OBJ, _LOGITS),
      applies=_class_weights, guard=lacks(_SCCE_OBJ, "label_smoothing"),
      doc="class weights as Keras users pass them: sample_weight=gather(weight, target)"),
    D(f"{_OPS_CCE}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(ops_categorical_crossentropy, ("target", "logits"), always=_LOGITS | _REDUCE),
      applies=lambda c: probability_target(c) and _bare(c),
      guard=lacks(_OPS_CCE, "weight", "ignore_index", "label_smoothing")),
    D(f"{_OPS_SCCE}{_LOGITS_NAME}", _SOFTMAX,
      Recipe(ops_sparse_categorical_crossentropy, ("target", "logits"), always=_LOGITS | _REDUCE),
      applies=lambda c: integer_target(c) and _bare(c),
      guard=lacks(_OPS_SCCE, "weight", "ignore_index", "label_smoothing")),
    # categorical cross-entropy on probabilities
    D(_CCE, _CATEGORICAL,
      Recipe(categorical_crossentropy, ("target", "probs"), _SMOOTH, _PROBS | _REDUCE),
      applies=probability_target, guard=lacks(_CCE, "weight", "ignore_index")),
    D(_CCE_OBJ, _CATEGORICAL,
      Recipe(categorical_crossentropy_object, ("target", "probs"), _SMOOTH | _OBJ),
      applies=probability_target, guard=lacks(_CCE_OBJ, "weight", "ignore_index")),
    D(_SCCE, _CATEGORICAL,
      Recipe(sparse_categorical_crossentropy, ("target", "probs"), _IGNORE, _PROBS | _REDUCE),
      applies=integer_target, guard=lacks(_SCCE, "weight", "label_smoothing")),
    D(_SCCE_OBJ, _CATEGORICAL,
      Recipe(sparse_categorical_crossentropy_object, ("target", "probs"), _IGNORE | _OBJ),
      applies=integer_target, guard=lacks(_SCCE_OBJ, "weight", "label_smoothing")),
    D(_OPS_CCE, _CATEGORICAL,
      Recipe(ops_categorical_crossentropy, ("target", "probs"), always=_PROBS | _REDUCE),
      applies=probability_target, guard=lacks(_OPS_CCE, "weight", "ignore_index", "label_smoothing")),
    D(_OPS_SCCE, _CATEGORICAL,
      Recipe(ops_sparse_categorical_crossentropy, ("target", "probs"), always=_PROBS | _REDUCE),
      applies=integer_target, guard=lacks(_OPS_SCCE, "weight", "ignore_index", "label_smoothing")),
    # binary cross-entropy on probabilities and on logits, focal loss
    D(_BCE, _BINARY, Recipe(binary_crossentropy, ("target", "probs"), always=_PROBS | _REDUCE),
      guard=lacks(_BCE, "weight", "pos_weight")),
    D(_BCE_OBJ, _BINARY, Construct(_BCE_OBJ, ("target", "probs"), _OBJ),
      guard=lacks(_BCE_OBJ, "weight", "pos_weight")),
    D(_OPS_BCE, _BINARY, Recipe(ops_binary_crossentropy, ("target", "probs"), always=_PROBS | _REDUCE),
      applies=_bare, guard=lacks(_OPS_BCE, "weight", "pos_weight")),
    D(f"{_BCE}{_LOGITS_NAME}", _BINARY_LOGITS,
      Recipe(binary_crossentropy, ("target", "logits"), always=_LOGITS | _REDUCE),
      guard=lacks(_BCE, "weight", "pos_weight")),
    D(f"{_BCE_OBJ}{_LOGITS_NAME}", _BINARY_LOGITS,
      Construct(_BCE_OBJ, ("target", "logits"), _OBJ, _LOGITS),
      guard=lacks(_BCE_OBJ, "weight", "pos_weight")),
    D(f"{_OPS_BCE}{_LOGITS_NAME}", _BINARY_LOGITS,
      Recipe(ops_binary_crossentropy, ("target", "logits"), always=_LOGITS | _REDUCE),
      applies=_bare, guard=lacks(_OPS_BCE, "weight", "pos_weight")),
    D(f"{_BCE}{_LOGITS_NAME}", "smoothed_binary_cross_entropy",
      Recipe(binary_crossentropy, ("target", "logits"), _SMOOTH, _LOGITS | _REDUCE)),
    D(f"{_BCE_OBJ}{_LOGITS_NAME}", "smoothed_binary_cross_entropy",
      Construct(_BCE_OBJ, ("target", "logits"), _SMOOTH | _OBJ, _LOGITS)),
    D(f"keras.losses.binary_focal_crossentropy{_FOCAL_NAME}", "sigmoid_focal_loss",
      Recipe(binary_focal_crossentropy, ("target", "logits"), _FOCAL, _LOGITS | _BALANCE | _REDUCE)),
    D(f"keras.losses.BinaryFocalCrossentropy{_FOCAL_NAME}", "sigmoid_focal_loss",
      Construct("keras.losses.BinaryFocalCrossentropy", ("target", "logits"), _FOCAL | _OBJ,
                _LOGITS | _BALANCE)),
    # KL divergence: Keras takes probabilities
    D(f"{_KL_FN}(target,exp(input))", "kl_divergence",
      Recipe(kl_divergence, ("target", "input"), always=_KL | _REDUCE), applies=_not_log_target),
    D(f"{_KL_FN}(exp(target),exp(input))", "kl_divergence",
      Recipe(kl_divergence, ("target", "input"), always=_KL | _REDUCE), applies=_log_target),
    D(f"{_KL_OBJ}(target,exp(input))", "kl_divergence",
      Recipe(kl_divergence_object, ("target", "input"), _OBJ, _KL), applies=_not_log_target),
    D(f"{_KL_OBJ}(exp(target),exp(input))", "kl_divergence",
      Recipe(kl_divergence_object, ("target", "input"), _OBJ, _KL), applies=_log_target),
    # token losses
    D(TOKEN_KERAS, "token_cross_entropy",
      Recipe(token_cross_entropy, ("target", "logits"), {"mask": "mask"} | _IGNORE, _LOGITS)),
    D(f"keras.ops.exp({TOKEN_KERAS})", "perplexity",
      Recipe(perplexity, ("target", "logits"), {"mask": "mask"} | _IGNORE, _LOGITS)),
    # activations
    D("keras.ops.softmax", "softmax", Function("keras.ops.softmax", ("x",), _AXIS)),
    D("keras.activations.softmax", "softmax", Function("keras.activations.softmax", ("x",), _AXIS)),
    D("keras.ops.log_softmax", "log_softmax", Function("keras.ops.log_softmax", ("x",), _AXIS)),
    D("keras.activations.log_softmax", "log_softmax",
      Function("keras.activations.log_softmax", ("x",), _AXIS)),
    D("keras.ops.logsumexp", "logsumexp",
      Function("keras.ops.logsumexp", ("x",), always={"axis": param("axis")}),
      doc=f"axis always passed: {AXIS_DEFAULT_ALL}"),
    D("keras.ops.sigmoid", "sigmoid", Function("keras.ops.sigmoid", ("x",))),
    D("keras.activations.sigmoid", "sigmoid", Function("keras.activations.sigmoid", ("x",))),
    D("keras.ops.log_sigmoid", "log_sigmoid", Function("keras.ops.log_sigmoid", ("x",))),
    D("keras.activations.log_sigmoid", "log_sigmoid", Function("keras.activations.log_sigmoid", ("x",))),
]  # fmt: skip

#: dotted-path heads as a user imports them (``keras.losses...``: none to map)
ALIASES: dict[str, str] = {}


def no_nll(name: str = "(no NLL API in Keras)", reason: str = _NO_NLL) -> Api:
    """The row saying Keras has no NLL API on log-probabilities (every call unsupported)."""
    return missing(name, "nll", reason)


def keras_versions() -> dict[str, Any]:
    """Keras's version and the backend it runs on."""
    return {"keras": keras.__version__, "keras_backend": keras.backend.backend()}
