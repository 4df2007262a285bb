"""PyTorch under ``torch.compile`` (framework ``torch-compile``): compiled counterparts of
the torch adapter's functional rows, on the cases tagged ``compiled-modes`` only.

Each row wraps the same declaration as its eager row (``torch.nn.functional.cross_entropy``
...) in ``torch.compile`` with the default (inductor) backend, so forward and backward
are generated kernels: the value comes from the compiled forward, the gradients from
``torch.autograd.grad`` through the compiled backward (AOTAutograd), with the cotangent.
Module forms (``torch.nn.CrossEntropyLoss``, declared ``twin_of`` their functional
form) call the same kernels and are not repeated.

Every call compiles afresh (``torch._dynamo.reset()`` first): a call's parameters are
baked into the graph, so the cache would only grow, and past Dynamo's recompile limit
PyTorch silently falls back to eager, which would make the row a lie. Inductor's CPU
code needs a C++ compiler; without one the rows are ``unsupported`` with that reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from functools import partial

import torch

from xentcheck.adapters import torch_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework, Unsupported
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name
from xentcheck.adapters.declare import apis, snippets

Tensors = Mapping[str, torch.Tensor]

__all__ = ["APIS", "FRAMEWORK"]

MODE = "torch.compile"


def _compiler_missing(device: str) -> str | None:
    """Why inductor cannot build kernels here (None when it can)."""
    if device == "cpu":
        cxx = os.environ.get("CXX")
        if not any(shutil.which(c) for c in (cxx, "g++", "c++", "clang++") if c):
            return "torch.compile's inductor CPU backend needs a C++ compiler; none on PATH"
    elif device == "gpu":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch.compile's inductor CUDA backend needs triton, not installed"
    return None


def compiled(
    fn: Callable[[Tensors], torch.Tensor], call: Call
) -> Callable[[Tensors], torch.Tensor]:
    """``fn`` under ``torch.compile``, compiled afresh for this call (after the eager
    plumbing has placed the tensors: a missing device is reported before a missing
    compiler)."""

    def compiled_fn(tensors: Tensors) -> torch.Tensor:
        reason = _compiler_missing(call.device)
        if reason is not None:
            raise Unsupported(reason)
        torch._dynamo.reset()  # a fresh compilation: never the silent eager fallback
        return torch.compile(lambda t: fn(t))(dict(tensors))

    return compiled_fn


class CompiledFrame(eager.TorchFrame):
    """Snippets of the compiled rows: the call under ``torch.compile``, compiled afresh
    (``torch._dynamo.reset()``), the tensors passed as the adapter passes them."""

    imports = eager.TorchFrame.imports + "\ntorch._dynamo.reset()"

    def compute(self, expression: str) -> str:
        return f"torch.compile(lambda: {expression})()"


#: every torch declaration but the nn.Module twins of a functional one, compiled
APIS: list[Api] = apis(
    eager.DECLARATIONS,
    eager._execute,
    eager.ALIASES,
    wrap=compiled,
    rename=partial(mode_name, MODE),
)


def _versions() -> dict[str, str]:
    v = eager._versions()
    v["torch_compile_backend"] = "inductor"
    cxx = shutil.which(os.environ.get("CXX") or "g++") or shutil.which("c++")
    if cxx:
        v["cxx"] = cxx
    return v


def _setup() -> None:
    """One torch thread (as the eager adapter) and in-process compilation: no pool of
    compile workers on a shared machine."""
    eager._setup()
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1


FRAMEWORK = Framework(
    name="torch-compile",
    apis=APIS,
    versions=_versions,
    devices=eager._devices,
    gpu_missing_reason=eager._gpu_missing_reason,
    unsupported_reason=eager._unsupported_reason,
    setup=_setup,
    case_tags=CASE_TAGS,
    snippet=snippets(
        eager.DECLARATIONS, CompiledFrame(), _versions, rename=partial(mode_name, MODE)
    ),
)
