"""A real xentcheck Framework whose APIs really fault, for the fault-injection tests.

``faulty.sigmoid`` computes the sigmoid correctly, except that the first input value picks
a fault: 1 segfaults (reads address 0), 2 calls ``os._exit(7)``, 3 sleeps past any
timeout, 4 allocates until the memory limit refuses, 5 raises what a poisoned CUDA
context raises. ``numpy.sigmoid`` always works: its rows must survive the faults around it.
Loaded with ``xentcheck run --adapter tests.harness.faulty_adapter:FRAMEWORK``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import resource
import time

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output


def _sigmoid(call: Call) -> Output:
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    y = 1.0 / (1.0 + np.exp(-x))
    y_minus = 1.0 / (1.0 + np.exp(x))  # 1 - y without its cancellation
    grads = {"x": call.cotangent * y * y_minus} if "x" in call.grad_inputs else {}
    return Output(value=y, grads=grads, out_dtype=call.dtype)


def _hog() -> None:
    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        raise MemoryError("refusing to eat the machine's memory: set XENTCHECK_WORKER_MEMORY_LIMIT")
    held = []
    while True:  # MemoryError ends it once the address-space limit is reached
        held.append(np.empty(256 * 2**20 // 8))  # address space, not pages: fast and harmless


def _faulty(call: Call) -> Output:
    x = np.asarray(call.inputs["x"]).ravel()
    fault = float(x[0]) if x.size else 0.0
    if fault == 1.0:
        ctypes.string_at(0)
    elif fault == 2.0:
        os._exit(7)
    elif fault == 3.0:
        time.sleep(3600)
    elif fault == 4.0:
        _hog()
    elif fault == 5.0:
        raise RuntimeError("CUDA error: device-side assert triggered")
    return _sigmoid(call)


FRAMEWORK = Framework(
    name="faulty",
    apis=[Api("numpy.sigmoid", "sigmoid", _sigmoid), Api("faulty.sigmoid", "sigmoid", _faulty)],
    versions=lambda: {"numpy": np.__version__},
    devices=lambda: {"cpu": "the test's CPU", "gpu": None},
)

#: the same APIs, run only on cases tagged ``picked`` (Framework.case_tags)
PICKY = dataclasses.replace(FRAMEWORK, name="picky", case_tags=frozenset({"picked"}))


def _broken_setup() -> None:
    raise RuntimeError("no driver found for this fake accelerator")


#: an adapter whose setup fails: one crash row for the framework, nothing retried
BROKEN = dataclasses.replace(FRAMEWORK, name="broken", setup=_broken_setup)
