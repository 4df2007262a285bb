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

Value and gradients come from ONE jitted function per (API, static parameters) returning
the value and the vector-Jacobian product with the call's cotangent, so one compilation
per shape and dtype serves both. Scalar parameters (label_smoothing, alpha, gamma,
ignore_index) are passed as Python scalars, which ``jax.jit`` traces as weakly typed
values: no recompilation per value, and the dtype promotion of a user's literal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.dtypes import numpy_dtype

__all__ = ["FRAMEWORK"]

Arrays = Mapping[str, Any]
LossFn = Callable[[Arrays], Any]

_state: dict[str, Any] = {"ready": False}


def _setup() -> None:
    """Enable float64 in JAX (once), and the persistent compilation cache where the runner
    names one; imported lazily so the registry imports cheaply."""
    if _state["ready"]:
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    enable_compile_cache(jax)
    _state["ready"] = True


def enable_compile_cache(jax) -> None:
    """Keep compiled executables in ``$XENTCHECK_COMPILE_CACHE/jax`` (the runner sets it to a
    folder of its cache), however small or quick to compile, so a rerun loads instead of
    compiling; nothing when the variable is unset. Cached or not, an executable computes
    the same: only ``compile_s`` changes."""
    folder = os.environ.get("XENTCHECK_COMPILE_CACHE")
    if not folder:
        return
    jax.config.update("jax_compilation_cache_dir", os.path.join(folder, "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _mods():
    _setup()
    import jax
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    import optax

    return jax, jnp, jsp, optax


# --------------------------------------------------------------------------- devices


def _gpu_devices() -> list:
    jax = _mods()[0]
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []


def _gpu_missing_reason() -> str | None:
    if _gpu_devices():
        return None
    return "no GPU visible to JAX (jax.devices('gpu') is empty or jaxlib has no CUDA backend)"


def _devices() -> dict[str, str | None]:
    gpus = _gpu_devices()
    gpu = None
    if gpus:
        gpu = getattr(gpus[0], "device_kind", None) or str(gpus[0])
    cpu = platform.processor() or platform.machine() or "cpu"
    return {"cpu": f"{cpu} (jax {_mods()[0].devices('cpu')[0].platform})", "gpu": gpu}


def _versions() -> dict[str, str]:
    import jax
    import jaxlib
    import optax

    out = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}
    try:
        import ml_dtypes

        out["ml_dtypes"] = ml_dtypes.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _device_for(call: Call):
    jax = _mods()[0]
    if call.device == "cpu":
        return jax.devices("cpu")[0]
    if call.device == "gpu":
        gpus = _gpu_devices()
        if not gpus:
            raise Unsupported(_gpu_missing_reason())
        return gpus[0]
    raise Unsupported(f"unknown device {call.device!r}")


def _unsupported_reason(exc: BaseException) -> str | None:
    text = str(exc)
    if "Unable to initialize backend" in text:
        return f"JAX backend unavailable: {text.splitlines()[0]}"
    return None


# --------------------------------------------------------------------------- execution
#
# Compilation dominates the run time (a new shape or dtype costs ~0.1-0.3 s of XLA
# compilation, the run itself microseconds). So each (API, static parameters) gets one
# jitted function computing value and VJP together, its executables are cached by
# argument signature, and when a call compiles, the same function is compiled for the
# dtypes the harness will ask for next in a background thread: the main thread and the
# background thread compile in parallel (XENTCHECK_JAX_COMPILE_THREADS=0 turns this off). The executables are the
# ones ``jax.jit`` would build (same lowering, default compiler options).

_JIT: dict[tuple, Callable] = {}
_EXEC: OrderedDict[tuple, Future] = OrderedDict()
_EXEC_MAX = 512  # executables kept (LRU)
_LOCK = threading.Lock()
_POOL: list[_Compiler] = []
_FLOATS = ("float64", "float32", "float16", "bfloat16")
_SEEN: set[str] = set()  # dtypes the harness has asked for in this process


def _jitted(key: tuple, fn: LossFn) -> Callable:
    """One jitted function returning (value, vjp of value with the cotangent)."""
    with _LOCK:
        f = _JIT.get(key)
    if f is not None:
        return f
    jax = _mods()[0]

    def value_and_vjp(diff, const, ct):
        if not diff:
            return fn(const), {}
        value, pullback = jax.vjp(lambda d: fn({**const, **d}), diff)
        if value.shape != ct.shape:
            return value, {}
        (grads,) = pullback(ct.astype(value.dtype))
        return value, grads

    f = jax.jit(value_and_vjp)
    with _LOCK:
        return _JIT.setdefault(key, f)


class _Compiler:
    """Background compilation threads that stop when the main thread ends.

    Unlike a ThreadPoolExecutor, queued work is dropped at interpreter exit instead of
    being compiled first (speculative dtypes the harness never asks for cost nothing).
    """

    def __init__(self, threads: int):
        self.threads = threads
        self.inflight = 0
        self.queue: queue.Queue = queue.Queue()
        for i in range(threads):
            threading.Thread(target=self._work, name=f"jax-compile-{i}", daemon=False).start()

    def submit(self, fn: Callable, *args) -> Future:
        fut: Future = Future()
        self.queue.put((fut, fn, args))
        return fut

    def _work(self) -> None:
        while threading.main_thread().is_alive():
            try:
                fut, fn, args = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if not fut.set_running_or_notify_cancel():
                continue
            with _GATE:  # no cache clearing while a background compile runs
                self.inflight += 1
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # surfaces in the call that needs it
                fut.set_exception(exc)
            finally:
                with _GATE:
                    self.inflight -= 1


def _pool() -> _Compiler:
    if not _POOL:
        threads = int(os.environ.get("XENTCHECK_JAX_COMPILE_THREADS", "1"))
        _POOL.append(_Compiler(max(threads, 0)))
    return _POOL[0]


def _abstract(tree, dtype: str | None, device):
    """ShapeDtypeStructs of ``tree`` (floating leaves recast to ``dtype`` when given)."""
    jax = _mods()[0]
    sharding = jax.sharding.SingleDeviceSharding(device)

    def leaf(x):
        if isinstance(x, (bool, int, float)):
            return x  # a Python scalar: traced weakly typed, as in the real call
        dt = x.dtype
        if dtype is not None and np.issubdtype(dt, np.floating):
            dt = numpy_dtype(dtype)
        return jax.ShapeDtypeStruct(x.shape, dt, sharding=sharding)

    return jax.tree_util.tree_map(leaf, tree)


def _signature(tree) -> tuple:
    jax = _mods()[0]
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sig = []
    for x in leaves:
        if isinstance(x, (bool, int, float)):
            sig.append(type(x).__name__)
        else:
            sig.append((tuple(x.shape), str(x.dtype)))
    return (str(treedef), tuple(sig))


def _compile(f: Callable, args: tuple):
    compiled = f.lower(*args).compile()
    with _LOCK:
        _compiles[0] += 1
    return compiled


_TRIM_EVERY = int(os.environ.get("XENTCHECK_JAX_TRIM_EVERY", "64"))  # 0: never
_compiles = [0, 0]  # compilations so far, and at the last trim
_GATE = threading.Lock()


def _trim_heap() -> None:
    """Give compiler memory back to the OS now and then (main thread, between calls).

    Each compilation leaves megabytes in JAX's tracing/lowering caches (never hit again:
    executables are cached here by signature) and fragmented heap behind; without this a
    full suite grows the worker to several GB. Skipped while a background compile runs.
    """
    with _LOCK:
        due = _TRIM_EVERY > 0 and _compiles[0] - _compiles[1] >= _TRIM_EVERY
    if not due:
        return
    with _GATE:
        if _POOL and _POOL[0].inflight:
            return
        _mods()[0].clear_caches()  # executables stay alive in _EXEC
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        with _LOCK:
            _compiles[1] = _compiles[0]


def _executable(key: tuple, f: Callable, args: tuple, device, dtype: str):
    """(compiled executable for ``args``, seconds spent compiling or waiting for it).

    The executables of the other dtypes are queued for compilation in the background.
    """
    t0 = time.perf_counter()
    sig = (key, str(device), _signature(args))
    with _LOCK:
        fut = _EXEC.get(sig)
        if fut is not None:
            _EXEC.move_to_end(sig)
    if fut is None:
        fut = Future()
        fut.set_result(_compile(f, _abstract(args, None, device)))
        with _LOCK:
            _EXEC[sig] = fut
    compiled = fut.result()
    compile_s = time.perf_counter() - t0
    _trim_heap()
    if dtype in _FLOATS:
        with _LOCK:
            _SEEN.add(dtype)
    if dtype in _FLOATS and _pool().threads:
        # the harness asks for a case's dtypes in FLOAT_DTYPES order: precompile the later
        # ones it has asked for before (none at all under ``--dtype float32``, say)
        for other in _FLOATS[_FLOATS.index(dtype) + 1 :]:
            if other not in _SEEN:
                continue
            diff, const, ct = args  # the cotangent stays float64 in every dtype
            abstract = (*_abstract((diff, const), other, device), _abstract(ct, None, device))
            osig = (key, str(device), _signature(abstract))
            with _LOCK:
                if osig in _EXEC:
                    continue
                _EXEC[osig] = _pool().submit(_compile, f, abstract)
    with _LOCK:
        while len(_EXEC) > _EXEC_MAX:
            _EXEC.popitem(last=False)
    return compiled, compile_s


def _to_jax(a: np.ndarray, dtype: str, device):
    """A device array of ``a`` in ``dtype`` (a plain transfer: no eager op to compile)."""
    jax = _mods()[0]
    a = np.asarray(a)
    if a.dtype.kind == "b":
        host = a.astype(np.bool_)
    elif a.dtype.kind in "iu":
        host = a.astype(np.int64)
    else:  # already rounded to ``dtype`` by the harness, so the cast is exact
        host = np.asarray(a, dtype=np.float64).astype(numpy_dtype(dtype))
    return jax.device_put(host, device)


def _execute(api: str, call: Call, fn: LossFn, static: tuple, scalars: Mapping[str, Any]) -> Output:
    """Run ``fn`` on the call's inputs; value and grads of ``call.grad_inputs`` as float64."""
    device = _device_for(call)
    try:
        numpy_dtype(call.dtype)
    except ValueError:
        raise Unsupported(f"JAX adapter has no dtype {call.dtype!r}") from None
    diff = {k: _to_jax(call.inputs[k], call.dtype, device) for k in call.grad_inputs}
    const = {k: _to_jax(v, call.dtype, device) for k, v in call.inputs.items() if k not in diff}
    const.update(scalars)  # Python scalars: traced weakly typed, as a user's literal
    ct = _to_jax(np.asarray(call.cotangent, dtype=np.float64), "float64", device)
    args = (diff, const, ct)
    f = _jitted((api, static), fn)
    compiled, compile_s = _executable((api, static), f, args, device, call.dtype)
    value, grads = compiled(*args)
    out = Output(
        value=np.asarray(value, dtype=np.float64),
        grads={k: np.asarray(v, dtype=np.float64) for k, v in grads.items()},
        out_dtype=str(value.dtype),
        compile_s=compile_s,
    )
    if value.shape != np.shape(call.cotangent):
        out.note = f"value shape {tuple(value.shape)} != expected {np.shape(call.cotangent)}"
    return out


# --------------------------------------------------------------------------- recipe helpers


def _class_axis(x) -> int:
    """The class axis of ``[N, C, d1..]`` (1), written as -1 for plain ``[N, C]``."""
    return 1 if x.ndim > 2 else -1


def _reduce(per, reduction: str, denom=None, batch: int | None = None):
    """The user's reduction of per-example losses.

    ``denom``: the weights / mask a mean divides by; ``batch``: the batch size the
    ``+sum/batch`` recipe divides by (``input.shape[0]``, PyTorch's ``batchmean``).
    """
    jnp = _mods()[1]
    if reduction == "none":
        return per
    if reduction == "sum":
        return jnp.sum(per)
    if reduction == "mean":
        return jnp.mean(per) if denom is None else jnp.sum(per) / jnp.sum(denom)
    if reduction == "batchmean":
        return jnp.sum(per) / (per.shape[0] if batch is None else batch)
    raise Unsupported(f"reduction {reduction!r}")


def _keep(a: Arrays, has_ignore: bool):
    return a["target"] != a["ignore_index"] if has_ignore else None


def _class_weights(a: Arrays, keep):
    """``weight[target]`` (0 where ignored), the per-example weight of a class-weight recipe."""
    jnp = _mods()[1]
    w = a["weight"][a["target"]]
    return w if keep is None else jnp.where(keep, w, jnp.zeros_like(w))


def _labels_weight(a: Arrays, labels):
    """Class weights folded into probability targets along the class axis."""
    w = a["weight"]
    if labels.ndim > 2:
        w = w.reshape((1, -1) + (1,) * (labels.ndim - 2))
    return labels * w


# --------------------------------------------------------------------------- families
#
# A family is one framework API plus the recipes a user wraps around it. It expands into
# one Api per combination of its flags and each reduction; ``applies`` routes a call to
# the one whose flags and reduction match the call.


@dataclass(frozen=True)
class Flag:
    suffix: str
    on: Callable[[Call], bool]


@dataclass(frozen=True)
class Family:
    base: str
    loss: str
    build: Callable[..., LossFn]  # build(reduction=..., **flags) -> fn(arrays) -> value
    applies: Callable[[Call], bool] = lambda call: True
    flags: Mapping[str, Flag] | None = None
    #: reduction -> name suffix; a reduction missing here runs as Unsupported under ``base``
    reductions: Mapping[str, str] | None = None
    #: reason raised under ``base`` for calls no recipe covers (None: all covered)
    unsupported: Callable[[Call], str | None] = lambda call: None
    scalars: Callable[[Call], dict[str, Any]] = lambda call: {}
    #: appended after the flag suffixes (a fixed reduction of a loss without ``reduction``)
    tail: str = ""
    #: True when some calls have no recipe: they run as Unsupported under ``base``
    partial: bool = False
    doc: str = ""


_RED = {"none": "", "sum": "+sum", "mean": "+mean"}


def _ignore(call: Call) -> bool:
    return call.is_set("ignore_index")


def _smoothing(call: Call) -> bool:
    return call.is_set("label_smoothing")


def _has(name: str) -> Callable[[Call], bool]:
    """``Call.is_set(name)`` as a predicate (a flag's ``on``)."""
    return lambda call: call.is_set(name)


def _expand(fam: Family) -> list[Api]:
    flags = dict(fam.flags or {})
    reductions = fam.reductions
    names = list(flags)
    apis: list[Api] = []

    def state(call: Call) -> dict[str, bool]:
        return {n: bool(flags[n].on(call)) for n in names}

    def reason(call: Call) -> str | None:
        r = fam.unsupported(call)
        if r is None and reductions is not None:
            red = call.params.get("reduction")
            if red not in reductions:
                r = f"{fam.base} has no recipe for reduction={red!r}"
        return r

    def make_run(flag_values: dict[str, bool], name: str):
        def run(call: Call) -> Output:
            red = call.params.get("reduction", "none")
            fn = fam.build(reduction=red, **flag_values)
            static = (red, tuple(sorted(flag_values.items())))
            return _execute(name, call, fn, static, fam.scalars(call))

        return run

    for combo in product((False, True), repeat=len(names)):
        flag_values = dict(zip(names, combo, strict=True))
        suffix = "".join(flags[n].suffix for n in names if flag_values[n])
        for red, red_suffix in (reductions or {"none": ""}).items():
            name = fam.base + suffix + red_suffix + fam.tail

            def applies(call: Call, fv=flag_values, red=red) -> bool:
                if not fam.applies(call) or reason(call) is not None:
                    return False
                if reductions is not None and call.params.get("reduction") != red:
                    return False
                return state(call) == fv

            apis.append(Api(name, fam.loss, make_run(flag_values, name), applies, fam.doc))

    def unsupported_run(call: Call) -> Output:
        raise Unsupported(reason(call) or f"{fam.base}: no recipe")

    def unsupported_applies(call: Call) -> bool:
        return fam.applies(call) and reason(call) is not None

    if fam.partial:
        apis.append(Api(fam.base, fam.loss, unsupported_run, unsupported_applies, fam.doc))
    return apis


# --------------------------------------------------------------------------- softmax CE


def _sce_int(reduction, weight=False, where=False):
    optax = _mods()[3]

    def fn(a):
        logits, t = a["logits"], a["target"]
        kw: dict[str, Any] = {}
        if logits.ndim > 2:
            kw["axis"] = 1
        keep = _keep(a, where)
        if keep is not None:
            kw["where"] = keep
        per = optax.losses.softmax_cross_entropy_with_integer_labels(logits, t, **kw)
        if weight:
            w = _class_weights(a, keep)
            return _reduce(per * w, reduction, w)
        return _reduce(per, reduction, keep)

    return fn


def _sce_onehot_smooth(reduction, weight=False, where=False):
    jax, _, _, optax = _mods()

    def fn(a):
        logits, t = a["logits"], a["target"]
        axis = _class_axis(logits)
        onehot = jax.nn.one_hot(t, logits.shape[1], dtype=logits.dtype, axis=axis)
        labels = optax.smooth_labels(onehot, a["label_smoothing"], axis=axis)
        if weight:  # dense labels: class weights fold into them (PyTorch's semantics)
            labels = _labels_weight(a, labels)
        kw: dict[str, Any] = {"axis": axis} if axis != -1 else {}
        keep = _keep(a, where)
        if keep is not None:
            kw["where"] = keep
        per = optax.losses.softmax_cross_entropy(logits, labels, **kw)
        if weight:  # a mean over the weights of the kept targets
            return _reduce(per, reduction, _class_weights(a, keep))
        return _reduce(per, reduction, keep)

    return fn


def _sce_prob(reduction, weight=False, smooth=False):
    optax = _mods()[3]

    def fn(a):
        logits, labels = a["logits"], a["target"]
        axis = _class_axis(logits)
        if smooth:
            labels = optax.smooth_labels(labels, a["label_smoothing"], axis=axis)
        if weight:
            labels = _labels_weight(a, labels)
        kw = {"axis": axis} if axis != -1 else {}
        per = optax.losses.softmax_cross_entropy(logits, labels, **kw)
        return _reduce(per, reduction)

    return fn


def _safe_sce_prob(reduction, weight=False, smooth=False):
    jnp, _, optax = _mods()[1:]

    def fn(a):
        logits, labels = a["logits"], a["target"]
        axis = _class_axis(logits)
        if smooth:
            labels = optax.smooth_labels(labels, a["label_smoothing"], axis=axis)
        if weight:
            labels = _labels_weight(a, labels)
        if axis != -1:  # channels-last API: the user moves the class axis
            logits, labels = jnp.moveaxis(logits, 1, -1), jnp.moveaxis(labels, 1, -1)
        per = optax.losses.safe_softmax_cross_entropy(logits, labels)
        return _reduce(per, reduction)

    return fn


def _is_int(call: Call) -> bool:
    return call.integer_target


def _ls_scalar(call: Call) -> dict[str, Any]:
    return {k: float(v) for k, v in call.kwargs(("label_smoothing",)).items()}


def _ignore_scalar(call: Call) -> dict[str, Any]:
    return {k: int(v) for k, v in call.kwargs(("ignore_index",)).items()}


_W_TARGET = Flag("+weight[target]", _has("weight"))
_WHERE = Flag("+where", _ignore)
_W_LABELS = Flag("+labels*weight", _has("weight"))
_SMOOTH = Flag("+smooth_labels", _smoothing)

SCE = [
    Family(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "softmax_cross_entropy",
        _sce_int,
        applies=lambda c: _is_int(c) and not _smoothing(c),
        flags={"weight": _W_TARGET, "where": _WHERE},
        reductions=_RED,
        scalars=_ignore_scalar,
        doc="integer labels; axis=1 for [N,C,d..]; ignore_index via where=; class weights as weight[target]",
    ),
    Family(
        "optax.losses.softmax_cross_entropy+one_hot+smooth_labels",
        "softmax_cross_entropy",
        _sce_onehot_smooth,
        applies=lambda c: _is_int(c) and _smoothing(c),
        flags={"weight": _W_LABELS, "where": _WHERE},
        reductions=_RED,
        scalars=lambda c: {**_ls_scalar(c), **_ignore_scalar(c)},
        doc="integer labels with label smoothing: optax.smooth_labels(jax.nn.one_hot(target), ls)",
    ),
    Family(
        "optax.losses.softmax_cross_entropy",
        "softmax_cross_entropy",
        _sce_prob,
        applies=lambda c: not _is_int(c),
        flags={"weight": _W_LABELS, "smooth": _SMOOTH},
        reductions=_RED,
        scalars=_ls_scalar,
        doc="probability targets; ignore_index does not apply to probabilities",
    ),
    Family(
        "optax.losses.safe_softmax_cross_entropy",
        "softmax_cross_entropy",
        _safe_sce_prob,
        applies=lambda c: not _is_int(c),
        flags={"weight": _W_LABELS, "smooth": _SMOOTH},
        reductions=_RED,
        scalars=_ls_scalar,
        doc="probability targets, class axis moved last (the API has no axis argument)",
    ),
]


# --------------------------------------------------------------------------- categorical CE / NLL


def _cce_int(reduction):
    jnp = _mods()[1]

    def fn(a):
        logp = jnp.log(a["probs"])
        t = jnp.expand_dims(a["target"], 1)
        return _reduce(-jnp.take_along_axis(logp, t, axis=1).squeeze(1), reduction)

    return fn


def _cce_prob(reduction):
    jnp, jsp = _mods()[1:3]

    def fn(a):
        return _reduce(-jnp.sum(jsp.xlogy(a["target"], a["probs"]), axis=1), reduction)

    return fn


CCE = [
    Family(
        "-jnp.take_along_axis(jnp.log(probs))",
        "categorical_cross_entropy",
        _cce_int,
        applies=_is_int,
        reductions=_RED,
        doc="probabilities in: no optax/jax.nn API; -log(probs) at the target class",
    ),
    Family(
        "-jnp.sum(jax.scipy.special.xlogy(target,probs))",
        "categorical_cross_entropy",
        _cce_prob,
        applies=lambda c: not _is_int(c),
        reductions=_RED,
        doc="probabilities in, probability targets: -sum_c xlogy(t, p) over the class axis",
    ),
]


def _nll(reduction, weight=False, where=False):
    jnp = _mods()[1]

    def fn(a):
        lp, t = a["log_probs"], a["target"]
        axis = 1
        per = -jnp.take_along_axis(lp, jnp.expand_dims(t, axis), axis=axis).squeeze(axis)
        keep = _keep(a, where)
        if keep is not None:
            per = jnp.where(keep, per, jnp.zeros_like(per))
        if weight:
            w = _class_weights(a, keep)
            return _reduce(per * w, reduction, w)
        return _reduce(per, reduction, keep)

    return fn


NLL = [
    Family(
        "-jnp.take_along_axis",
        "nll",
        _nll,
        flags={"weight": _W_TARGET, "where": _WHERE},
        reductions=_RED,
        scalars=_ignore_scalar,
        doc="no NLL API in optax/jax.nn: -jnp.take_along_axis(log_probs, target[:, None], axis=1)",
    )
]


# --------------------------------------------------------------------------- binary


def _bce_probs(reduction, weight=False):
    jsp = _mods()[2]

    def fn(a):
        p, t = a["probs"], a["target"]
        per = -(jsp.xlogy(t, p) + jsp.xlog1py(1 - t, -p))
        if weight:
            per = per * a["weight"]
        return _reduce(per, reduction)

    return fn


def _bce_logits(reduction, weight=False):
    optax = _mods()[3]

    def fn(a):
        per = optax.losses.sigmoid_binary_cross_entropy(a["logits"], a["target"])
        if weight:
            per = per * a["weight"]
        return _reduce(per, reduction)

    return fn


_W_ELEM = Flag("+*weight", _has("weight"))

BINARY = [
    Family(
        "-(jax.scipy.special.xlogy+xlog1py)",
        "binary_cross_entropy",
        _bce_probs,
        flags={"weight": _W_ELEM},
        reductions=_RED,
        doc="probabilities in, no optax API: -(xlogy(t, p) + xlog1py(1 - t, -p))",
    ),
    Family(
        "optax.losses.sigmoid_binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        _bce_logits,
        flags={"weight": _W_ELEM},
        reductions=_RED,
        partial=True,
        unsupported=lambda c: (
            "optax.losses.sigmoid_binary_cross_entropy has no pos_weight argument"
            if _has("pos_weight")(c)
            else None
        ),
    ),
]


def _focal(reduction):
    optax = _mods()[3]

    def fn(a):
        kw = {"gamma": a["gamma"]} if "gamma" in a else {}
        per = optax.losses.sigmoid_focal_loss(a["logits"], a["target"], alpha=a.get("alpha"), **kw)
        return _reduce(per, reduction)

    return fn


def _focal_scalars(call: Call) -> dict[str, Any]:
    """gamma when set (optax's default is the registry's 2); alpha always (optax's default,
    None, is no weighting, not the registry's 0.25), as None where the case turned it off
    (null, or torchvision's negative alpha)."""
    out: dict[str, Any] = {k: float(v) for k, v in call.kwargs(("gamma",)).items()}
    alpha = call.params.get("alpha")
    if alpha is not None and float(alpha) >= 0:
        out["alpha"] = float(alpha)
    return out


FOCAL = [
    Family(
        "optax.losses.sigmoid_focal_loss",
        "sigmoid_focal_loss",
        _focal,
        reductions=_RED,
        scalars=_focal_scalars,
        doc="alpha always passed (optax's default alpha=None is no weighting); gamma when set",
    )
]


# --------------------------------------------------------------------------- KL


def _kl_optax(which: str, elementwise: bool):
    """optax's KL over the class axis, or with ``axis=()`` (a sum over no axes) per element."""

    def build(reduction):
        optax = _mods()[3]
        f = getattr(optax.losses, which)

        def fn(a):
            inp = a["input"]
            if elementwise:
                kw: dict[str, Any] = {"axis": ()}
            else:
                kw = {"axis": 1} if inp.ndim > 2 else {}
            batch = inp.shape[0] if inp.ndim else 1
            return _reduce(f(inp, a["target"], **kw), reduction, batch=batch)

        return fn

    return build


def _log_target(call: Call) -> bool:
    return bool(call.params.get("log_target"))


def _kl_families(which: str, applies: Callable[[Call], bool], doc: str) -> list[Family]:
    base = f"optax.losses.{which}"
    return [
        Family(
            base,
            "kl_divergence",
            _kl_optax(which, elementwise=False),
            applies=lambda c: applies(c) and c.params.get("reduction") in ("sum", "batchmean"),
            reductions={"sum": "+sum", "batchmean": "+sum/batch"},
            doc=f"{doc}; one value per distribution (class axis), summed or divided by N",
        ),
        Family(
            base + "(axis=())",
            "kl_divergence",
            _kl_optax(which, elementwise=True),
            applies=lambda c: applies(c) and c.params.get("reduction") in ("none", "mean"),
            reductions={"none": "", "mean": "+mean"},
            doc=f"{doc}; axis=() sums over no axis: the element-wise terms (PyTorch's none/mean)",
        ),
    ]


KL = [
    *_kl_families("kl_divergence", lambda c: not _log_target(c), "probability targets"),
    *_kl_families("kl_divergence_with_log_targets", _log_target, "log_target=True"),
    *_kl_families(
        "generalized_kl_divergence",
        lambda c: not _log_target(c),
        "generalized KL (convex_kl_divergence is its deprecated alias): KL + sum(exp(input) - target)",
    ),
]


# --------------------------------------------------------------------------- tokens


def _token_ce(exp: bool):
    def build(reduction, where=False):
        jnp, _, optax = _mods()[1:]

        def fn(a):
            logits, t = a["logits"], a["target"]
            keep = None
            if "mask" in a:  # an input the case gave
                keep = a["mask"]
            if "ignore_index" in a:  # a scalar only when the case set ignore_index
                k = t != a["ignore_index"]
                keep = k if keep is None else keep & k
            if keep is None:
                per = optax.losses.softmax_cross_entropy_with_integer_labels(logits, t)
                loss = jnp.mean(per)
            else:
                per = optax.losses.softmax_cross_entropy_with_integer_labels(logits, t, where=keep)
                loss = jnp.sum(per) / jnp.sum(keep)
            return jnp.exp(loss) if exp else loss

        return fn

    return build


_TOK_WHERE = Flag("+where", lambda c: _ignore(c) or _has("mask")(c))

TOKENS = [
    Family(
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        "token_cross_entropy",
        _token_ce(False),
        flags={"where": _TOK_WHERE},
        tail="+mean",
        scalars=_ignore_scalar,
        doc="mean over kept tokens: where=mask & (target != ignore_index), sum / count",
    ),
    Family(
        "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels",
        "perplexity",
        _token_ce(True),
        flags={"where": _TOK_WHERE},
        tail="+mean)",
        scalars=_ignore_scalar,
        doc="exp of the mean token loss over kept tokens",
    ),
]


# --------------------------------------------------------------------------- activations


def _fn(path: str) -> Callable:
    jax = _mods()[0]
    return {
        "jax.nn.softmax": jax.nn.softmax,
        "jax.nn.log_softmax": jax.nn.log_softmax,
        "jax.nn.logsumexp": jax.nn.logsumexp,
        "jax.nn.sigmoid": jax.nn.sigmoid,
        "jax.nn.log_sigmoid": jax.nn.log_sigmoid,
    }[path]


def _axis_api(path: str, loss: str, always_axis: bool, doc: str = "") -> Api:
    """An activation taking ``axis``; the axis shapes the graph, so it is static."""

    def run(call: Call) -> Output:
        f = _fn(path)
        pass_axis = always_axis or call.is_set("axis")
        axis = int(call.params.get("axis", -1))
        fn = (lambda a: f(a["x"], axis=axis)) if pass_axis else (lambda a: f(a["x"]))
        return _execute(path, call, fn, (axis, pass_axis), {})

    return Api(path, loss, run, doc=doc)


def _elem_api(path: str, loss: str) -> Api:
    def run(call: Call) -> Output:
        f = _fn(path)
        return _execute(path, call, lambda a: f(a["x"]), (), {})

    return Api(path, loss, run)


# jax.scipy.special.softmax / log_softmax call jax.nn.softmax / log_softmax, expit is
# lax.logistic like jax.nn.sigmoid, and jax.scipy.special.logsumexp is jax.nn.logsumexp:
# same implementations, so one row each (a duplicate row would only repeat the numbers).
ACTIVATIONS = [
    _axis_api("jax.nn.softmax", "softmax", False),
    _axis_api("jax.nn.log_softmax", "log_softmax", False),
    _axis_api(
        "jax.nn.logsumexp",
        "logsumexp",
        True,
        "= jax.scipy.special.logsumexp; default axis=None (all axes): axis always passed",
    ),
    _elem_api("jax.nn.sigmoid", "sigmoid"),
    _elem_api("jax.nn.log_sigmoid", "log_sigmoid"),
]


# --------------------------------------------------------------------------- the framework


def _all_apis() -> list[Api]:
    apis: list[Api] = []
    for fam in (*SCE, *CCE, *NLL, *BINARY, *FOCAL, *KL, *TOKENS):
        apis.extend(_expand(fam))
    apis.extend(ACTIVATIONS)
    return apis


FRAMEWORK = Framework(
    name="jax",
    apis=_all_apis(),
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=_gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
    setup=_setup,
)
