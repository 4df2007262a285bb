"""Keras 3 APIs of the registry, written once in ``keras.ops`` so every backend runs them.

``keras.losses.*`` (functional and class forms), ``keras.ops.*`` and
``keras.activations.*``: the same rows run on the TensorFlow backend (inside the
``tensorflow`` framework) and on the JAX and PyTorch backends (frameworks ``keras-jax``
and ``keras-torch``). The module imports ``keras`` only inside the builders, so the
backend is whatever the importing adapter selected with ``KERAS_BACKEND`` beforehand.

How a call is made, the way a user would:

* Class axis: the reference has it at 1 (``[N, C, d1..]``); Keras is channels-last, so
  K-dim inputs get their class axis moved last (``keras.ops.transpose``).
* A framework argument is passed exactly when the case set the parameter
  (:meth:`Call.is_set <xentcheck.adapters.base.Call.is_set>`, ``0.0`` and the default
  included; :meth:`Call.kwargs <xentcheck.adapters.base.Call.kwargs>`), and a recipe
  standing for a missing argument is applied exactly then. The rows' own arguments are
  passed always: ``from_logits=True``, ``axis`` of ``keras.ops.logsumexp`` (whose default
  reduces every axis), ``apply_class_balancing=True`` of the focal loss (``False`` when
  the case turns alpha off: null or negative, torchvision's convention).
* Functional losses return per-sample losses: the reduction is the user's
  (``keras.ops.sum``; ``keras.ops.mean``, or the sum over the kept elements' count when
  an ignore class is in play).
* ``Loss`` objects are built once per configuration and reused, get the reduction by
  name (``batchmean`` is ``sum_over_batch_size``), and compute in
  ``keras.backend.floatx()`` as Keras documents.
* A parameter an API lacks is covered by the idiomatic recipe (``+sample_weight=...``),
  run as its own row; otherwise ``Unsupported``.

:func:`keras_apis` returns the rows, given the adapter's ``make_api`` that turns a
builder ``(tensors, call) -> value`` into an :class:`~xentcheck.adapters.base.Api` run on
its backend (value and VJP through the backend's own autodiff).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from xentcheck.adapters.base import Api, Call, Unsupported

__all__ = ["Builder", "MakeApi", "keras_apis", "keras_versions"]

Tensors = Mapping[str, Any]
Builder = Callable[[Tensors, Call], Any]
#: (name, loss, builder, applies or None, doc) -> Api
MakeApi = Callable[[str, str, Builder, Callable[[Call], bool] | None, str], Api]


def _k():
    import keras

    return keras


# ------------------------------------------------------------------ parameter helpers


def _ignore_index(call: Call) -> int | None:
    return int(call.params["ignore_index"]) if call.is_set("ignore_index") else None


_IGNORE_CLASS = {"ignore_index": "ignore_class"}


def _reject(call: Call, api: str, *, weight=False, ignore=False, smoothing=False, pos=False):
    """Raise Unsupported for the parameters ``api`` has no argument (or recipe) for."""
    if weight and call.is_set("weight"):
        raise Unsupported(f"{api} has no class/element weight argument")
    if pos and call.is_set("pos_weight"):
        raise Unsupported(f"{api} has no pos_weight argument")
    if ignore and call.is_set("ignore_index"):
        raise Unsupported(f"{api} has no ignore_index argument")
    if smoothing and call.is_set("label_smoothing"):
        raise Unsupported(f"{api} has no label_smoothing argument")


def _ndim(x) -> int:
    return len(x.shape)


def _class_last(x):
    """Move the class axis (1, PyTorch's layout) last, as a channels-last user does."""
    nd = _ndim(x)
    if nd <= 2:
        return x
    return _k().ops.transpose(x, [0, *range(2, nd), 1])


def _user_reduce(per, call: Call, denominator=None, batch: int | None = None):
    """The reduction a user writes around an API that returns per-sample losses."""
    ops = _k().ops
    reduction = call.params.get("reduction", "mean")
    if reduction == "none":
        return per
    if reduction == "sum":
        return ops.sum(per)
    if reduction == "mean":
        if denominator is None:
            return ops.mean(per)
        return ops.sum(per) / denominator
    if reduction == "batchmean":
        n = batch if batch is not None else (per.shape[0] if _ndim(per) else 1)
        return ops.sum(per) / ops.cast(n, per.dtype)
    raise ValueError(f"unknown reduction {reduction!r}")


_KERAS_REDUCTION = {
    "none": "none",
    "sum": "sum",
    "mean": "mean",
    "batchmean": "sum_over_batch_size",
}


def _keras_reduction(call: Call) -> dict[str, Any]:
    """``reduction=`` by Keras's name, when set (unset: Keras's default, the mean)."""
    return {k: _KERAS_REDUCTION[v] for k, v in call.kwargs(("reduction",)).items()}


@functools.lru_cache(maxsize=256)
def _loss_object(cls_name: str, items: tuple[tuple[str, Any], ...]):
    """One Keras Loss object per configuration, reused as a user reuses it."""
    return getattr(_k().losses, cls_name)(**dict(items))


def _keras_loss(cls_name: str, **kwargs: Any):
    return _loss_object(cls_name, tuple(sorted(kwargs.items())))


def _integer(call: Call) -> bool:
    return call.integer_target


def _probability(call: Call) -> bool:
    return not call.integer_target


def _smoothing(call: Call) -> bool:
    return call.is_set("label_smoothing")


def _bare(call: Call) -> bool:
    """No weights, ignore_index or label smoothing: the calls the ``keras.ops`` forms are
    for (their ``keras.losses`` siblings carry those parameters)."""
    return not any(map(call.is_set, ("weight", "pos_weight", "ignore_index", "label_smoothing")))


def _kept(target, call: Call):
    ops = _k().ops
    ignore = _ignore_index(call)
    if ignore is None:
        return ops.ones_like(target, dtype="bool")
    return ops.not_equal(target, ignore)


def _is_integer_tensor(x) -> bool:
    return "int" in str(_k().backend.standardize_dtype(x.dtype))


# --------------------------------------------------------------------- softmax family


def _cce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(call, "keras.losses.categorical_crossentropy", weight=True, ignore=True)
        per = _k().losses.categorical_crossentropy(
            _class_last(t["target"]),
            _class_last(t[x]),
            from_logits=from_logits,
            **call.kwargs(("label_smoothing",)),
        )
        return _user_reduce(per, call)

    return build


def _cce_cls(from_logits: bool, x: str, one_hot: bool = False) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(call, "keras.losses.CategoricalCrossentropy", weight=True, ignore=True)
        kw = {"from_logits": True} if from_logits else {}
        loss = _keras_loss(
            "CategoricalCrossentropy",
            **kw,
            **call.kwargs(("label_smoothing",)),
            **_keras_reduction(call),
        )
        pred = _class_last(t[x])
        target = t["target"]
        if one_hot:
            target = _k().ops.one_hot(target, pred.shape[-1], dtype=pred.dtype)
        else:
            target = _class_last(target)
        return loss(target, pred)

    return build


def _scce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        ops = _k().ops
        name = "keras.losses.sparse_categorical_crossentropy"
        _reject(call, name, weight=True, smoothing=True)
        kw = call.kwargs(_IGNORE_CLASS)
        per = _k().losses.sparse_categorical_crossentropy(
            t["target"], _class_last(t[x]), from_logits=from_logits, **kw
        )
        # the functional form zeroes ignored elements: the mean is over the kept ones
        keep = ops.cast(_kept(t["target"], call), per.dtype) if kw else None
        return _user_reduce(per, call, None if keep is None else ops.sum(keep))

    return build


def _scce_cls(from_logits: bool, x: str, class_weights: bool = False) -> Builder:
    def build(t: Tensors, call: Call):
        ops = _k().ops
        name = "keras.losses.SparseCategoricalCrossentropy"
        _reject(call, name, weight=not class_weights, smoothing=True)
        kw = {"from_logits": True} if from_logits else {}
        kw |= call.kwargs(_IGNORE_CLASS)
        loss = _keras_loss("SparseCategoricalCrossentropy", **kw, **_keras_reduction(call))
        target = t["target"]
        sample_weight = None
        if class_weights and call.is_set("weight"):
            safe = ops.where(_kept(target, call), target, ops.zeros_like(target))
            sample_weight = ops.take(t["weight"], safe)
        return loss(target, _class_last(t[x]), sample_weight=sample_weight)

    return build


def _ops_cce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(
            call, "keras.ops.categorical_crossentropy", weight=True, ignore=True, smoothing=True
        )
        per = _k().ops.categorical_crossentropy(
            _class_last(t["target"]), _class_last(t[x]), from_logits=from_logits
        )
        return _user_reduce(per, call)

    return build


def _ops_scce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(
            call,
            "keras.ops.sparse_categorical_crossentropy",
            weight=True,
            ignore=True,
            smoothing=True,
        )
        per = _k().ops.sparse_categorical_crossentropy(
            t["target"], _class_last(t[x]), from_logits=from_logits
        )
        return _user_reduce(per, call)

    return build


# ------------------------------------------------------------------- activations

AXIS_DEFAULT_ALL = "the framework default reduces every axis"


def _axis_kw(call: Call, always: bool = False) -> dict[str, Any]:
    if always:
        return {"axis": int(call.params["axis"])}
    return {k: int(v) for k, v in call.kwargs(("axis",)).items()}


def activation(fn: Callable[..., Any], axis: bool = False, always: bool = False) -> Builder:
    """A builder calling ``fn(x[, axis=...])`` (``axis`` when set, or ``always``)."""

    def build(t: Tensors, call: Call):
        return fn(t["x"], **(_axis_kw(call, always) if axis else {}))

    return build


def _ops(name: str) -> Callable[..., Any]:
    """``keras.ops.<name>``, looked up at call time (after the backend is chosen)."""
    return lambda *a, **kw: getattr(_k().ops, name)(*a, **kw)


def _activations(name: str) -> Callable[..., Any]:
    return lambda *a, **kw: getattr(_k().activations, name)(*a, **kw)


# ------------------------------------------------------------------------ token losses

TOKEN_KERAS = (
    "keras.losses.SparseCategoricalCrossentropy(from_logits=True,ignore_class)+sample_weight=mask"
)


def _token_keras(t: Tensors, call: Call):
    """``SparseCategoricalCrossentropy(from_logits=True[, ignore_class=ignore_index])``
    with ``sample_weight=mask``, default reduction."""
    kw = call.kwargs(_IGNORE_CLASS)
    loss = _keras_loss("SparseCategoricalCrossentropy", from_logits=True, **kw)
    sample_weight = t["mask"] if call.is_set("mask") else None
    return loss(t["target"], t["logits"], sample_weight=sample_weight)


def _perplexity(t: Tensors, call: Call):
    return _k().ops.exp(_token_keras(t, call))


# ---------------------------------------------------------------------- binary family


def _bce_fn(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(call, "keras.losses.binary_crossentropy", weight=True, pos=True)
        per = _k().losses.binary_crossentropy(t["target"], t[x], from_logits=from_logits)
        return _user_reduce(per, call)

    return build


def _bce_cls(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(call, "keras.losses.BinaryCrossentropy", weight=True, pos=True)
        kw = {"from_logits": True} if from_logits else {}
        loss = _keras_loss("BinaryCrossentropy", **kw, **_keras_reduction(call))
        return loss(t["target"], t[x])

    return build


def _ops_bce(from_logits: bool, x: str) -> Builder:
    def build(t: Tensors, call: Call):
        _reject(call, "keras.ops.binary_crossentropy", weight=True, pos=True)
        per = _k().ops.binary_crossentropy(t["target"], t[x], from_logits=from_logits)
        return _user_reduce(per, call)

    return build


def _alpha_off(call: Call) -> bool:
    """The case turned alpha weighting off: ``alpha: null``, or negative (torchvision's
    ``alpha=-1``)."""
    alpha = call.params.get("alpha")
    return call.is_set("alpha") and (alpha is None or float(alpha) < 0)


def _focal_kw(call: Call) -> dict[str, Any]:
    """alpha weighting (``alpha*t + (1-alpha)*(1-t)``) is ``apply_class_balancing=True`` in
    Keras, passed always but where the case turned it off; alpha and gamma exactly when
    the case set them (Keras's defaults, 0.25 and 2, are the registry's)."""
    kw: dict[str, Any] = {"from_logits": True, **call.kwargs(("alpha", "gamma"))}
    if _alpha_off(call):
        del kw["alpha"]
    else:
        kw["apply_class_balancing"] = True
    return kw


def _focal_fn(t: Tensors, call: Call):
    per = _k().losses.binary_focal_crossentropy(t["target"], t["logits"], **_focal_kw(call))
    return _user_reduce(per, call)


def _focal_cls(t: Tensors, call: Call):
    loss = _keras_loss("BinaryFocalCrossentropy", **_focal_kw(call), **_keras_reduction(call))
    return loss(t["target"], t["logits"])


# -------------------------------------------------------------------------------- KL


def _log_target(call: Call) -> bool:
    return bool(call.params.get("log_target", False))


def _kl_pair(t: Tensors, call: Call):
    """Keras takes probabilities: ``y_pred = exp(input)``; ``y_true = exp(target)`` for
    log-targets. The class axis is moved last: Keras sums over the last axis."""
    ops = _k().ops
    y_pred = ops.exp(_class_last(t["input"]))
    y_true = _class_last(t["target"])
    if _log_target(call):
        y_true = ops.exp(y_true)
    return y_true, y_pred


def _kl_fn(t: Tensors, call: Call):
    y_true, y_pred = _kl_pair(t, call)
    per = _k().losses.kl_divergence(y_true, y_pred)
    x = t["input"]
    return _user_reduce(per, call, batch=int(x.shape[0]) if _ndim(x) else 1)


def _kl_cls(t: Tensors, call: Call):
    y_true, y_pred = _kl_pair(t, call)
    return _keras_loss("KLDivergence", **_keras_reduction(call))(y_true, y_pred)


# ------------------------------------------------------------------------------ APIs


def softmax_ce_apis(make_api: MakeApi) -> list[Api]:
    loss = "softmax_cross_entropy"
    plain = lambda c: not _smoothing(c)  # noqa: E731
    kc = "keras.losses.CategoricalCrossentropy(from_logits=True)"
    ks = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    no_weight = lambda c: _integer(c) and plain(c) and not c.is_set("weight")  # noqa: E731
    return [
        make_api(
            "keras.losses.categorical_crossentropy(from_logits=True)",
            loss,
            _cce_fn(True, "logits"),
            _probability,
            "",
        ),
        make_api(kc, loss, _cce_cls(True, "logits"), _probability, ""),
        make_api(
            f"{kc}+one_hot(target)",
            loss,
            _cce_cls(True, "logits", one_hot=True),
            lambda c: _integer(c) and _smoothing(c),
            "class indices with label smoothing: the Keras recipe on one_hot(target)",
        ),
        make_api(
            "keras.losses.sparse_categorical_crossentropy(from_logits=True)",
            loss,
            _scce_fn(True, "logits"),
            no_weight,
            "",
        ),
        make_api(ks, loss, _scce_cls(True, "logits"), no_weight, ""),
        make_api(
            f"{ks}+sample_weight=weight[target]",
            loss,
            _scce_cls(True, "logits", class_weights=True),
            lambda c: _integer(c) and plain(c) and c.is_set("weight"),
            "class weights as Keras users pass them: sample_weight=gather(weight, target)",
        ),
        make_api(
            "keras.ops.categorical_crossentropy(from_logits=True)",
            loss,
            _ops_cce(True, "logits"),
            lambda c: _probability(c) and _bare(c),
            "",
        ),
        make_api(
            "keras.ops.sparse_categorical_crossentropy(from_logits=True)",
            loss,
            _ops_scce(True, "logits"),
            lambda c: _integer(c) and _bare(c),
            "",
        ),
    ]


def categorical_apis(make_api: MakeApi) -> list[Api]:
    loss = "categorical_cross_entropy"
    return [
        make_api(
            "keras.losses.categorical_crossentropy",
            loss,
            _cce_fn(False, "probs"),
            _probability,
            "",
        ),
        make_api(
            "keras.losses.CategoricalCrossentropy", loss, _cce_cls(False, "probs"), _probability, ""
        ),
        make_api(
            "keras.losses.sparse_categorical_crossentropy",
            loss,
            _scce_fn(False, "probs"),
            _integer,
            "",
        ),
        make_api(
            "keras.losses.SparseCategoricalCrossentropy",
            loss,
            _scce_cls(False, "probs"),
            _integer,
            "",
        ),
        make_api(
            "keras.ops.categorical_crossentropy", loss, _ops_cce(False, "probs"), _probability, ""
        ),
        make_api(
            "keras.ops.sparse_categorical_crossentropy",
            loss,
            _ops_scce(False, "probs"),
            _integer,
            "",
        ),
    ]


def binary_apis(make_api: MakeApi) -> list[Api]:
    bce, bcel = "binary_cross_entropy", "binary_cross_entropy_with_logits"
    return [
        make_api("keras.losses.binary_crossentropy", bce, _bce_fn(False, "probs"), None, ""),
        make_api("keras.losses.BinaryCrossentropy", bce, _bce_cls(False, "probs"), None, ""),
        make_api("keras.ops.binary_crossentropy", bce, _ops_bce(False, "probs"), _bare, ""),
        make_api(
            "keras.losses.binary_crossentropy(from_logits=True)",
            bcel,
            _bce_fn(True, "logits"),
            None,
            "",
        ),
        make_api(
            "keras.losses.BinaryCrossentropy(from_logits=True)",
            bcel,
            _bce_cls(True, "logits"),
            None,
            "",
        ),
        make_api(
            "keras.ops.binary_crossentropy(from_logits=True)",
            bcel,
            _ops_bce(True, "logits"),
            _bare,
            "",
        ),
        make_api(
            "keras.losses.binary_focal_crossentropy(from_logits=True,apply_class_balancing=True)",
            "sigmoid_focal_loss",
            _focal_fn,
            None,
            "",
        ),
        make_api(
            "keras.losses.BinaryFocalCrossentropy(from_logits=True,apply_class_balancing=True)",
            "sigmoid_focal_loss",
            _focal_cls,
            None,
            "",
        ),
    ]


def kl_apis(make_api: MakeApi) -> list[Api]:
    loss = "kl_divergence"
    plain = lambda c: not _log_target(c)  # noqa: E731
    fn, cls = "keras.losses.kl_divergence", "keras.losses.KLDivergence()"
    return [
        make_api(f"{fn}(target,exp(input))", loss, _kl_fn, plain, ""),
        make_api(f"{fn}(exp(target),exp(input))", loss, _kl_fn, _log_target, ""),
        make_api(f"{cls}(target,exp(input))", loss, _kl_cls, plain, ""),
        make_api(f"{cls}(exp(target),exp(input))", loss, _kl_cls, _log_target, ""),
    ]


def token_apis(make_api: MakeApi) -> list[Api]:
    return [
        make_api(TOKEN_KERAS, "token_cross_entropy", _token_keras, None, ""),
        make_api(f"keras.ops.exp({TOKEN_KERAS})", "perplexity", _perplexity, None, ""),
    ]


def activation_apis(make_api: MakeApi) -> list[Api]:
    lse_doc = f"axis always passed: {AXIS_DEFAULT_ALL}"
    rows = [
        ("keras.ops.softmax", "softmax", _ops("softmax"), True, False, ""),
        ("keras.activations.softmax", "softmax", _activations("softmax"), True, False, ""),
        ("keras.ops.log_softmax", "log_softmax", _ops("log_softmax"), True, False, ""),
        (
            "keras.activations.log_softmax",
            "log_softmax",
            _activations("log_softmax"),
            True,
            False,
            "",
        ),
        ("keras.ops.logsumexp", "logsumexp", _ops("logsumexp"), True, True, lse_doc),
        ("keras.ops.sigmoid", "sigmoid", _ops("sigmoid"), False, False, ""),
        ("keras.activations.sigmoid", "sigmoid", _activations("sigmoid"), False, False, ""),
        ("keras.ops.log_sigmoid", "log_sigmoid", _ops("log_sigmoid"), False, False, ""),
        (
            "keras.activations.log_sigmoid",
            "log_sigmoid",
            _activations("log_sigmoid"),
            False,
            False,
            "",
        ),
    ]
    return [
        make_api(name, loss, activation(fn, axis=ax, always=always), None, doc)
        for name, loss, fn, ax, always, doc in rows
    ]


_NO_NLL = (
    "Keras has no negative-log-likelihood loss on log-probabilities "
    "(sparse_categorical_crossentropy(from_logits=True) re-normalises its input)"
)


def keras_apis(make_api: MakeApi) -> list[Api]:
    """Every Keras row, each run through ``make_api``'s backend."""

    def no_nll(t: Tensors, call: Call):
        raise Unsupported(_NO_NLL)

    return [
        *softmax_ce_apis(make_api),
        *categorical_apis(make_api),
        make_api("(no NLL API in Keras)", "nll", no_nll, None, _NO_NLL),
        *binary_apis(make_api),
        *kl_apis(make_api),
        *token_apis(make_api),
        *activation_apis(make_api),
    ]


def keras_versions() -> dict[str, str]:
    keras = _k()
    return {"keras": keras.__version__, "keras_backend": keras.backend.backend()}
