"""Documented differences of tensorflow / keras (see :mod:`xentcheck.known`).

Each entry names the mechanism its source documents and checks, in its predicate, that
the finding is an instance of it: where the mechanism has a closed form (Keras averages
over the last axis, sums over the class axis, divides by the element count, computes in
float32, TensorFlow's softmax gradient assumes label rows summing to 1 ...) the predicate
recomputes what TensorFlow documents and asks the framework's output to match that model
at the dtype's tolerance; where it is a condition (a clipped probability, an out-of-range
label) it checks that the condition really holds. A difference an entry does not explain
stays a ``mismatch``.
"""

from __future__ import annotations

import re

import numpy as np

from xentcheck.accuracy import DEFAULT_TOLERANCE
from xentcheck.known import Finding, Known
from xentcheck.known.facts import (
    as_rows,
    class_axis,
    first_input,
    floats,
    integer_target,
    is_token_loss,
    kept,
    labels,
    new_nan,
    not_ignored,
    num_classes,
    out_of_range,
    rows,
    unmasked,
)
from xentcheck.reference import cotangent

# --------------------------------------------------------------------------- helpers

#: Keras' ``backend.epsilon()``, the clip bound of its probability losses
EPSILON = 1e-7

#: (rtol, atol) per dtype, torch.testing's table (as the harness uses), loosened twice
_TOL = {k: (2 * r, 2 * a) for k, (r, a) in DEFAULT_TOLERANCE.items()}

_KERAS_OBJECT = re.compile(r"keras\.losses\.[A-Z]")


def _keras_object(f: Finding) -> bool:
    """A Keras ``Loss`` object: it computes in ``keras.backend.floatx()`` (float32)."""
    return _KERAS_OBJECT.search(f.api) is not None


def _compute_dtype(f: Finding) -> str:
    return "float32" if _keras_object(f) and f.dtype == "float64" else f.dtype


def _close(actual, model, f: Finding) -> bool:
    """``actual`` matches ``model`` at the tolerance of the dtype TensorFlow computed in,
    with the same NaN/Inf pattern."""
    if actual is None or model is None:
        return False
    a, m = floats(actual), floats(model)
    if a.shape != m.shape:
        if a.size != m.size:
            return False
        m = m.reshape(a.shape)
    if not (
        np.array_equal(np.isnan(a), np.isnan(m))
        and np.array_equal(a == np.inf, m == np.inf)
        and np.array_equal(a == -np.inf, m == -np.inf)
    ):
        return False
    fin = np.isfinite(a)
    rtol, atol = _TOL[_compute_dtype(f)]
    scale = np.max(np.abs(m[fin]), initial=0.0)
    err = np.abs(a[fin] - m[fin])
    # cancelling gradient entries are judged against the largest entry's magnitude
    return bool(np.all(err <= atol + rtol * np.maximum(np.abs(m[fin]), 1e-3 * scale)))


def _reduction(f: Finding) -> str:
    return str(f.params.get("reduction", "mean"))


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        z = x - np.max(x, axis=-1, keepdims=True)
        e = np.exp(z)
        return e / np.sum(e, axis=-1, keepdims=True)


# ------------------------------------------------------------ Keras Loss objects: float32


def _float32_rounding(f: Finding) -> bool:
    """A float64 call whose result is float32 numbers within float32 accuracy."""
    if f.dtype != "float64" or f.actual is None or f.expected is None:
        return False
    a = floats(f.actual)
    fin = np.isfinite(a)
    if not np.array_equal(a[fin].astype(np.float32).astype(np.float64), a[fin]):
        return False
    return _close(a, f.expected, f)


# ----------------------------------------------------------------- clipped probabilities

_BINARY_PROB_APIS = (
    "keras.losses.binary_crossentropy",
    "keras.losses.BinaryCrossentropy",
    "keras.ops.binary_crossentropy",
)
_CATEGORICAL_PROB_APIS = (
    "keras.losses.categorical_crossentropy",
    "keras.losses.CategoricalCrossentropy",
    "keras.losses.sparse_categorical_crossentropy",
    "keras.losses.SparseCategoricalCrossentropy",
    "keras.ops.categorical_crossentropy",
    "keras.ops.sparse_categorical_crossentropy",
)
_FOCAL_APIS = ("keras.losses.binary_focal_crossentropy*", "keras.losses.BinaryFocalCrossentropy*")
_KL_APIS = ("keras.losses.kl_divergence*", "keras.losses.KLDivergence*")


def _outside(p: np.ndarray, lo: float, hi: float) -> bool:
    with np.errstate(invalid="ignore"):
        return bool(np.any((p < lo) | (p > hi)))


def _clipped(f: Finding) -> bool:
    """Some probability the API clips lies outside Keras' ``[epsilon, 1 - epsilon]``
    (``[epsilon, 1]`` for KL): the documented clip changes the value and zeroes the
    gradient there (``1 - 1e-7`` rounds to 1 in float16 and bfloat16, so nothing is
    clipped at the top there and ``log(1 - 1)`` is ``-inf``). Clipping changes numbers;
    it never raises: an exception is something else."""
    if f.error is not None:
        return False
    hi = 1.0 - EPSILON
    if f.loss == "binary_cross_entropy":
        return _outside(first_input(f), EPSILON, hi)
    if f.loss == "categorical_cross_entropy":
        if _outside(first_input(f), EPSILON, hi):
            return True
        p = rows(f)
        with np.errstate(all="ignore"):
            q = p / np.sum(p, axis=-1, keepdims=True)
        return _outside(q, EPSILON, hi)
    if f.loss == "sigmoid_focal_loss":
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-first_input(f)))
        return _outside(s, EPSILON, hi)
    if f.loss == "kl_divergence":
        with np.errstate(over="ignore"):
            y_pred = np.exp(first_input(f))
            t = floats(f.inputs["target"])
            y_true = np.exp(t) if f.params.get("log_target") else t
        return _outside(y_pred, EPSILON, 1.0) or _outside(y_true, EPSILON, 1.0)
    return False


# ------------------------------------------------- categorical: probabilities renormalised


def _renormalised(f: Finding) -> bool:
    """Keras divides ``probs`` by their sum over the class axis (``sparse_`` forms take
    ``log(probs)`` as logits, which does the same): the value is the reference's at
    ``probs / sum(probs)``, and the gradient gains ``sum(target) / sum(probs)`` in every
    class of a row (a per-row constant)."""
    if f.loss != "categorical_cross_entropy" or f.actual is None or f.expected is None:
        return False
    from xentcheck.reference import evaluate  # the reference is only needed here

    p = first_input(f)
    if _outside(p, 0.0, np.inf):
        return False
    if f.quantity == "value":
        with np.errstate(all="ignore"):
            s = np.sum(p, axis=class_axis(f), keepdims=True)
            q = p / s
        try:
            golden = evaluate(
                f.loss,
                {"probs": q, "target": f.inputs["target"]},
                {"reduction": _reduction(f)},
            )
        except ValueError:  # the reference rejects probs / sum(probs): no model to match
            return False
        return _close(f.actual, golden.value, f)
    if f.quantity not in ("grad:probs", "grad:target"):
        return False
    a, e = as_rows(f, f.actual), as_rows(f, f.expected)
    fin = np.all(np.isfinite(a - e), axis=-1)
    if not fin.any():
        return False
    a, e = a[fin], e[fin]
    # the actual gradient must be the reference's plus one constant per row, read off at
    # the row's smallest reference entry (where rounding disturbs it least)
    at = np.argmin(np.abs(e), axis=-1)
    offset = (a - e)[np.arange(a.shape[0]), at][:, None]
    return _close(a, e + offset, f)


# ------------------------------------------ softmax_cross_entropy_with_logits: label rows


def _labels_must_sum_to_one(f: Finding) -> bool:
    """TensorFlow's kernel returns ``softmax - labels`` as the logits gradient, which is
    the gradient only when each label row sums to 1; the reference's is
    ``sum(labels) * softmax - labels``. The predicate rebuilds TensorFlow's gradient."""
    if f.quantity != "grad:logits" or integer_target(f) or f.actual is None:
        return False
    if f.expected is None or f.inputs.get("target") is None:
        return False
    x = rows(f)
    y = as_rows(f, f.inputs["target"])
    classes = x.shape[-1]
    ls = float(f.params.get("label_smoothing") or 0.0)
    y = (1.0 - ls) * y + ls / classes
    with np.errstate(all="ignore"):
        w = np.sum(y, axis=-1)
    reduction = _reduction(f)
    if reduction == "none":
        u = cotangent((x.shape[0],))
    elif reduction == "mean":
        u = np.full(x.shape[0], 1.0 / max(x.shape[0], 1))
    else:
        u = np.ones(x.shape[0])
    p = _softmax_rows(x)
    with np.errstate(all="ignore"):
        model = as_rows(f, f.expected) - ((w - 1.0) * u)[:, None] * p
    actual = as_rows(f, f.actual)
    # rows whose label sum is not finite have no meaningful reference gradient to rebuild
    odd = ~np.isfinite(w)
    model[odd] = actual[odd]
    if np.all(np.abs(w[~odd] - 1.0) == 0.0) and not odd.any():
        return False
    return _close(actual, model, f)


# ---------------------------------------------------------------- tf.where NaN gradients


def _where_nan_gradient(f: Finding) -> bool:
    """NaN logits gradients only in rows the recipe drops with ``tf.where``, whose logits
    are not finite: the dropped branch's NaN gradient still flows through ``tf.where``."""
    if f.quantity != "grad:logits" or f.actual is None or f.expected is None:
        return False
    a, e = as_rows(f, f.actual), as_rows(f, f.expected)
    nan_rows = np.any(as_rows(f, new_nan(f)), axis=-1)
    if not nan_rows.any():
        return False
    dropped = ~kept(f)
    bad_logits = ~np.all(np.isfinite(rows(f)), axis=-1)
    if not np.all(dropped[nan_rows] & bad_logits[nan_rows]):
        return False
    ok = ~nan_rows
    return _close(a[ok], e[ok], f)


# --------------------------------------------------- Keras binary losses: last-axis mean


def _binary_mean_over_last_axis(f: Finding) -> bool:
    """Keras' binary losses return ``mean(elementwise, axis=-1)`` per sample: with
    ``none`` that is the value, with ``sum`` the sum is divided by the last axis' length.
    A last axis of length 1 changes no number, so it explains nothing."""
    x = first_input(f)
    if x.ndim == 0 or x.shape[-1] <= 1 or f.expected is None:
        return False
    reduction = _reduction(f)
    e = floats(f.expected)
    if reduction == "none" and f.quantity == "value":
        with np.errstate(all="ignore"):
            return _close(f.actual, np.mean(e, axis=-1), f)
    if reduction == "sum":
        return _close(f.actual, e / x.shape[-1], f)
    return False


# ------------------------------------------------------- Keras KL: sum over class axis


def _kl_sum_over_class_axis(f: Finding) -> bool:
    """Keras' KL returns ``sum(y_true * log(y_true / y_pred), axis=-1)`` per sample (the
    class axis, moved last): ``none`` gives those sums and the mean divides by the number
    of samples (``size / C``), PyTorch's ``batchmean`` for 2-D inputs."""
    x = first_input(f)
    if x.ndim == 0 or f.expected is None:
        return False
    classes = num_classes(f)
    e = floats(f.expected)
    reduction = _reduction(f)
    if reduction == "none":
        if f.quantity != "value" or e.shape != x.shape:
            return False
        return _close(f.actual, np.sum(np.moveaxis(e, class_axis(f), -1), axis=-1), f)
    keras_den = x.size / classes if classes else 0.0
    if reduction == "mean":
        ref_den = x.size
    elif reduction == "batchmean":
        ref_den = x.shape[0]
        if not _keras_object(f):
            return False  # the functional recipe divides by the batch size itself
        if x.ndim == 1:
            keras_den = 1.0
    else:
        return False
    if keras_den == 0:
        return False
    return _close(f.actual, e * (ref_den / keras_den), f)


# ------------------------------------------- Keras mean: element count, not weight sum


def _keras_mean_denominator(f: Finding) -> bool:
    """Keras' default reduction (``sum_over_batch_size``) divides the weighted sum by the
    number of elements (the unmasked ones when ``ignore_class`` masks some), not by the
    sum of the sample weights as PyTorch's weighted mean and the token-loss mean do."""
    if f.expected is None or f.actual is None:
        return False
    if is_token_loss(f):
        ref_den = float(np.sum(kept(f)))  # the mask's weights of the unignored labels
    elif f.loss == "softmax_cross_entropy" and _reduction(f) == "mean":
        if f.inputs.get("weight") is None:
            return False
        t, counted = labels(f), not_ignored(f)
        ref_den = float(np.sum(floats(f.inputs["weight"])[np.where(counted, t, 0)][counted]))
    else:
        return False
    keras_den = float(np.sum(not_ignored(f)))
    if ref_den == 0 or keras_den == 0 or ref_den == keras_den:
        return False
    r = ref_den / keras_den
    e = floats(f.expected)
    if f.loss != "perplexity":
        return _close(f.actual, e * r, f)
    from xentcheck.reference import evaluate

    m = float(evaluate("token_cross_entropy", dict(f.inputs), dict(f.params)).value)
    if f.quantity == "value":
        return _close(f.actual, np.exp(m * r), f)
    return _close(f.actual, e * r * np.exp((r - 1.0) * m), f)


# -------------------------------------------------------------- out-of-range class indices


def _one_hot_of_bad_label(f: Finding) -> bool:
    """``tf.one_hot`` maps an index outside ``[0, depth)`` to a row of zeros (documented),
    so the recipe returns a number where the reference rejects the label."""
    if not (f.expect_error and f.actual is not None and integer_target(f)):
        return False
    return bool(out_of_range(f).any())


def _label_checked_where_masked(f: Finding) -> bool:
    """The sparse kernel rejects every label outside ``[0, V)`` on the CPU, also at
    positions a zero ``sample_weight`` masks out (the reference skips those)."""
    if f.error is None or "outside the valid range" not in f.error or f.expected is None:
        return False
    bad = out_of_range(f) & not_ignored(f)
    if f.inputs.get("mask") is None or not bad.any():
        return False
    return not bool(unmasked(f)[bad].any())


# ------------------------------------------ Keras binary losses: no or empty last axis


def _binary_empty_last_axis(f: Finding) -> bool:
    """The last-axis mean of an input whose last axis is empty: reduction none gives the
    shape without that axis, all NaN (the mean of nothing), where the reference's
    element-wise result is empty."""
    x = first_input(f)
    if x.ndim == 0 or x.shape[-1] != 0 or f.quantity != "value" or f.actual is None:
        return False
    if _reduction(f) != "none":
        return False
    a = floats(f.actual)
    return a.shape == x.shape[:-1] and bool(np.all(np.isnan(a)))


#: what the backends say when asked to reduce axis -1 of a 0-d tensor
_NO_AXIS = re.compile(r"reduction dimension|out of bounds|out of range", re.IGNORECASE)


def _binary_scalar_input(f: Finding) -> bool:
    """A 0-d input has no last axis to average: Keras raises where the reference's
    element-wise loss takes the single element."""
    if f.actual is not None or f.error is None or first_input(f).ndim != 0:
        return False
    return _NO_AXIS.search(f.error) is not None


# ------------------------------------------------------------------------------- entries

_KERAS_LOSS_DOC = "https://www.tensorflow.org/api_docs/python/tf/keras/Loss"

ENTRIES: list[Known] = [
    Known(
        id="keras-loss-object-computes-in-floatx",
        framework="tensorflow",
        apis=("keras.losses.[A-Z]*", "keras.ops.exp(keras.losses.[A-Z]*"),
        explanation=(
            "Keras Loss objects cast y_true/y_pred to their dtype, keras.backend.floatx() "
            "(float32) unless dtype= is passed, so a float64 call is computed in float32."
        ),
        link=_KERAS_LOSS_DOC,
        when=_float32_rounding,
        statuses=("mismatch",),
        # Keras 3's Loss(name, reduction, dtype=None) casts to floatx; Keras 2's
        # Loss(reduction, name) had no dtype and computed in y_pred's dtype (tf.keras
        # docs up to TF 2.15, keras/losses.py v2.14)
        versions="keras>=3",
    ),
    Known(
        id="keras-probabilities-clipped-to-epsilon",
        framework="tensorflow",
        apis=(*_BINARY_PROB_APIS, *_CATEGORICAL_PROB_APIS, *_FOCAL_APIS, *_KL_APIS),
        explanation=(
            "Keras clips probabilities to [epsilon, 1 - epsilon] (epsilon = 1e-7; [1e-7, 1] "
            "for both KL arguments) before the log: values change and gradients vanish "
            "there, out-of-range probabilities are accepted, and 1 - 1e-7 rounds to 1 in "
            "float16/bfloat16."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/keras/losses/KLD",
        when=_clipped,
    ),
    Known(
        id="keras-categorical-renormalises-probabilities",
        framework="tensorflow",
        apis=_CATEGORICAL_PROB_APIS,
        explanation=(
            "Keras divides probs by their sum over the class axis before the log "
            "(sparse_ forms take log(probs) as logits, the same thing): the value is the "
            "loss of probs/sum(probs), and the gradient gains sum(target)/sum(probs) in "
            "every class even for rows that already sum to 1."
        ),
        link="https://github.com/keras-team/tf-keras/issues/47",
        when=_renormalised,
    ),
    Known(
        id="tf-softmax-xent-gradient-assumes-normalised-labels",
        framework="tensorflow",
        apis=(
            "tf.nn.softmax_cross_entropy_with_logits*",
            "keras.losses.categorical_crossentropy(from_logits=True)",
            "keras.losses.CategoricalCrossentropy(from_logits=True)*",
            "keras.ops.categorical_crossentropy(from_logits=True)",
        ),
        explanation=(
            "The SoftmaxCrossEntropyWithLogits kernel requires each label row to be a "
            "probability distribution and returns softmax - labels as the logits gradient; "
            "for rows not summing exactly to 1 (dtype-rounded soft targets included) the "
            "true gradient is sum(labels) * softmax - labels."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/raw_ops/SoftmaxCrossEntropyWithLogits",
        when=_labels_must_sum_to_one,
    ),
    Known(
        id="tf-where-propagates-nan-gradients",
        framework="tensorflow",
        apis=(
            "tf.nn.sparse_softmax_cross_entropy_with_logits+*",
            "tf.exp(tf.nn.sparse_softmax_cross_entropy_with_logits+*",
        ),
        explanation=(
            "Dropping ignored/masked positions with tf.where keeps the value finite, but the "
            "NaN gradient of the dropped branch (non-finite logits there) still flows "
            "through tf.where."
        ),
        link="https://github.com/tensorflow/tensorflow/issues/20091",
        when=_where_nan_gradient,
        statuses=("nonfinite",),
    ),
    Known(
        id="keras-binary-losses-average-the-last-axis",
        framework="tensorflow",
        apis=(
            "keras.losses.binary_crossentropy*",
            "keras.losses.BinaryCrossentropy*",
            *_FOCAL_APIS,
        ),
        explanation=(
            "Keras' binary losses return the mean over the last axis per sample "
            "(shape [batch, d0, .. dN-1]): reduction none is not element-wise and sum is "
            "the sum of those means."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/keras/losses/binary_crossentropy",
        when=_binary_mean_over_last_axis,
    ),
    Known(
        id="keras-kl-sums-over-the-class-axis",
        framework="tensorflow",
        apis=_KL_APIS,
        explanation=(
            "Keras' KL divergence sums y_true * log(y_true / y_pred) over the last (class) "
            "axis per sample: none gives per-sample sums and the mean divides by the number "
            "of samples (PyTorch's batchmean), not by the element count."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/keras/losses/KLD",
        when=_kl_sum_over_class_axis,
    ),
    Known(
        id="keras-mean-divides-by-element-count",
        framework="tensorflow",
        apis=("*+sample_weight=weight[[]target]", "*+sample_weight=mask*"),
        explanation=(
            "Keras' default reduction sum_over_batch_size divides the weighted sum by the "
            "number of elements (unmasked ones with ignore_class), not by the sum of the "
            "sample weights; mean_with_sample_weight would."
        ),
        link=_KERAS_LOSS_DOC,
        when=_keras_mean_denominator,
    ),
    Known(
        id="tf-one-hot-zero-row-for-bad-label",
        framework="tensorflow",
        apis=("*one_hot*",),
        explanation=(
            "tf.one_hot turns an index outside [0, depth) into a row of zeros, so the "
            "one_hot recipe returns a loss where the label should be rejected."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/one_hot",
        when=_one_hot_of_bad_label,
        statuses=("error",),
    ),
    Known(
        id="tf-sparse-xent-checks-masked-labels",
        framework="tensorflow",
        apis=("*+sample_weight=mask*",),
        explanation=(
            "The sparse softmax kernel raises on the CPU for any label outside "
            "[0, num_classes), also at positions that sample_weight=mask zeroes out."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits",
        when=_label_checked_where_masked,
        statuses=("error",),
    ),
    Known(
        id="keras-binary-losses-empty-last-axis",
        framework="tensorflow",
        apis=(
            "keras.losses.binary_crossentropy*",
            "keras.losses.BinaryCrossentropy*",
            *_FOCAL_APIS,
        ),
        explanation=(
            "Keras' binary losses average the last axis per sample (shape [batch, d0, .. "
            "dN-1]): with an empty last axis, reduction none gives that shape filled with "
            "NaN (the mean of nothing) instead of an empty element-wise result."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/keras/losses/binary_crossentropy",
        when=_binary_empty_last_axis,
        statuses=("mismatch",),
    ),
    Known(
        id="keras-binary-losses-need-a-last-axis",
        framework="tensorflow",
        apis=(
            "keras.losses.binary_crossentropy*",
            "keras.losses.BinaryCrossentropy*",
            *_FOCAL_APIS,
        ),
        explanation=(
            "Keras' binary losses average the last axis per sample (y_true of shape "
            "[batch, d0, .. dN]): a 0-d input has no axis -1 to reduce and raises, where "
            "the reference's element-wise loss takes the single element."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/keras/losses/binary_crossentropy",
        when=_binary_scalar_input,
        statuses=("error",),
    ),
]
