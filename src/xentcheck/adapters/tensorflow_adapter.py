"""TensorFlow / Keras adapter: every TF and Keras API that computes a loss of the registry.

Covered namespaces: ``tf.nn.*`` (``softmax_cross_entropy_with_logits``,
``sparse_softmax_cross_entropy_with_logits``, ``sigmoid_cross_entropy_with_logits``,
``weighted_cross_entropy_with_logits``, ``softmax``, ``log_softmax``), ``tf.math``
(``sigmoid``, ``log_sigmoid``), ``tf.reduce_logsumexp``, and Keras 3 on its TensorFlow
backend: ``keras.losses.*`` functional and class forms, ``keras.ops.*`` and
``keras.activations.*``. Each is its own row; aliases of one function object
(``tf.math.softmax`` = ``tf.nn.softmax``, ``tf.keras.*`` = ``keras.*``) are not repeated.
The APIs are one table of declarations (:data:`DECLARATIONS`): the ``tf.nn``/``tf.math``
rows here, with their user recipes in ``tf`` ops, and the Keras rows, declared once in
``keras.ops`` in :mod:`xentcheck.adapters.keras_apis` and run here on the TensorFlow
backend (and on JAX and PyTorch as ``keras-jax`` and ``keras-torch``). Each declaration
also gives a standalone snippet of its call (``Framework.snippet``, :data:`FRAME`).

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
* Keras ``Loss`` objects are built for the call, as a user writes
  ``keras.losses.X(**config)(y_true, y_pred)``, and get the reduction by name (``none``/``sum``/``mean``; ``batchmean`` is Keras's
  ``sum_over_batch_size``). They compute in ``keras.backend.floatx()`` (float32) as Keras
  documents; ``Output.out_dtype`` says so.
* A parameter an API lacks is covered by the idiomatic user recipe, run as its own row
  whose name carries the recipe (``+sample_weight=weight[target]`` ...); where there is
  none, ``Unsupported`` is raised.

Nothing is clamped, checked or rewritten on the way in or out. Gradients are VJPs:
``GradientTape.gradient(value, inputs, output_gradients=cotangent)`` in the dtype under
test; an input TensorFlow does not differentiate is left out of the grads. Nothing is
wrapped in ``tf.function`` here (eager mode); ``tensorflow-xla`` runs the same
declarations with value and VJP compiled (:func:`_execute`'s ``compile``).
"""

from __future__ import annotations

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

from xentcheck.adapters import keras_apis
from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.declare import (
    Declaration,
    Function,
    Recipe,
    apis,
    array_literal,
    lacks,
    param,
    snippets,
)
from xentcheck.host import cpu_name

if keras.backend.backend() != "tensorflow":  # keras imported earlier with another backend
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "tensorflow adapter; run the tensorflow adapter in its own process"
    )

__all__ = ["APIS", "DECLARATIONS", "FRAME", "FRAMEWORK"]

_DTYPES: dict[str, tf.DType] = {
    "float64": tf.float64,
    "float32": tf.float32,
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
}

Tensors = Mapping[str, tf.Tensor]
#: how the function of value and VJP runs: eagerly (identity) or compiled by a mode
Compile = Callable[[Callable[..., Any]], Callable[..., Any]]


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


def _eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def _execute(call: Call, fn: Callable[[Tensors], tf.Tensor], compile: Compile = _eager) -> Output:
    """Build the tensors of ``call``, run ``fn`` under a tape and take the VJP with the
    cotangent (``tape.gradient(..., output_gradients=...)``).

    Value and VJP are one function of the tensors and the cotangent, run as
    ``compile(function)``: eagerly, or compiled by an execution mode
    (``tf.function(jit_compile=True)``: the backward pass compiled with the forward).
    """
    dtype = _dtype(call)
    with tf.device(_device(call)):
        tensors = {n: _tensor(a, dtype) for n, a in call.inputs.items() if a is not None}
        sources = [n for n in call.grad_inputs if n in tensors and tensors[n].dtype.is_floating]
        cot = tf.constant(np.asarray(call.cotangent, dtype=np.float64))

        def value_and_vjp(t: Tensors, ct: tf.Tensor) -> tuple[tf.Tensor, dict]:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                for n in sources:
                    tape.watch(t[n])
                value = tf.convert_to_tensor(fn(t))
            if not sources or value.shape != ct.shape:
                return value, {}
            grads = tape.gradient(
                value, [t[n] for n in sources], output_gradients=tf.cast(ct, value.dtype)
            )
            # an input the API treats as a constant has no gradient: left out
            return value, {n: g for n, g in zip(sources, grads, strict=True) if g is not None}

        value, grads = compile(value_and_vjp)(tensors, cot)
    out = Output(value=_numpy(value), out_dtype=value.dtype.name)
    if sources and tuple(value.shape) != tuple(cot.shape):
        out.note = (
            f"output shape {list(value.shape)} differs from the reference's "
            f"{list(cot.shape)}: no gradients taken"
        )
    out.grads = {n: _numpy(g) for n, g in grads.items()}
    return out


class TensorFlowFrame:
    """Snippets that hold inputs and take gradients as :func:`_execute` does (eagerly)."""

    imports = (
        "import os\n\n"
        'os.environ["KERAS_BACKEND"] = "tensorflow"\n\n'
        "import keras\nimport numpy as np\nimport tensorflow as tf"
    )

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        a = np.asarray(array)
        if a.dtype.kind in "biu":
            return f"{name} = tf.constant({array_literal(a)})"
        return f"{name} = tf.cast(tf.constant({array_literal(a)}), tf.{call.dtype})"

    def program(self, expression: str, call: Call) -> str:
        device = "/GPU:0" if call.device == "gpu" else "/CPU:0"
        names = _differentiable(call)
        lines = [f"with tf.device({device!r}):"]
        body = [
            "with tf.GradientTape(watch_accessed_variables=False) as tape:",
            *[f"    tape.watch({n})" for n in names],
            f"    loss = tf.convert_to_tensor({expression})",
            "value = loss.numpy().astype(np.float64)",
            "grads = {}",
        ]
        if names:
            body += [
                f"cotangent = tf.constant({array_literal(np.asarray(call.cotangent))})",
                "if loss.shape == cotangent.shape:",
                f"    d = tape.gradient(loss, [{', '.join(names)}], "
                "output_gradients=tf.cast(cotangent, loss.dtype))",
                f"    grads = {{k: g.numpy().astype(np.float64) for k, g in zip({names!r}, d) "
                "if g is not None}",
            ]
        lines += [f"    {line}" for line in body]
        lines += ['print("value", value)', 'print("grads", grads)']
        return "\n".join(lines)


def _differentiable(call: Call) -> list[str]:
    """The inputs a VJP is taken for: floating inputs the call differentiates."""
    return [
        n
        for n in call.grad_inputs
        if call.inputs.get(n) is not None and np.asarray(call.inputs[n]).dtype.kind == "f"
    ]


FRAME = TensorFlowFrame()


# ------------------------------------------------------------------------ user recipes
# Where tf.nn lacks a parameter: the code a user writes around it, in tf ops, run as it
# is and shown in snippets as it is.


def class_last(x):
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = x.shape.rank
    if nd <= 2:
        return x
    return tf.transpose(x, [0, *range(2, nd), 1])


def reduce_loss(per, reduction, denominator=None):
    """The reduction a user writes around an API that returns per-sample losses."""
    if reduction == "none":
        return per
    if reduction == "sum":
        return tf.reduce_sum(per)
    if reduction != "mean":
        raise ValueError(f"unknown reduction {reduction!r}")
    return tf.reduce_mean(per) if denominator is None else tf.reduce_sum(per) / denominator


def softmax_cross_entropy(logits, target, reduction):
    per = tf.nn.softmax_cross_entropy_with_logits(
        labels=class_last(target), logits=class_last(logits)
    )
    return reduce_loss(per, reduction)


def smoothed_softmax_cross_entropy(logits, target, label_smoothing, reduction):
    """Label smoothing by hand: ``labels*(1-ls) + ls/C`` (one_hot first for class indices)."""
    logits = class_last(logits)
    classes = logits.shape[-1]
    if target.dtype.is_integer:
        labels = tf.one_hot(target, classes, dtype=logits.dtype)
    else:
        labels = class_last(target)
    ls = float(label_smoothing)
    labels = labels * (1.0 - ls) + (ls / classes if classes else 0.0)  # no classes: no labels
    per = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return reduce_loss(per, reduction)


def sparse_softmax_cross_entropy(logits, target, reduction):
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=class_last(logits))
    return reduce_loss(per, reduction)


def weighted_sparse_softmax_cross_entropy(
    logits, target, reduction, weight=None, ignore_index=None
):
    """Class weights and ignore_index by hand: ``w = weight[target]`` (0 where ignored),
    per-sample ``w * loss``, mean ``sum(w * loss) / sum(w)``."""
    logits = class_last(logits)
    if ignore_index is None:
        keep = tf.ones_like(target, dtype=tf.bool)
    else:
        keep = tf.not_equal(target, int(ignore_index))
    safe = tf.where(keep, target, tf.zeros_like(target))
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    w = tf.gather(weight, safe) if weight is not None else tf.ones_like(per)
    w = tf.where(keep, w, tf.zeros_like(w))
    per = tf.where(keep, w * per, tf.zeros_like(per))
    return reduce_loss(per, reduction, denominator=tf.reduce_sum(w))


def sigmoid_cross_entropy(logits, target, reduction, weight=None, pos_weight=None):
    """``sigmoid_cross_entropy_with_logits``, or ``weighted_cross_entropy_with_logits``
    for a ``pos_weight``; element weights multiply the per-element losses."""
    if pos_weight is None:
        per = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    else:
        per = tf.nn.weighted_cross_entropy_with_logits(
            labels=target, logits=logits, pos_weight=pos_weight
        )
    return reduce_loss(per if weight is None else per * weight, reduction)


def token_cross_entropy(logits, target, mask=None, ignore_index=None):
    """Mean over kept tokens: labels of dropped tokens set to 0, losses masked with
    ``tf.where``, summed and divided by the number of kept tokens."""
    if ignore_index is None:
        keep = tf.ones_like(target, dtype=tf.bool)
    else:
        keep = tf.not_equal(target, int(ignore_index))
    if mask is not None:
        keep = tf.logical_and(keep, mask)
    safe = tf.where(keep, target, tf.zeros_like(target))
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    per = tf.where(keep, per, tf.zeros_like(per))
    return tf.reduce_sum(per) / tf.reduce_sum(tf.cast(keep, per.dtype))


def perplexity(logits, target, mask=None, ignore_index=None):
    return tf.exp(token_cross_entropy(logits, target, mask, ignore_index))


# ------------------------------------------------------------------------------ table

_SCE = "tf.nn.softmax_cross_entropy_with_logits"
_SSCE = "tf.nn.sparse_softmax_cross_entropy_with_logits"
_SIG = "tf.nn.sigmoid_cross_entropy_with_logits"
_WSIG = "tf.nn.weighted_cross_entropy_with_logits"
_TOKEN_TF = f"{_SSCE}+where(mask)+sum/count"

_NO_NLL = (
    "TensorFlow and Keras have no negative-log-likelihood loss on log-probabilities "
    "(sparse_categorical_crossentropy(from_logits=True) re-normalises its input)"
)

_REDUCE = {"reduction": param("reduction", "mean")}
_TOKEN_KW = {"mask": "mask", "ignore_index": "ignore_index"}
_AXIS = {"axis": "axis"}


def _plain(call: Call) -> bool:
    return not call.is_set("label_smoothing")


def _weighted(call: Call) -> bool:
    return call.is_set("weight") or call.is_set("ignore_index")


def _pos(call: Call) -> bool:
    return call.is_set("pos_weight")


def _weight(call: Call) -> bool:
    return call.is_set("weight")


D = Declaration
_TF_DECLARATIONS: list[Declaration] = [
    D(_SCE, "softmax_cross_entropy",
      Recipe(softmax_cross_entropy, ("logits", "target"), always=_REDUCE),
      applies=lambda c: not c.integer_target and _plain(c),
      guard=lacks(_SCE, "weight", "ignore_index", "label_smoothing")),
    D(f"{_SCE}+one_hot+label_smoothing", "softmax_cross_entropy",
      Recipe(smoothed_softmax_cross_entropy, ("logits", "target"),
             {"label_smoothing": "label_smoothing"}, _REDUCE),
      applies=lambda c: not _plain(c), guard=lacks(_SCE, "weight", "ignore_index"),
      doc="labels*(1-ls)+ls/C on one_hot(target) or the probability target"),
    D(_SSCE, "softmax_cross_entropy",
      Recipe(sparse_softmax_cross_entropy, ("logits", "target"), always=_REDUCE),
      applies=lambda c: c.integer_target and _plain(c) and not _weighted(c),
      guard=lacks(_SSCE, "weight", "ignore_index", "label_smoothing")),
    D(f"{_SSCE}+weight[target]+where(target!=ignore_index)", "softmax_cross_entropy",
      Recipe(weighted_sparse_softmax_cross_entropy, ("logits", "target"),
             {"weight": "weight", "ignore_index": "ignore_index"}, _REDUCE),
      applies=lambda c: c.integer_target and _plain(c) and _weighted(c),
      guard=lacks(_SSCE, "label_smoothing"),
      doc="w = weight[target] (0 where ignored); sum(w*l)/sum(w) for the mean"),
    D(_SIG, "binary_cross_entropy_with_logits",
      Recipe(sigmoid_cross_entropy, ("logits", "target"), always=_REDUCE),
      applies=lambda c: not _pos(c) and not _weight(c), guard=lacks(_SIG, "pos_weight")),
    D(f"{_SIG}*weight", "binary_cross_entropy_with_logits",
      Recipe(sigmoid_cross_entropy, ("logits", "target"), {"weight": "weight"}, _REDUCE),
      applies=lambda c: not _pos(c) and _weight(c), guard=lacks(_SIG, "pos_weight")),
    D(_WSIG, "binary_cross_entropy_with_logits",
      Recipe(sigmoid_cross_entropy, ("logits", "target"), {"pos_weight": "pos_weight"}, _REDUCE),
      applies=lambda c: _pos(c) and not _weight(c)),
    D(f"{_WSIG}*weight", "binary_cross_entropy_with_logits",
      Recipe(sigmoid_cross_entropy, ("logits", "target"),
             {"weight": "weight", "pos_weight": "pos_weight"}, _REDUCE),
      applies=lambda c: _pos(c) and _weight(c)),
    D(_TOKEN_TF, "token_cross_entropy", Recipe(token_cross_entropy, ("logits", "target"), _TOKEN_KW)),
    D(f"tf.exp({_TOKEN_TF})", "perplexity", Recipe(perplexity, ("logits", "target"), _TOKEN_KW)),
    D("tf.nn.softmax", "softmax", Function("tf.nn.softmax", ("x",), _AXIS)),
    D("tf.nn.log_softmax", "log_softmax", Function("tf.nn.log_softmax", ("x",), _AXIS)),
    D("tf.reduce_logsumexp", "logsumexp",
      Function("tf.reduce_logsumexp", ("x",), always={"axis": param("axis")}),
      doc=f"axis always passed: {keras_apis.AXIS_DEFAULT_ALL}"),
    D("tf.math.sigmoid", "sigmoid", Function("tf.math.sigmoid", ("x",))),
    D("tf.math.log_sigmoid", "log_sigmoid", Function("tf.math.log_sigmoid", ("x",))),
]  # fmt: skip

#: the tf.nn / tf.math rows, then Keras's on the TensorFlow backend (shared with
#: keras-jax and keras-torch)
DECLARATIONS: list[Declaration] = [*_TF_DECLARATIONS, *keras_apis.DECLARATIONS]

#: dotted-path heads as a user imports them
ALIASES: dict[str, str] = {"tf": "tensorflow"}

APIS: list[Api] = [
    *apis(DECLARATIONS, _execute, ALIASES),
    keras_apis.no_nll("(no NLL API in TensorFlow/Keras)", _NO_NLL),
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
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
