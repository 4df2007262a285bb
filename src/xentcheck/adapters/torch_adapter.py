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

import numpy as np
import torch
import torch.nn.functional as F

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported, shape_differs
from xentcheck.adapters.declare import (
    Construct,
    Declaration,
    Function,
    Recipe,
    apis,
    array_literal,
    integer_target,
    param,
    probability_target,
    snippets,
)
from xentcheck.host import cpu_name

__all__ = ["APIS", "DECLARATIONS", "FRAME", "FRAMEWORK"]

_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

Tensors = Mapping[str, torch.Tensor]


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
    fn: Callable[[Tensors], torch.Tensor],
    around: Callable[[torch.device], contextlib.AbstractContextManager] | None = None,
) -> Output:
    """Build the tensors of ``call``, run ``fn`` on them and take the VJP with the cotangent.

    ``around(device)``, when given, is a context the call of ``fn`` runs in (Keras on
    torch places its ops with ``keras.device``). UserWarnings of the call (kl_div's "'mean'
    divides by the element count") are not results and are dropped.
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
    place = around(device) if around is not None else contextlib.nullcontext()
    with place, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = fn(tensors)
    out = Output(value=_numpy(value), out_dtype=_dtype_name(value))
    if not leaves or not value.requires_grad:
        return out
    cot = np.asarray(call.cotangent, dtype=np.float64)
    note = shape_differs(tuple(value.shape), cot)
    if note is not None:
        out.note = note
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


class TorchFrame:
    """Snippets that hold inputs and take gradients as :func:`_execute` does."""

    #: one intra-op thread, as the adapter runs (summation order, hence the last bits)
    imports = "import numpy as np\nimport torch\ntorch.set_num_threads(1)"

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        a = np.asarray(array)
        device = ", device='cuda'" if call.device == "gpu" else ""
        if a.dtype.kind in "biu":
            return f"{name} = torch.tensor({array_literal(a)}{device})"
        grad = ".requires_grad_()" if name in call.grad_inputs else ""
        return f"{name} = torch.tensor({array_literal(a)}{device}).to(torch.{call.dtype}){grad}"

    def place(self, call: Call) -> str | None:
        """The context the call runs in, as source (None: none)."""
        return None

    def compute(self, expression: str) -> str:
        """The source computing the loss from the call's expression."""
        return expression

    def program(self, expression: str, call: Call) -> str:
        place = self.place(call)
        first = f"loss = {self.compute(expression)}"
        lines = [f"with {place}:\n    {first}" if place else first]
        lines += ["value = loss.detach().cpu().double().numpy()", "grads = {}"]
        names = [n for n in call.grad_inputs if n in call.inputs]
        if names:  # as _execute: no gradients when the value's shape is not the reference's
            lines += [
                f"cotangent = torch.tensor({array_literal(np.asarray(call.cotangent))})",
                "if loss.requires_grad and tuple(loss.shape) == tuple(cotangent.shape):",
                f"    d = torch.autograd.grad(loss, [{', '.join(names)}], "
                "cotangent.to(loss.device, loss.dtype), allow_unused=True)",
                f"    grads = {{k: g.cpu().double().numpy() for k, g in zip({names!r}, d) if g is not None}}",
            ]
        lines += ['print("value", value)', 'print("grads", grads)']
        return "\n".join(lines)


FRAME = TorchFrame()


def _check_gpu_labels(target: torch.Tensor, classes: int, ignore_index: int) -> None:
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
    return int(call.params["ignore_index"]) if call.is_set("ignore_index") else TORCH_IGNORE_INDEX


def _labels_guard(x: str, ignore: bool = True) -> Callable[[Call, Tensors], None]:
    """The CUDA guard of an API taking class indices next to input ``x``."""

    def guard(call: Call, t: Tensors) -> None:
        target = t["target"]
        if target.is_floating_point():
            return
        if x == "logits" and t[x].dim() == 3 and call.loss in ("token_cross_entropy", "perplexity"):
            if call.is_set("mask"):
                target = target.masked_fill(~t["mask"], _ignore_index(call))
            _check_gpu_labels(target, t[x].shape[-1], _ignore_index(call))
            return
        _check_gpu_labels(
            target, _classes(t[x]), _ignore_index(call) if ignore else TORCH_IGNORE_INDEX
        )

    return guard


def _unit_interval_guard(call: Call, t: Tensors) -> None:
    """On CUDA, binary_cross_entropy asserts ``0 <= x <= 1`` inside the kernel: a
    device-side assert that poisons the context (the CPU raises a RuntimeError)."""
    if t["probs"].device.type != "cuda":
        return
    for name in ("probs", "target"):
        x = t[name].detach()
        if bool(((x < 0) | (x > 1) | torch.isnan(x)).any()):
            raise Unsupported(
                f"{name} outside [0, 1] on CUDA: binary_cross_entropy raises a device-side "
                "assert that poisons the CUDA context; checked on the CPU only"
            )


# ------------------------------------------------------------------------ user recipes
# Where torch has no API for a loss: the code a user writes, run as it is and shown in
# snippets as it is (so these read as user code: plain names, torch ops only).

#: torch's default ``ignore_index`` of cross_entropy / nll_loss
TORCH_IGNORE_INDEX = -100


def reduce_loss(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def nll_of_log(probs, target, **kwargs):
    """Probabilities and class indices: ``nll_loss(torch.log(probs), target)``."""
    return F.nll_loss(torch.log(probs), target, **kwargs)


def soft_categorical(probs, target, reduction):
    """Probabilities and probability targets: ``-(target * log(probs)).sum(dim=1)`` (dim 0
    for one unbatched sample ``[C]``)."""
    dim = 1 if probs.dim() >= 2 else 0
    return reduce_loss(-(target * torch.log(probs)).sum(dim=dim), reduction)


def token_cross_entropy(logits, target, mask=None, **kwargs):
    """The usual language-model recipe: flatten to ``[B*T, V]`` and let ``cross_entropy``
    drop padding: masked positions get the ignore index (``-100`` unless given)."""
    if mask is not None:
        target = target.masked_fill(~mask, kwargs.get("ignore_index", TORCH_IGNORE_INDEX))
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1), **kwargs)


def perplexity(logits, target, mask=None, **kwargs):
    return torch.exp(token_cross_entropy(logits, target, mask, **kwargs))


def smoothed_binary_cross_entropy(logits, target, label_smoothing, **kwargs):
    """torch has no label smoothing for binary targets: the user smooths them towards 1/2."""
    target = target * (1 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(logits, target, **kwargs)


def sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss (torchvision 0.2x), written out in torch ops as a
    user without torchvision would copy it; ``alpha=None`` is no alpha weighting
    (torchvision's ``alpha=-1``)."""
    alpha = -1.0 if alpha is None else float(alpha)
    gamma = float(gamma)
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


# ------------------------------------------------------------------------------ table

_CE_KW = {n: n for n in ("ignore_index", "label_smoothing", "reduction", "weight")}
_NLL_KW = {n: n for n in ("ignore_index", "reduction", "weight")}
_BCE_KW = {"reduction": "reduction", "weight": "weight"}
_BCE_LOGITS_KW = _BCE_KW | {"pos_weight": "pos_weight"}
_KL_KW = {"reduction": "reduction", "log_target": "log_target"}
_DIM = {"dim": param("axis")}
_TOKEN_KW = {"mask": "mask", "ignore_index": "ignore_index"}
_TOKEN_RECIPE = "torch.nn.functional.cross_entropy+view(-1,V)+masked_fill(ignore_index)"


D = Declaration
DECLARATIONS: list[Declaration] = [
    D("torch.nn.functional.cross_entropy", "softmax_cross_entropy",
      Function("torch.nn.functional.cross_entropy", ("logits", "target"), _CE_KW),
      guard=_labels_guard("logits")),
    D("torch.nn.CrossEntropyLoss", "softmax_cross_entropy",
      Construct("torch.nn.CrossEntropyLoss", ("logits", "target"), _CE_KW),
      guard=_labels_guard("logits"), twin_of="torch.nn.functional.cross_entropy"),
    D("torch.nn.functional.nll_loss+torch.log", "categorical_cross_entropy",
      Recipe(nll_of_log, ("probs", "target"), {"reduction": "reduction"}),
      applies=integer_target, guard=_labels_guard("probs", ignore=False),
      doc="class indices: nll_loss(torch.log(probs), target)"),
    D("torch.sum(-target*torch.log(probs),dim=1)", "categorical_cross_entropy",
      Recipe(soft_categorical, ("probs", "target"), always={"reduction": param("reduction", "mean")}),
      applies=probability_target,
      doc="probability targets: -(target * torch.log(probs)).sum(dim=1), then mean/sum"),
    D("torch.nn.functional.nll_loss", "nll",
      Function("torch.nn.functional.nll_loss", ("log_probs", "target"), _NLL_KW),
      guard=_labels_guard("log_probs")),
    D("torch.nn.NLLLoss", "nll",
      Construct("torch.nn.NLLLoss", ("log_probs", "target"), _NLL_KW),
      guard=_labels_guard("log_probs"), twin_of="torch.nn.functional.nll_loss"),
    D("torch.nn.functional.binary_cross_entropy", "binary_cross_entropy",
      Function("torch.nn.functional.binary_cross_entropy", ("probs", "target"), _BCE_KW),
      guard=_unit_interval_guard),
    D("torch.nn.BCELoss", "binary_cross_entropy",
      Construct("torch.nn.BCELoss", ("probs", "target"), _BCE_KW),
      guard=_unit_interval_guard, twin_of="torch.nn.functional.binary_cross_entropy"),
    D("torch.nn.functional.binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits",
      Function("torch.nn.functional.binary_cross_entropy_with_logits", ("logits", "target"), _BCE_LOGITS_KW)),
    D("torch.nn.BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
      Construct("torch.nn.BCEWithLogitsLoss", ("logits", "target"), _BCE_LOGITS_KW),
      twin_of="torch.nn.functional.binary_cross_entropy_with_logits"),
    D("torch.nn.functional.binary_cross_entropy_with_logits+smoothed_target", "smoothed_binary_cross_entropy",
      Recipe(smoothed_binary_cross_entropy, ("logits", "target"), {"reduction": "reduction"},
             always={"label_smoothing": param("label_smoothing")}),
      doc="target * (1 - eps) + eps / 2, then binary_cross_entropy_with_logits"),
    D("torch.nn.functional.kl_div", "kl_divergence",
      Function("torch.nn.functional.kl_div", ("input", "target"), _KL_KW)),
    D("torch.nn.KLDivLoss", "kl_divergence",
      Construct("torch.nn.KLDivLoss", ("input", "target"), _KL_KW),
      twin_of="torch.nn.functional.kl_div"),
    D("torchvision.ops.sigmoid_focal_loss+torch-ops-recipe", "sigmoid_focal_loss",
      Recipe(sigmoid_focal_loss, ("logits", "target"),
             always={k: param(k, d) for k, d in (("alpha", 0.25), ("gamma", 2.0), ("reduction", "mean"))}),
      doc="torchvision is not installed: its formula written out in torch ops"),
    D(_TOKEN_RECIPE, "token_cross_entropy",
      Recipe(token_cross_entropy, ("logits", "target"), _TOKEN_KW), guard=_labels_guard("logits")),
    D(f"torch.exp({_TOKEN_RECIPE})", "perplexity",
      Recipe(perplexity, ("logits", "target"), _TOKEN_KW), guard=_labels_guard("logits")),
    D("torch.nn.functional.softmax", "softmax", Function("torch.nn.functional.softmax", ("x",), always=_DIM)),
    D("torch.nn.Softmax", "softmax", Construct("torch.nn.Softmax", ("x",), always=_DIM),
      twin_of="torch.nn.functional.softmax"),
    D("torch.nn.functional.log_softmax", "log_softmax",
      Function("torch.nn.functional.log_softmax", ("x",), always=_DIM)),
    D("torch.nn.LogSoftmax", "log_softmax", Construct("torch.nn.LogSoftmax", ("x",), always=_DIM),
      twin_of="torch.nn.functional.log_softmax"),
    D("torch.logsumexp", "logsumexp", Function("torch.logsumexp", ("x",), always=_DIM)),
    D("torch.sigmoid", "sigmoid", Function("torch.sigmoid", ("x",))),
    D("torch.nn.Sigmoid", "sigmoid", Construct("torch.nn.Sigmoid", ("x",)), twin_of="torch.sigmoid"),
    D("torch.nn.functional.logsigmoid", "log_sigmoid", Function("torch.nn.functional.logsigmoid", ("x",))),
    D("torch.nn.LogSigmoid", "log_sigmoid", Construct("torch.nn.LogSigmoid", ("x",)),
      twin_of="torch.nn.functional.logsigmoid"),
]  # fmt: skip

#: dotted-path heads as a user imports them
ALIASES: dict[str, str] = {}

APIS: list[Api] = apis(DECLARATIONS, _execute, ALIASES)


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
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
