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
from collections.abc import Callable, Mapping

os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np
import torch

from xentcheck.adapters import keras_apis, torch_adapter
from xentcheck.adapters.base import Api, Call, Framework, Output
from xentcheck.adapters.declare import apis, snippets
from xentcheck.adapters.torch_adapter import _gpu_missing_reason
from xentcheck.host import cpu_name

if keras.backend.backend() != "torch":
    raise ImportError(
        f"keras was imported with the {keras.backend.backend()!r} backend before the "
        "keras-torch adapter; run it in its own process (xentcheck run does)"
    )

__all__ = ["APIS", "FRAME", "FRAMEWORK"]


def _keras_device(device: torch.device):
    return keras.device("cuda:0" if device.type == "cuda" else "cpu:0")


def _execute(call: Call, fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]) -> Output:
    """Value and ``torch.autograd.grad`` of ``fn`` on the call's inputs, as float64: the
    torch adapter's runner, with the Keras ops placed on the call's device."""
    return torch_adapter._execute(call, fn, around=_keras_device)


class KerasTorchFrame(torch_adapter.TorchFrame):
    """The torch adapter's snippets, with Keras on torch and its ops placed as
    :func:`_execute` places them (``keras.device``)."""

    imports = (
        'import os\n\nos.environ["KERAS_BACKEND"] = "torch"\n\n'
        "import keras\nimport numpy as np\nimport torch"
    )

    def place(self, call: Call) -> str:
        return f"keras.device({'cuda:0' if call.device == 'gpu' else 'cpu:0'!r})"


FRAME = KerasTorchFrame()

APIS: list[Api] = [
    *apis(keras_apis.DECLARATIONS, _execute, keras_apis.ALIASES),
    keras_apis.no_nll(),
]


def _versions() -> dict[str, str]:
    v = {
        **keras_apis.keras_versions(),
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
    snippet=snippets(keras_apis.DECLARATIONS, FRAME, _versions),
)
