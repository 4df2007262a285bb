r"""An independent oracle for every loss of the registry: mpmath at 60 significant digits.

``xentcheck fuzz`` checks the float64 reference against it at an instance before it
blames a framework: a disagreement there is a reference bug.

Each loss is a plain function (``softmax.py``, ``binary.py``, ``kl.py``, ``tokens.py``)
written from the math in its docstring, in mpmath: no function or helper of the
reference is used, only its registry (names, inputs, defaults) and the fixed cotangent
of :func:`xentcheck.reference.cotangent`. Quantities are formed without cancellation
where the math allows (``1 - p_max = R / S``, ``sigmoid(x) - 1 = -sigmoid(-x)``,
``log(1 - p) = log1p(-p)``), sums of finite terms are exact before their one rounding,
and the working precision grows with the largest input's binary exponent.
:func:`exact` gives the value and the gradients (the vector-Jacobian products with the
fixed cotangent, 1 for a scalar) of exactly the inputs
:func:`xentcheck.reference.differentiable_inputs` names.

**The criterion** (:func:`reference_disagreements`). An element of the reference's
value or gradient, ``ref``, disagrees with the exact ``x`` when

.. math::
    |\mathrm{ref} - x| > 2^{-40} \max(|x|, s) + 2^{-1060}

(relative ``~1e-12``, with an absolute floor near float64's subnormals), or when one is
finite and the other not, or the signs of infinities differ, or ``x`` is a number and
``ref`` NaN. An exact value beyond float64's range may be ``+-inf`` in the reference
(rounded). Elements where ``x`` is undefined (NaN: an indeterminate form, a NaN input;
a gradient of None) are not checked.

``s`` (:attr:`Exact.scales`) is the **scale** of a quantity that is a sum of terms of
both signs: the sum of their magnitudes. A float64 computation of such a sum can be held
only to its terms, not to what is left after they cancel; the reference claims exactly
that (4 ULP of "a cancelling difference's larger term"). The scales are: a reduced
value, the sum over elements of ``max(|l_i|, s_i)``; a per-element loss, its terms
(negative weights or targets outside ``[0, 1]``, ``KL``'s ``p (log p - input)``,
``logsumexp``'s ``m + log S`` with ``m < 0``); gradients ``W p - a`` (softmax family,
at the maximum ``sum_{c != a} a_c - W (1 - p_a)``), ``(1 - y) sigmoid(x) - p_w y
sigmoid(-x)``, the softmax and log-softmax VJPs, and the focal-loss brackets. A
perplexity gradient ``exp(CE + log p_c)`` also allows ``2**-100`` relative per unit of
the magnitudes of ``CE`` and ``log p_c``, whose difference is its exponent. The
reference claims 4 ULP (``2**-50``): the criterion leaves a factor 1000, so it never
fires on a correct reference, and a planted error of ``1e-9`` relative fires wherever
the quantity does not cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import mpmath
import numpy as np

from xentcheck.exact import binary, kl, softmax, tokens
from xentcheck.exact.compare import ABSOLUTE, RELATIVE, Disagreement, reference_disagreements
from xentcheck.exact.reals import input_bits
from xentcheck.exact.result import Exact
from xentcheck.reference import LOSSES, differentiable_inputs

__all__ = [
    "ABSOLUTE",
    "ORACLES",
    "RELATIVE",
    "Disagreement",
    "Exact",
    "exact",
    "reference_disagreements",
]

#: loss name (the registry's) -> its oracle: the loss's arrays and parameters as keyword
#: arguments, an :class:`Exact` back.
ORACLES: dict[str, Callable[..., Exact]] = {
    "softmax_cross_entropy": softmax.softmax_cross_entropy,
    "categorical_cross_entropy": softmax.categorical_cross_entropy,
    "nll": softmax.nll,
    "binary_cross_entropy": binary.binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary.binary_cross_entropy_with_logits,
    "smoothed_binary_cross_entropy": binary.smoothed_binary_cross_entropy,
    "kl_divergence": kl.kl_divergence,
    "sigmoid_focal_loss": binary.sigmoid_focal_loss,
    "token_cross_entropy": tokens.token_cross_entropy,
    "perplexity": tokens.perplexity,
    "softmax": softmax.softmax,
    "log_softmax": softmax.log_softmax,
    "logsumexp": softmax.logsumexp,
    "sigmoid": binary.sigmoid,
    "log_sigmoid": binary.log_sigmoid,
}

_KINDS: dict[str, Callable[[Any], np.ndarray]] = {
    "float": lambda a: np.asarray(a, dtype=np.float64),
    "weight": lambda a: np.asarray(a, dtype=np.float64),
    "target": np.asarray,
    "labels": np.asarray,
    "mask": lambda a: np.asarray(a) != 0,
}


def exact(
    loss: str, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any] | None = None
) -> Exact:
    """The exact value and gradients of registry loss ``loss`` at ``inputs``.

    Float inputs are float64 arrays (already rounded to a dtype), labels integers, masks
    boolean or 0/1; omitted parameters take the registry's defaults. Gradients are the
    vector-Jacobian products with :func:`xentcheck.reference.cotangent` of the value's
    shape (1 for a scalar), for exactly the inputs
    :func:`xentcheck.reference.differentiable_inputs` names.

    Raises ``ValueError`` where the loss is undefined for the input (an out-of-range
    label, mismatched shapes, a probability outside ``[0, 1]``, a parameter outside its
    range) and for an unknown loss, input or parameter.
    """
    if loss not in ORACLES or loss not in LOSSES:
        raise ValueError(f"no oracle for loss {loss!r}")
    spec = LOSSES[loss]
    params = dict(params or {})
    if set(params) - set(spec.params):
        raise ValueError(f"{loss}: unknown parameter(s) {sorted(set(params) - set(spec.params))}")
    names = {i.name for i in spec.inputs}
    present = {k: v for k, v in inputs.items() if v is not None}
    if set(present) - names:
        raise ValueError(f"{loss}: unknown input(s) {sorted(set(present) - names)}")
    arrays = {}
    for i in spec.inputs:
        if i.name in present:
            arrays[i.name] = _KINDS[i.kind](present[i.name])
        elif i.required:
            raise ValueError(f"{loss}: missing input {i.name!r}")
    floats = [a for a in arrays.values() if a.dtype.kind == "f"]
    with mpmath.workprec(input_bits(floats)):
        answer = ORACLES[loss](**arrays, **{**spec.params, **params})
    wanted = differentiable_inputs(loss, present)
    return Exact(answer.shape, answer.value, {k: answer.grads[k] for k in wanted}, answer.scales)
