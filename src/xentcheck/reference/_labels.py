"""Class-index validation shared by the registry and the loss functions."""

from __future__ import annotations

import numpy as np


def as_labels(a, name: str) -> np.ndarray:
    """``a`` as int64 class indices; ValueError unless every value is a finite integer."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name}: class indices must be integers")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name}: class indices must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)
