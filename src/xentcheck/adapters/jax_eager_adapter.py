"""JAX without ``jax.jit`` (framework ``jax-eager``): the jax adapter's rows run op by op
under ``jax.disable_jit()``, on the cases tagged ``compiled-modes`` only.

The ``jax`` framework already is JAX's compiled mode: every row there is ONE ``jax.jit``
function computing value and VJP, compiled by XLA as a whole (fusion, algebraic
rewrites). This framework is its eager counterpart, what a user gets while debugging or
outside a jitted training step: the same optax / jax.nn calls and the same user recipes,
with ``jax.vjp`` and every primitive dispatched one at a time (``jax.disable_jit()`` also
un-jits functions that optax or jax.nn jit internally). Rows are named
``jax.disable_jit(<api>)``.

The rows are the jax adapter's declarations, run by its plumbing with ``jit=False``, and
their snippets are its frame without the jit: the recipes, parameters and ``applies``
rules are shared, not copied.
"""

from __future__ import annotations

from functools import partial

from xentcheck.adapters import jax_adapter as jitted
from xentcheck.adapters.base import Api, Framework
from xentcheck.adapters.compiled_modes import CASE_TAGS, mode_name
from xentcheck.adapters.declare import apis, snippets

__all__ = ["APIS", "FRAME", "FRAMEWORK"]

MODE = "jax.disable_jit"

#: snippets run op by op, as the rows
FRAME = jitted.JaxFrame(jit=False)

APIS: list[Api] = apis(
    jitted.DECLARATIONS,
    partial(jitted._execute, jit=False),
    jitted.ALIASES,
    rename=partial(mode_name, MODE),
)


def _versions() -> dict[str, str]:
    return {**jitted._versions(), "jit": "disabled"}


FRAMEWORK = Framework(
    name="jax-eager",
    apis=APIS,
    versions=_versions,
    devices=jitted._devices,
    gpu_missing_reason=jitted.gpu_missing_reason,
    unsupported_reason=jitted._unsupported_reason,
    setup=jitted._setup,
    case_tags=CASE_TAGS,
    snippet=snippets(jitted.DECLARATIONS, FRAME, _versions, rename=partial(mode_name, MODE)),
)
