"""Compile counters: how often, and for how long, a framework compiled during a run.

* JAX: ``jax.monitoring`` duration events. A compile is one
  ``/jax/core/compile/backend_compile_duration`` event (XLA compiling one executable);
  its time is that plus tracing to a jaxpr and lowering to MLIR. Events of every thread
  count, the JAX adapter's background compile thread included, so the seconds can
  overlap the calls' own time.
* TensorFlow: ``tf.function`` traces (each builds and optimises a graph), counted and
  timed by wrapping TensorFlow's ``tracing_compilation._create_concrete_function``. The
  adapter runs eagerly, so the expected count is 0; a retracing API would show here.
* ONNX Runtime: ``InferenceSession`` constructions (graph load, optimisation and kernel
  set-up), counted and timed by wrapping the class the adapter calls.
* PyTorch: eager kernels, nothing compiled; when ``torch._dynamo`` is loaded (a
  ``torch.compile`` mode), its count of unique graphs.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CompileCounter:
    """Compile events of one framework: ``count`` executables/graphs, ``seconds`` spent."""

    framework: str
    kind: str = "none"
    count: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, seconds: float, compiles: int = 0) -> None:
        with self._lock:
            self.count += compiles
            self.seconds += seconds

    def finish(self) -> dict:
        """The figures (reads torch._dynamo's counter when it was used)."""
        if "torch._dynamo" in sys.modules:
            from torch._dynamo.utils import counters

            graphs = int(counters["stats"].get("unique_graphs", 0))
            if graphs:
                self.kind = "torch.compile graphs"
                self.count += graphs
        return {"kind": self.kind, "count": self.count, "seconds": round(self.seconds, 4)}


_JAX_COMPILE = "/jax/core/compile/backend_compile_duration"
_JAX_TIMED = {
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    _JAX_COMPILE,
}


def _jax(counter: CompileCounter) -> None:
    import jax.monitoring

    counter.kind = "XLA executables (jit)"

    def on_duration(event: str, duration: float, **_: object) -> None:
        if event in _JAX_TIMED:
            counter.add(duration, int(event == _JAX_COMPILE))

    jax.monitoring.register_event_duration_secs_listener(on_duration)


def _tensorflow(counter: CompileCounter) -> None:
    import tensorflow  # noqa: F401  (loads the module patched below)
    from tensorflow.python.eager.polymorphic_function import tracing_compilation as tc

    counter.kind = "tf.function traces"
    tc._create_concrete_function = _timed(counter, tc._create_concrete_function)


def _onnxruntime(counter: CompileCounter) -> None:
    import onnxruntime

    counter.kind = "ONNX Runtime sessions (graph build)"
    base = onnxruntime.InferenceSession

    class TimedSession(base):  # the adapter builds sessions through the module attribute
        __init__ = _timed(counter, base.__init__)

    onnxruntime.InferenceSession = TimedSession


def _torch(counter: CompileCounter) -> None:
    counter.kind = "eager (no compiler)"


def _timed(counter: CompileCounter, fn: Callable) -> Callable:
    """``fn`` wrapped to count each call as one compile and add its wall time."""

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            counter.add(time.perf_counter() - t0, 1)

    return wrapper


#: top-level module -> what installs its compile counter (modules not listed count nothing)
COUNTERS: dict[str, Callable[[CompileCounter], None]] = {
    "jax": _jax,
    "tensorflow": _tensorflow,
    "onnxruntime": _onnxruntime,
    "torch": _torch,
}


def install(framework: str) -> CompileCounter:
    """Start counting compiles of ``framework`` in this process (imports its modules).

    The counters are those of the modules the adapter needs
    (:data:`xentcheck.adapters.REQUIRES`, else the module named like the framework), so
    an execution-mode adapter (``torch.compile``, XLA) is counted like its framework.
    """
    from xentcheck.adapters import REQUIRES

    counter = CompileCounter(framework)
    for module in REQUIRES.get(framework, (framework,)):
        installer = COUNTERS.get(module)
        if installer is not None:
            installer(counter)
    return counter
