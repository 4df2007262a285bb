"""PyTorch adapter: every torch API that computes a loss of the registry, one Api each.

Functional (``torch.nn.functional.*``) and module (``torch.nn.*Loss``) forms are separate
rows. Where torch has no API for a loss, the idiomatic user recipe built from torch ops is
run and named in the row (``torch.nn.functional.nll_loss+torch.log`` ...).

Arguments are passed the way a user would: a framework argument exactly when the case set
the parameter (:meth:`Call.is_set <xentcheck.adapters.base.Call.is_set>`, ``0.0`` and the
default included), and the ``dim`` of softmax / log_softmax / logsumexp always (torch
deprecates the implicit ``dim``, and ``logsumexp`` requires it). The torchvision
focal-loss recipe is torch ops written out: its formula uses alpha, gamma and the
reduction whatever the case set. Nothing is clamped, checked or rewritten on the way in
or out, so every difference of torch shows up in the results.

Gradients are vector-Jacobian products ``torch.autograd.grad(value, inputs, cotangent)``
in the dtype under test. An input torch does not differentiate is left out of the grads.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.harness.results import cpu_name

__all__ = ["FRAMEWORK"]

_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

#: torch's default ``ignore_index`` of cross_entropy / nll_loss
_TORCH_IGNORE_INDEX = -100

Tensors = Mapping[str, torch.Tensor]
Builder = Callable[[Tensors, Call], torch.Tensor]


# --------------------------------------------------------------------------- plumbing


def _device(call: Call) -> torch.device:
    if call.device == "cpu":
        return torch.device("cpu")
    if call.device == "gpu":
        reason = _gpu_missing_reason()
        if reason is not None:
            raise Unsupported(reason)
        return torch.device("cuda")
    raise Unsupported(f"unknown device {call.device!r}")


def _dtype(call: Call) -> torch.dtype:
    try:
        return _DTYPES[call.dtype]
    except KeyError:
        raise Unsupported(f"torch has no dtype {call.dtype!r}") from None


def _tensor(arr: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind == "b":
        return torch.tensor(a, dtype=torch.bool, device=device)
    if a.dtype.kind in "iu":
        return torch.tensor(a.astype(np.int64), dtype=torch.long, device=device)
    # inputs are already rounded to the dtype under test, so this cast is exact
    return torch.tensor(np.asarray(a, dtype=np.float64)).to(device=device, dtype=dtype)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _execute(
    call: Call,
    build: Builder,
    around: Callable[[torch.device], contextlib.AbstractContextManager] | None = None,
) -> Output:
    """Build the tensors of ``call``, run ``build`` and take the VJP with the cotangent.

    ``around(device)``, when given, is a context the call of ``build`` runs in (Keras on
    torch places its ops with ``keras.device``).
    """
    device = _device(call)
    dtype = _dtype(call)
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
    with around(device) if around is not None else contextlib.nullcontext():
        value = build(tensors, call)
    out = Output(value=_numpy(value), out_dtype=_dtype_name(value))
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


def _check_gpu_labels(call: Call, target: torch.Tensor, classes: int, ignore_index: int) -> None:
    """On CUDA an out-of-range label trips a device-side assert that poisons the context.

    Every later call of the worker would then fail, so such an instance is not run on the
    GPU at all (on the CPU it runs and torch's exception is recorded).
    """
    if target.device.type != "cuda" or target.numel() == 0:
        return
    bad = ((target < 0) | (target >= classes)) & (target != ignore_index)
    if bool(bad.any()):
        raise Unsupported(
            "out-of-range class index on CUDA: torch raises a device-side assert that "
            "poisons the CUDA context for the rest of the run; checked on the CPU only"
        )


def _classes(x: torch.Tensor) -> int:
    """Size of the class axis: 1, or 0 for an unbatched ``[C]`` input."""
    return int(x.shape[1] if x.dim() >= 2 else x.shape[0]) if x.dim() else 0


def _ignore_index(call: Call) -> int:
    """The ignore index torch applies: the case's when set, else torch's default."""
    return int(call.params["ignore_index"]) if call.is_set("ignore_index") else _TORCH_IGNORE_INDEX


def _weights(t: Tensors, call: Call, *names: str) -> dict[str, torch.Tensor]:
    """The optional weight inputs among ``names`` that the case gave, as keywords."""
    return {n: t[n] for n in names if call.is_set(n)}


def _api(name: str, loss: str, build: Builder, applies=None, doc: str = "") -> Api:
    def run(call: Call) -> Output:
        return _execute(call, build)

    run.__name__ = f"run_{name}"
    if applies is None:
        return Api(name=name, loss=loss, run=run, doc=doc)
    return Api(name=name, loss=loss, run=run, applies=applies, doc=doc)


def _integer_target(call: Call) -> bool:
    return call.integer_target


def _probability_target(call: Call) -> bool:
    return not call.integer_target


# --------------------------------------------------------------------- softmax family


def _ce_args(t: Tensors, call: Call) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    logits, target = t["logits"], t["target"]
    kw = call.kwargs(("ignore_index", "label_smoothing", "reduction")) | _weights(t, call, "weight")
    if not target.is_floating_point():
        _check_gpu_labels(call, target, _classes(logits), _ignore_index(call))
    return logits, target, kw


def _cross_entropy(t: Tensors, call: Call) -> torch.Tensor:
    logits, target, kw = _ce_args(t, call)
    return F.cross_entropy(logits, target, **kw)


def _cross_entropy_module(t: Tensors, call: Call) -> torch.Tensor:
    logits, target, kw = _ce_args(t, call)
    return nn.CrossEntropyLoss(**kw)(logits, target)


def _nll_args(t: Tensors, call: Call) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    log_probs, target = t["log_probs"], t["target"]
    kw = call.kwargs(("ignore_index", "reduction")) | _weights(t, call, "weight")
    _check_gpu_labels(call, target, _classes(log_probs), _ignore_index(call))
    return log_probs, target, kw


def _nll(t: Tensors, call: Call) -> torch.Tensor:
    log_probs, target, kw = _nll_args(t, call)
    return F.nll_loss(log_probs, target, **kw)


def _nll_module(t: Tensors, call: Call) -> torch.Tensor:
    log_probs, target, kw = _nll_args(t, call)
    return nn.NLLLoss(**kw)(log_probs, target)


def _categorical_nll_log(t: Tensors, call: Call) -> torch.Tensor:
    """The user recipe for probabilities and class indices: ``nll_loss(torch.log(p), y)``."""
    probs, target = t["probs"], t["target"]
    _check_gpu_labels(call, target, _classes(probs), _TORCH_IGNORE_INDEX)
    return F.nll_loss(torch.log(probs), target, **call.kwargs(("reduction",)))


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _categorical_soft(t: Tensors, call: Call) -> torch.Tensor:
    """The user recipe for probabilities and probability targets:
    ``-(target * torch.log(probs)).sum(dim=1)``, then the reduction (mean over the rest)."""
    probs, target = t["probs"], t["target"]
    return _reduce(-(target * torch.log(probs)).sum(dim=1), call.params.get("reduction", "mean"))


def _softmax(t: Tensors, call: Call) -> torch.Tensor:
    return F.softmax(t["x"], dim=call.params["axis"])


def _softmax_module(t: Tensors, call: Call) -> torch.Tensor:
    return nn.Softmax(dim=call.params["axis"])(t["x"])


def _log_softmax(t: Tensors, call: Call) -> torch.Tensor:
    return F.log_softmax(t["x"], dim=call.params["axis"])


def _log_softmax_module(t: Tensors, call: Call) -> torch.Tensor:
    return nn.LogSoftmax(dim=call.params["axis"])(t["x"])


def _logsumexp(t: Tensors, call: Call) -> torch.Tensor:
    return torch.logsumexp(t["x"], dim=call.params["axis"])


# ------------------------------------------------------------------------ token losses


def _token_ce(t: Tensors, call: Call) -> torch.Tensor:
    """The usual language-model recipe: flatten to ``[B*T, V]`` and let ``cross_entropy``
    drop padding: masked positions get the ignore index (``-100`` unless set)."""
    logits, target = t["logits"], t["target"]
    kw = call.kwargs(("ignore_index",))
    ignore = _ignore_index(call)
    if call.is_set("mask"):
        target = target.masked_fill(~t["mask"], ignore)
    vocab = logits.shape[-1]
    _check_gpu_labels(call, target, vocab, ignore)
    return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), **kw)


def _perplexity(t: Tensors, call: Call) -> torch.Tensor:
    return torch.exp(_token_ce(t, call))


# ---------------------------------------------------------------------- binary family


def _check_gpu_unit_interval(t: Tensors) -> None:
    """On CUDA, binary_cross_entropy asserts ``0 <= x <= 1`` inside the kernel: a
    device-side assert that poisons the context (the CPU raises a RuntimeError)."""
    probs = t["probs"]
    if probs.device.type != "cuda":
        return
    for name in ("probs", "target"):
        x = t[name].detach()
        if bool(((x < 0) | (x > 1) | torch.isnan(x)).any()):
            raise Unsupported(
                f"{name} outside [0, 1] on CUDA: binary_cross_entropy raises a device-side "
                "assert that poisons the CUDA context; checked on the CPU only"
            )


def _bce_args(t: Tensors, call: Call) -> dict[str, Any]:
    return call.kwargs(("reduction",)) | _weights(t, call, "weight")


def _bce(t: Tensors, call: Call) -> torch.Tensor:
    _check_gpu_unit_interval(t)
    return F.binary_cross_entropy(t["probs"], t["target"], **_bce_args(t, call))


def _bce_module(t: Tensors, call: Call) -> torch.Tensor:
    _check_gpu_unit_interval(t)
    return nn.BCELoss(**_bce_args(t, call))(t["probs"], t["target"])


def _bce_logits_args(t: Tensors, call: Call) -> dict[str, Any]:
    return _bce_args(t, call) | _weights(t, call, "pos_weight")


def _bce_logits(t: Tensors, call: Call) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(t["logits"], t["target"], **_bce_logits_args(t, call))


def _bce_logits_module(t: Tensors, call: Call) -> torch.Tensor:
    return nn.BCEWithLogitsLoss(**_bce_logits_args(t, call))(t["logits"], t["target"])


def _focal(t: Tensors, call: Call) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss (torchvision 0.2x), written out in torch ops as a
    user without torchvision would copy it. Its default reduction is ``none``, so the
    reduction is always passed (the registry's default is ``mean``)."""
    inputs, targets = t["logits"], t["target"]
    alpha = call.params.get("alpha", 0.25)
    # no alpha weighting: torchvision's way to say it is alpha=-1 ("-1 for ignore")
    alpha = -1.0 if alpha is None else float(alpha)
    gamma = float(call.params.get("gamma", 2.0))
    reduction = call.params.get("reduction", "mean")
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(
        f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: 'none', 'mean', 'sum'"
    )


def _sigmoid(t: Tensors, call: Call) -> torch.Tensor:
    return torch.sigmoid(t["x"])


def _sigmoid_module(t: Tensors, call: Call) -> torch.Tensor:
    return nn.Sigmoid()(t["x"])


def _log_sigmoid(t: Tensors, call: Call) -> torch.Tensor:
    return F.logsigmoid(t["x"])


def _log_sigmoid_module(t: Tensors, call: Call) -> torch.Tensor:
    return nn.LogSigmoid()(t["x"])


# -------------------------------------------------------------------------------- KL


def _kl_args(call: Call) -> dict[str, Any]:
    return call.kwargs(("reduction", "log_target"))


def _kl(t: Tensors, call: Call) -> torch.Tensor:
    with warnings.catch_warnings():  # the "'mean' divides by the element count" warning
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(t["input"], t["target"], **_kl_args(call))


def _kl_module(t: Tensors, call: Call) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nn.KLDivLoss(**_kl_args(call))(t["input"], t["target"])


# ------------------------------------------------------------------------------ APIs

_TOKEN_RECIPE = "torch.nn.functional.cross_entropy+view(-1,V)+masked_fill(ignore_index)"

APIS: list[Api] = [
    _api("torch.nn.functional.cross_entropy", "softmax_cross_entropy", _cross_entropy),
    _api("torch.nn.CrossEntropyLoss", "softmax_cross_entropy", _cross_entropy_module),
    _api(
        "torch.nn.functional.nll_loss+torch.log",
        "categorical_cross_entropy",
        _categorical_nll_log,
        applies=_integer_target,
        doc="class indices: nll_loss(torch.log(probs), target)",
    ),
    _api(
        "torch.sum(-target*torch.log(probs),dim=1)",
        "categorical_cross_entropy",
        _categorical_soft,
        applies=_probability_target,
        doc="probability targets: -(target * torch.log(probs)).sum(dim=1), then mean/sum",
    ),
    _api("torch.nn.functional.nll_loss", "nll", _nll),
    _api("torch.nn.NLLLoss", "nll", _nll_module),
    _api("torch.nn.functional.binary_cross_entropy", "binary_cross_entropy", _bce),
    _api("torch.nn.BCELoss", "binary_cross_entropy", _bce_module),
    _api(
        "torch.nn.functional.binary_cross_entropy_with_logits",
        "binary_cross_entropy_with_logits",
        _bce_logits,
    ),
    _api("torch.nn.BCEWithLogitsLoss", "binary_cross_entropy_with_logits", _bce_logits_module),
    _api("torch.nn.functional.kl_div", "kl_divergence", _kl),
    _api("torch.nn.KLDivLoss", "kl_divergence", _kl_module),
    _api(
        "torchvision.ops.sigmoid_focal_loss+torch-ops-recipe",
        "sigmoid_focal_loss",
        _focal,
        doc="torchvision is not installed: its formula written out in torch ops",
    ),
    _api(_TOKEN_RECIPE, "token_cross_entropy", _token_ce),
    _api(f"torch.exp({_TOKEN_RECIPE})", "perplexity", _perplexity),
    _api("torch.nn.functional.softmax", "softmax", _softmax),
    _api("torch.nn.Softmax", "softmax", _softmax_module),
    _api("torch.nn.functional.log_softmax", "log_softmax", _log_softmax),
    _api("torch.nn.LogSoftmax", "log_softmax", _log_softmax_module),
    _api("torch.logsumexp", "logsumexp", _logsumexp),
    _api("torch.sigmoid", "sigmoid", _sigmoid),
    _api("torch.nn.Sigmoid", "sigmoid", _sigmoid_module),
    _api("torch.nn.functional.logsigmoid", "log_sigmoid", _log_sigmoid),
    _api("torch.nn.LogSigmoid", "log_sigmoid", _log_sigmoid_module),
]


# ------------------------------------------------------------------------- framework


def _versions() -> dict[str, str]:
    v = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    if torch.version.cuda:
        v["cuda"] = str(torch.version.cuda)
    return v


def _cpu_name() -> str:
    name = cpu_name()
    n = torch.get_num_threads()
    return f"{name} ({n} torch thread{'' if n == 1 else 's'})"


def _gpu_missing_reason() -> str | None:
    if torch.cuda.is_available():
        return None
    if not torch.version.cuda:
        return f"torch {torch.__version__} is a CPU-only build"
    return "no CUDA device visible to torch"


def _devices() -> dict[str, str | None]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": _cpu_name(), "gpu": gpu}


_NOT_FOR_DTYPE = re.compile(r"not implemented for '(Half|BFloat16|Float|Double)'")


def _unsupported_reason(exc: BaseException) -> str | None:
    """Kernels missing for a dtype (``"addmm_impl_cpu_" not implemented for 'Half'``)."""
    if not isinstance(exc, RuntimeError | NotImplementedError | TypeError):
        return None
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if _NOT_FOR_DTYPE.search(msg):
        return f"torch kernel missing for this dtype: {msg}"
    return None


def _setup() -> None:
    """One intra-op thread unless ``XENTCHECK_TORCH_THREADS`` says otherwise.

    The instances are small: with several OpenMP threads on a busy machine every op pays
    for thread wake-ups (50 ms for a 4x5 cross_entropy with its backward on 2 shared cores,
    0.2 ms on one thread), and one thread makes the summation order, hence the last bits
    of large reductions, the same from run to run.
    """
    torch.set_num_threads(int(os.environ.get("XENTCHECK_TORCH_THREADS", "1")))


FRAMEWORK = Framework(
    name="torch",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=_gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
    setup=_setup,
)
