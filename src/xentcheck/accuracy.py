"""The accuracy criterion: when a framework's array agrees with the golden.

An element agrees when both are finite and ``|actual - expected| <= atol + rtol *
|expected|``, or when both are the same non-finite value (NaN and NaN, +inf and +inf,
-inf and -inf). Arrays agree when every element does. The default ``(rtol, atol)`` per
dtype is torch.testing's table (``assert_close``).

This module sits below the harness, the adapters and ``known/``: the harness's
:func:`xentcheck.harness.compare.compare` applies the criterion to a result row (and
measures the errors), and the known-difference predicates ask it where a finding
differs.
"""

from __future__ import annotations

import numpy as np

#: dtype -> (rtol, atol), torch.testing.assert_close defaults
DEFAULT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}


def disagreeing(expected, actual, rtol: float, atol: float) -> np.ndarray | None:
    """Where ``actual`` fails the criterion against ``expected``, element by element.

    Returns a bool array of ``expected``'s shape (``actual`` of the same size is read in
    that shape), or None when their sizes differ (no element-wise answer).
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        if e.size != a.size:
            return None
        a = a.reshape(e.shape)
    both = np.isfinite(e) & np.isfinite(a)
    same_special = (np.isnan(e) & np.isnan(a)) | (~np.isfinite(e) & (e == a))
    with np.errstate(invalid="ignore", over="ignore"):
        close = both & (np.abs(a - e) <= atol + rtol * np.abs(np.where(both, e, 0.0)))
    return ~(close | same_special)


def agrees(expected, actual, rtol: float, atol: float) -> bool:
    """True when every element of ``actual`` agrees with ``expected`` (the status
    ``pass`` of :func:`xentcheck.harness.compare.compare`); False for different sizes."""
    d = disagreeing(expected, actual, rtol, atol)
    return d is not None and not d.any()
