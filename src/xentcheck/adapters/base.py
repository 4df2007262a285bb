"""What an adapter is: a framework, its APIs, and the call they receive.

An adapter module (one per framework) builds one :class:`Framework` holding a list of
:class:`Api` objects, one per public API that computes a loss of the registry. The
harness hands each API a :class:`Call` (one instance, one dtype, one device) and gets an
:class:`Output` back, or an exception, which it records: ``Unsupported`` becomes an
``unsupported`` row, anything else an ``error`` row (or a pass, when the case expects the
input to be rejected).

Adapters call each API the way a user would. They never "fix" a framework's semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xentcheck.reference import LOSSES


class Unsupported(Exception):
    """The API lacks this variant, parameter, dtype or device; the message says which."""


@dataclass(frozen=True)
class Call:
    """One instance at one dtype on one device, as an adapter receives it.

    inputs:    floating inputs already rounded to ``dtype`` (held as float64; cast them to
               the framework's ``dtype``); class indices as int64 (a non-integer class
               index of an ``expect_error`` case as written, float64); masks as bool.
               Built by the harness only (``xentcheck.harness.calls.make_call``).
    params:    every parameter of the loss, registry defaults filled in.
    explicit:  the names of the parameters the case set. Adapters never read it: they
               ask :meth:`is_set` (or take :meth:`kwargs`), the one meaning of "set".
    grad_inputs: the inputs to differentiate, in the order the golden has them.
    cotangent: the vector to contract the output with, of the golden value's shape:
               frameworks compute ``grad(sum(value * cotangent))`` (cast it to ``dtype``;
               its values are exact in every dtype).

    When the reference rejects the input (a bad label, say) there is no golden:
    ``grad_inputs`` is empty and ``cotangent`` is the scalar 1.0; compute the value only.
    """

    loss: str
    inputs: Mapping[str, np.ndarray]
    params: Mapping[str, Any]
    explicit: frozenset[str]
    dtype: str
    device: str
    grad_inputs: tuple[str, ...]
    cotangent: np.ndarray

    def is_set(self, name: str) -> bool:
        """Whether the case set ``name``: the one test deciding whether an adapter passes
        the framework argument for it (or applies the user recipe that stands for it).

        A parameter is set when the case names it, whatever the value: ``label_smoothing:
        0.0``, ``reduction: mean`` or ``log_target: false`` are set exactly as ``0.1``,
        ``sum`` or ``true`` are, and a parameter the case leaves out is not set, whatever
        its registry default. A null that is the registry default says "none", the same
        as leaving the parameter out (``ignore_index: null``); a null that differs from
        the default is a setting (``alpha: null``, no weighting). An optional input
        (``weight``, ``pos_weight``, ``mask``) is set when the case gives it.
        """
        if name not in self.params:
            return self.inputs.get(name) is not None
        if name not in self.explicit:
            return False
        if self.params[name] is not None:
            return True
        spec = LOSSES.get(self.loss)
        return spec is not None and spec.params.get(name) is not None

    def kwargs(self, names: Mapping[str, str] | Iterable[str]) -> dict[str, Any]:
        """Framework keyword arguments of the parameters among ``names`` that are set
        (:meth:`is_set`), with the case's values: ``{keyword: value}``.

        ``names`` maps parameter -> framework keyword (``{"ignore_index":
        "ignore_class"}``), or lists parameters whose keyword is their own name.
        """
        mapping = names if isinstance(names, Mapping) else {n: n for n in names}
        return {kw: self.params[p] for p, kw in mapping.items() if self.is_set(p)}

    @property
    def integer_target(self) -> bool:
        """True when ``target`` holds class indices (an integer array)."""
        t = self.inputs.get("target")
        return t is not None and t.dtype.kind in "iu"


@dataclass
class Output:
    """What an API returned: value and gradients converted to float64 NumPy arrays.

    out_dtype is the framework's dtype name of the value (``float32`` when a float16 call
    came back upcast, say); errors are measured in ULPs of the dtype under test.
    compile_s is the part of the call spent compiling or tracing (a new shape under
    ``jax.jit``), when the adapter can tell; the run header sums it per framework.
    """

    value: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    out_dtype: str = ""
    note: str = ""
    compile_s: float | None = None


def shape_differs(value_shape: tuple[int, ...], cotangent: np.ndarray) -> str | None:
    """The note of an Output whose value's shape is not the reference's (so no gradients
    are taken against the cotangent); None when the shapes agree."""
    if tuple(value_shape) == tuple(np.shape(cotangent)):
        return None
    return (
        f"output shape {tuple(value_shape)} differs from the reference's "
        f"{tuple(np.shape(cotangent))}: no gradients taken"
    )


@dataclass(frozen=True)
class Api:
    """One public API of a framework that computes ``loss``.

    name:     the API as a user writes it (``torch.nn.functional.cross_entropy``); a user
              recipe built around an API that lacks a parameter names the recipe, e.g.
              ``optax.losses.softmax_cross_entropy_with_integer_labels+where``.
    run:      computes the Output for a Call (raise Unsupported for a missing variant).
    applies:  False for calls this API is not meant for at all because a sibling API of
              the same framework covers them (integer labels vs probabilities); such calls
              produce no row. Default: every call of ``loss``.
    """

    name: str
    loss: str
    run: Callable[[Call], Output]
    applies: Callable[[Call], bool] = lambda call: True
    doc: str = ""


@dataclass
class Framework:
    """A framework adapter: its APIs, versions and devices.

    versions():  package -> version string (``{"torch": "2.13.0"}``).
    devices():   ``{"cpu": description, "gpu": description or None}``.
    gpu_missing_reason(): why there is no GPU (None when there is one).
    unsupported_reason(exc): a reason string when a raised exception means the API lacks
                 a dtype or device (``"addmm" not implemented for 'Half'``), else None.
    setup():     called once in the worker before anything runs (e.g. enable x64 in JAX).
    case_tags:   when set, the framework runs only instances of cases carrying one of these
                 tags (a costly execution mode such as ``torch.compile`` runs a chosen
                 subset of the suite); None runs every case.
    snippet(api, call): a short standalone Python script making the call of API ``api``
                 on ``call`` as a user would, giving the row's numbers bit for bit (its
                 variables ``value`` and ``grads``); None when the adapter writes none.
    """

    name: str
    apis: list[Api]
    versions: Callable[[], dict[str, str]]
    devices: Callable[[], dict[str, str | None]]
    gpu_missing_reason: Callable[[], str | None] = lambda: None
    unsupported_reason: Callable[[BaseException], str | None] = lambda exc: None
    setup: Callable[[], None] = lambda: None
    case_tags: frozenset[str] | None = None
    snippet: Callable[[str, Call], str] | None = None

    def apis_for(self, loss: str) -> list[Api]:
        return [a for a in self.apis if a.loss == loss]
