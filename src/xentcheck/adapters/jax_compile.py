"""The JAX adapter's compile machinery: executables cached by argument signature, compiled
ahead for the next dtypes in a background thread, heap trimming, the persistent cache.

Compilation dominates the run time of the ``jax`` framework (a new shape or dtype costs
~0.1-0.3 s of XLA compilation, the run itself microseconds). So the adapter hands
:func:`executable` one jitted function per key (declaration and constant arguments) and
gets the compiled executable for the call's arguments, cached by their signature; when a
call compiles, the same function is queued for compilation in the dtypes the harness
will ask for next, in a background thread: the main thread and the background thread
compile in parallel (``XENTCHECK_JAX_COMPILE_THREADS=0`` turns this off). The
executables are the ones ``jax.jit`` would build (same lowering, default compiler
options), so a cached or precompiled executable computes what ``jax.jit`` computes: only
``compile_s`` changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

import jax
import numpy as np

from xentcheck.adapters.base import Call, Unsupported
from xentcheck.dtypes import numpy_dtype

__all__ = ["enable_compile_cache", "executable"]

_EXEC: OrderedDict[tuple, Future] = OrderedDict()
_EXEC_MAX = 512  # executables kept (LRU)
_LOCK = threading.Lock()
_GATE = threading.Lock()  # no cache clearing while a background compile runs
_POOL: list[_Compiler] = []
_FLOATS = ("float64", "float32", "float16", "bfloat16")
_SEEN: set[str] = set()  # dtypes the harness has asked for in this process
_TRIM_EVERY = int(os.environ.get("XENTCHECK_JAX_TRIM_EVERY", "64"))  # 0: never
_compiles = [0, 0]  # compilations so far, and at the last trim


def enable_compile_cache(jax: Any) -> None:
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

    def submit(self, fn: Callable, *args: Any) -> Future:
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
            with _GATE:
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


def _abstract(tree: Any, dtype: str | None, device: Any) -> Any:
    """ShapeDtypeStructs of ``tree`` (floating leaves recast to ``dtype`` when given)."""
    sharding = jax.sharding.SingleDeviceSharding(device)

    def leaf(x: Any) -> Any:
        if isinstance(x, (bool, int, float)):
            return x  # a Python scalar: traced weakly typed, as in the real call
        dt = x.dtype
        if dtype is not None and np.issubdtype(dt, np.floating):
            dt = numpy_dtype(dtype)
        return jax.ShapeDtypeStruct(x.shape, dt, sharding=sharding)

    return jax.tree_util.tree_map(leaf, tree)


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    sig = []
    for x in leaves:
        if isinstance(x, (bool, int, float)):
            sig.append(type(x).__name__)
        else:
            sig.append((tuple(x.shape), str(x.dtype)))
    return (str(treedef), tuple(sig))


def _compile(f: Callable, args: tuple) -> Any:
    compiled = f.lower(*args).compile()
    with _LOCK:
        _compiles[0] += 1
    return compiled


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
        jax.clear_caches()  # executables stay alive in _EXEC
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        with _LOCK:
            _compiles[1] = _compiles[0]


def executable(
    key: Hashable, f: Callable, args: tuple, device: Any, dtype: str
) -> tuple[Any, float]:
    """(compiled executable of the jitted ``f`` for ``args = (diff, const, ct)`` on
    ``device``, seconds spent compiling or waiting for it).

    ``key`` must name everything ``f`` bakes in: an executable is reused for every call
    of the same key, device and argument signature. The executables of the dtypes after
    ``dtype`` that the harness has asked for before are queued for compilation in the
    background (the cotangent ``ct`` stays float64 in every dtype).
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
            diff, const, ct = args
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


def gpu_devices() -> list:
    """The GPUs JAX sees (none when jaxlib has no CUDA backend)."""
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []


def gpu_missing_reason() -> str | None:
    if gpu_devices():
        return None
    return "no GPU visible to JAX (jax.devices('gpu') is empty or jaxlib has no CUDA backend)"


def device_for(call: Call) -> Any:
    """The JAX device of a call (``Unsupported`` with the reason when there is none)."""
    if call.device == "cpu":
        return jax.devices("cpu")[0]
    if call.device == "gpu":
        gpus = gpu_devices()
        if not gpus:
            raise Unsupported(gpu_missing_reason())
        return gpus[0]
    raise Unsupported(f"unknown device {call.device!r}")


def to_device(a: np.ndarray, dtype: str, device: Any) -> Any:
    """A device array of ``a`` in ``dtype`` (a plain transfer: no eager op to compile);
    class indices as int64, masks as bool."""
    a = np.asarray(a)
    if a.dtype.kind == "b":
        host = a.astype(np.bool_)
    elif a.dtype.kind in "iu":
        host = a.astype(np.int64)
    else:  # already rounded to ``dtype`` by the harness, so the cast is exact
        host = np.asarray(a, dtype=np.float64).astype(numpy_dtype(dtype))
    return jax.device_put(host, device)
