"""The float64 NumPy reference: golden values and analytic gradients for every loss.

``evaluate(loss, inputs, params)`` is the public entry point; ``docs/design.md`` (Python
API) states its contract. Each loss is a plain function in a module named after its
family; this module holds the one registry that maps canonical loss names to those
functions and describes their inputs and parameters, which the harness and the adapters
read too.

Gradients are vector-Jacobian products with the fixed cotangent of
:mod:`xentcheck.reference._cotangent` (``1 + (k mod 8)/8``; 1 for a scalar output).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xentcheck.reference import binary, checks, kl, softmax, tokens
from xentcheck.reference._cotangent import cotangent
from xentcheck.reference.arguments import KL_REDUCTIONS, REDUCTIONS, as_labels
from xentcheck.reference.checks import InputRejected

__all__ = [
    "LOSSES", "Golden", "InputRejected", "InputSpec", "LossSpec",
    "check", "cotangent", "evaluate", "values_read",
]  # fmt: skip


@dataclass(frozen=True)
class Golden:
    """The reference's answer for one instance and one dtype.

    ``value``: float64 array (0-d for reduced losses). ``grads``: input name -> float64
    array of that input's shape, the vector-Jacobian product with the fixed cotangent.
    """

    value: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class InputSpec:
    """One input of a loss.

    kind:
      ``float``    a floating array, rounded to the dtype under test, differentiable;
      ``weight``   a floating array rounded to the dtype, not differentiated;
      ``target``   class indices (integer array) or, when it has the same rank as the
                   first input, probabilities (floating, rounded, differentiable);
      ``labels``   integer class indices only;
      ``mask``     boolean (nonzero = keep).
    """

    name: str
    kind: str
    required: bool = True


@dataclass(frozen=True)
class LossSpec:
    """A loss of the registry: its function, inputs and parameters with defaults.

    check:  the check-only twin of ``fn`` (:mod:`~xentcheck.reference.checks`): the same
            arguments, the value's shape, the same ``ValueError`` for a rejected input.
    reads:  the inputs whose values (not only shapes) ``check`` reads.
    """

    name: str
    fn: Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]]
    inputs: tuple[InputSpec, ...]
    params: Mapping[str, Any]
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    check: Callable[..., tuple[int, ...]] = checks.elementwise
    reads: frozenset[str] = frozenset()

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _spec(name, fn, inputs, params, choices=None, *, check, reads=()) -> LossSpec:
    inputs = tuple(InputSpec(*i) for i in inputs)
    return LossSpec(name, fn, inputs, params, choices or {}, check, frozenset(reads))


LOSSES: dict[str, LossSpec] = {
    s.name: s
    for s in [
        _spec(
            "softmax_cross_entropy",
            softmax.softmax_cross_entropy,
            [("logits", "float"), ("target", "target"), ("weight", "weight", False)],
            {"ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.softmax_cross_entropy,
            reads=("target",),
        ),
        _spec(
            "categorical_cross_entropy",
            softmax.categorical_cross_entropy,
            [("probs", "float"), ("target", "target")],
            {"reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.categorical_cross_entropy,
            reads=("probs", "target"),
        ),
        _spec(
            "nll",
            softmax.nll,
            [("log_probs", "float"), ("target", "labels"), ("weight", "weight", False)],
            {"ignore_index": None, "reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.nll,
            reads=("target",),
        ),
        _spec(
            "binary_cross_entropy",
            binary.binary_cross_entropy,
            [("probs", "float"), ("target", "float"), ("weight", "weight", False)],
            {"reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.binary_cross_entropy,
            reads=("probs",),
        ),
        _spec(
            "binary_cross_entropy_with_logits",
            binary.binary_cross_entropy_with_logits,
            [
                ("logits", "float"),
                ("target", "float"),
                ("weight", "weight", False),
                ("pos_weight", "weight", False),
            ],
            {"reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.binary_cross_entropy_with_logits,
        ),
        _spec(
            "smoothed_binary_cross_entropy",
            binary.smoothed_binary_cross_entropy,
            [("logits", "float"), ("target", "float")],
            {"label_smoothing": 0.0, "reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.smoothed_binary_cross_entropy,
        ),
        _spec(
            "kl_divergence",
            kl.kl_divergence,
            [("input", "float"), ("target", "float")],
            {"log_target": False, "reduction": "mean"},
            {"reduction": KL_REDUCTIONS, "log_target": (False, True)},
            check=checks.kl_divergence,
            reads=("target",),
        ),
        _spec(
            "sigmoid_focal_loss",
            binary.sigmoid_focal_loss,
            [("logits", "float"), ("target", "float")],
            {"alpha": 0.25, "gamma": 2.0, "reduction": "mean"},
            {"reduction": REDUCTIONS},
            check=checks.sigmoid_focal_loss,
            reads=("target",),
        ),
        _spec(
            "token_cross_entropy",
            tokens.token_cross_entropy,
            [("logits", "float"), ("target", "labels"), ("mask", "mask", False)],
            {"ignore_index": None},
            check=checks.token_cross_entropy,
            reads=("target", "mask"),
        ),
        _spec(
            "perplexity",
            tokens.perplexity,
            [("logits", "float"), ("target", "labels"), ("mask", "mask", False)],
            {"ignore_index": None},
            check=checks.token_cross_entropy,
            reads=("target", "mask"),
        ),
        _spec("softmax", softmax.softmax, [("x", "float")], {"axis": -1}, check=checks.softmax),
        _spec(
            "log_softmax", softmax.log_softmax, [("x", "float")], {"axis": -1}, check=checks.softmax
        ),
        _spec(
            "logsumexp", softmax.logsumexp, [("x", "float")], {"axis": -1}, check=checks.logsumexp
        ),
        _spec("sigmoid", binary.sigmoid, [("x", "float")], {}, check=checks.elementwise),
        _spec("log_sigmoid", binary.log_sigmoid, [("x", "float")], {}, check=checks.elementwise),
    ]
}


def is_probability_target(spec: LossSpec, inputs: Mapping[str, np.ndarray]) -> bool:
    """True when ``inputs['target']`` holds probabilities rather than class indices.

    The rule is by shape: a ``target``-kind input with the same rank as the loss's first
    input is a distribution over the class axis; one rank lower holds class indices.
    """
    first = np.asarray(inputs[spec.inputs[0].name])
    target = inputs.get("target")
    return target is not None and np.ndim(target) == first.ndim


def differentiable_inputs(loss: str, inputs: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """Names of the inputs the golden carries gradients for, in registry order."""
    spec = LOSSES[loss]
    names = []
    for i in spec.inputs:
        if i.name not in inputs:
            continue
        if i.kind == "float" or (i.kind == "target" and is_probability_target(spec, inputs)):
            names.append(i.name)
    return tuple(names)


def evaluate(
    loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> Golden:
    """Golden value and gradients of ``loss`` at ``inputs`` with ``params``, in float64.

    Floating inputs are taken as float64 (round them to the dtype under test first, see
    :func:`xentcheck.dtypes.quantize`); class indices as int64; masks as bool.
    Unspecified parameters take the registry defaults.

    Raises ``ValueError`` where the loss is undefined for the input (an out-of-range label,
    mismatched shapes) and ``KeyError``-free ``ValueError`` for an unknown loss, input or
    parameter.
    """
    spec, arrays, kwargs = _prepare(loss, inputs, params)
    value, grads = spec.fn(**arrays, **kwargs)
    return Golden(
        np.asarray(value, dtype=np.float64),
        {k: np.asarray(v, np.float64) for k, v in grads.items()},
    )


def check(
    loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> tuple[int, ...]:
    """The shape of the value :func:`evaluate` would return, without computing it.

    Raises the ``ValueError`` that :func:`evaluate` raises for the same arguments (an
    :class:`InputRejected` naming the input or parameter where it is about one), and
    costs no arithmetic: only the inputs in :func:`values_read` need their real values;
    the others may be stand-ins of the right shape and dtype, such as
    ``numpy.broadcast_to(0.0, shape)``.
    """
    spec, arrays, kwargs = _prepare(loss, inputs, params)
    return spec.check(**arrays, **kwargs)


def values_read(loss: str) -> frozenset[str]:
    """The inputs of ``loss`` whose values :func:`check` reads (the rest: shape and dtype)."""
    return LOSSES[loss].reads


def _prepare(
    loss: str, inputs: Mapping[str, Any], params: Mapping[str, Any] | None
) -> tuple[LossSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(spec, the inputs as the loss function takes them, its keyword arguments)."""
    try:
        spec = LOSSES[loss]
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(sorted(LOSSES))}") from None
    params = dict(params or {})
    unknown = set(params) - set(spec.params)
    if unknown:
        raise ValueError(
            f"{loss}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(spec.params)}"
        )
    names = {i.name for i in spec.inputs}
    if set(inputs) - names:
        raise ValueError(
            f"{loss}: unknown input(s) {sorted(set(inputs) - names)}; allowed: {sorted(names)}"
        )
    arrays: dict[str, np.ndarray] = {}
    for i in spec.inputs:
        if i.name not in inputs or inputs[i.name] is None:
            if i.required:
                raise checks.InputRejected(i.name, f"{loss}: missing input {i.name!r}")
            continue
        with checks.about(i.name):
            arrays[i.name] = _as_array(inputs[i.name], i.kind)
    if "target" in arrays and spec.input("target").kind == "target":
        with checks.about("target"):
            if is_probability_target(spec, arrays):
                arrays["target"] = np.asarray(arrays["target"], dtype=np.float64)
            else:
                arrays["target"] = as_labels(arrays["target"], "target")
    return spec, arrays, {**spec.params, **params}


def _as_array(a: Any, kind: str) -> np.ndarray:
    if kind == "labels":
        return as_labels(a, "target")
    if kind == "mask":
        return np.asarray(a) != 0
    if kind == "target":
        return np.asarray(a)
    return np.asarray(a, dtype=np.float64)
