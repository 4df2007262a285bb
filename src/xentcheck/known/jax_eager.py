"""Documented differences of JAX run without ``jax.jit`` (framework ``jax-eager``): those
of the jitted jax rows, the same optax / jax.nn code (see :mod:`xentcheck.known.modes`)."""

from __future__ import annotations

from xentcheck.known import jax as jitted
from xentcheck.known.modes import derive

ENTRIES = derive(jitted.ENTRIES, "jax-eager", lambda api: f"jax.disable_jit({api})")
