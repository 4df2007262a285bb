"""TensorFlow / Keras adapter: every TF and Keras API that computes a loss of the registry.

Covered namespaces: ``tf.nn.*`` (``softmax_cross_entropy_with_logits``,
``sparse_softmax_cross_entropy_with_logits``, ``sigmoid_cross_entropy_with_logits``,
``weighted_cross_entropy_with_logits``, ``softmax``, ``log_softmax``), ``tf.math``
(``sigmoid``, ``log_sigmoid``), ``tf.reduce_logsumexp``, and Keras 3 on its TensorFlow
backend: ``keras.losses.*`` functional and class forms, ``keras.ops.*`` and
``keras.activations.*``. Each is its own row; aliases of one function object
(``tf.math.softmax`` = ``tf.nn.softmax``, ``tf.keras.*`` = ``keras.*``) are not repeated.

How a call is made, the way a user would:

* Class axis: the reference has it at 1 (``[N, C, d1..]``); TensorFlow and Keras are
  channels-last, so the adapter moves it last (``tf.transpose``) for K-dim inputs.
* Framework arguments are passed only when the case set the parameter
  (``call.explicit``) or when the reference's semantics need them: ``from_logits=True``
  for the logits losses, ``axis`` of ``reduce_logsumexp``/``keras.ops.logsumexp`` (whose
  default reduces every axis), ``apply_class_balancing`` of the focal loss.
* ``tf.nn`` and functional Keras losses return per-sample losses: the reduction is the
  user's (``tf.reduce_sum``; ``tf.reduce_mean``, or the sum divided by the summed weights
  of the kept elements where weights or an ignore index are in play).
* Keras ``Loss`` objects are built once per configuration and reused, and get the
  reduction by name (``none``/``sum``/``mean``; ``batchmean`` is Keras's
  ``sum_over_batch_size``). They compute in ``keras.backend.floatx()`` (float32) as Keras
  documents; ``Output.out_dtype`` says so.
* A parameter an API lacks is covered by the idiomatic user recipe, run as its own row
  whose name carries the recipe (``+sample_weight=weight[target]`` ...); where there is
  none, ``Unsupported`` is raised.

Nothing is clamped, checked or rewritten on the way in or out. Gradients are VJPs:
``GradientTape.gradient(value, inputs, output_gradients=cotangent)`` in the dtype under
test; an input TensorFlow does not differentiate is left out of the grads. Nothing is
wrapped in ``tf.function`` (eager mode only).
"""

from __future__ import annotations

import functools
import os
import platform
import re
from collections.abc import Callable, Mapping
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras
import numpy as np
import tensorflow as tf

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.harness.results import cpu_name

if keras.backend.backend() != "tensorflow":  # keras imported earlier with another backend
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "tensorflow adapter; run the tensorflow adapter in its own process"
    )

__all__ = ["APIS", "FRAMEWORK"]

_DTYPES: dict[str, tf.DType] = {
    "float64": tf.float64,
    "float32": tf.float32,
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
}

Tensors = Mapping[str, tf.Tensor]
Builder = Callable[[Tensors, Call], tf.Tensor]


# --------------------------------------------------------------------------- plumbing


def _gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def _device(call: Call) -> str:
    if call.device == "cpu":
        return "/CPU:0"
    if call.device == "gpu":
        reason = _gpu_missing_reason()
        if reason is not None:
            raise Unsupported(reason)
        return "/GPU:0"
    raise Unsupported(f"unknown device {call.device!r}")


def _dtype(call: Call) -> tf.DType:
    try:
        return _DTYPES[call.dtype]
    except KeyError:
        raise Unsupported(f"tensorflow has no dtype {call.dtype!r}") from None


def _tensor(arr: np.ndarray, dtype: tf.DType) -> tf.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind == "b":
        return tf.constant(a, dtype=tf.bool)
    if a.dtype.kind in "iu":
        return tf.constant(a.astype(np.int64), dtype=tf.int64)
    # inputs are already rounded to the dtype under test, so this cast is exact
    return tf.cast(tf.constant(np.asarray(a, dtype=np.float64)), dtype)


def _numpy(t: tf.Tensor) -> np.ndarray:
    return np.asarray(tf.convert_to_tensor(t).numpy()).astype(np.float64)


def _execute(call: Call, build: Builder) -> Output:
    """Build the tensors of ``call``, run ``build`` under a tape and take the VJP."""
    dtype = _dtype(call)
    with tf.device(_device(call)):
        tensors: dict[str, tf.Tensor] = {}
        for name, arr in call.inputs.items():
            if arr is not None:
                tensors[name] = _tensor(arr, dtype)
        sources = [n for n in call.grad_inputs if n in tensors and tensors[n].dtype.is_floating]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            for n in sources:
                tape.watch(tensors[n])
            value = tf.convert_to_tensor(build(tensors, call))
        out = Output(value=_numpy(value), out_dtype=value.dtype.name)
        if not sources:
            return out
        cot = np.asarray(call.cotangent, dtype=np.float64)
        if tuple(cot.shape) != tuple(value.shape):
            out.note = (
                f"output shape {list(value.shape)} differs from the reference's "
                f"{list(cot.shape)}: no gradients taken"
            )
            return out
        grads = tape.gradient(
            value,
            [tensors[n] for n in sources],
            output_gradients=tf.cast(tf.constant(cot), value.dtype),
        )
    # an input the API treats as a constant has no gradient: left out, never zero-filled
    out.grads = {n: _numpy(g) for n, g in zip(sources, grads, strict=True) if g is not None}
    return out


def _api(name: str, loss: str, build: Builder, applies=None, doc: str = "") -> Api:
    def run(call: Call) -> Output:
        return _execute(call, build)

    run.__name__ = f"run_{name}"
    if applies is None:
        return Api(name=name, loss=loss, run=run, doc=doc)
    return Api(name=name, loss=loss, run=run, applies=applies, doc=doc)


def _unsupported(reason: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        raise Unsupported(reason)

    return build


# ------------------------------------------------------------------ parameter helpers


def _is_set(call: Call, name: str) -> bool:
    """The case set ``name`` (to something other than None)."""
    return name in call.explicit and call.params.get(name) is not None


def _ignore_index(call: Call) -> int | None:
    return int(call.params["ignore_index"]) if _is_set(call, "ignore_index") else None


def _has(call: Call, name: str) -> bool:
    return call.inputs.get(name) is not None


def _reject(call: Call, api: str, *, weight=False, ignore=False, smoothing=False, pos=False):
    """Raise Unsupported for the parameters ``api`` has no argument (or recipe) for."""
    if weight and _has(call, "weight"):
        raise Unsupported(f"{api} has no class/element weight argument")
    if pos and _has(call, "pos_weight"):
        raise Unsupported(f"{api} has no pos_weight argument")
    if ignore and _is_set(call, "ignore_index"):
        raise Unsupported(f"{api} has no ignore_index argument")
    if smoothing and _is_set(call, "label_smoothing"):
        raise Unsupported(f"{api} has no label_smoothing argument")


def _class_last(x: tf.Tensor) -> tf.Tensor:
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = x.shape.rank
    if nd <= 2:
        return x
    return tf.transpose(x, [0, *range(2, nd), 1])


def _user_reduce(
    per: tf.Tensor, call: Call, denominator: tf.Tensor | None = None, batch: int | None = None
) -> tf.Tensor:
    """The reduction a user writes around an API that returns per-sample losses."""
    reduction = call.params.get("reduction", "mean")
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


_KERAS_REDUCTION = {
    "none": "none",
    "sum": "sum",
    "mean": "mean",
    "batchmean": "sum_over_batch_size",
}


def _keras_reduction(call: Call) -> dict[str, Any]:
    if "reduction" not in call.explicit:
        return {}  # Keras's default, sum_over_batch_size: the mean
    return {"reduction": _KERAS_REDUCTION[call.params["reduction"]]}


def _kw(call: Call, *names: str, rename: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for the parameters among ``names`` that the case set."""
    rename = rename or {}
    return {rename.get(n, n): call.params[n] for n in names if _is_set(call, n)}


@functools.lru_cache(maxsize=256)
def _loss_object(cls_name: str, items: tuple[tuple[str, Any], ...]) -> keras.losses.Loss:
    """One Keras Loss object per configuration, reused as a user reuses it."""
    return getattr(keras.losses, cls_name)(**dict(items))


def _keras_loss(cls_name: str, **kwargs: Any) -> keras.losses.Loss:
    return _loss_object(cls_name, tuple(sorted(kwargs.items())))


def _integer(call: Call) -> bool:
    return call.integer_target


def _probability(call: Call) -> bool:
    return not call.integer_target


def _smoothing(call: Call) -> bool:
    return _is_set(call, "label_smoothing")


def _bare(call: Call) -> bool:
    """No weights, ignore_index or label smoothing: the calls the ``keras.ops`` forms are
    for (their ``keras.losses`` and ``tf.nn`` siblings carry those parameters)."""
    return not (
        _has(call, "weight")
        or _has(call, "pos_weight")
        or _is_set(call, "ignore_index")
        or _smoothing(call)
    )


# --------------------------------------------------------------------- softmax family

_SCE = "tf.nn.softmax_cross_entropy_with_logits"
_SSCE = "tf.nn.sparse_softmax_cross_entropy_with_logits"


def _tf_softmax_ce(t: Tensors, call: Call) -> tf.Tensor:
    _reject(call, _SCE, weight=True, ignore=True, smoothing=True)
    per = tf.nn.softmax_cross_entropy_with_logits(
        labels=_class_last(t["target"]), logits=_class_last(t["logits"])
    )
    return _user_reduce(per, call)


def _tf_softmax_ce_smoothed(t: Tensors, call: Call) -> tf.Tensor:
    """Label smoothing by hand: ``labels*(1-ls) + ls/C`` (one_hot first for class indices)."""
    _reject(call, _SCE, weight=True, ignore=True)
    logits = _class_last(t["logits"])
    classes = logits.shape[-1]
    target = t["target"]
    if target.dtype.is_integer:
        labels = tf.one_hot(target, classes, dtype=logits.dtype)
    else:
        labels = _class_last(target)
    ls = float(call.params["label_smoothing"])
    labels = labels * (1.0 - ls) + ls / classes
    per = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _user_reduce(per, call)


def _tf_sparse_ce(t: Tensors, call: Call) -> tf.Tensor:
    _reject(call, _SSCE, weight=True, ignore=True, smoothing=True)
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=t["target"], logits=_class_last(t["logits"])
    )
    return _user_reduce(per, call)


def _kept(target: tf.Tensor, call: Call) -> tf.Tensor:
    ignore = _ignore_index(call)
    if ignore is None:
        return tf.ones_like(target, dtype=tf.bool)
    return tf.not_equal(target, ignore)


def _tf_sparse_ce_weighted(t: Tensors, call: Call) -> tf.Tensor:
    """Class weights and ignore_index by hand: ``w = weight[target]`` (0 where ignored),
    per-sample ``w * loss``, mean ``sum(w * loss) / sum(w)``."""
    _reject(call, _SSCE, smoothing=True)
    logits = _class_last(t["logits"])
    target = t["target"]
    keep = _kept(target, call)
    safe = tf.where(keep, target, tf.zeros_like(target))
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    w = tf.gather(t["weight"], safe) if "weight" in t else tf.ones_like(per)
    w = tf.where(keep, w, tf.zeros_like(w))
    per = tf.where(keep, w * per, tf.zeros_like(per))
    return _user_reduce(per, call, denominator=tf.reduce_sum(w))


def _keras_cce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(call, "keras.losses.categorical_crossentropy", weight=True, ignore=True)
        per = keras.losses.categorical_crossentropy(
            _class_last(t["target"]),
            _class_last(t[x]),
            from_logits=from_logits,
            **_kw(call, "label_smoothing"),
        )
        return _user_reduce(per, call)

    return build


def _keras_cce_cls(from_logits: bool, x: str, one_hot: bool = False) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(call, "keras.losses.CategoricalCrossentropy", weight=True, ignore=True)
        kw = {"from_logits": True} if from_logits else {}
        loss = _keras_loss(
            "CategoricalCrossentropy",
            **kw,
            **_kw(call, "label_smoothing"),
            **_keras_reduction(call),
        )
        pred = _class_last(t[x])
        target = t["target"]
        if one_hot:
            target = tf.one_hot(target, pred.shape[-1], dtype=pred.dtype)
        else:
            target = _class_last(target)
        return loss(target, pred)

    return build


def _keras_scce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        name = "keras.losses.sparse_categorical_crossentropy"
        _reject(call, name, weight=True, smoothing=True)
        kw = _kw(call, "ignore_index", rename={"ignore_index": "ignore_class"})
        per = keras.losses.sparse_categorical_crossentropy(
            t["target"], _class_last(t[x]), from_logits=from_logits, **kw
        )
        # the functional form zeroes ignored elements: the mean is over the kept ones
        keep = tf.cast(_kept(t["target"], call), per.dtype) if kw else None
        return _user_reduce(per, call, None if keep is None else tf.reduce_sum(keep))

    return build


def _keras_scce_cls(from_logits: bool, x: str, class_weights: bool = False) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        name = "keras.losses.SparseCategoricalCrossentropy"
        _reject(call, name, weight=not class_weights, smoothing=True)
        kw = {"from_logits": True} if from_logits else {}
        kw |= _kw(call, "ignore_index", rename={"ignore_index": "ignore_class"})
        loss = _keras_loss("SparseCategoricalCrossentropy", **kw, **_keras_reduction(call))
        target = t["target"]
        sample_weight = None
        if class_weights and "weight" in t:
            safe = tf.where(_kept(target, call), target, tf.zeros_like(target))
            sample_weight = tf.gather(t["weight"], safe)
        return loss(target, _class_last(t[x]), sample_weight=sample_weight)

    return build


def _keras_ops_cce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(
            call, "keras.ops.categorical_crossentropy", weight=True, ignore=True, smoothing=True
        )
        per = keras.ops.categorical_crossentropy(
            _class_last(t["target"]), _class_last(t[x]), from_logits=from_logits
        )
        return _user_reduce(per, call)

    return build


def _keras_ops_scce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(
            call,
            "keras.ops.sparse_categorical_crossentropy",
            weight=True,
            ignore=True,
            smoothing=True,
        )
        per = keras.ops.sparse_categorical_crossentropy(
            t["target"], _class_last(t[x]), from_logits=from_logits
        )
        return _user_reduce(per, call)

    return build


# ------------------------------------------------------------------- activations

_AXIS_DEFAULT_ALL = "the framework default reduces every axis"


def _axis_kw(call: Call, always: bool = False) -> dict[str, Any]:
    if always or _is_set(call, "axis"):
        return {"axis": int(call.params["axis"])}
    return {}


def _activation(fn: Callable[..., tf.Tensor], axis: bool = False, always: bool = False) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        return fn(t["x"], **(_axis_kw(call, always) if axis else {}))

    return build


# ------------------------------------------------------------------------ token losses

_TOKEN_TF = f"{_SSCE}+where(mask)+sum/count"
_TOKEN_KERAS = (
    "keras.losses.SparseCategoricalCrossentropy(from_logits=True,ignore_class)+sample_weight=mask"
)


def _token_keep(t: Tensors, call: Call) -> tf.Tensor:
    keep = _kept(t["target"], call)
    if "mask" in t:
        keep = tf.logical_and(keep, t["mask"])
    return keep


def _token_tf(t: Tensors, call: Call) -> tf.Tensor:
    """Mean over kept tokens: labels of dropped tokens set to 0, losses masked with
    ``tf.where``, summed and divided by the number of kept tokens."""
    target = t["target"]
    keep = _token_keep(t, call)
    safe = tf.where(keep, target, tf.zeros_like(target))
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=t["logits"])
    per = tf.where(keep, per, tf.zeros_like(per))
    return tf.reduce_sum(per) / tf.reduce_sum(tf.cast(keep, per.dtype))


def _token_keras(t: Tensors, call: Call) -> tf.Tensor:
    """``SparseCategoricalCrossentropy(from_logits=True[, ignore_class=ignore_index])``
    with ``sample_weight=mask``, default reduction."""
    kw = _kw(call, "ignore_index", rename={"ignore_index": "ignore_class"})
    loss = _keras_loss("SparseCategoricalCrossentropy", from_logits=True, **kw)
    sample_weight = t.get("mask")
    return loss(t["target"], t["logits"], sample_weight=sample_weight)


def _perplexity(token: Builder, exp: Callable[[tf.Tensor], tf.Tensor]) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        return exp(token(t, call))

    return build


# ---------------------------------------------------------------------- binary family

_SIG = "tf.nn.sigmoid_cross_entropy_with_logits"
_WSIG = "tf.nn.weighted_cross_entropy_with_logits"


def _times_weight(per: tf.Tensor, t: Tensors) -> tf.Tensor:
    return per * t["weight"] if "weight" in t else per


def _tf_sigmoid_ce(t: Tensors, call: Call) -> tf.Tensor:
    _reject(call, _SIG, pos=True)
    per = tf.nn.sigmoid_cross_entropy_with_logits(labels=t["target"], logits=t["logits"])
    return _user_reduce(_times_weight(per, t), call)


def _tf_weighted_ce(t: Tensors, call: Call) -> tf.Tensor:
    per = tf.nn.weighted_cross_entropy_with_logits(
        labels=t["target"], logits=t["logits"], pos_weight=t["pos_weight"]
    )
    return _user_reduce(_times_weight(per, t), call)


def _keras_bce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(call, "keras.losses.binary_crossentropy", weight=True, pos=True)
        per = keras.losses.binary_crossentropy(t["target"], t[x], from_logits=from_logits)
        return _user_reduce(per, call)

    return build


def _keras_bce_cls(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(call, "keras.losses.BinaryCrossentropy", weight=True, pos=True)
        kw = {"from_logits": True} if from_logits else {}
        loss = _keras_loss("BinaryCrossentropy", **kw, **_keras_reduction(call))
        return loss(t["target"], t[x])

    return build


def _keras_ops_bce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        _reject(call, "keras.ops.binary_crossentropy", weight=True, pos=True)
        per = keras.ops.binary_crossentropy(t["target"], t[x], from_logits=from_logits)
        return _user_reduce(per, call)

    return build


def _focal_kw(call: Call) -> dict[str, Any]:
    """alpha weighting (``alpha*t + (1-alpha)*(1-t)``, off for alpha < 0 as in torchvision)
    needs ``apply_class_balancing=True`` in Keras; alpha/gamma only when the case set them."""
    kw: dict[str, Any] = {"from_logits": True}
    alpha = call.params.get("alpha")
    if alpha is not None and float(alpha) >= 0:
        kw["apply_class_balancing"] = True
    kw |= _kw(call, "alpha", "gamma")
    if "alpha" in kw and float(kw["alpha"]) < 0:
        del kw["alpha"]
    return kw


def _keras_focal_fn(t: Tensors, call: Call) -> tf.Tensor:
    per = keras.losses.binary_focal_crossentropy(t["target"], t["logits"], **_focal_kw(call))
    return _user_reduce(per, call)


def _keras_focal_cls(t: Tensors, call: Call) -> tf.Tensor:
    kw = _focal_kw(call)
    loss = _keras_loss("BinaryFocalCrossentropy", **kw, **_keras_reduction(call))
    return loss(t["target"], t["logits"])


# -------------------------------------------------------------------------------- KL


def _log_target(call: Call) -> bool:
    return bool(call.params.get("log_target", False))


def _kl_pair(t: Tensors, call: Call) -> tuple[tf.Tensor, tf.Tensor]:
    """Keras takes probabilities: ``y_pred = exp(input)``; ``y_true = exp(target)`` for
    log-targets. The class axis is moved last: Keras sums over the last axis."""
    y_pred = tf.exp(_class_last(t["input"]))
    y_true = _class_last(t["target"])
    if _log_target(call):
        y_true = tf.exp(y_true)
    return y_true, y_pred


def _keras_kl_fn(t: Tensors, call: Call) -> tf.Tensor:
    y_true, y_pred = _kl_pair(t, call)
    per = keras.losses.kl_divergence(y_true, y_pred)
    return _user_reduce(per, call, batch=int(t["input"].shape[0]) if t["input"].shape.rank else 1)


def _keras_kl_cls(t: Tensors, call: Call) -> tf.Tensor:
    y_true, y_pred = _kl_pair(t, call)
    return _keras_loss("KLDivergence", **_keras_reduction(call))(y_true, y_pred)


# ------------------------------------------------------------------------------ APIs

_NO_NLL = (
    "TensorFlow and Keras have no negative-log-likelihood loss on log-probabilities "
    "(sparse_categorical_crossentropy(from_logits=True) re-normalises its input)"
)


def _softmax_ce_apis() -> list[Api]:
    loss = "softmax_cross_entropy"
    plain = lambda c: not _smoothing(c)  # noqa: E731
    weighted = lambda c: _has(c, "weight") or _is_set(c, "ignore_index")  # noqa: E731
    kc = "keras.losses.CategoricalCrossentropy(from_logits=True)"
    ks = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    return [
        _api(_SCE, loss, _tf_softmax_ce, lambda c: _probability(c) and plain(c)),
        _api(
            f"{_SCE}+one_hot+label_smoothing",
            loss,
            _tf_softmax_ce_smoothed,
            _smoothing,
            doc="labels*(1-ls)+ls/C on one_hot(target) or the probability target",
        ),
        _api(_SSCE, loss, _tf_sparse_ce, lambda c: _integer(c) and plain(c) and not weighted(c)),
        _api(
            f"{_SSCE}+weight[target]+where(target!=ignore_index)",
            loss,
            _tf_sparse_ce_weighted,
            lambda c: _integer(c) and plain(c) and weighted(c),
            doc="w = weight[target] (0 where ignored); sum(w*l)/sum(w) for the mean",
        ),
        _api(
            "keras.losses.categorical_crossentropy(from_logits=True)",
            loss,
            _keras_cce_fn(True, "logits"),
            _probability,
        ),
        _api(kc, loss, _keras_cce_cls(True, "logits"), _probability),
        _api(
            f"{kc}+one_hot(target)",
            loss,
            _keras_cce_cls(True, "logits", one_hot=True),
            lambda c: _integer(c) and _smoothing(c),
            doc="class indices with label smoothing: the Keras recipe on one_hot(target)",
        ),
        _api(
            "keras.losses.sparse_categorical_crossentropy(from_logits=True)",
            loss,
            _keras_scce_fn(True, "logits"),
            lambda c: _integer(c) and plain(c) and not _has(c, "weight"),
        ),
        _api(
            ks,
            loss,
            _keras_scce_cls(True, "logits"),
            lambda c: _integer(c) and plain(c) and not _has(c, "weight"),
        ),
        _api(
            f"{ks}+sample_weight=weight[target]",
            loss,
            _keras_scce_cls(True, "logits", class_weights=True),
            lambda c: _integer(c) and plain(c) and _has(c, "weight"),
            doc="class weights as Keras users pass them: sample_weight=gather(weight, target)",
        ),
        _api(
            "keras.ops.categorical_crossentropy(from_logits=True)",
            loss,
            _keras_ops_cce(True, "logits"),
            lambda c: _probability(c) and _bare(c),
        ),
        _api(
            "keras.ops.sparse_categorical_crossentropy(from_logits=True)",
            loss,
            _keras_ops_scce(True, "logits"),
            lambda c: _integer(c) and _bare(c),
        ),
    ]


def _categorical_apis() -> list[Api]:
    loss = "categorical_cross_entropy"
    return [
        _api(
            "keras.losses.categorical_crossentropy",
            loss,
            _keras_cce_fn(False, "probs"),
            _probability,
        ),
        _api(
            "keras.losses.CategoricalCrossentropy",
            loss,
            _keras_cce_cls(False, "probs"),
            _probability,
        ),
        _api(
            "keras.losses.sparse_categorical_crossentropy",
            loss,
            _keras_scce_fn(False, "probs"),
            _integer,
        ),
        _api(
            "keras.losses.SparseCategoricalCrossentropy",
            loss,
            _keras_scce_cls(False, "probs"),
            _integer,
        ),
        _api(
            "keras.ops.categorical_crossentropy",
            loss,
            _keras_ops_cce(False, "probs"),
            _probability,
        ),
        _api(
            "keras.ops.sparse_categorical_crossentropy",
            loss,
            _keras_ops_scce(False, "probs"),
            _integer,
        ),
    ]


def _binary_apis() -> list[Api]:
    bce, bcel = "binary_cross_entropy", "binary_cross_entropy_with_logits"
    no_pos = lambda c: not _has(c, "pos_weight")  # noqa: E731
    return [
        _api("keras.losses.binary_crossentropy", bce, _keras_bce_fn(False, "probs")),
        _api("keras.losses.BinaryCrossentropy", bce, _keras_bce_cls(False, "probs")),
        _api("keras.ops.binary_crossentropy", bce, _keras_ops_bce(False, "probs"), _bare),
        _api(_SIG, bcel, _tf_sigmoid_ce, lambda c: no_pos(c) and not _has(c, "weight")),
        _api(f"{_SIG}*weight", bcel, _tf_sigmoid_ce, lambda c: no_pos(c) and _has(c, "weight")),
        _api(
            _WSIG, bcel, _tf_weighted_ce, lambda c: _has(c, "pos_weight") and not _has(c, "weight")
        ),
        _api(
            f"{_WSIG}*weight",
            bcel,
            _tf_weighted_ce,
            lambda c: _has(c, "pos_weight") and _has(c, "weight"),
        ),
        _api(
            "keras.losses.binary_crossentropy(from_logits=True)",
            bcel,
            _keras_bce_fn(True, "logits"),
        ),
        _api(
            "keras.losses.BinaryCrossentropy(from_logits=True)",
            bcel,
            _keras_bce_cls(True, "logits"),
        ),
        _api(
            "keras.ops.binary_crossentropy(from_logits=True)",
            bcel,
            _keras_ops_bce(True, "logits"),
            _bare,
        ),
        _api(
            "keras.losses.binary_focal_crossentropy(from_logits=True,apply_class_balancing=True)",
            "sigmoid_focal_loss",
            _keras_focal_fn,
        ),
        _api(
            "keras.losses.BinaryFocalCrossentropy(from_logits=True,apply_class_balancing=True)",
            "sigmoid_focal_loss",
            _keras_focal_cls,
        ),
    ]


def _kl_apis() -> list[Api]:
    loss = "kl_divergence"
    log_t = _log_target
    plain = lambda c: not _log_target(c)  # noqa: E731
    fn, cls = "keras.losses.kl_divergence", "keras.losses.KLDivergence()"
    return [
        _api(f"{fn}(target,exp(input))", loss, _keras_kl_fn, plain),
        _api(f"{fn}(exp(target),exp(input))", loss, _keras_kl_fn, log_t),
        _api(f"{cls}(target,exp(input))", loss, _keras_kl_cls, plain),
        _api(f"{cls}(exp(target),exp(input))", loss, _keras_kl_cls, log_t),
    ]


def _activation_apis() -> list[Api]:
    ka, ko = keras.activations, keras.ops
    return [
        _api("tf.nn.softmax", "softmax", _activation(tf.nn.softmax, axis=True)),
        _api("keras.ops.softmax", "softmax", _activation(ko.softmax, axis=True)),
        _api("keras.activations.softmax", "softmax", _activation(ka.softmax, axis=True)),
        _api("tf.nn.log_softmax", "log_softmax", _activation(tf.nn.log_softmax, axis=True)),
        _api("keras.ops.log_softmax", "log_softmax", _activation(ko.log_softmax, axis=True)),
        _api(
            "keras.activations.log_softmax",
            "log_softmax",
            _activation(ka.log_softmax, axis=True),
        ),
        _api(
            "tf.reduce_logsumexp",
            "logsumexp",
            _activation(tf.reduce_logsumexp, axis=True, always=True),
            doc=f"axis always passed: {_AXIS_DEFAULT_ALL}",
        ),
        _api(
            "keras.ops.logsumexp",
            "logsumexp",
            _activation(ko.logsumexp, axis=True, always=True),
            doc=f"axis always passed: {_AXIS_DEFAULT_ALL}",
        ),
        _api("tf.math.sigmoid", "sigmoid", _activation(tf.math.sigmoid)),
        _api("keras.ops.sigmoid", "sigmoid", _activation(ko.sigmoid)),
        _api("keras.activations.sigmoid", "sigmoid", _activation(ka.sigmoid)),
        _api("tf.math.log_sigmoid", "log_sigmoid", _activation(tf.math.log_sigmoid)),
        _api("keras.ops.log_sigmoid", "log_sigmoid", _activation(ko.log_sigmoid)),
        _api("keras.activations.log_sigmoid", "log_sigmoid", _activation(ka.log_sigmoid)),
    ]


def _token_apis() -> list[Api]:
    return [
        _api(_TOKEN_TF, "token_cross_entropy", _token_tf),
        _api(_TOKEN_KERAS, "token_cross_entropy", _token_keras),
        _api(f"tf.exp({_TOKEN_TF})", "perplexity", _perplexity(_token_tf, tf.exp)),
        _api(
            f"keras.ops.exp({_TOKEN_KERAS})",
            "perplexity",
            _perplexity(_token_keras, keras.ops.exp),
        ),
    ]


APIS: list[Api] = [
    *_softmax_ce_apis(),
    *_categorical_apis(),
    _api("(no NLL API in TensorFlow/Keras)", "nll", _unsupported(_NO_NLL), doc=_NO_NLL),
    *_binary_apis(),
    *_kl_apis(),
    *_token_apis(),
    *_activation_apis(),
]


# ------------------------------------------------------------------------- framework


def _versions() -> dict[str, str]:
    v = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    build = tf.sysconfig.get_build_info()
    if build.get("cuda_version"):
        v["cuda"] = str(build["cuda_version"])
    return v


def _cpu_name() -> str:
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def _gpu_missing_reason() -> str | None:
    if _gpus():
        return None
    if not tf.test.is_built_with_cuda():
        return f"tensorflow {tf.__version__} is a CPU-only build"
    return "no GPU visible to tensorflow"


def _gpu_name() -> str | None:
    gpus = _gpus()
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name") or gpus[0].name)


def _devices() -> dict[str, str | None]:
    return {"cpu": _cpu_name(), "gpu": _gpu_name()}


_NO_KERNEL = re.compile(
    r"(No registered '\w+' OpKernel for '\w+' devices|Could not find device for node"
    r"|is not in the list of allowed values)"
)


def _unsupported_reason(exc: BaseException) -> str | None:
    """A kernel missing for a dtype or device (``No registered 'X' OpKernel ... DT_HALF``)."""
    if not isinstance(exc, tf.errors.NotFoundError | tf.errors.InvalidArgumentError | TypeError):
        return None
    msg = str(exc).strip()
    if _NO_KERNEL.search(msg):
        first = msg.splitlines()[0] if msg else ""
        return f"tensorflow kernel missing for this dtype/device: {first[:300]}"
    return None


FRAMEWORK = Framework(
    name="tensorflow",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=_gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
)
