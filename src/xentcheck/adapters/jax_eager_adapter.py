"""JAX without ``jax.jit`` (framework ``jax-eager``): the jax adapter's rows run op by op
under ``jax.disable_jit()``, on the cases tagged ``compiled-modes`` only.

The ``jax`` framework already is JAX's compiled mode: every row there is ONE ``jax.jit``
function computing value and VJP, compiled by XLA as a whole (fusion, algebraic
rewrites). This framework is its eager counterpart, what a user gets while debugging or
outside a jitted training step: the same optax / jax.nn calls and the same user recipes,
with ``jax.vjp`` and every primitive dispatched one at a time (``jax.disable_jit()`` also
un-jits functions that optax or jax.nn jit internally). Rows are named
``jax.disable_jit(<api>)``.

The rows are the jax adapter's own: its module is loaded a second time, privately, with
its ``_execute`` (the jitted value-and-VJP runner) replaced by :func:`_execute_eager`,
so the recipes, parameters and ``applies`` rules are shared, not copied.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from xentcheck.adapters import jax_adapter as jitted
from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name
from xentcheck.dtypes import numpy_dtype

__all__ = ["APIS", "FRAMEWORK"]

MODE = "jax.disable_jit"


def _execute_eager(
    api: str, call: Call, fn: jitted.LossFn, static: tuple, scalars: Mapping[str, Any]
) -> Output:
    """The jax adapter's ``_execute`` without compilation: ``fn`` and ``jax.vjp`` run
    eagerly under ``jax.disable_jit()``; value and grads as float64 arrays."""
    import jax

    device = jitted._device_for(call)
    try:
        numpy_dtype(call.dtype)
    except ValueError:
        raise Unsupported(f"JAX adapter has no dtype {call.dtype!r}") from None
    diff = {k: jitted._to_jax(call.inputs[k], call.dtype, device) for k in call.grad_inputs}
    const = {
        k: jitted._to_jax(v, call.dtype, device) for k, v in call.inputs.items() if k not in diff
    }
    const.update(scalars)  # Python scalars, as in the jitted rows
    ct = jitted._to_jax(np.asarray(call.cotangent, dtype=np.float64), "float64", device)
    grads: dict[str, Any] = {}
    with jax.disable_jit(), jax.default_device(device):
        if not diff:
            value = fn(const)
        else:
            value, pullback = jax.vjp(lambda d: fn({**const, **d}), diff)
            if value.shape == ct.shape:
                (grads,) = pullback(ct.astype(value.dtype))
    out = Output(
        value=np.asarray(value, dtype=np.float64),
        grads={k: np.asarray(v, dtype=np.float64) for k, v in grads.items()},
        out_dtype=str(value.dtype),
    )
    if value.shape != np.shape(call.cotangent):
        out.note = f"value shape {tuple(value.shape)} != expected {np.shape(call.cotangent)}"
    return out


def _eager_rows() -> list[Api]:
    """The jax adapter's Apis, from a private second copy of its module whose
    ``_execute`` is the eager runner (the registered ``jax`` framework is untouched)."""
    spec = importlib.util.spec_from_file_location(
        "xentcheck.adapters._jax_eager_rows", jitted.__file__
    )
    if spec is None or spec.loader is None:  # pragma: no cover - the file is ours
        raise ImportError(f"cannot load {jitted.__file__}")
    rows = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = rows  # its dataclasses look their module up while created
    spec.loader.exec_module(rows)
    rows._execute = _execute_eager
    return list(rows.FRAMEWORK.apis)


def _api(api: Api) -> Api:
    return Api(
        name=mode_name(MODE, api.name),
        loss=api.loss,
        run=api.run,
        applies=api.applies,
        doc=api.doc,
    )


APIS: list[Api] = [_api(a) for a in _eager_rows()]


def _versions() -> dict[str, str]:
    return {**jitted._versions(), "jit": "disabled"}


FRAMEWORK = Framework(
    name="jax-eager",
    apis=APIS,
    versions=_versions,
    devices=jitted._devices,
    gpu_missing_reason=jitted._gpu_missing_reason,
    unsupported_reason=jitted._unsupported_reason,
    setup=jitted._setup,
    case_tags=CASE_TAGS,
)
