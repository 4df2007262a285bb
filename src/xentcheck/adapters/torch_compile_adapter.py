"""PyTorch under ``torch.compile`` (framework ``torch-compile``): compiled counterparts of
the torch adapter's functional rows, on the cases tagged ``compiled-modes`` only.

Each row wraps the same builder as its eager row (``torch.nn.functional.cross_entropy``
...) in ``torch.compile`` with the default (inductor) backend, so forward and backward
are generated kernels: the value comes from the compiled forward, the gradients from
``torch.autograd.grad`` through the compiled backward (AOTAutograd), with the cotangent.
Module forms (``torch.nn.CrossEntropyLoss``) call the same functional kernels and are
not repeated.

Every call compiles afresh (``torch._dynamo.reset()`` first): a call's parameters are
baked into the graph, so the cache would only grow, and past Dynamo's recompile limit
PyTorch silently falls back to eager, which would make the row a lie. Inductor's CPU
code needs a C++ compiler; without one the rows are ``unsupported`` with that reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import torch

from xentcheck.adapters import torch_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name

__all__ = ["APIS", "FRAMEWORK"]

#: the eager rows compiled here: every torch API but the nn.Module twins of a functional one
_BUILDERS: dict[str, eager.Builder] = {
    "torch.nn.functional.cross_entropy": eager._cross_entropy,
    "torch.nn.functional.nll_loss": eager._nll,
    "torch.nn.functional.nll_loss+torch.log": eager._categorical_nll_log,
    "torch.sum(-target*torch.log(probs),dim=1)": eager._categorical_soft,
    "torch.nn.functional.binary_cross_entropy": eager._bce,
    "torch.nn.functional.binary_cross_entropy_with_logits": eager._bce_logits,
    "torch.nn.functional.kl_div": eager._kl,
    "torchvision.ops.sigmoid_focal_loss+torch-ops-recipe": eager._focal,
    eager._TOKEN_RECIPE: eager._token_ce,
    f"torch.exp({eager._TOKEN_RECIPE})": eager._perplexity,
    "torch.nn.functional.softmax": eager._softmax,
    "torch.nn.functional.log_softmax": eager._log_softmax,
    "torch.logsumexp": eager._logsumexp,
    "torch.sigmoid": eager._sigmoid,
    "torch.nn.functional.logsigmoid": eager._log_sigmoid,
}

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


def _compiled(build: eager.Builder) -> eager.Builder:
    def compiled_build(tensors: Mapping[str, torch.Tensor], call: Call) -> torch.Tensor:
        reason = _compiler_missing(call.device)
        if reason is not None:
            raise Unsupported(reason)
        torch._dynamo.reset()  # a fresh compilation: never the silent eager fallback
        fn = torch.compile(lambda t: build(t, call))
        return fn(dict(tensors))

    return compiled_build


def _api(api: Api) -> Api:
    build = _compiled(_BUILDERS[api.name])

    def run(call: Call) -> Output:
        return eager._execute(call, build)

    name = mode_name(MODE, api.name)
    run.__name__ = f"run_{name}"
    return Api(name=name, loss=api.loss, run=run, applies=api.applies, doc=api.doc)


APIS: list[Api] = [_api(a) for a in eager.APIS if a.name in _BUILDERS]


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
)
