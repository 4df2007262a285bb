"""The one way the harness builds a :class:`~xentcheck.adapters.base.Call`.

The worker, the pytest plugin, ``bench/bare.py`` and the tests all build their calls
with :func:`make_call`, so what an adapter test hands an API is what a run hands it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xentcheck.adapters import Call
from xentcheck.harness.cases import Instance
from xentcheck.reference import LOSSES, Golden, cotangent, differentiable_inputs


def golden_side(
    loss: str, inputs: Mapping[str, np.ndarray], golden: Golden | None
) -> tuple[tuple[str, ...], np.ndarray]:
    """``(grad_inputs, cotangent)`` of a call whose reference result is ``golden``.

    With a golden: the inputs the golden differentiates, in registry order, and the
    cotangent of the golden value's shape. Without one (the reference rejects the input):
    no inputs and the scalar 1.0, so an API computes the value only.
    """
    if golden is None:
        return (), np.asarray(1.0)
    return differentiable_inputs(loss, inputs), cotangent(golden.value.shape)


def make_call(
    instance: Instance,
    inputs: Mapping[str, np.ndarray],
    dtype: str,
    device: str,
    golden: Golden | None,
    shared: dict[Any, Any] | None = None,
) -> Call:
    """The Call an API receives for ``instance`` at ``dtype`` on ``device``.

    ``inputs`` are the instance's inputs as the worker rounds them for ``dtype``
    (:func:`xentcheck.harness.worker.rounded_inputs`); ``golden`` is the reference's
    result on them, or None when the reference rejects them. ``params`` holds the
    registry defaults overlaid with the instance's parameters, ``explicit`` the names the
    instance set; ``grad_inputs`` and ``cotangent`` come from :func:`golden_side`.

    ``shared`` (one dict per instance and dtype, reused across APIs and devices) keeps
    ``grad_inputs`` and the cotangent under those two keys from the first call on, so
    they are computed once; the Call is the same with or without it.
    """
    if shared is None:
        grad_inputs, cot = golden_side(instance.loss, inputs, golden)
    else:
        if "cotangent" not in shared:
            shared["grad_inputs"], shared["cotangent"] = golden_side(instance.loss, inputs, golden)
        grad_inputs, cot = shared["grad_inputs"], shared["cotangent"]
    return Call(
        loss=instance.loss,
        inputs=inputs,
        params={**LOSSES[instance.loss].params, **instance.params},
        explicit=frozenset(instance.params),
        dtype=dtype,
        device=device,
        grad_inputs=grad_inputs,
        cotangent=cot,
    )
