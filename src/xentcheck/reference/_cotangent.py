"""The fixed cotangent every gradient in xentcheck is taken against.

A gradient of a non-scalar output needs a vector to contract with. The sum (all ones)
hides bugs: the gradient of ``sum(softmax(x))`` is identically zero. So goldens and
adapters all compute the vector-Jacobian product with

    g[k] = 1 + (k mod 8) / 8        (k = flat C-order index of the output element)

whose values 1, 1.125, ..., 1.875 are exact in every dtype under test (bfloat16 included).
A scalar output gets ``g = 1``. Frameworks compute ``grad(sum(value * g))``.
"""

from __future__ import annotations

import numpy as np


def cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """The cotangent for an output of ``shape``, float64, in C order."""
    n = int(np.prod(shape, dtype=np.int64))
    return (1.0 + (np.arange(n) % 8) / 8.0).reshape(shape)
