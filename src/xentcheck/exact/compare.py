"""The reference against the oracle: which elements of an instance disagree.

See :mod:`xentcheck.exact` for the criterion. :func:`reference_disagreements` is the one
place that evaluates the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from xentcheck.exact.reals import finite, isnan

__all__ = [
    "ABSOLUTE",
    "RELATIVE",
    "Disagreement",
    "element_error",
    "reference_disagreements",
    "sample",
]

RELATIVE = mpf(2) ** -40
ABSOLUTE = mpf(2) ** -1060
_OVERFLOW = mpf(np.finfo(np.float64).max) * (1 - RELATIVE)


@dataclass(frozen=True)
class Disagreement:
    """One element where the reference leaves the exact answer.

    quantity:  ``"value"`` or ``"grad:<input>"``.
    index:     the element's index in the quantity's shape.
    reference: the reference's float64.
    exact:     ``mpmath.nstr(exact, 20)``, ``"inf"``, ``"-inf"`` or ``"nan"``; or
               ``"undefined (<why>)"`` where the oracle rejects an input the reference
               accepts, or ``"shape <shape>"`` where the shapes differ.
    error:     ``|reference - exact| / max(|exact|, scale)`` (the magnitude the
               criterion holds it to); ``inf`` where one is finite and the other not, or
               that magnitude is 0.
    """

    quantity: str
    index: tuple[int, ...]
    reference: float
    exact: str
    error: float


def element_error(ref: float, exact, scale=None) -> float | None:
    """The error of ``ref`` against ``exact`` if it breaks the criterion, else None.

    ``exact``: an mpmath number, a float ``+-inf``/``nan``, or None (undefined: never a
    disagreement, nor is an exact NaN). ``scale``: the magnitude a cancelling quantity is
    held to (None: ``|exact|``).
    """
    if exact is None or isnan(exact):
        return None
    ref = float(ref)
    if not finite(exact):
        return None if ref == float(exact) else math.inf
    if math.isnan(ref):
        return math.inf
    if math.isinf(ref):  # an exact value at the edge of float64 may round to inf
        ok = abs(exact) >= _OVERFLOW and (ref > 0) == (exact > 0)
        return None if ok else math.inf
    err = abs(mpf(ref) - exact)
    size = abs(exact) if scale is None else max(abs(exact), scale)
    if err <= RELATIVE * size + ABSOLUTE:
        return None
    return float(err / size) if size else math.inf


def _text(v) -> str:
    if v is None:
        return "nan"
    if not finite(v):
        return str(float(v))
    m, e = mpmath.frexp(v)
    if abs(e) < 100_000:
        return mpmath.nstr(v, 20)
    return f"{mpmath.nstr(m, 20)}*2**{e}"  # beyond mpmath's decimal conversion


def sample(reference: np.ndarray, exact: Sequence, budget: int) -> np.ndarray:
    """Deterministic flat indices to check: all when there are at most ``budget``;
    otherwise the ``budget // 8`` largest in magnitude by the reference (NaN and
    infinities first) and by the exact value each, and evenly spaced others."""
    n = len(exact)
    if n <= budget:
        return np.arange(n)
    ref = np.abs(np.asarray(reference, dtype=np.float64).ravel())
    ref = np.where(np.isnan(ref), np.inf, ref)
    k = max(1, budget // 8)
    by_ref = np.argsort(-ref, kind="stable")[:k]
    mags = [
        math.inf if v is None or not finite(v) else float(min(abs(v), mpf(1e308))) for v in exact
    ]
    by_exact = np.argsort(-np.asarray(mags), kind="stable")[:k]
    chosen = set(by_ref.tolist()) | set(by_exact.tolist())
    spread = np.linspace(0, n - 1, num=max(budget - len(chosen), 1)).astype(np.int64)
    return np.array(sorted(chosen | set(spread.tolist())), dtype=np.int64)


def _compare(quantity, reference, exact, scales, shape, budget) -> list[Disagreement]:
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != tuple(shape):
        return [Disagreement(quantity, (), math.nan, f"shape {tuple(shape)}", math.inf)]
    flat = reference.ravel()
    found = []
    for k in sample(flat, exact, budget).tolist():
        err = element_error(flat[k], exact[k], None if scales is None else scales[k])
        if err is not None:
            index = tuple(int(i) for i in np.unravel_index(k, shape)) if shape else ()
            found.append(Disagreement(quantity, index, float(flat[k]), _text(exact[k]), err))
    return found


def reference_disagreements(
    loss: str,
    inputs: Mapping[str, np.ndarray],
    params: Mapping[str, Any] | None = None,
    *,
    max_elements: int = 4096,
    max_grad_elements: int = 64,
) -> list[Disagreement]:
    """The elements where :func:`xentcheck.reference.evaluate` breaks the criterion.

    ``[]`` where the reference rejects the input (``ValueError``: the loss is not defined
    there). Where the oracle rejects an input the reference accepts, one disagreement
    on the value (``exact`` = ``"undefined (...)"``). Values beyond ``max_elements``
    and each gradient beyond ``max_grad_elements`` are checked at :func:`sample`'s
    elements.
    """
    from xentcheck.exact import exact as oracle
    from xentcheck.reference import evaluate

    try:
        golden = evaluate(loss, inputs, params)
    except ValueError:
        return []
    try:
        answer = oracle(loss, inputs, params)
    except ValueError as exc:
        first = float(np.ravel(golden.value)[0]) if np.size(golden.value) else math.nan
        return [Disagreement("value", (), first, f"undefined ({exc})", math.inf)]
    found = _compare(
        "value",
        golden.value,
        answer.value,
        answer.scales.get("value"),
        answer.shape,
        max_elements,
    )
    for name, g in answer.grads.items():
        quantity = f"grad:{name}"
        if name not in golden.grads:
            found.append(Disagreement(quantity, (), math.nan, "missing", math.inf))
            continue
        shape = np.shape(inputs[name])
        found += _compare(
            quantity, golden.grads[name], g, answer.scales.get(quantity), shape, max_grad_elements
        )
    return found
