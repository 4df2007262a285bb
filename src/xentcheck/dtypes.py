"""Floating dtypes under test: names, rounding to a dtype, and units in the last place.

Every dtype is named by its canonical string (``float64``, ``float32``, ``float16``,
``bfloat16``). NumPy has no bfloat16, so ``ml_dtypes`` provides it.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

FLOAT_DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")

_NUMPY: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a canonical dtype name (bfloat16 from ml_dtypes)."""
    try:
        return _NUMPY[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(FLOAT_DTYPES)}") from None


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round ``x`` to ``dtype`` (round to nearest even) and return it as float64.

    Goldens are computed from inputs quantised this way, so that the rounding of the
    inputs is never blamed on a framework.
    """
    x = np.asarray(x, dtype=np.float64)
    return x.astype(numpy_dtype(dtype)).astype(np.float64)


def mantissa_bits(dtype: str) -> int:
    """Number of explicit fraction bits of ``dtype`` (52, 23, 10, 7)."""
    return int(ml_dtypes.finfo(numpy_dtype(dtype)).nmant)


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The unit in the last place of ``x`` in ``dtype``, as float64.

    ``ulp(x) = 2**(floor(log2|x|) - nmant)``, never below the smallest subnormal of
    ``dtype``; for values beyond the dtype's range the ulp at its largest finite value.
    Non-finite inputs give NaN.
    """
    info = ml_dtypes.finfo(numpy_dtype(dtype))
    x = np.abs(np.asarray(x, dtype=np.float64))
    tiny_sub = float(info.smallest_subnormal)
    clipped = np.minimum(x, float(info.max))
    # frexp: clipped = f * 2**e with f in [0.5, 1), so floor(log2 clipped) = e - 1 exactly
    # (log2 rounds up to the next integer just below a power of two)
    _, exponent = np.frexp(clipped)
    u = np.ldexp(1.0, exponent - (1 + info.nmant))
    u = np.where(clipped > 0, np.maximum(u, tiny_sub), tiny_sub)
    return np.where(np.isfinite(x), u, np.nan)


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` with the values that overflow ``dtype`` replaced by the infinity they round to.

    A loss whose true value is beyond the dtype's range (``-1/p`` at a tiny float16 ``p``,
    say) is correctly computed as ``inf`` there; comparisons use this form of the golden.
    Finite values that fit keep their float64 precision.
    """
    x = np.asarray(x, dtype=np.float64)
    big = float(ml_dtypes.finfo(numpy_dtype(dtype)).max)
    with np.errstate(invalid="ignore"):
        if not (np.abs(x) > big).any():  # nothing beyond the largest finite: fast path
            return x
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = x.astype(numpy_dtype(dtype)).astype(np.float64)
    return np.where(np.isinf(rounded) & np.isfinite(x), rounded, x)
