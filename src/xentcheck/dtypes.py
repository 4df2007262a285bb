"""Floating dtypes under test: names, rounding to a dtype, and units in the last place.

Every dtype is named by its canonical string (``float64``, ``float32``, ``float16``,
``bfloat16``). NumPy has no bfloat16, so ``ml_dtypes`` provides the array type that
adapters hand to frameworks; the arithmetic on formats (rounding, ULPs, overflow) is
xentcheck's own, in :mod:`xentcheck.floats`. ``ml_dtypes`` is imported the first time a
bfloat16 array type is asked for: importing it costs most of a second (it registers
its casts with NumPy one by one), which every process of a run would pay otherwise.
"""

from __future__ import annotations

import numpy as np

from xentcheck.floats import FLOAT_FORMATS, float_round, float_saturate, float_ulp

FLOAT_DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")

_NUMPY: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a canonical dtype name (bfloat16 from ml_dtypes)."""
    if name == "bfloat16" and name not in _NUMPY:
        import ml_dtypes

        _NUMPY[name] = np.dtype(ml_dtypes.bfloat16)
    try:
        return _NUMPY[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(FLOAT_DTYPES)}") from None


def _check_name(name: str) -> None:
    """Raise ValueError for a name that is not one of :data:`FLOAT_DTYPES`."""
    if name not in FLOAT_FORMATS:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(FLOAT_DTYPES)}")


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round ``x`` to ``dtype`` (round to nearest even) and return it as float64.

    Goldens are computed from inputs quantised this way, so that the rounding of the
    inputs is never blamed on a framework. The rounding is xentcheck's own
    (:func:`xentcheck.floats.float_round`, on the float64 bits), not a library's cast.
    """
    _check_name(dtype)  # an unknown name fails with the list of known ones
    return float_round(x, dtype)


def mantissa_bits(dtype: str) -> int:
    """Number of explicit fraction bits of ``dtype`` (52, 23, 10, 7)."""
    _check_name(dtype)
    return FLOAT_FORMATS[dtype][0]


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The unit in the last place of ``x`` in ``dtype``, as float64 (see ``float_ulp``)."""
    return float_ulp(x, dtype)


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` with the values that overflow ``dtype`` replaced by the infinity they round to
    (see ``float_saturate``): a comparison's form of the golden."""
    return float_saturate(x, dtype)
