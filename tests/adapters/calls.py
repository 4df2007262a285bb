"""Calls for adapter tests, built by the harness's own path.

A test's inputs become a one-instance case (:func:`instance_of`, arrays typed as the case
loader types literals), then go through the worker's steps: ``rounded_inputs`` for the
dtype, ``golden_for``, and :func:`xentcheck.harness.calls.make_call`. So a test's Call is
the one a run would hand the same API for the same instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xentcheck.adapters.base import Call
from xentcheck.harness.calls import make_call as harness_call
from xentcheck.harness.cases import Case, InputDef, Instance, Source
from xentcheck.harness.worker import golden_for, rounded_inputs
from xentcheck.reference import Golden


def _as_literal(value: Any) -> np.ndarray:
    """``value`` as the case loader holds a literal: integers int64, floats float64."""
    a = np.asarray(value)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def instance_of(
    loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> Instance:
    """The instance of a one-case file giving ``inputs`` literally and setting ``params``."""
    params = dict(params or {})
    case = Case(
        key="test/call",
        id="call",
        loss=loss,
        description="",
        inputs={k: InputDef(literal=_as_literal(v)) for k, v in inputs.items()},
        params={k: [v] for k, v in params.items()},
        swept=(),
        dtypes=("float64",),
        tags=(),
        expected=None,
        tolerance={},
        expect_error=False,
        source=Source("test", 1),
    )
    return Instance(case, case.key, params)


def make_call(
    loss: str,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    dtype: str = "float64",
    device: str = "cpu",
) -> tuple[Call, Golden | None]:
    """The worker's Call for ``inputs`` and ``params`` at ``dtype`` on ``device``, and its
    golden (None when the reference rejects the input: the Call then asks for the value
    only, as the worker's does)."""
    instance = instance_of(loss, inputs, params)
    rounded = rounded_inputs(instance, instance.inputs(), dtype)
    golden, _ = golden_for(instance, rounded)
    return harness_call(instance, rounded, dtype, device, golden), golden
