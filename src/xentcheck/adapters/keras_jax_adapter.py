"""Keras 3 on its JAX backend (framework ``keras-jax``): the rows of :mod:`keras_apis`.

Keras picks its backend once, when it is first imported, from ``KERAS_BACKEND``: this
module sets it to ``jax`` before importing keras and refuses to load in a process where
keras was already imported with another backend (each framework runs in its own worker
process, so this only bites a user importing two Keras adapters into one interpreter).
float64 needs ``jax_enable_x64``, switched on before keras sees JAX.

Gradients are JAX's own: ``jax.vjp`` of the Keras call (run eagerly, op by op, as in a
Keras program that is not compiled) with the call's cotangent, in the dtype under test.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from typing import Any

os.environ["KERAS_BACKEND"] = "jax"

import jax

jax.config.update("jax_enable_x64", True)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from xentcheck.adapters import keras_apis  # noqa: E402
from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported, shape_differs  # noqa: E402
from xentcheck.adapters.declare import apis, array_literal, snippets  # noqa: E402
from xentcheck.adapters.jax_compile import (  # noqa: E402
    device_for,
    enable_compile_cache,
    gpu_devices,
    gpu_missing_reason,
    to_device,
)
from xentcheck.dtypes import numpy_dtype  # noqa: E402
from xentcheck.host import cpu_name  # noqa: E402

if keras.backend.backend() != "jax":
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "keras-jax adapter; run it in its own process (xentcheck run does)"
    )

__all__ = ["APIS", "FRAME", "FRAMEWORK"]


def _keras_device(call: Call) -> str:
    return "gpu:0" if call.device == "gpu" else "cpu:0"


def _execute(call: Call, fn: Callable[[Mapping[str, Any]], Any]) -> Output:
    """Value and ``jax.vjp`` of ``fn`` on the call's inputs, as float64 arrays."""
    device = device_for(call)
    try:
        numpy_dtype(call.dtype)
    except ValueError:
        raise Unsupported(f"JAX has no dtype {call.dtype!r}") from None
    arrays = {k: to_device(v, call.dtype, device) for k, v in call.inputs.items() if v is not None}
    diff = {
        k: arrays[k]
        for k in call.grad_inputs
        if k in arrays and jax.numpy.issubdtype(arrays[k].dtype, jax.numpy.floating)
    }
    const = {k: v for k, v in arrays.items() if k not in diff}
    with keras.device(_keras_device(call)):
        if not diff:
            value = fn(const)
            return Output(value=np.asarray(value, dtype=np.float64), out_dtype=str(value.dtype))
        value, pullback = jax.vjp(lambda d: fn({**const, **d}), diff)
        out = Output(value=np.asarray(value, dtype=np.float64), out_dtype=str(value.dtype))
        cot = np.asarray(call.cotangent, dtype=np.float64)
        note = shape_differs(tuple(value.shape), cot)
        if note is not None:
            out.note = note
            return out
        (grads,) = pullback(jax.numpy.asarray(cot, dtype=value.dtype))
    out.grads = {k: np.asarray(g, dtype=np.float64) for k, g in grads.items()}
    return out


class KerasJaxFrame:
    """Snippets that hold inputs and take gradients as :func:`_execute` does."""

    imports = (
        "import os\n\n"
        'os.environ["KERAS_BACKEND"] = "jax"\n\n'
        "import jax\n\n"
        'jax.config.update("jax_enable_x64", True)\n\n'
        "import keras\nimport numpy as np"
    )

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        a = np.asarray(array)
        cast = "" if a.dtype.kind in "biu" else f".astype(jax.numpy.{call.dtype})"
        device = f"jax.devices({call.device!r})[0]"
        return f"{name} = jax.device_put({array_literal(a)}{cast}, {device})"

    def program(self, expression: str, call: Call) -> str:
        names = [
            n
            for n in call.grad_inputs
            if call.inputs.get(n) is not None and np.asarray(call.inputs[n]).dtype.kind == "f"
        ]
        lines = [f"with keras.device({_keras_device(call)!r}):"]
        if not names:
            body = [f"loss = {expression}", "grads = {}"]
        else:
            cot = array_literal(np.asarray(call.cotangent))
            body = [
                f"loss, pullback = jax.vjp(lambda {', '.join(names)}: {expression}, "
                f"{', '.join(names)})",
                f"cotangent = {cot}",
                "grads = {}",
                "if loss.shape == cotangent.shape:",
                "    d = pullback(jax.numpy.asarray(cotangent, dtype=loss.dtype))",
                f"    grads = {{k: np.asarray(g, dtype=np.float64) for k, g in zip({names!r}, d)}}",
            ]
        lines += [f"    {line}" for line in body]
        lines += [
            "value = np.asarray(loss, dtype=np.float64)",
            'print("value", value)',
            'print("grads", grads)',
        ]
        return "\n".join(lines)


FRAME = KerasJaxFrame()

APIS: list[Api] = [
    *apis(keras_apis.DECLARATIONS, _execute, keras_apis.ALIASES),
    keras_apis.no_nll(),
]


def _versions() -> dict[str, str]:
    import jaxlib

    return {
        **keras_apis.keras_versions(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _devices() -> dict[str, str | None]:
    gpus = gpu_devices()
    gpu = (getattr(gpus[0], "device_kind", None) or str(gpus[0])) if gpus else None
    return {"cpu": f"{cpu_name()} (keras on jax)", "gpu": gpu}


def _setup() -> None:
    """JAX's persistent compilation cache, as the jax adapter keeps it (Keras's eager ops
    compile one small executable per primitive, shape and dtype)."""
    enable_compile_cache(jax)


FRAMEWORK = Framework(
    name="keras-jax",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=gpu_missing_reason,
    setup=_setup,
    snippet=snippets(keras_apis.DECLARATIONS, FRAME, _versions),
)
