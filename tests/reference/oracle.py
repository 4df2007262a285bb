"""An independent oracle for the reference: mpmath at high precision.

Helpers here convert float64 inputs to mpmath numbers exactly, and measure the distance
of a float64 result from an mpmath value in units in the last place (ULP) of float64.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

mpmath.mp.dps = 60  # 60 significant digits, far beyond float64's 17


def mpf(x: float) -> mpmath.mpf:
    """Exact conversion of a float64 to mpmath."""
    return mpmath.mpf(float(x))


def ulp64(x: float) -> float:
    """ULP of float64 at |x| (the smallest subnormal near 0)."""
    x = abs(float(x))
    if x == 0.0:
        return 5e-324
    if not math.isfinite(x):
        return math.nan
    return math.ulp(x)


def ulp_distance(actual: float, exact, scale=None) -> float:
    """|actual - exact| in float64 ULPs of ``scale`` (default: of ``exact``).

    ``scale`` lets a cancelling quantity be judged against its larger term. Infinities and
    NaN must match exactly (0 when they do, inf when they don't).
    """
    actual = float(actual)
    if isinstance(exact, float) and not math.isfinite(exact):
        if math.isnan(exact):
            return 0.0 if math.isnan(actual) else math.inf
        return 0.0 if actual == exact else math.inf
    if not math.isfinite(actual):
        return math.inf
    ref = float(exact) if scale is None else float(scale)
    u = ulp64(ref)
    return float(abs(mpf(actual) - exact) / mpf(u))


def assert_ulp(
    actual: np.ndarray, exact: list, max_ulp: float = 4.0, scale: list | None = None, what: str = ""
) -> None:
    """Assert every element of ``actual`` lies within ``max_ulp`` of its ``exact`` mpmath value."""
    flat = np.asarray(actual, dtype=np.float64).ravel()
    assert flat.size == len(exact), f"{what}: size {flat.size} != {len(exact)}"
    for k, (a, e) in enumerate(zip(flat, exact, strict=True)):
        s = None if scale is None else scale[k]
        d = ulp_distance(a, e, s)
        assert d <= max_ulp, (
            f"{what}[{k}]: got {a!r}, exact {mpmath.nstr(e, 25)}, {d:.2f} ULP > {max_ulp}"
        )
