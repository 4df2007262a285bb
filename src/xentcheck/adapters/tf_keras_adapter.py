"""Keras 2 (framework ``tf-keras``): the ``tf_keras`` package beside TensorFlow 2, imported
as ``import tf_keras`` (never through ``TF_USE_LEGACY_KERAS``).

The rows are Keras 3's table (:data:`xentcheck.adapters.keras_apis.DECLARATIONS`) read as
data and carried over where Keras 2 has the same API: ``keras.losses.X`` is
``tf_keras.losses.X``, ``keras.activations.X`` is ``tf_keras.activations.X`` and the
``keras.ops`` functions are Keras 2's ``tf_keras.backend`` ones (``categorical_crossentropy``,
``sparse_categorical_crossentropy``, ``binary_crossentropy``, ``softmax``, ``sigmoid``,
``exp``: the same arguments). Each declaration keeps its loss, arguments (``from_logits``,
``label_smoothing``, ``ignore_class``, ``alpha``/``gamma``/``apply_class_balancing``),
``applies`` and guards; its name and paths are renamed, its recipe is the Keras 2 one of
the same name below (in ``tf`` ops: Keras 2 has no ``keras.ops``), and a ``Loss`` object's
reduction is passed by Keras 2's name (:data:`KERAS2_REDUCTION`: Keras 2 has
``sum_over_batch_size`` where Keras 3 has ``mean``). Keras 3 APIs that Keras 2 lacks
(:data:`LEFT_OUT`: ``log_softmax``, ``log_sigmoid`` and ``logsumexp`` of
``keras.ops``/``keras.activations``) have no row; ``categorical_focal_crossentropy`` has no
reference loss.

What differs from Keras 3 is Keras 2's own code, shown by the rows and explained in
:mod:`xentcheck.known.tf_keras`: ``Loss`` objects compute in the input's dtype (no
``floatx`` cast), ``binary_crossentropy`` on probabilities adds ``epsilon`` inside both
logs after clipping, and ``binary_focal_crossentropy(from_logits=True)`` does not clip.

Calls, gradients and devices are the tensorflow adapter's (:func:`tensorflow_adapter._execute`:
``GradientTape`` VJPs in the dtype under test, ``tf.device`` for the CPU and the GPU).
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf
import tf_keras

from xentcheck.adapters import keras_apis
from xentcheck.adapters import tensorflow_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework, Unsupported
from xentcheck.adapters.declare import (
    Construct,
    Declaration,
    Function,
    Keyword,
    Recipe,
    apis,
    resolve,
    snippets,
)
from xentcheck.adapters.keras2_names import keras2_name

__all__ = ["APIS", "DECLARATIONS", "FRAME", "FRAMEWORK", "LEFT_OUT"]

# ------------------------------------------------------------------------ user recipes
# Keras 2 counterparts of keras_apis' recipes, by the same names and arguments, in tf ops.


def class_last(x):
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = x.shape.rank
    if nd <= 2:
        return x
    return tf.transpose(x, [0, *range(2, nd), 1])


def reduce_loss(per, reduction, denominator=None, batch=None):
    """The reduction a user writes around a loss returning per-sample values."""
    if reduction == "none":
        return per
    if reduction == "sum":
        return tf.reduce_sum(per)
    if reduction == "mean":
        if denominator is None:
            return tf.reduce_mean(per)
        return tf.reduce_sum(per) / denominator
    if reduction == "batchmean":
        n = batch if batch is not None else (per.shape[0] if per.shape.rank else 1)
        return tf.reduce_sum(per) / tf.cast(n, per.dtype)
    raise ValueError(f"unknown reduction {reduction!r}")


def categorical_crossentropy(target, pred, reduction, **kwargs):
    per = tf_keras.losses.categorical_crossentropy(class_last(target), class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def ops_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = tf_keras.backend.categorical_crossentropy(class_last(target), class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def sparse_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = tf_keras.losses.sparse_categorical_crossentropy(target, class_last(pred), **kwargs)
    if "ignore_class" not in kwargs:
        return reduce_loss(per, reduction)
    # the functional form zeroes ignored elements: the mean is over the kept ones
    kept = tf.cast(tf.not_equal(target, kwargs["ignore_class"]), per.dtype)
    return reduce_loss(per, reduction, tf.reduce_sum(kept))


def ops_sparse_categorical_crossentropy(target, pred, reduction, **kwargs):
    per = tf_keras.backend.sparse_categorical_crossentropy(target, class_last(pred), **kwargs)
    return reduce_loss(per, reduction)


def categorical_crossentropy_object(target, pred, **config):
    loss = tf_keras.losses.CategoricalCrossentropy(**config)
    return loss(class_last(target), class_last(pred))


def one_hot_categorical_crossentropy_object(target, pred, **config):
    """Class indices through ``CategoricalCrossentropy`` (label smoothing): one_hot first."""
    loss = tf_keras.losses.CategoricalCrossentropy(**config)
    pred = class_last(pred)
    return loss(tf.one_hot(target, pred.shape[-1], dtype=pred.dtype), pred)


def sparse_categorical_crossentropy_object(target, pred, weight=None, **config):
    """``SparseCategoricalCrossentropy``; class weights as Keras users pass them,
    ``sample_weight=gather(weight, target)`` (class 0 where the ignore class stands)."""
    loss = tf_keras.losses.SparseCategoricalCrossentropy(**config)
    sample_weight = None
    if weight is not None:
        safe = target
        if "ignore_class" in config:
            kept = tf.not_equal(target, config["ignore_class"])
            safe = tf.where(kept, target, tf.zeros_like(target))
        sample_weight = tf.gather(weight, safe)
    return loss(target, class_last(pred), sample_weight=sample_weight)


def binary_crossentropy(target, pred, reduction, **kwargs):
    return reduce_loss(tf_keras.losses.binary_crossentropy(target, pred, **kwargs), reduction)


def ops_binary_crossentropy(target, pred, reduction, **kwargs):
    return reduce_loss(tf_keras.backend.binary_crossentropy(target, pred, **kwargs), reduction)


def binary_focal_crossentropy(target, logits, reduction, **kwargs):
    per = tf_keras.losses.binary_focal_crossentropy(target, logits, **kwargs)
    return reduce_loss(per, reduction)


def kl_probabilities(target, log_pred, log_target):
    """Keras takes probabilities: ``y_pred = exp(input)``; ``y_true = exp(target)`` for
    log-targets. The class axis is moved last: Keras sums over the last axis."""
    y_pred = tf.exp(class_last(log_pred))
    y_true = class_last(target)
    if log_target:
        y_true = tf.exp(y_true)
    return y_true, y_pred


def kl_divergence(target, log_pred, reduction, log_target=False):
    per = tf_keras.losses.kl_divergence(*kl_probabilities(target, log_pred, log_target))
    batch = int(log_pred.shape[0]) if log_pred.shape.rank else 1
    return reduce_loss(per, reduction, batch=batch)


def kl_divergence_object(target, log_pred, log_target=False, **config):
    loss = tf_keras.losses.KLDivergence(**config)
    return loss(*kl_probabilities(target, log_pred, log_target))


def token_cross_entropy(target, logits, mask=None, **config):
    """``SparseCategoricalCrossentropy(from_logits=True[, ignore_class])`` with
    ``sample_weight=mask``, default reduction."""
    loss = tf_keras.losses.SparseCategoricalCrossentropy(**config)
    return loss(target, logits, sample_weight=mask)


def perplexity(target, logits, mask=None, **config):
    return tf_keras.backend.exp(token_cross_entropy(target, logits, mask, **config))


# ------------------------------------------------------------------------------ table

#: the case's reduction by Keras 2's name (``tf_keras.losses.Reduction``: ``auto``,
#: ``none``, ``sum``, ``sum_over_batch_size``)
KERAS2_REDUCTION = {
    "none": "none",
    "sum": "sum",
    "mean": "sum_over_batch_size",
    "batchmean": "sum_over_batch_size",
}

_RECIPES: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        categorical_crossentropy, ops_categorical_crossentropy,
        sparse_categorical_crossentropy, ops_sparse_categorical_crossentropy,
        categorical_crossentropy_object, one_hot_categorical_crossentropy_object,
        sparse_categorical_crossentropy_object, binary_crossentropy,
        ops_binary_crossentropy, binary_focal_crossentropy, kl_divergence,
        kl_divergence_object, token_cross_entropy, perplexity,
    )
}  # fmt: skip

ALIASES: dict[str, str] = {"tf": "tensorflow"}


def _keyword(kw: str | Keyword) -> str | Keyword:
    if isinstance(kw, Keyword) and kw.name == "reduction":
        return Keyword("reduction", KERAS2_REDUCTION.__getitem__)
    return kw


def _renamed_guard(
    guard: Callable[[Call, Mapping[str, Any]], None] | None,
) -> Callable[[Call, Mapping[str, Any]], None] | None:
    """Keras 3's guard, its refusal naming the Keras 2 API."""
    if guard is None:
        return None

    def renamed(call: Call, tensors: Mapping[str, Any]) -> None:
        try:
            guard(call, tensors)
        except Unsupported as exc:
            raise Unsupported(keras2_name(str(exc))) from None

    return renamed


def _exists(path: str) -> bool:
    try:
        resolve(path, ALIASES)
    except AttributeError:
        return False
    return True


def keras2(decl: Declaration) -> Declaration | str:
    """The Keras 2 row of a Keras 3 declaration, or why Keras 2 has none."""
    spec = decl.call
    keywords = {k: _keyword(v) for k, v in spec.keywords.items()}
    if isinstance(spec, Recipe):
        fn = _RECIPES.get(spec.fn.__name__)
        if fn is None:
            return f"no Keras 2 recipe {spec.fn.__name__!r}"
        call = dataclasses.replace(spec, fn=fn, keywords=keywords)
    elif isinstance(spec, Function | Construct):
        path = keras2_name(spec.path)
        if not _exists(path):
            return f"Keras 2 has no {path}"
        call = dataclasses.replace(spec, path=path, keywords=keywords)
    else:
        return f"no Keras 2 form of a {type(spec).__name__}"
    return dataclasses.replace(
        decl,
        name=keras2_name(decl.name),
        call=call,
        guard=_renamed_guard(decl.guard),
        doc=keras2_name(decl.doc),
    )


_CARRIED = [(d, keras2(d)) for d in keras_apis.DECLARATIONS]

#: the Keras 2 rows, in the order of Keras 3's table
DECLARATIONS: list[Declaration] = [k2 for _, k2 in _CARRIED if isinstance(k2, Declaration)]

#: Keras 3 rows without a Keras 2 counterpart: (Keras 3 name, loss, why)
LEFT_OUT: list[tuple[str, str, str]] = [
    (d.name, d.loss, k2) for d, k2 in _CARRIED if isinstance(k2, str)
]


class TfKerasFrame(eager.TensorFlowFrame):
    """The tensorflow adapter's snippets (eager, ``GradientTape``), importing tf_keras."""

    imports = "import numpy as np\nimport tensorflow as tf\nimport tf_keras"


FRAME = TfKerasFrame()

APIS: list[Api] = [
    *apis(DECLARATIONS, eager._execute, ALIASES),
    keras_apis.no_nll("(no NLL API in Keras 2)"),
]


def _versions() -> dict[str, str]:
    v = {k: x for k, x in eager._versions().items() if not k.startswith("keras")}
    return {"tf_keras": tf_keras.__version__, **v, "python": platform.python_version()}


FRAMEWORK = Framework(
    name="tf-keras",
    apis=APIS,
    versions=_versions,
    devices=eager._devices,
    gpu_missing_reason=eager._gpu_missing_reason,
    unsupported_reason=eager._unsupported_reason,
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
