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
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import tensorflow as tf

from xentcheck.adapters import tensorflow_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name
from xentcheck.adapters.declare import apis, array_literal, snippets

__all__ = ["APIS", "FRAMEWORK"]

MODE = "tf.function(jit_compile=True)"


def xla(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (the eager plumbing's function of value and VJP) as one XLA-compiled
    ``tf.function``, traced afresh for each call."""
    return tf.function(fn, jit_compile=True, autograph=False)


class XlaFrame(eager.TensorFlowFrame):
    """Snippets of the compiled rows: value and VJP as one function under
    ``tf.function(jit_compile=True)``, called with the inputs and the cotangent, as
    :func:`xla` compiles the eager plumbing's function."""

    def program(self, expression: str, call: Call) -> str:
        device = "/GPU:0" if call.device == "gpu" else "/CPU:0"
        names = [n for n in call.inputs if call.inputs[n] is not None]
        watched = eager._differentiable(call)
        cot = array_literal(np.asarray(call.cotangent))
        args = ", ".join(names)
        lines = [
            "@tf.function(jit_compile=True, autograph=False)",
            f"def value_and_vjp({args}, cotangent):",
            "    with tf.GradientTape(watch_accessed_variables=False) as tape:",
            *[f"        tape.watch({n})" for n in watched],
            f"        loss = tf.convert_to_tensor({expression})",
        ]
        if watched:
            lines += [
                "    if loss.shape != cotangent.shape:",
                "        return loss, {}",
                f"    d = tape.gradient(loss, [{', '.join(watched)}], "
                "output_gradients=tf.cast(cotangent, loss.dtype))",
                f"    return loss, {{k: g for k, g in zip({watched!r}, d) if g is not None}}",
            ]
        else:
            lines.append("    return loss, {}")
        lines += [
            "",
            f"with tf.device({device!r}):",
            f"    loss, d = value_and_vjp({args}, tf.constant({cot}))",
            "value = loss.numpy().astype(np.float64)",
            "grads = {k: g.numpy().astype(np.float64) for k, g in d.items()}",
            'print("value", value)',
            'print("grads", grads)',
        ]
        return "\n".join(lines)


#: every tensorflow declaration (tf.nn, tf.math and Keras rows), value and VJP compiled;
#: the row saying TensorFlow has no NLL API is no declaration, so it has no compiled twin
APIS: list[Api] = apis(
    eager.DECLARATIONS,
    partial(eager._execute, compile=xla),
    eager.ALIASES,
    rename=partial(mode_name, MODE),
)

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
    snippet=snippets(eager.DECLARATIONS, XlaFrame(), _versions, rename=partial(mode_name, MODE)),
)
