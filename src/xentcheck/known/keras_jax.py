"""Documented differences of Keras 3 on its JAX backend (framework ``keras-jax``): the
Keras-level entries of the tensorflow registry (epsilon clipping, floatx, the mean's
denominator ...), which live in Keras's backend-neutral loss code."""

from __future__ import annotations

from xentcheck.known import tensorflow as tf_entries
from xentcheck.known.modes import derive

ENTRIES = derive([k for k in tf_entries.ENTRIES if k.id.startswith("keras-")], "keras-jax")
