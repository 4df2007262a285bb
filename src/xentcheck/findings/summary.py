"""One sentence per finding that reads like a bug title, written from the data.

``torch.nn.functional.log_softmax: gradient wrt x is wrong by up to 6.1e6 ULP (relative
error 0.39) in float32 on shape [4, 131072]``. A known (semantic) finding's title is its
entry's explanation, first sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from xentcheck.floats import FLOAT_FORMATS

Row = Mapping[str, Any]


def number(x: float | None) -> str:
    """A short number for a title: ``170000`` -> ``1.7e5``, ``0.0123`` -> ``0.012``."""
    if x is None:
        return "?"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{float(f'{x:.2g}'):g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def quantity_words(quantity: str) -> str:
    """``value`` -> ``the value``; ``grad:logits`` -> ``the gradient wrt logits``."""
    if quantity.startswith("grad:"):
        return f"the gradient wrt {quantity[5:]}"
    return "the value" if quantity in ("value", "") else quantity


def apis_words(apis: Sequence[str]) -> str:
    """The first API, and how many more share the behaviour."""
    more = len(apis) - 1
    return apis[0] + (f" (and {more} more API{'s' if more > 1 else ''})" if more else "")


def _where(row: Row, dtypes: Sequence[str]) -> str:
    dtype = str(row.get("dtype", ""))
    others = [d for d in dtypes if d != dtype]
    text = f"in {dtype}" + (f" (also {', '.join(others)})" if others else "")
    shape = row.get("shape")
    if shape:
        text += f" on shape {list(shape)}"
    return text


def _reason(message: str) -> str:
    """The reference's reason out of ``... rejects the input (loss: reason)``."""
    inside = message.rsplit("(", 1)[-1].rstrip(")") if "(" in message else message
    return inside.split(": ", 1)[-1] if ": " in inside else inside


def smallest_normal(row: Row) -> float:
    """The smallest normal number of the row's dtype (0 for an unknown dtype)."""
    fmt = FLOAT_FORMATS.get(str(row.get("dtype")))
    return 2.0 ** fmt[1] if fmt else 0.0


def worst_element(row: Row) -> tuple[float, float] | None:
    """(expected, actual) at a compared row's worst element, from its samples (which start
    one element before it); None when the row holds no such pair."""
    index, shape = row.get("index"), row.get("shape")
    expected, actual = row.get("expected") or [], row.get("actual") or []
    if index is None or shape is None or len(index) != len(shape):
        return None
    flat = 0
    for i, n in zip(index, shape, strict=True):
        flat = flat * n + i
    at = 1 if flat > 0 else 0
    if at >= min(len(expected), len(actual)):
        return None
    e, a = expected[at], actual[at]
    if isinstance(e, str) or isinstance(a, str):
        return None
    return float(e), float(a)


def summary(finding: Mapping[str, Any]) -> str:
    """The bug-title sentence of a finding dict (fields of :func:`xentcheck.findings.build`)."""
    worst: Row = finding["worst"]
    api = apis_words(finding["apis"])
    kind = finding["kind"]
    q = quantity_words(str(worst.get("quantity", "value")))
    where = _where(worst, finding["dtypes"])
    if kind == "semantic":
        text = str(finding.get("explanation") or worst.get("explanation") or "")
        first = re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")
        return f"{api}: {first} (documented: {finding.get('known')})"
    if kind == "wrong":
        if finding["signature"] == "shape":
            return f"{api}: {q} has the wrong shape ({worst.get('message', '')}) {where}"
        pair = worst_element(worst)
        if pair is not None and pair[1] == 0.0 and pair[0] != 0.0:
            return f"{api}: {q} is 0 where the reference is {number(pair[0])} (flushed) {where}"
        if pair is not None and pair[0] == 0.0 and pair[1] != 0.0:
            return f"{api}: {q} is {number(pair[1])} where the reference is exactly 0 {where}"
        rel = worst.get("max_rel_err")
        rel_text = f" (relative error {number(rel)})" if rel is not None else ""
        return f"{api}: {q} is wrong by up to {number(worst.get('max_ulp'))} ULP{rel_text} {where}"
    if kind == "precision":
        pair = worst_element(worst)
        if pair is not None and pair[1] == 0.0 and 0.0 < abs(pair[0]) < smallest_normal(worst):
            return (
                f"{api}: {q} is 0 where the reference is {number(pair[0])}, a subnormal "
                f"(flushed to zero) {where}"
            )
        lost = worst.get("digits_lost")
        lost_text = (
            f"loses {number(lost)} decimal digits" if lost is not None else "loses precision"
        )
        return f"{api}: {q} {lost_text} ({number(worst.get('max_ulp'))} ULP) {where}"
    if kind == "nonfinite":
        exp, _, act = finding["signature"].partition(" -> ")
        if act:
            return f"{api}: {q} is {act} where the reference is {exp} {where}"
        return f"{api}: {q} has a NaN/Inf pattern unlike the reference's {where}"
    if kind == "error-behaviour":
        sig = finding["signature"]
        message = str(worst.get("message") or "")
        if sig.startswith("returned"):
            return (
                f"{api}: {sig} instead of raising on an invalid input "
                f"({_reason(message)}) in {worst.get('dtype')}"
            )
        return f"{api}: {sig} on a valid input ({message[:120]}) in {worst.get('dtype')}"
    message = str(worst.get("message") or "").split(";")[0]
    return f"{api}: the worker process {'timed out' if worst.get('status') == 'timeout' else 'crashed'} ({message[:120]})"
