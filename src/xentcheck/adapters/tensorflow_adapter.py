"""TensorFlow / Keras adapter: every TF and Keras API that computes a loss of the registry.

Covered namespaces: ``tf.nn.*`` (``softmax_cross_entropy_with_logits``,
``sparse_softmax_cross_entropy_with_logits``, ``sigmoid_cross_entropy_with_logits``,
``weighted_cross_entropy_with_logits``, ``softmax``, ``log_softmax``), ``tf.math``
(``sigmoid``, ``log_sigmoid``), ``tf.reduce_logsumexp``, and Keras 3 on its TensorFlow
backend: ``keras.losses.*`` functional and class forms, ``keras.ops.*`` and
``keras.activations.*``. Each is its own row; aliases of one function object
(``tf.math.softmax`` = ``tf.nn.softmax``, ``tf.keras.*`` = ``keras.*``) are not repeated.
The Keras rows are defined once, in ``keras.ops``, in :mod:`xentcheck.adapters.keras_apis`,
and run here on the TensorFlow backend (and on JAX and PyTorch as ``keras-jax`` and
``keras-torch``); the recipe around a Keras call (axis move, reduction) is written in
``keras.ops`` there, in ``tf`` ops here for the ``tf.nn`` rows.

How a call is made, the way a user would:

* Class axis: the reference has it at 1 (``[N, C, d1..]``); TensorFlow and Keras are
  channels-last, so the adapter moves it last (``tf.transpose``) for K-dim inputs.
* A framework argument is passed, or the recipe standing for it applied, exactly when
  the case set the parameter (:meth:`Call.is_set <xentcheck.adapters.base.Call.is_set>`,
  ``label_smoothing: 0.0`` and the default included). The rows' own arguments are passed
  always: ``from_logits=True`` for the logits losses, ``axis`` of
  ``reduce_logsumexp``/``keras.ops.logsumexp`` (whose default reduces every axis),
  ``apply_class_balancing`` of the focal loss.
* ``tf.nn`` and functional Keras losses return per-sample losses: the reduction is the
  user's (``tf.reduce_sum``; ``tf.reduce_mean``, or the sum divided by the summed weights
  of the kept elements where weights or an ignore index are in play); around Keras calls
  it is written in ``keras.ops`` (whose ``mean`` accumulates float16 in float32).
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

import os
import platform
import re
from collections.abc import Callable, Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras
import numpy as np
import tensorflow as tf

from xentcheck.adapters import keras_apis
from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.keras_apis import (
    _ignore_index,
    _integer,
    _probability,
    _reject,
    _smoothing,
)
from xentcheck.host import cpu_name

if keras.backend.backend() != "tensorflow":  # keras imported earlier with another backend
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "tensorflow adapter; run the tensorflow adapter in its own process"
    )

__all__ = ["APIS", "BUILDERS", "FRAMEWORK"]

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


#: API name -> its builder ``(tensors, call) -> value``: other execution modes of the same
#: APIs (``tf.function(jit_compile=True)``) run these builders their own way
BUILDERS: dict[str, Builder] = {}


def _api(name: str, loss: str, build: Builder, applies=None, doc: str = "") -> Api:
    def run(call: Call) -> Output:
        return _execute(call, build)

    run.__name__ = f"run_{name}"
    BUILDERS[name] = build
    if applies is None:
        return Api(name=name, loss=loss, run=run, doc=doc)
    return Api(name=name, loss=loss, run=run, applies=applies, doc=doc)


def _unsupported(reason: str) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        raise Unsupported(reason)

    return build


# ------------------------------------------------------------------ parameter helpers


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
    w = tf.gather(t["weight"], safe) if call.is_set("weight") else tf.ones_like(per)
    w = tf.where(keep, w, tf.zeros_like(w))
    per = tf.where(keep, w * per, tf.zeros_like(per))
    return _user_reduce(per, call, denominator=tf.reduce_sum(w))


# ------------------------------------------------------------------- activations


# ------------------------------------------------------------------------ token losses

_TOKEN_TF = f"{_SSCE}+where(mask)+sum/count"


def _token_keep(t: Tensors, call: Call) -> tf.Tensor:
    keep = _kept(t["target"], call)
    if call.is_set("mask"):
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


def _perplexity(token: Builder, exp: Callable[[tf.Tensor], tf.Tensor]) -> Builder:
    def build(t: Tensors, call: Call) -> tf.Tensor:
        return exp(token(t, call))

    return build


# ---------------------------------------------------------------------- binary family

_SIG = "tf.nn.sigmoid_cross_entropy_with_logits"
_WSIG = "tf.nn.weighted_cross_entropy_with_logits"


def _times_weight(per: tf.Tensor, t: Tensors, call: Call) -> tf.Tensor:
    return per * t["weight"] if call.is_set("weight") else per


def _tf_sigmoid_ce(t: Tensors, call: Call) -> tf.Tensor:
    _reject(call, _SIG, pos=True)
    per = tf.nn.sigmoid_cross_entropy_with_logits(labels=t["target"], logits=t["logits"])
    return _user_reduce(_times_weight(per, t, call), call)


def _tf_weighted_ce(t: Tensors, call: Call) -> tf.Tensor:
    per = tf.nn.weighted_cross_entropy_with_logits(
        labels=t["target"], logits=t["logits"], pos_weight=t["pos_weight"]
    )
    return _user_reduce(_times_weight(per, t, call), call)


# -------------------------------------------------------------------------------- KL


# ------------------------------------------------------------------------------ APIs

_NO_NLL = (
    "TensorFlow and Keras have no negative-log-likelihood loss on log-probabilities "
    "(sparse_categorical_crossentropy(from_logits=True) re-normalises its input)"
)


def _keras_api(name: str, loss: str, build: Builder, applies, doc: str) -> Api:
    """A Keras row of :mod:`keras_apis`, run on this backend (under a GradientTape)."""
    return _api(name, loss, build, applies, doc)


def _softmax_ce_apis() -> list[Api]:
    loss = "softmax_cross_entropy"
    plain = lambda c: not _smoothing(c)  # noqa: E731
    weighted = lambda c: c.is_set("weight") or c.is_set("ignore_index")  # noqa: E731
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
    ]


def _binary_apis() -> list[Api]:
    bcel = "binary_cross_entropy_with_logits"
    pos = lambda c: c.is_set("pos_weight")  # noqa: E731
    weight = lambda c: c.is_set("weight")  # noqa: E731
    return [
        _api(_SIG, bcel, _tf_sigmoid_ce, lambda c: not pos(c) and not weight(c)),
        _api(f"{_SIG}*weight", bcel, _tf_sigmoid_ce, lambda c: not pos(c) and weight(c)),
        _api(_WSIG, bcel, _tf_weighted_ce, lambda c: pos(c) and not weight(c)),
        _api(f"{_WSIG}*weight", bcel, _tf_weighted_ce, lambda c: pos(c) and weight(c)),
    ]


def _activation_apis() -> list[Api]:
    lse_doc = f"axis always passed: {keras_apis.AXIS_DEFAULT_ALL}"
    act = keras_apis.activation
    return [
        _api("tf.nn.softmax", "softmax", act(tf.nn.softmax, axis=True)),
        _api("tf.nn.log_softmax", "log_softmax", act(tf.nn.log_softmax, axis=True)),
        _api(
            "tf.reduce_logsumexp",
            "logsumexp",
            act(tf.reduce_logsumexp, axis=True, always=True),
            doc=lse_doc,
        ),
        _api("tf.math.sigmoid", "sigmoid", act(tf.math.sigmoid)),
        _api("tf.math.log_sigmoid", "log_sigmoid", act(tf.math.log_sigmoid)),
    ]


def _token_apis() -> list[Api]:
    return [
        _api(_TOKEN_TF, "token_cross_entropy", _token_tf),
        _api(f"tf.exp({_TOKEN_TF})", "perplexity", _perplexity(_token_tf, tf.exp)),
    ]


#: tf.nn / tf.math rows, then Keras's (shared with keras-jax and keras-torch), per loss
APIS: list[Api] = [
    *_softmax_ce_apis(),
    *keras_apis.softmax_ce_apis(_keras_api),
    *keras_apis.categorical_apis(_keras_api),
    _api("(no NLL API in TensorFlow/Keras)", "nll", _unsupported(_NO_NLL), doc=_NO_NLL),
    *_binary_apis(),
    *keras_apis.binary_apis(_keras_api),
    *keras_apis.kl_apis(_keras_api),
    *_token_apis(),
    *keras_apis.token_apis(_keras_api),
    *_activation_apis(),
    *keras_apis.activation_apis(_keras_api),
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
