"""JAX adapter: every optax / jax.nn API that computes a loss of the registry, one row each.

optax losses return one loss per example: the reduction, and every parameter an optax
function lacks, is the user's recipe around it, and the recipe is part of the row's name:
``optax.losses.softmax_cross_entropy_with_integer_labels+weight[target]+where+mean`` is
``softmax_cross_entropy_with_integer_labels(logits, target, where=target != ignore_index)``
weighted by ``weight[target]`` and averaged over the weights of the kept examples. One
:class:`~xentcheck.adapters.base.Api` exists per recipe, and ``applies`` routes each call
to exactly one of them; a variant with no recipe (``pos_weight``) runs under the bare API
name and raises ``Unsupported``.

Suffixes of the names:
  ``+mean`` / ``+sum``        ``jnp.mean`` / ``jnp.sum`` of the per-example losses
                              (``+mean`` is the weighted mean when class weights are
                              present, the mean over the kept examples with ``+where``);
  ``+sum/batch``              ``jnp.sum(...) / input.shape[0]`` (PyTorch's ``batchmean``);
  ``+where``                  optax's ``where=`` argument (or ``jnp.where``): ignore_index
                              and token masks;
  ``+weight[target]``         class weights as per-example weights ``weight[target]``;
  ``+labels*weight``          class weights folded into (smoothed) probability labels;
  ``+*weight``                element-wise weights multiplied into the losses;
  ``+smooth_labels``          ``optax.smooth_labels`` (of ``jax.nn.one_hot(target)`` for
                              class indices) for label smoothing;
  ``(axis=())``               optax's KL summed over no axis: the element-wise terms.
Where neither optax nor jax.nn has the loss (NLL, cross-entropy or BCE of probabilities)
the row is the plain JAX recipe, named by its code (``-jnp.take_along_axis``,
``-(jax.scipy.special.xlogy+xlog1py)`` ...). Aliases sharing one implementation
(``jax.scipy.special.softmax`` / ``log_softmax`` / ``logsumexp`` / ``expit``,
``optax.losses.convex_kl_divergence``) have no rows of their own.

Arguments are passed the way a user would: a framework argument, or the recipe standing
for it, exactly when the case set the parameter (:meth:`Call.is_set
<xentcheck.adapters.base.Call.is_set>`): ``label_smoothing: 0.0`` runs the
``+smooth_labels`` recipe as ``0.1`` does, ``ignore_index`` the ``+where`` one. Passed
always, whatever the case set: ``axis=1`` for the class axis of ``[N, C, d1..]`` logits,
``axis`` of ``jax.nn.logsumexp`` whose default is all axes, and ``alpha`` of
``sigmoid_focal_loss``, whose default (no weighting) is not the registry's 0.25.
Nothing is clamped, checked or rewritten: out-of-range labels go into JAX as they are
(JAX does not raise; gathers fill with NaN or wrap negative indices), so its behaviour is
recorded.

The rows are :data:`DECLARATIONS`: a family (one optax API and the recipes around it) is
one user function in plain JAX (:func:`integer_labels` ...) that :func:`_family` declares
once per combination of its recipe steps and reduction, each row routed by ``applies``.
Value and gradients come from ONE jitted function, :func:`value_and_vjp`, returning the
value and the vector-Jacobian product with the call's cotangent, so one compilation per
shape and dtype serves both (the executables are cached and compiled ahead by
:mod:`~xentcheck.adapters.jax_compile`). Scalar parameters (label_smoothing, alpha,
gamma, ignore_index) are declared ``traced``: passed as Python scalars, which ``jax.jit``
traces as weakly typed values: no recompilation per value, no constant folding, and the
dtype promotion of a user's literal. A row's snippet (:data:`FRAME`) makes the same jitted
call.
"""

from __future__ import annotations

import functools
import inspect
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # before optax is imported, as the worker did

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jsp  # noqa: E402
import optax  # noqa: E402

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported  # noqa: E402
from xentcheck.adapters.declare import (  # noqa: E402
    Bound,
    Declaration,
    Function,
    Recipe,
    apis,
    array_literal,
    const,
    integer_target,
    param,
    probability_target,
    snippets,
)
from xentcheck.adapters.jax_compile import (  # noqa: E402
    device_for,
    enable_compile_cache,
    executable,
    gpu_devices,
    gpu_missing_reason,
    to_device,
)
from xentcheck.dtypes import numpy_dtype  # noqa: E402

__all__ = ["ALIASES", "APIS", "DECLARATIONS", "FRAME", "FRAMEWORK", "JaxFrame", "value_and_vjp"]

Arrays = Mapping[str, Any]


def _setup() -> None:
    """Enable float64 in JAX, and the persistent compilation cache where the runner names
    one."""
    jax.config.update("jax_enable_x64", True)
    enable_compile_cache(jax)


# --------------------------------------------------------------------------- devices


def _devices() -> dict[str, str | None]:
    gpus = gpu_devices()
    gpu = None
    if gpus:
        gpu = getattr(gpus[0], "device_kind", None) or str(gpus[0])
    cpu = platform.processor() or platform.machine() or "cpu"
    return {"cpu": f"{cpu} (jax {jax.devices('cpu')[0].platform})", "gpu": gpu}


def _versions() -> dict[str, str]:
    import jaxlib

    out = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}
    try:
        import ml_dtypes

        out["ml_dtypes"] = ml_dtypes.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _unsupported_reason(exc: BaseException) -> str | None:
    text = str(exc)
    if "Unable to initialize backend" in text:
        return f"JAX backend unavailable: {text.splitlines()[0]}"
    return None


# --------------------------------------------------------------------------- execution


def value_and_vjp(loss, diff, const, ct):
    """The value of ``loss(**const, **diff)`` and its vector-Jacobian product with the
    cotangent ``ct`` (the gradients of the ``diff`` inputs), as one function to jit."""
    if not diff:
        return loss(**const), {}
    value, pullback = jax.vjp(lambda d: loss(**const, **d), diff)
    if value.shape != ct.shape:
        return value, {}
    (grads,) = pullback(ct.astype(value.dtype))
    return value, grads


def _execute(call: Call, fn: Bound, jit: bool = True) -> Output:
    """Run ``fn`` on the call's inputs (its traced scalars among them) through
    :func:`value_and_vjp`: jitted, its executable from :func:`~xentcheck.adapters.
    jax_compile.executable` (``jit=False``: op by op under ``jax.disable_jit()``); value
    and grads of ``call.grad_inputs`` as float64."""
    device = device_for(call)
    try:
        numpy_dtype(call.dtype)
    except ValueError:
        raise Unsupported(f"JAX adapter has no dtype {call.dtype!r}") from None
    diff = {k: to_device(call.inputs[k], call.dtype, device) for k in call.grad_inputs}
    const = {
        k: to_device(v, call.dtype, device)
        for k, v in call.inputs.items()
        if k not in diff and v is not None
    }
    const.update(fn.scalars)  # Python scalars: traced weakly typed, as a user's literal
    ct = to_device(np.asarray(call.cotangent, dtype=np.float64), "float64", device)
    args = (diff, const, ct)

    def loss(**tensors: Any) -> Any:
        return fn(tensors)

    compile_s = None
    if jit:
        f = jax.jit(functools.partial(value_and_vjp, loss))
        compiled, compile_s = executable(fn.key, f, args, device, call.dtype)
        value, grads = compiled(*args)
    else:
        with jax.disable_jit(), jax.default_device(device):
            value, grads = value_and_vjp(loss, *args)
    out = Output(
        value=np.asarray(value, dtype=np.float64),
        grads={k: np.asarray(v, dtype=np.float64) for k, v in grads.items()},
        out_dtype=str(value.dtype),
        compile_s=compile_s,
    )
    if value.shape != np.shape(call.cotangent):
        out.note = f"value shape {tuple(value.shape)} != expected {np.shape(call.cotangent)}"
    return out


_DEVICE = {"cpu": 'jax.devices("cpu")[0]', "gpu": 'jax.devices("gpu")[0]'}


@dataclass(frozen=True)
class JaxFrame:
    """Snippets that place inputs and call :func:`value_and_vjp` as :func:`_execute`
    does: jitted (``jit=True``) or op by op under ``jax.disable_jit()``."""

    jit: bool = True
    imports: str = (
        "import functools\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n\n"
        'jax.config.update("jax_enable_x64", True)'
    )

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        a = np.asarray(array)
        cast = "" if a.dtype.kind in "biu" else f".astype(jnp.{call.dtype})"
        return f"{name} = jax.device_put({array_literal(a)}{cast}, {_DEVICE[call.device]})"

    def program(self, expression: str, call: Call, scalars: Sequence[str] = ()) -> str:
        names = [k for k, v in call.inputs.items() if v is not None] + list(scalars)
        diff = list(call.grad_inputs)
        const = [n for n in names if n not in diff]
        cot = array_literal(np.asarray(call.cotangent, dtype=np.float64))
        lines = [
            f"def loss({', '.join(names)}):",
            f"    return {expression}",
            "",
            "",
            inspect.getsource(value_and_vjp).rstrip(),
            "",
            "",
            f"diff = {{{', '.join(f'{n!r}: {n}' for n in diff)}}}",
            f"const = {{{', '.join(f'{n!r}: {n}' for n in const)}}}",
            f"ct = jax.device_put({cot}, {_DEVICE[call.device]})",
        ]
        if self.jit:
            lines.append(
                "value, grads = jax.jit(functools.partial(value_and_vjp, loss))(diff, const, ct)"
            )
        else:
            lines += [
                f"with jax.disable_jit(), jax.default_device({_DEVICE[call.device]}):",
                "    value, grads = value_and_vjp(loss, diff, const, ct)",
            ]
        lines += [
            "value = np.asarray(value, dtype=np.float64)",
            "grads = {k: np.asarray(g, dtype=np.float64) for k, g in grads.items()}",
            'print("value", value)',
            'print("grads", grads)',
        ]
        return "\n".join(lines)


FRAME = JaxFrame()


# ------------------------------------------------------------------------ user recipes
# What a user writes around an optax / jax.nn API (or instead of one): run as it is and
# shown in snippets as it is, so these read as user code: plain names, JAX ops only.


def reduce_loss(per, reduction, denom=None, batch=None):
    """The user's reduction of per-example losses. ``denom``: the weights or mask a mean
    divides by; ``batch``: what ``batchmean`` divides by (``input.shape[0]``)."""
    if reduction == "none":
        return per
    if reduction == "sum":
        return jnp.sum(per)
    if reduction == "mean":
        return jnp.mean(per) if denom is None else jnp.sum(per) / jnp.sum(denom)
    if reduction == "batchmean":
        return jnp.sum(per) / (per.shape[0] if batch is None else batch)
    raise ValueError(f"reduction {reduction!r}")


def class_axis(x):
    """The class axis of ``[N, C, d1..]`` (1), written as -1 for plain ``[N, C]``."""
    return 1 if x.ndim > 2 else -1


def class_weights(weight, target, keep):
    """``weight[target]`` (0 where ignored): the per-example weights of class weights."""
    w = weight[target]
    return w if keep is None else jnp.where(keep, w, jnp.zeros_like(w))


def dense_labels(labels, axis, weight=None, label_smoothing=None):
    """Probability labels smoothed (``optax.smooth_labels``), then times the class
    weights along the class axis."""
    if label_smoothing is not None:
        labels = optax.smooth_labels(labels, label_smoothing, axis=axis)
    if weight is not None:
        if labels.ndim > 2:
            weight = weight.reshape((1, -1) + (1,) * (labels.ndim - 2))
        labels = labels * weight
    return labels


def integer_labels(logits, target, reduction, weight=None, ignore_index=None):
    """Class indices: optax's per-example loss (``axis=1`` for ``[N, C, d..]``),
    ``ignore_index`` through ``where=``, class weights as ``weight[target]``."""
    kw = {"axis": 1} if logits.ndim > 2 else {}
    keep = None if ignore_index is None else target != ignore_index
    if keep is not None:
        kw["where"] = keep
    per = optax.losses.softmax_cross_entropy_with_integer_labels(logits, target, **kw)
    if weight is not None:
        w = class_weights(weight, target, keep)
        return reduce_loss(per * w, reduction, w)
    return reduce_loss(per, reduction, keep)


def smoothed_one_hot(logits, target, label_smoothing, reduction, weight=None, ignore_index=None):
    """Class indices with label smoothing: ``optax.smooth_labels(jax.nn.one_hot(target))``;
    class weights fold into the labels (PyTorch's semantics), and a mean divides by the
    weights of the kept targets."""
    axis = class_axis(logits)
    onehot = jax.nn.one_hot(target, logits.shape[axis], dtype=logits.dtype, axis=axis)
    labels = dense_labels(onehot, axis, weight, label_smoothing)
    kw = {"axis": axis} if axis != -1 else {}
    keep = None if ignore_index is None else target != ignore_index
    if keep is not None:
        kw["where"] = keep
    per = optax.losses.softmax_cross_entropy(logits, labels, **kw)
    if weight is not None:
        return reduce_loss(per, reduction, class_weights(weight, target, keep))
    return reduce_loss(per, reduction, keep)


def probability_labels(logits, target, reduction, weight=None, label_smoothing=None):
    """Probability targets: ``optax.losses.softmax_cross_entropy`` over the class axis."""
    axis = class_axis(logits)
    labels = dense_labels(target, axis, weight, label_smoothing)
    kw = {"axis": axis} if axis != -1 else {}
    return reduce_loss(optax.losses.softmax_cross_entropy(logits, labels, **kw), reduction)


def safe_probability_labels(logits, target, reduction, weight=None, label_smoothing=None):
    """Probability targets: ``optax.losses.safe_softmax_cross_entropy``, which has no axis
    argument: the user moves the class axis last."""
    axis = class_axis(logits)
    labels = dense_labels(target, axis, weight, label_smoothing)
    if axis != -1:
        logits, labels = jnp.moveaxis(logits, 1, -1), jnp.moveaxis(labels, 1, -1)
    return reduce_loss(optax.losses.safe_softmax_cross_entropy(logits, labels), reduction)


def batch_class_axis(x) -> int:
    """The class axis of ``[N, C, d1..]`` (1), or of one unbatched sample ``[C]`` (0)."""
    return 1 if x.ndim >= 2 else 0


def at_target(x, target):
    """``x`` at the target class along the class axis (``take_along_axis``)."""
    k = batch_class_axis(x)
    return jnp.take_along_axis(x, jnp.expand_dims(target, k), axis=k).squeeze(k)


def log_probs_at_target(probs, target, reduction):
    """Probabilities and class indices: ``-log(probs)`` at the target class."""
    return reduce_loss(-at_target(jnp.log(probs), target), reduction)


def soft_categorical(probs, target, reduction):
    """Probabilities and probability targets: ``-sum_c xlogy(target, probs)``."""
    per = -jnp.sum(jsp.xlogy(target, probs), axis=batch_class_axis(probs))
    return reduce_loss(per, reduction)


def nll(log_probs, target, reduction, weight=None, ignore_index=None):
    """``-log_probs`` at the target class; ignored targets give 0."""
    per = -at_target(log_probs, target)
    keep = None if ignore_index is None else target != ignore_index
    if keep is not None:
        per = jnp.where(keep, per, jnp.zeros_like(per))
    if weight is not None:
        w = class_weights(weight, target, keep)
        return reduce_loss(per * w, reduction, w)
    return reduce_loss(per, reduction, keep)


def binary_probs(probs, target, reduction, weight=None):
    """Binary cross-entropy of probabilities: ``-(xlogy(t, p) + xlog1py(1 - t, -p))``."""
    per = -(jsp.xlogy(target, probs) + jsp.xlog1py(1 - target, -probs))
    return reduce_loss(per if weight is None else per * weight, reduction)


def binary_logits(logits, target, reduction, weight=None):
    """``optax.losses.sigmoid_binary_cross_entropy``, times element weights."""
    per = optax.losses.sigmoid_binary_cross_entropy(logits, target)
    return reduce_loss(per if weight is None else per * weight, reduction)


def smoothed_binary_logits(logits, target, label_smoothing, reduction):
    """``optax.smooth_labels`` on the binary targets, then
    ``optax.losses.sigmoid_binary_cross_entropy``: optax smooths towards ``1/C`` over the
    last axis (its ``num_categories``), not towards 1/2; a 0-d target has no such axis."""
    if target.ndim == 0:
        raise Unsupported("optax.smooth_labels needs a category axis: a 0-d target has none")
    labels = optax.smooth_labels(target, label_smoothing)
    return reduce_loss(optax.losses.sigmoid_binary_cross_entropy(logits, labels), reduction)


def focal_loss(logits, target, reduction, **kwargs):
    """``optax.losses.sigmoid_focal_loss``, reduced."""
    return reduce_loss(optax.losses.sigmoid_focal_loss(logits, target, **kwargs), reduction)


def kl_loss(log_q, target, kl, reduction, elementwise=False):
    """``optax.losses.<kl>`` over the class axis, one value per distribution (or with
    ``axis=()``, summing over no axis: the element-wise terms), reduced."""
    kw = {"axis": ()} if elementwise else ({"axis": 1} if log_q.ndim > 2 else {})
    batch = log_q.shape[0] if log_q.ndim else 1
    return reduce_loss(getattr(optax.losses, kl)(log_q, target, **kw), reduction, batch=batch)


def token_cross_entropy(logits, target, mask=None, ignore_index=None):
    """The mean token loss over the kept tokens: ``where=mask & (target != ignore_index)``,
    sum / count."""
    keep = mask
    if ignore_index is not None:
        k = target != ignore_index
        keep = k if keep is None else keep & k
    if keep is None:
        return jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(logits, target))
    per = optax.losses.softmax_cross_entropy_with_integer_labels(logits, target, where=keep)
    return jnp.sum(per) / jnp.sum(keep)


def perplexity(logits, target, mask=None, ignore_index=None):
    return jnp.exp(token_cross_entropy(logits, target, mask, ignore_index))


# --------------------------------------------------------------------------- families
#
# A family is one framework API plus the recipe steps a user wraps around it, one user
# function. It is declared once per combination of its steps (flags) and reduction, each
# row named by its steps; ``applies`` routes a call to the row whose steps and reduction
# match it.


@dataclass(frozen=True)
class Flag:
    """A recipe step named ``suffix`` in the row: on when the case sets any of ``params``,
    which the recipe then receives."""

    suffix: str
    params: tuple[str, ...]


_RED = {"none": "", "sum": "+sum", "mean": "+mean"}

#: parameters passed as Python scalars, traced by jax.jit (converted as the worker always has)
_TRACED: dict[str, Callable[[Any], Any]] = {
    "ignore_index": int,
    "label_smoothing": float,
    "gamma": float,
    "alpha": float,
}


def _always(call: Call) -> bool:
    return True


def _family(
    base: str,
    loss: str,
    recipe: Callable[..., Any],
    args: tuple[str, ...],
    *,
    flags: Sequence[Flag] = (),
    reductions: Mapping[str, str] | None = _RED,
    applies: Callable[[Call], bool] = _always,
    keywords: tuple[str, ...] = (),
    always: Mapping[str, Callable[[Call], Any]] | None = None,
    unsupported: Callable[[Call], str | None] | None = None,
    tail: str = "",
    doc: str = "",
) -> list[Declaration]:
    """The rows of one family: ``base`` + the suffixes of the flags on + the reduction's
    suffix + ``tail``, all calling ``recipe`` with the flags' parameters (when set),
    ``keywords`` (when set), ``always`` and the reduction.

    A call whose reduction is missing from ``reductions`` (or that ``unsupported`` names a
    reason for) has no row; with ``unsupported`` given, it runs under ``base`` and raises
    ``Unsupported`` with the reason.
    """
    kw = {p: p for p in keywords} | {p: p for f in flags for p in f.params}
    always = dict(always or {})
    if reductions is not None:
        always["reduction"] = param("reduction", "none")
    traced = {k: c for k, c in _TRACED.items() if k in kw or k in always}
    spec = Recipe(recipe, args, kw, always, traced)

    def reason(call: Call) -> str | None:
        r = unsupported(call) if unsupported is not None else None
        if r is None and reductions is not None:
            red = call.params.get("reduction")
            if red not in reductions:
                r = f"{base} has no recipe for reduction={red!r}"
        return r

    rows = []
    for combo in product((False, True), repeat=len(flags)):
        suffix = "".join(f.suffix for f, on in zip(flags, combo, strict=True) if on)
        for red, red_suffix in (reductions or {"none": ""}).items():

            def routes(call: Call, combo: tuple[bool, ...] = combo, red: str = red) -> bool:
                if not applies(call) or reason(call) is not None:
                    return False
                if reductions is not None and call.params.get("reduction") != red:
                    return False
                on = tuple(any(call.is_set(p) for p in f.params) for f in flags)
                return on == combo

            name = base + suffix + red_suffix + tail
            rows.append(Declaration(name, loss, spec, applies=routes, doc=doc))
    if unsupported is not None:

        def refuse(call: Call, tensors: Arrays) -> None:
            raise Unsupported(reason(call) or f"{base}: no recipe")

        rows.append(
            Declaration(
                base,
                loss,
                spec,
                applies=lambda call: applies(call) and reason(call) is not None,
                guard=refuse,
                doc=doc,
            )
        )
    return rows


def _smoothing(call: Call) -> bool:
    return call.is_set("label_smoothing")


def _log_target(call: Call) -> bool:
    return bool(call.params.get("log_target"))


def _focal_alpha(call: Call) -> float | None:
    """alpha always (optax's default, None, is no weighting, not the registry's 0.25), as
    None where the case turned it off (null, or torchvision's negative alpha)."""
    alpha = call.params.get("alpha")
    return None if alpha is None or float(alpha) < 0 else alpha


def _no_pos_weight(call: Call) -> str | None:
    if call.is_set("pos_weight"):
        return "optax.losses.sigmoid_binary_cross_entropy has no pos_weight argument"
    return None


def _kl(which: str, applies: Callable[[Call], bool], doc: str) -> list[Declaration]:
    base = f"optax.losses.{which}"
    return [
        *_family(base, "kl_divergence", kl_loss, ("input", "target"),
                 applies=lambda c: applies(c) and c.params.get("reduction") in ("sum", "batchmean"),
                 reductions={"sum": "+sum", "batchmean": "+sum/batch"},
                 always={"kl": const(which)},
                 doc=f"{doc}; one value per distribution (class axis), summed or divided by N"),
        *_family(base + "(axis=())", "kl_divergence", kl_loss, ("input", "target"),
                 applies=lambda c: applies(c) and c.params.get("reduction") in ("none", "mean"),
                 reductions={"none": "", "mean": "+mean"},
                 always={"kl": const(which), "elementwise": const(True)},
                 doc=f"{doc}; axis=() sums over no axis: the element-wise terms (PyTorch's none/mean)"),
    ]  # fmt: skip


_WEIGHT_TARGET = Flag("+weight[target]", ("weight",))
_WHERE = Flag("+where", ("ignore_index",))
_WEIGHT_LABELS = Flag("+labels*weight", ("weight",))
_SMOOTH = Flag("+smooth_labels", ("label_smoothing",))
_WEIGHT_ELEMENTS = Flag("+*weight", ("weight",))
_TOKEN_WHERE = Flag("+where", ("mask", "ignore_index"))
_INTEGER_LABELS = "optax.losses.softmax_cross_entropy_with_integer_labels"

# ------------------------------------------------------------------------------ table

D = Declaration
DECLARATIONS: list[Declaration] = [
    *_family(_INTEGER_LABELS, "softmax_cross_entropy", integer_labels, ("logits", "target"),
             applies=lambda c: integer_target(c) and not _smoothing(c), flags=(_WEIGHT_TARGET, _WHERE),
             doc="integer labels; axis=1 for [N,C,d..]; ignore_index via where=; class weights as weight[target]"),
    *_family("optax.losses.softmax_cross_entropy+one_hot+smooth_labels", "softmax_cross_entropy",
             smoothed_one_hot, ("logits", "target"),
             applies=lambda c: integer_target(c) and _smoothing(c), flags=(_WEIGHT_LABELS, _WHERE),
             keywords=("label_smoothing",),
             doc="integer labels with label smoothing: optax.smooth_labels(jax.nn.one_hot(target), ls)"),
    *_family("optax.losses.softmax_cross_entropy", "softmax_cross_entropy", probability_labels,
             ("logits", "target"), applies=probability_target, flags=(_WEIGHT_LABELS, _SMOOTH),
             doc="probability targets; ignore_index does not apply to probabilities"),
    *_family("optax.losses.safe_softmax_cross_entropy", "softmax_cross_entropy",
             safe_probability_labels, ("logits", "target"), applies=probability_target,
             flags=(_WEIGHT_LABELS, _SMOOTH),
             doc="probability targets, class axis moved last (the API has no axis argument)"),
    *_family("-jnp.take_along_axis(jnp.log(probs))", "categorical_cross_entropy",
             log_probs_at_target, ("probs", "target"), applies=integer_target,
             doc="probabilities in: no optax/jax.nn API; -log(probs) at the target class"),
    *_family("-jnp.sum(jax.scipy.special.xlogy(target,probs))", "categorical_cross_entropy",
             soft_categorical, ("probs", "target"), applies=probability_target,
             doc="probabilities in, probability targets: -sum_c xlogy(t, p) over the class axis"),
    *_family("-jnp.take_along_axis", "nll", nll, ("log_probs", "target"),
             flags=(_WEIGHT_TARGET, _WHERE),
             doc="no NLL API in optax/jax.nn: -jnp.take_along_axis(log_probs, target[:, None], axis=1)"),
    *_family("-(jax.scipy.special.xlogy+xlog1py)", "binary_cross_entropy", binary_probs,
             ("probs", "target"), flags=(_WEIGHT_ELEMENTS,),
             doc="probabilities in, no optax API: -(xlogy(t, p) + xlog1py(1 - t, -p))"),
    *_family("optax.losses.sigmoid_binary_cross_entropy", "binary_cross_entropy_with_logits",
             binary_logits, ("logits", "target"), flags=(_WEIGHT_ELEMENTS,),
             unsupported=_no_pos_weight),
    *_family("optax.losses.sigmoid_binary_cross_entropy+smooth_labels", "smoothed_binary_cross_entropy",
             smoothed_binary_logits, ("logits", "target"), always={"label_smoothing": param("label_smoothing")},
             doc="optax.smooth_labels(target, eps) on the binary targets, as an optax user smooths them"),
    *_family("optax.losses.sigmoid_focal_loss", "sigmoid_focal_loss", focal_loss,
             ("logits", "target"), keywords=("gamma",), always={"alpha": _focal_alpha},
             doc="alpha always passed (optax's default alpha=None is no weighting); gamma when set"),
    *_kl("kl_divergence", lambda c: not _log_target(c), "probability targets"),
    *_kl("kl_divergence_with_log_targets", _log_target, "log_target=True"),
    *_kl("generalized_kl_divergence", lambda c: not _log_target(c),
         "generalized KL (convex_kl_divergence is its deprecated alias): KL + sum(exp(input) - target)"),
    *_family(_INTEGER_LABELS, "token_cross_entropy", token_cross_entropy, ("logits", "target"),
             flags=(_TOKEN_WHERE,), reductions=None, tail="+mean",
             doc="mean over kept tokens: where=mask & (target != ignore_index), sum / count"),
    *_family(f"jnp.exp({_INTEGER_LABELS}", "perplexity", perplexity, ("logits", "target"),
             flags=(_TOKEN_WHERE,), reductions=None, tail="+mean)",
             doc="exp of the mean token loss over kept tokens"),
    # jax.scipy.special.softmax / log_softmax call jax.nn.softmax / log_softmax, expit is
    # lax.logistic like jax.nn.sigmoid, and jax.scipy.special.logsumexp is
    # jax.nn.logsumexp: same implementations, so one row each.
    D("jax.nn.softmax", "softmax", Function("jax.nn.softmax", ("x",), {"axis": "axis"})),
    D("jax.nn.log_softmax", "log_softmax", Function("jax.nn.log_softmax", ("x",), {"axis": "axis"})),
    D("jax.nn.logsumexp", "logsumexp",
      Function("jax.nn.logsumexp", ("x",), always={"axis": param("axis", -1)}),
      doc="= jax.scipy.special.logsumexp; default axis=None (all axes): axis always passed"),
    D("jax.nn.sigmoid", "sigmoid", Function("jax.nn.sigmoid", ("x",))),
    D("jax.nn.log_sigmoid", "log_sigmoid", Function("jax.nn.log_sigmoid", ("x",))),
]  # fmt: skip

#: dotted-path heads as a user imports them
ALIASES: dict[str, str] = {}

APIS: list[Api] = apis(DECLARATIONS, _execute, ALIASES)


FRAMEWORK = Framework(
    name="jax",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
    setup=_setup,
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
