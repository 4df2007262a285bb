"""Calls for adapter tests, built the way the harness builds them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xentcheck.adapters.base import Call
from xentcheck.dtypes import quantize
from xentcheck.reference import LOSSES, Golden, cotangent, differentiable_inputs, evaluate


def make_call(
    loss: str,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    dtype: str = "float64",
    device: str = "cpu",
) -> tuple[Call, Golden]:
    """A Call as the harness builds it (masks as bool, class indices as int64, floating
    inputs rounded to ``dtype``; defaults filled; the golden's cotangent), and the golden."""
    spec = LOSSES[loss]
    params = dict(params or {})
    arrays = {}
    for name, value in inputs.items():
        a = np.asarray(value)
        kind = spec.input(name).kind
        if kind == "mask":
            arrays[name] = a != 0
        elif a.dtype.kind in "iu" or kind == "labels":
            arrays[name] = a.astype(np.int64)
        else:
            arrays[name] = quantize(a, dtype)
    golden = evaluate(loss, arrays, params)
    call = Call(
        loss=loss,
        inputs=arrays,
        params={**spec.params, **params},
        explicit=frozenset(params),
        dtype=dtype,
        device=device,
        grad_inputs=differentiable_inputs(loss, arrays),
        cotangent=cotangent(golden.value.shape),
    )
    return call, golden
