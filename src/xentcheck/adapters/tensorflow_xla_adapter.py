"""TensorFlow under ``tf.function(jit_compile=True)`` (framework ``tensorflow-xla``): the
tensorflow adapter's rows (``tf.nn``, ``tf.math`` and Keras on the TensorFlow backend)
compiled by XLA, on the cases tagged ``compiled-modes`` only.

Value and gradients are computed by ONE XLA-compiled function per call: the API under a
``GradientTape`` and ``tape.gradient`` with the cotangent, both inside the
``tf.function``, so the backward pass is compiled too, as in a compiled training step.
XLA has no runtime errors (an out-of-range label cannot raise inside a compiled kernel),
so error behaviour can differ from the eager rows; an op XLA cannot compile makes the
row ``unsupported`` with XLA's reason.
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from xentcheck.adapters import tensorflow_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework, Output
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name

__all__ = ["APIS", "FRAMEWORK"]

MODE = "tf.function(jit_compile=True)"


def _execute(call: Call, build: eager.Builder) -> Output:
    """Run ``build`` and its VJP in one XLA-compiled ``tf.function``."""
    dtype = eager._dtype(call)
    with tf.device(eager._device(call)):
        tensors = {n: eager._tensor(a, dtype) for n, a in call.inputs.items() if a is not None}
        sources = [n for n in call.grad_inputs if n in tensors and tensors[n].dtype.is_floating]
        cot = tf.constant(np.asarray(call.cotangent, dtype=np.float64))

        @tf.function(jit_compile=True, autograph=False)
        def value_and_vjp(t, ct):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                for n in sources:
                    tape.watch(t[n])
                value = tf.convert_to_tensor(build(t, call))
            if not sources or value.shape != ct.shape:
                return value, {}
            grads = tape.gradient(
                value, [t[n] for n in sources], output_gradients=tf.cast(ct, value.dtype)
            )
            # an input the API treats as a constant has no gradient: left out
            return value, {n: g for n, g in zip(sources, grads, strict=True) if g is not None}

        value, grads = value_and_vjp(tensors, cot)
    out = Output(value=eager._numpy(value), out_dtype=value.dtype.name)
    if sources and tuple(value.shape) != tuple(cot.shape):
        out.note = (
            f"output shape {list(value.shape)} differs from the reference's "
            f"{list(cot.shape)}: no gradients taken"
        )
    out.grads = {n: eager._numpy(g) for n, g in grads.items()}
    return out


def _api(api: Api) -> Api:
    build = eager.BUILDERS[api.name]

    def run(call: Call) -> Output:
        return _execute(call, build)

    name = mode_name(MODE, api.name)
    run.__name__ = f"run_{name}"
    return Api(name=name, loss=api.loss, run=run, applies=api.applies, doc=api.doc)


#: every tensorflow row but the placeholder saying TensorFlow has no NLL API
APIS: list[Api] = [_api(a) for a in eager.APIS if not a.name.startswith("(")]

_XLA_CANNOT = re.compile(
    r"(Detected unsupported operations when trying to compile graph"
    r"|XLA compilation requires|No registered '\w+' OpKernel for XLA_\w+_JIT)"
)


def _unsupported_reason(exc: BaseException) -> str | None:
    """An op or dtype XLA cannot compile, or what the eager adapter counts as missing."""
    msg = " ".join(str(exc).split())
    if _XLA_CANNOT.search(msg):
        return f"XLA cannot compile this: {msg[:300]}"
    return eager._unsupported_reason(exc)


def _versions() -> dict[str, str]:
    return {**eager._versions(), "jit_compile": "True"}


def _setup() -> None:
    """Keep XLA executables in ``$XENTCHECK_COMPILE_CACHE/tensorflow/VERSION`` (the runner
    sets the variable to a folder of its cache), so a rerun loads instead of compiling.

    TensorFlow reads ``TF_XLA_FLAGS`` at its first compilation, so setting it here, after
    the import but before any call, is in time. The version in the path keeps executables
    of other TensorFlow releases apart. Cached or not, an executable computes the same.
    """
    folder = os.environ.get("XENTCHECK_COMPILE_CACHE")
    if not folder:
        return
    where = os.path.join(folder, "tensorflow", tf.__version__)
    flag = f"--tf_xla_persistent_cache_directory={where}"
    os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {flag}".strip()


FRAMEWORK = Framework(
    name="tensorflow-xla",
    apis=APIS,
    versions=_versions,
    devices=eager._devices,
    gpu_missing_reason=eager._gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
    setup=_setup,
    case_tags=CASE_TAGS,
)
