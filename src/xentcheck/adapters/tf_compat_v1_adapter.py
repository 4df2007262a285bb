"""TensorFlow 1's losses under TensorFlow 2 (framework ``tf-compat-v1``): the
``tf.compat.v1.losses`` functions the cross-entropy tutorials of TensorFlow 1 use, run
eagerly.

Covered: ``softmax_cross_entropy`` (one-hot or soft ``onehot_labels``, ``label_smoothing``),
``sparse_softmax_cross_entropy``, ``sigmoid_cross_entropy`` (``multi_class_labels``,
``label_smoothing``) and ``log_loss`` (``labels``, ``predictions``, ``epsilon``), each with
``weights`` where the reference's parameters say the same thing, and with the reduction
modes of ``tf.compat.v1.losses.Reduction``. Every loss here goes through
``compute_weighted_loss``, which casts the losses and the weights to float32, reduces, and
casts back (``log_loss`` casts its inputs to float32 first and returns float32): the known
entries of :mod:`xentcheck.known.tf_compat_v1` say what that does to float64.

How the registry's parameters map (``losses_impl.py`` of TensorFlow 2.21):

* ``reduction``: ``none`` is ``Reduction.NONE``, ``sum`` is ``Reduction.SUM``; the
  reference's ``mean`` is one of three modes, each run as its own row and only where it
  is exactly the reference's mean: ``SUM_BY_NONZERO_WEIGHTS`` (the default: the row
  without a reduction in its name) divides by the number of nonzero weights,
  ``Reduction.MEAN`` by the sum of the weights, ``SUM_OVER_BATCH_SIZE`` by the number of
  losses. ``SUM_OVER_NONZERO_WEIGHTS`` is the same string as ``SUM_BY_NONZERO_WEIGHTS``
  (an alias), so it has no row of its own. A mode that is not the reference's mean for a
  call (``SUM_BY_NONZERO_WEIGHTS`` with class weights: the count of nonzero weights is no
  parameter of the reference) does not apply to it: no row, rather than a difference the
  reference cannot state.
* ``weights`` are per-position (softmax) or per-element (sigmoid, log_loss) coefficients.
  Class weights (the reference's ``weight`` of ``softmax_cross_entropy``) become
  ``weights=weight[target]`` for class indices, the recipe TensorFlow 1 users wrote; with
  probability targets or label smoothing a class weight acts inside the sum over classes,
  which per-position weights cannot express: ``unsupported``. ``ignore_index`` is weight 0
  (and label 0, as the sparse op rejects labels outside ``[0, C)``) at the ignored
  positions. An element weight of a lower rank than the labels is ``unsupported``
  (``weights`` broadcast only along size-1 axes of the labels' rank).
* ``label_smoothing`` is the API's own, for probability targets and, through ``tf.one_hot``,
  for class indices (``sparse_softmax_cross_entropy`` has none); ``sigmoid_cross_entropy``
  smooths towards 1/2 as the reference's ``smoothed_binary_cross_entropy`` does.
* ``log_loss``'s ``epsilon`` (1e-7, inside both logs) has no reference parameter: the row
  with the default is what users run, and ``log_loss(epsilon=0.0)`` is the reference's
  ``binary_cross_entropy`` exactly.
* ``pos_weight`` and the other losses of the registry: TensorFlow 1's losses have none.

Calls, gradients and devices are the tensorflow adapter's (:func:`tensorflow_adapter._execute`:
``GradientTape`` VJPs in the dtype under test, ``tf.device`` for the CPU and the GPU);
``softmax_cross_entropy`` stops the gradient at its labels, so it gives no ``grad:target``.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from xentcheck.adapters import tensorflow_adapter as eager
from xentcheck.adapters.base import Api, Call, Framework, Unsupported
from xentcheck.adapters.declare import (
    Declaration,
    Function,
    Keyword,
    Recipe,
    apis,
    const,
    integer_target,
    lacks,
    probability_target,
    snippets,
)

__all__ = ["APIS", "DECLARATIONS", "FRAME", "FRAMEWORK", "MEAN_MODES"]


class V1Reduction(str):
    """A ``tf.compat.v1.losses.Reduction`` value that a snippet writes by its name."""

    def __new__(cls, name: str) -> V1Reduction:
        obj = super().__new__(cls, getattr(tf.compat.v1.losses.Reduction, name))
        obj.mode = name
        return obj

    def __repr__(self) -> str:
        return f"tf.compat.v1.losses.Reduction.{self.mode}"


#: the reference's reduction -> the v1 mode of the row without a reduction in its name
#: (``mean`` is the API's default, ``SUM_BY_NONZERO_WEIGHTS``)
BASE_REDUCTION: dict[str, V1Reduction] = {
    "none": V1Reduction("NONE"),
    "sum": V1Reduction("SUM"),
    "mean": V1Reduction("SUM_BY_NONZERO_WEIGHTS"),
}

#: losses whose weight is element-wise and whose mean divides by the element count
#: (the others' mean divides by the summed weights of the kept positions)
ELEMENT_WEIGHTED = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})


def _weighted(call: Call) -> bool:
    return call.is_set("weight")


def _ignoring(call: Call) -> bool:
    return call.integer_target and call.is_set("ignore_index")


def _nonzero_count_is_mean(call: Call) -> bool:
    """``SUM_BY_NONZERO_WEIGHTS``: weights 0 or 1 (none, or an ignore mask) only."""
    return not _weighted(call)


def _weight_sum_is_mean(call: Call) -> bool:
    """``MEAN`` (sum / sum of weights): the reference's weighted mean, but for element
    weights, whose mean divides by the element count."""
    return not (_weighted(call) and call.loss in ELEMENT_WEIGHTED)


def _batch_size_is_mean(call: Call) -> bool:
    """``SUM_OVER_BATCH_SIZE`` (sum / number of losses): no position left out, and no
    weights but element weights."""
    return not _ignoring(call) and (not _weighted(call) or call.loss in ELEMENT_WEIGHTED)


#: the v1 modes that can stand for the reference's ``mean``: the mode's rows (named
#: ``(reduction=MODE)``; the default's row carries no name) apply where it is exact
MEAN_MODES: dict[str, Callable[[Call], bool]] = {
    "SUM_BY_NONZERO_WEIGHTS": _nonzero_count_is_mean,
    "MEAN": _weight_sum_is_mean,
    "SUM_OVER_BATCH_SIZE": _batch_size_is_mean,
}


def _mean(call: Call) -> bool:
    return call.params.get("reduction", "mean") == "mean"


def _weight_rank(api: str) -> Callable[[Call, Mapping[str, Any]], None]:
    """``weights`` of a scalar or of the labels' rank only (they broadcast along size-1
    axes, never by adding axes as NumPy does)."""

    def guard(call: Call, tensors: Mapping[str, Any]) -> None:
        w, t = call.inputs.get("weight"), call.inputs.get("target")
        if w is not None and t is not None and np.ndim(w) not in (0, np.ndim(t)):
            raise Unsupported(
                f"{api} takes weights of rank 0 or the labels' rank {np.ndim(t)} "
                f"(not {np.ndim(w)}): they broadcast only along size-1 axes"
            )

    return guard


def _guards(*guards: Callable[[Call, Mapping[str, Any]], None]) -> Callable:
    def guard(call: Call, tensors: Mapping[str, Any]) -> None:
        for g in guards:
            g(call, tensors)

    return guard


# ------------------------------------------------------------------------ user recipes
# The code a TensorFlow 1 user writes around the losses, in tf ops, shown in snippets.


def class_last(x):
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = x.shape.rank
    if nd <= 2:
        return x
    return tf.transpose(x, [0, *range(2, nd), 1])


def softmax_cross_entropy(target, logits, **kwargs):
    return tf.compat.v1.losses.softmax_cross_entropy(
        class_last(target), class_last(logits), **kwargs
    )


def one_hot_softmax_cross_entropy(target, logits, ignore_index=None, **kwargs):
    """Class indices with label smoothing: ``one_hot(target)`` as ``onehot_labels``;
    positions whose label is ``ignore_index`` get weight 0."""
    logits = class_last(logits)
    labels = tf.one_hot(target, logits.shape[-1], dtype=logits.dtype)
    if ignore_index is not None:
        kwargs["weights"] = tf.cast(tf.not_equal(target, int(ignore_index)), logits.dtype)
    return tf.compat.v1.losses.softmax_cross_entropy(labels, logits, **kwargs)


def sparse_softmax_cross_entropy(target, logits, **kwargs):
    return tf.compat.v1.losses.sparse_softmax_cross_entropy(target, class_last(logits), **kwargs)


def weighted_sparse_softmax_cross_entropy(target, logits, weight=None, ignore_index=None, **kwargs):
    """Class weights as per-position ``weights=weight[target]``; an ignored position gets
    weight 0 and label 0 (the op rejects labels outside ``[0, C)``)."""
    logits = class_last(logits)
    if ignore_index is None:
        keep = tf.ones_like(target, dtype=tf.bool)
    else:
        keep = tf.not_equal(target, int(ignore_index))
    safe = tf.where(keep, target, tf.zeros_like(target))
    w = tf.ones(tf.shape(target), dtype=logits.dtype) if weight is None else tf.gather(weight, safe)
    w = tf.where(keep, w, tf.zeros_like(w))
    return tf.compat.v1.losses.sparse_softmax_cross_entropy(safe, logits, weights=w, **kwargs)


# ------------------------------------------------------------------------------ table

_V1 = "tf.compat.v1.losses"
_SCE, _SSCE = f"{_V1}.softmax_cross_entropy", f"{_V1}.sparse_softmax_cross_entropy"
_SIG, _LOG = f"{_V1}.sigmoid_cross_entropy", f"{_V1}.log_loss"
_SOFTMAX = "softmax_cross_entropy"
_CLASS_WEIGHTS = "class weights inside the sum over classes (per-position weights cannot)"

_REDUCE = {"reduction": Keyword("reduction", BASE_REDUCTION.__getitem__)}
_SMOOTH = {"label_smoothing": "label_smoothing"}
_WEIGHTS = {"weight": "weights"}


def _smoothing(call: Call) -> bool:
    return call.is_set("label_smoothing")


def _no_class_weight(api: str) -> Callable[[Call, Mapping[str, Any]], None]:
    def guard(call: Call, tensors: Mapping[str, Any]) -> None:
        if call.is_set("weight"):
            raise Unsupported(f"{api} has no {_CLASS_WEIGHTS}")

    return guard


D = Declaration
#: the rows with the default reduction; :func:`with_mean_modes` adds each mode's twin
_BASE: list[Declaration] = [
    D(_SCE, _SOFTMAX,
      Recipe(softmax_cross_entropy, ("target", "logits"), _SMOOTH | _REDUCE),
      applies=probability_target,
      guard=_guards(_no_class_weight(_SCE), lacks(_SCE, "ignore_index"))),
    D(f"{_SCE}+one_hot(target)", _SOFTMAX,
      Recipe(one_hot_softmax_cross_entropy, ("target", "logits"),
             _SMOOTH | _REDUCE | {"ignore_index": "ignore_index"}),
      applies=lambda c: integer_target(c) and _smoothing(c), guard=_no_class_weight(_SCE),
      doc="class indices with label smoothing: one_hot(target); weight 0 where ignored"),
    D(_SSCE, _SOFTMAX,
      Recipe(sparse_softmax_cross_entropy, ("target", "logits"), _REDUCE),
      applies=lambda c: integer_target(c) and not _smoothing(c) and not _weighted(c)
      and not c.is_set("ignore_index"),
      guard=lacks(_SSCE, "label_smoothing")),
    D(f"{_SSCE}+weights=weight[target]*(target!=ignore_index)", _SOFTMAX,
      Recipe(weighted_sparse_softmax_cross_entropy, ("target", "logits"),
             {"weight": "weight", "ignore_index": "ignore_index"} | _REDUCE),
      applies=lambda c: integer_target(c) and not _smoothing(c)
      and (_weighted(c) or c.is_set("ignore_index")),
      guard=lacks(_SSCE, "label_smoothing"),
      doc="weights = weight[target] (1 without class weights), 0 where ignored"),
    D(_SIG, "binary_cross_entropy_with_logits",
      Function(_SIG, ("target", "logits"), _WEIGHTS | _REDUCE),
      guard=_guards(lacks(_SIG, "pos_weight"), _weight_rank(_SIG))),
    D(_SIG, "smoothed_binary_cross_entropy",
      Function(_SIG, ("target", "logits"), _SMOOTH | _REDUCE)),
    D(_LOG, "binary_cross_entropy",
      Function(_LOG, ("target", "probs"), _WEIGHTS | _REDUCE), guard=_weight_rank(_LOG),
      doc="epsilon=1e-7 (the default) inside both logs"),
    D(f"{_LOG}(epsilon=0.0)", "binary_cross_entropy",
      Function(_LOG, ("target", "probs"), _WEIGHTS | _REDUCE, {"epsilon": const(0.0)}),
      guard=_weight_rank(_LOG), doc="epsilon=0.0: the reference's binary cross-entropy"),
]  # fmt: skip


def _named(name: str, argument: str) -> str:
    """``name`` with ``argument`` added to the call's fixed arguments: ``f(a)+recipe`` ->
    ``f(a,argument)+recipe``; ``f`` -> ``f(argument)``."""
    path, plus, recipe = name.partition("+")
    path = f"{path[:-1]},{argument})" if path.endswith(")") else f"{path}({argument})"
    return path + plus + recipe


def with_mean_modes(
    decl: Declaration, modes: tuple[str, ...] = tuple(MEAN_MODES)
) -> list[Declaration]:
    """``decl`` (the default mode's row: ``none``, ``sum`` and the default mean) and its
    twin per other mode of ``modes``, each for the mean calls where that mode is the
    reference's mean."""
    base_applies = decl.applies

    def base(call: Call) -> bool:
        return base_applies(call) and (not _mean(call) or _nonzero_count_is_mean(call))

    out = [dataclasses.replace(decl, applies=base)]
    for mode in modes:
        if mode == "SUM_BY_NONZERO_WEIGHTS":
            continue

        def applies(call: Call, exact: Callable[[Call], bool] = MEAN_MODES[mode]) -> bool:
            return base_applies(call) and _mean(call) and exact(call)

        spec = decl.call
        keywords = {k: v for k, v in spec.keywords.items() if k != "reduction"}
        always = {**spec.always, "reduction": const(V1Reduction(mode))}
        out.append(
            dataclasses.replace(
                decl,
                name=_named(decl.name, f"reduction={mode}"),
                call=dataclasses.replace(spec, keywords=keywords, always=always),
                applies=applies,
            )
        )
    return out


#: the modes each row runs in (default: all): the weights recipe is for calls with class
#: weights or ignored positions, where SUM_OVER_BATCH_SIZE is never the reference's mean
_MODES = {
    f"{_SSCE}+weights=weight[target]*(target!=ignore_index)": ("SUM_BY_NONZERO_WEIGHTS", "MEAN")
}

#: every row: the default mode's and each mean mode's twin
DECLARATIONS: list[Declaration] = [
    d for decl in _BASE for d in with_mean_modes(decl, _MODES.get(decl.name, tuple(MEAN_MODES)))
]

ALIASES: dict[str, str] = {"tf": "tensorflow"}


class TfCompatV1Frame(eager.TensorFlowFrame):
    """The tensorflow adapter's snippets (eager, ``GradientTape``), importing TensorFlow only."""

    imports = "import numpy as np\nimport tensorflow as tf"


FRAME = TfCompatV1Frame()

APIS: list[Api] = apis(DECLARATIONS, eager._execute, ALIASES)


def _versions() -> dict[str, str]:
    v = {k: x for k, x in eager._versions().items() if not k.startswith("keras")}
    return {**v, "python": platform.python_version()}


FRAMEWORK = Framework(
    name="tf-compat-v1",
    apis=APIS,
    versions=_versions,
    devices=eager._devices,
    gpu_missing_reason=eager._gpu_missing_reason,
    unsupported_reason=eager._unsupported_reason,
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
