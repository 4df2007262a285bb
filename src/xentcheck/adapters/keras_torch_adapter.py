"""Keras 3 on its PyTorch backend (framework ``keras-torch``): the rows of :mod:`keras_apis`.

Keras picks its backend once, when it is first imported, from ``KERAS_BACKEND``: this
module sets it to ``torch`` before importing keras and refuses to load in a process where
keras was already imported with another backend (each framework runs in its own worker
process, so this only bites a user importing two Keras adapters into one interpreter).

Gradients are PyTorch's own: ``torch.autograd.grad`` of the Keras call with the call's
cotangent, in the dtype under test. PyTorch runs on one thread, as in the torch adapter
(``XENTCHECK_TORCH_THREADS`` changes it).
"""

from __future__ import annotations

import os
import platform

os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np
import torch

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.keras_apis import Builder, keras_apis, keras_versions
from xentcheck.harness.results import cpu_name

if keras.backend.backend() != "torch":
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "keras-torch adapter; run it in its own process (xentcheck run does)"
    )

__all__ = ["APIS", "FRAMEWORK"]

_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def _gpu_missing_reason() -> str | None:
    if torch.cuda.is_available():
        return None
    if not torch.version.cuda:
        return f"torch {torch.__version__} is a CPU-only build"
    return "no CUDA device visible to torch"


def _device(call: Call) -> str:
    if call.device == "cpu":
        return "cpu"
    if call.device == "gpu":
        reason = _gpu_missing_reason()
        if reason is not None:
            raise Unsupported(reason)
        return "cuda"
    raise Unsupported(f"unknown device {call.device!r}")


def _tensor(a: np.ndarray, dtype: torch.dtype, device: str) -> torch.Tensor:
    a = np.asarray(a)
    if a.dtype.kind == "b":
        return torch.tensor(a, dtype=torch.bool, device=device)
    if a.dtype.kind in "iu":
        return torch.tensor(a.astype(np.int64), dtype=torch.long, device=device)
    # inputs are already rounded to the dtype under test, so this cast is exact
    return torch.tensor(np.asarray(a, dtype=np.float64)).to(device=device, dtype=dtype)


def _numpy(t) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def execute(call: Call, build: Builder) -> Output:
    """Value and ``torch.autograd.grad`` of ``build`` on the call's inputs, as float64."""
    device = _device(call)
    try:
        dtype = _DTYPES[call.dtype]
    except KeyError:
        raise Unsupported(f"torch has no dtype {call.dtype!r}") from None
    tensors: dict[str, torch.Tensor] = {}
    leaves: dict[str, torch.Tensor] = {}
    for name, arr in call.inputs.items():
        if arr is None:
            continue
        t = _tensor(arr, dtype, device)
        if name in call.grad_inputs and t.is_floating_point():
            t.requires_grad_(True)
            leaves[name] = t
        tensors[name] = t
    with keras.device("cuda:0" if device == "cuda" else "cpu:0"):
        value = build(tensors, call)
    out = Output(value=_numpy(value), out_dtype=str(value.dtype).removeprefix("torch."))
    if not leaves or not value.requires_grad:
        return out
    cot = np.asarray(call.cotangent, dtype=np.float64)
    if tuple(cot.shape) != tuple(value.shape):
        out.note = (
            f"output shape {tuple(value.shape)} differs from the reference's "
            f"{tuple(cot.shape)}: no gradients taken"
        )
        return out
    names = list(leaves)
    grads = torch.autograd.grad(
        value,
        [leaves[n] for n in names],
        grad_outputs=torch.tensor(cot).to(device=value.device, dtype=value.dtype),
        allow_unused=True,
    )
    # an input the API treats as a constant has no gradient: left out, never zero-filled
    out.grads = {n: _numpy(g) for n, g in zip(names, grads, strict=True) if g is not None}
    return out


def make_api(name: str, loss: str, build: Builder, applies, doc: str) -> Api:
    def run(call: Call) -> Output:
        return execute(call, build)

    run.__name__ = f"run_{name}"
    if applies is None:
        return Api(name=name, loss=loss, run=run, doc=doc)
    return Api(name=name, loss=loss, run=run, applies=applies, doc=doc)


APIS: list[Api] = keras_apis(make_api)


def _versions() -> dict[str, str]:
    v = {
        **keras_versions(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    if torch.version.cuda:
        v["cuda"] = str(torch.version.cuda)
    return v


def _devices() -> dict[str, str | None]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": f"{cpu_name()} (keras on torch, {torch.get_num_threads()} thread(s))",
        "gpu": gpu,
    }


def _setup() -> None:
    torch.set_num_threads(int(os.environ.get("XENTCHECK_TORCH_THREADS", "1")))


FRAMEWORK = Framework(
    name="keras-torch",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=_gpu_missing_reason,
    setup=_setup,
)
