"""The sensitivity D of a golden to rounding-sized changes of its inputs, from the reference.

A backward-stable computation in a dtype of unit roundoff ``u`` returns the exact
function of inputs each within a few ``u`` of the real ones (relative). How far that
moves a result is the result's own business (its conditioning), not the implementation's;
the ULP criterion (:mod:`xentcheck.accuracy`) allows ``K * D`` for it, where

    D = max over perturbations p of |f(x * (1 + h * s_p)) - f(x)| * u / h

evaluated with the float64 reference on a few deterministic sign patterns ``s_p`` over
every floating input (logits, probability targets, weights), element by element of every
quantity (value and gradients). The patterns:

* ``all-plus``: every input scaled by ``1 + h``: catches the growth of a sum of terms of
  one sign (a reduction over many elements) and the scale of logits that cancel;
* ``aligned``: ``sign(x * grad)``, the first-order worst case for the value (the
  gradient is the golden's own vector-Jacobian product), where random signs cancel;
* ``random``: seeded random signs, for the gradients, which no single sign pattern
  dominates.

``h = max(u, 2**-24)``: at float64's ``u`` a relative change is below float64's own
resolution, so it is measured at ``2**-24`` and scaled linearly (the first-order term;
the reference's own error, about one float64 ULP of f, shrinks with the scaling). At
float16 and bfloat16 ``h = u``, where the change itself is large enough to be
non-linear, as those dtypes are. Differences that are not finite (a perturbed golden
overflowing, NaN) count 0 there: an overflow near the dtype's range is judged by the
pattern of infinities, not by an allowance.

The inputs after the first (targets, weights: data the prediction is compared with or
scaled by) keep their elements that are exactly 0 or +-1: multiplying by them, and
``1 - y`` of them, is exact in every dtype, so no rounding of a correct implementation
moves them; perturbing a 0/1 target would excuse a loss of ``exp(-40)`` flushed to 0
(the target's sensitivity is the logit, 40).

The gradients are vector-Jacobian products with the fixed cotangent ``c``, and a
framework's backward pass rounds its products with ``c`` as it rounds everything else:
for an output of more than one element the gradients are also measured with ``c * (1 +
h * s)`` for seeded random signs ``s`` (:func:`xentcheck.reference._cotangent.scaled`).
That is what moves the gradient of softmax, ``p * (c - sum(c * p))``, where ``c`` and the
sum cancel.

The softmax family (:data:`ROW_AXIS`) computes each row by shift-invariant steps: ``x -
max(x)`` is exact to a relative ``u`` of the difference, and what follows (exp, sum, log)
works on the shifted logits. So its logits are perturbed in shifted coordinates only,
``m + (x - m)(1 + h s)`` with ``m`` the row's largest finite logit (all-plus, aligned
with the gradient, and seeded random signs), never by the patterns above: a logit far
below the maximum moves by ``u`` of its distance to it, the maximum not at all. Neither
componentwise (``x (1 + h s)``) nor normwise (every logit moved by ``u * max|x|``): both
would excuse any answer for a row of equal logits of 1e30, whose loss, ``log C``, a
correct kernel gets exactly.

A perturbation the reference rejects (a probability pushed past 1) is retried with only
the ``float`` inputs (logits) perturbed, and skipped when that is rejected too. With the
run's golden cache, D itself is stored there (not the perturbed goldens, which at a
language-model vocabulary would take gigabytes), so every framework after the first
finds it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from xentcheck.accuracy import unit_roundoff
from xentcheck.harness.goldens import golden_key
from xentcheck.reference import LOSSES, Golden, evaluate, is_probability_target
from xentcheck.reference._cotangent import scaled

#: the smallest relative step measured directly: float64's unit roundoff is scaled from it
H_MIN = 2.0**-24
#: the seed of the random sign pattern
SEED = 20261205
#: random sign patterns of the cotangent (an output of more than one element)
COTANGENT_PATTERNS = 2
#: input kinds perturbed; ``float`` alone is the fallback when the reference rejects
PERTURBED_KINDS = ("float", "weight", "target")


def floating_inputs(loss: str, inputs: dict[str, np.ndarray], kinds=PERTURBED_KINDS) -> list[str]:
    """The names of ``inputs`` holding floating values of one of ``kinds`` (in order); a
    ``target`` only when it holds probabilities (not class indices)."""
    spec = LOSSES[loss]
    probabilities = is_probability_target(spec, inputs)
    return [
        name
        for name, a in inputs.items()
        if spec.input(name).kind in kinds and np.asarray(a).dtype.kind == "f"
        and (spec.input(name).kind != "target" or probabilities)
    ]  # fmt: skip


#: losses computed row by row over a class axis by shift-invariant formulas (``x - max``,
#: log-sum-exp): loss -> the axis, a number or the parameter naming it
ROW_AXIS: dict[str, int | str] = {
    "softmax_cross_entropy": 1, "token_cross_entropy": -1, "perplexity": -1,
    "softmax": "axis", "log_softmax": "axis", "logsumexp": "axis",
}  # fmt: skip


def row_axis(loss: str, params: dict[str, Any], ndim: int) -> int | None:
    """The class axis of a shift-invariant loss's first input (None for other losses, a
    scalar input, or an axis out of range)."""
    axis = ROW_AXIS.get(loss)
    if isinstance(axis, str):
        axis = params.get(axis, LOSSES[loss].params.get(axis))
    if axis is None or not isinstance(axis, int) or ndim == 0 or not -ndim <= axis < ndim:
        return None
    return axis


def sign_patterns(
    inputs: dict[str, np.ndarray], names: list[str], golden: Golden
) -> dict[str, dict[str, np.ndarray]]:
    """pattern name -> {input name: array of +-1}: ``all-plus``, ``aligned``, ``random``."""
    rng = np.random.default_rng(SEED)
    out: dict[str, dict[str, np.ndarray]] = {"all-plus": {}, "aligned": {}, "random": {}}
    for name in names:
        x = np.asarray(inputs[name], dtype=np.float64)
        out["all-plus"][name] = np.ones(x.shape)
        g = golden.grads.get(name)
        with np.errstate(invalid="ignore"):  # inf * 0 where a logit is infinite
            s = np.sign(x * g) if g is not None and np.shape(g) == x.shape else np.ones(x.shape)
        out["aligned"][name] = np.where(np.isfinite(s) & (s != 0), s, 1.0)
        out["random"][name] = rng.choice([-1.0, 1.0], size=x.shape)
    return out


def sensitivity(
    instance: Any, inputs: dict[str, np.ndarray], dtype: str, golden: Golden, cache: Any = None
) -> dict[str, np.ndarray]:
    """quantity (``value``, ``grad:<input>``) -> D, an array of the golden's shape.

    ``instance`` as :func:`~xentcheck.harness.worker.golden_for` takes it; ``inputs``
    are the dtype-rounded inputs the golden was computed from. With the run's golden
    ``cache`` (:class:`~xentcheck.harness.goldens.GoldenCache`) D itself is looked up and
    stored there, one entry the size of a golden, under a key of the inputs, the dtype and
    this module's source: the perturbed goldens are not kept (at a language-model
    vocabulary they would be gigabytes).
    """
    if cache is None:
        return _sensitivity(instance, inputs, dtype, golden)
    key = golden_key(
        instance.loss, {**instance.params, "__sensitivity__": [dtype, _DIGEST]}, inputs
    )
    found = cache.get(key)
    if found is not None and found[0] is not None:
        stored = found[0]
        return {"value": stored.value, **{f"grad:{k}": g for k, g in stored.grads.items()}}
    d = _sensitivity(instance, inputs, dtype, golden)
    grads = {q[5:]: v for q, v in d.items() if q.startswith("grad:")}
    cache.put(key, Golden(d["value"], grads), None)
    return d


#: the digest of this module's source: a changed estimate does not reuse stored ones
_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _sensitivity(
    instance: Any, inputs: dict[str, np.ndarray], dtype: str, golden: Golden
) -> dict[str, np.ndarray]:
    """:func:`sensitivity` computed, every perturbed golden evaluated afresh."""
    from xentcheck.harness.worker import golden_for  # the worker imports this module

    u = unit_roundoff(dtype)
    h = max(u, H_MIN)  # float64: measured at 2**-24, scaled to its u
    quantities = {"value": golden.value, **{f"grad:{k}": g for k, g in golden.grads.items()}}
    d = {q: np.zeros(np.shape(v)) for q, v in quantities.items()}
    names = floating_inputs(instance.loss, inputs)
    first = LOSSES[instance.loss].inputs[0].name  # the prediction; the others are data
    logits = floating_inputs(instance.loss, inputs, ("float",))
    axis = row_axis(instance.loss, instance.params, np.ndim(inputs.get(first, 0.0)))
    shifted_first = axis is not None and first in names
    if shifted_first:  # its logits move in shifted coordinates only (below)
        names = [n for n in names if n != first]
        logits = [n for n in logits if n != first]
    for signs in sign_patterns(inputs, names, golden).values():
        for subset in (names, logits):
            if not subset:
                continue
            moved = dict(inputs)
            for name in subset:
                x = np.asarray(inputs[name], dtype=np.float64)
                step = h * signs[name]
                if name != first:  # a 0 or +-1 target or weight multiplies exactly
                    step = np.where(np.abs(x) == 1.0, 0.0, step)
                moved[name] = x * (1.0 + step)
            other, _ = golden_for(instance, moved)
            if other is not None:
                break
        else:
            continue
        _fold(d, quantities, other, u / h)
    if shifted_first:  # shift-invariant rows: relative to the row's maximum
        x = np.asarray(inputs[first], dtype=np.float64)
        finite = np.isfinite(x)
        with np.errstate(invalid="ignore"):
            top = np.max(np.where(finite, x, -np.inf), axis=axis, keepdims=True) if x.size else x
        top = np.where(np.isfinite(top), top, 0.0)
        g = golden.grads.get(first)
        with np.errstate(invalid="ignore"):
            aligned = np.sign((x - top) * g) if g is not None and g.shape == x.shape else 1.0
        aligned = np.where(np.isfinite(aligned) & (aligned != 0), aligned, 1.0)
        rng = np.random.default_rng(SEED + 2)
        for signs in (np.ones(x.shape), aligned, rng.choice([-1.0, 1.0], size=x.shape)):
            shifted = top + (x - top) * (1.0 + h * signs)
            moved = {**inputs, first: np.where(finite, shifted, x)}
            other, _ = golden_for(instance, moved)
            if other is not None:
                _fold(d, quantities, other, u / h)
    if np.size(golden.value) > 1 and golden.grads:  # the backward pass rounds against it too
        rng = np.random.default_rng(SEED + 1)
        for _ in range(COTANGENT_PATTERNS):
            signs = rng.choice([-1.0, 1.0], size=np.size(golden.value))
            with scaled(1.0 + h * signs):
                other = evaluate(instance.loss, inputs, instance.params)
            _fold(d, {q: v for q, v in quantities.items() if q != "value"}, other, u / h)
    return d


def _fold(d: dict[str, np.ndarray], quantities: dict[str, np.ndarray], other: Golden,
          scale: float) -> None:  # fmt: skip
    """``d[q] = max(d[q], |other's q - q| * scale)`` for each quantity ``q``; a difference
    that is not finite counts 0."""
    others = {"value": other.value, **{f"grad:{k}": g for k, g in other.grads.items()}}
    for q, v in quantities.items():
        w = others.get(q)
        if w is None or np.shape(w) != np.shape(v):
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(np.asarray(w, dtype=np.float64) - v) * scale
        np.fmax(d[q], np.where(np.isfinite(diff), diff, 0.0), out=d[q])
