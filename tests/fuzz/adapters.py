"""Real xentcheck Frameworks for the fuzz tests, loaded by spec (``tests.fuzz.adapters:NAME``).

``PLANTED`` returns the float64 reference's value and gradients rounded to the call's dtype,
so it passes everywhere, except for one planted bug: a ``mean`` over class indices where
some label equals ``ignore_index`` divides by every label instead of the kept ones (value
and gradients scaled by kept/total). ``EXACT`` is the same API without the bug.
``NUMPY_SIGMOID`` is a sigmoid of its own (not the reference's), for planting a reference
bug; ``CRASHY`` is that sigmoid, except that it segfaults when an input holds a NaN.
"""

from __future__ import annotations

import ctypes
import dataclasses
from collections.abc import Callable

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.dtypes import quantize
from xentcheck.reference import evaluate


def _kept_share(call: Call) -> float:
    """kept/total labels where the planted bug applies (a mean over class indices with an
    ignore_index some label equals), else 1."""
    ignore = call.params.get("ignore_index")
    if call.params.get("reduction") != "mean" or ignore is None or not call.integer_target:
        return 1.0
    labels = np.asarray(call.inputs["target"]).ravel()
    ignored = int(np.count_nonzero(labels == ignore))
    return 1.0 if ignored == 0 else (labels.size - ignored) / labels.size


def _reference_api(share: Callable[[Call], float]) -> Callable[[Call], Output]:
    """An API returning the reference's answer rounded to the dtype, scaled by ``share``."""

    def run(call: Call) -> Output:
        if call.device != "cpu":
            raise Unsupported(f"device {call.device}: the test adapter runs on the CPU only")
        golden = evaluate(call.loss, call.inputs, call.params)  # rejects what it rejects
        k = share(call)
        grads = {n: quantize(golden.grads[n] * k, call.dtype) for n in call.grad_inputs}
        return Output(quantize(golden.value * k, call.dtype), grads, out_dtype=call.dtype)

    return run


def _sigmoid(call: Call) -> Output:
    """A numpy sigmoid of its own: exp of a non-positive argument only, so neither the value
    nor ``1 - value`` (for the gradient) loses digits to overflow or cancellation."""
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(-np.abs(x))
        small, large = e / (1.0 + e), 1.0 / (1.0 + e)  # sigmoid(-|x|), sigmoid(|x|)
        y, y_minus = np.where(x >= 0, large, small), np.where(x >= 0, small, large)
    y, y_minus = np.where(np.isnan(x), np.nan, y), np.where(np.isnan(x), np.nan, y_minus)
    grads = {"x": call.cotangent * y * y_minus} if "x" in call.grad_inputs else {}
    return Output(value=y, grads=grads, out_dtype=call.dtype)


def _crashy_sigmoid(call: Call) -> Output:
    if np.isnan(np.asarray(call.inputs["x"], dtype=np.float64)).any():
        ctypes.string_at(0)  # reads address 0: the worker dies of SIGSEGV
    return _sigmoid(call)


def _framework(name: str, apis: list[Api]) -> Framework:
    return Framework(
        name=name,
        apis=apis,
        versions=lambda: {"numpy": np.__version__},
        devices=lambda: {"cpu": "the test's CPU", "gpu": None},
        gpu_missing_reason=lambda: "the test adapters run on the CPU only",
    )


#: softmax cross-entropy with the planted bug (a mean over ignored labels divides by all)
PLANTED = _framework(
    "planted",
    [Api("planted.softmax_cross_entropy", "softmax_cross_entropy", _reference_api(_kept_share))],
)
#: the same API without the bug: exact everywhere
EXACT = dataclasses.replace(
    PLANTED,
    name="exact",
    apis=[
        Api("exact.softmax_cross_entropy", "softmax_cross_entropy", _reference_api(lambda c: 1.0))
    ],
)
#: an independent numpy sigmoid
NUMPY_SIGMOID = _framework("numpysig", [Api("numpysig.sigmoid", "sigmoid", _sigmoid)])
#: the numpy sigmoid, segfaulting on any NaN input
CRASHY = _framework("crashy", [Api("crashy.sigmoid", "sigmoid", _crashy_sigmoid)])
