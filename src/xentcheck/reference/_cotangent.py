"""The fixed cotangent every gradient in xentcheck is taken against.

A gradient of a non-scalar output needs a vector to contract with. The sum (all ones)
hides bugs: the gradient of ``sum(softmax(x))`` is identically zero. So goldens and
adapters all compute the vector-Jacobian product with

    g[k] = 1 + (k mod 8) / 8        (k = flat C-order index of the output element)

whose values 1, 1.125, ..., 1.875 are exact in every dtype under test (bfloat16 included).
A scalar output gets ``g = 1``. Frameworks compute ``grad(sum(value * g))``.

:func:`scaled` lets the accuracy criterion ask how the gradients move when the cotangent
moves by a rounding-sized amount (a framework's backward pass rounds its products with
the cotangent too): within it, the cotangent of an output of the given shape is
multiplied element by element by the given factor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np

_FACTOR: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar(
    "cotangent_factor", default=None
)


def cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """The cotangent for an output of ``shape``, float64, in C order."""
    n = int(np.prod(shape, dtype=np.int64))
    g = (1.0 + (np.arange(n) % 8) / 8.0).reshape(shape)
    factor = _FACTOR.get()
    if factor is not None and factor.size == n and factor.size > 1:
        g = g * factor.reshape(shape)
    return g


@contextlib.contextmanager
def scaled(factor: np.ndarray) -> Iterator[None]:
    """Within the block, the cotangent of an output of ``factor``'s size (more than one
    element) is the fixed one times ``factor`` (flat, C order)."""
    token = _FACTOR.set(np.asarray(factor, dtype=np.float64).reshape(-1))
    try:
        yield
    finally:
        _FACTOR.reset(token)
