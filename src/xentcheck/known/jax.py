"""Documented differences of jax / optax (see :mod:`xentcheck.known`).

Every entry names the mechanism its source documents and checks, in its predicate, that
the finding is an instance of that mechanism (the labels really are out of range, the
row really holds ``+inf``, the error really is within the rounding of the logits'
magnitude ...), so a difference the entry does not explain stays a ``mismatch``.
"""

from __future__ import annotations

import numpy as np

from xentcheck.accuracy import agrees, disagreeing
from xentcheck.dtypes import numpy_dtype, ulp
from xentcheck.known import Finding, Known
from xentcheck.known.facts import (
    AXIS_LOSSES,
    as_rows,
    class_axis,
    first_input,
    first_input_name,
    floats,
    from_rows,
    has_nan,
    integer_target,
    is_token_loss,
    kept,
    labels,
    new_nan,
    new_nan_only_where,
    num_classes,
    out_of_range,
    rejected_labels,
    rows,
    tolerance,
)
from xentcheck.reference import LOSSES, cotangent, evaluate

# --------------------------------------------------------------------------- helpers

#: APIs that read class indices through a gather (``take_along_axis``)
_GATHER_APIS = (
    "optax.losses.softmax_cross_entropy_with_integer_labels*",
    "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels*",
    "-jnp.take_along_axis*",
)

#: APIs whose value is optax's ``logsumexp(z) - z[target]``
_LSE_APIS = (
    "optax.losses.softmax_cross_entropy_with_integer_labels*",
    "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels*",
)

# --------------------------------------------------------------------------- labels


def _oob_nan(f: Finding) -> bool:
    """Reference rejected an out-of-range label and JAX returned NaN for it."""
    if f.expected is not None or f.actual is None or not integer_target(f):
        return False
    bad, classes = rejected_labels(f), num_classes(f)
    far = (bad >= classes) | (bad < -classes)
    return bad.size > 0 and bool(far.any()) and has_nan(f.actual)


def _negative_wraps(f: Finding) -> bool:
    """Every rejected label lies in ``[-C, 0)``: read from the end of the class axis."""
    if f.expected is not None or f.actual is None or not integer_target(f):
        return False
    bad, classes = rejected_labels(f), num_classes(f)
    return bad.size > 0 and bool(np.all((bad < 0) & (bad >= -classes))) and not has_nan(f.actual)


def _one_hot_zero_row(f: Finding) -> bool:
    """A rejected label became an all-zero one-hot row: a finite loss."""
    if f.expected is not None or f.actual is None or not integer_target(f):
        return False
    return rejected_labels(f).size > 0 and bool(np.all(np.isfinite(f.actual)))


# --------------------------------------------------------------------------- log-normaliser


def _lse_cancellation(f: Finding) -> bool:
    """The value error is within a few ULPs (in the dtype) of the logits' magnitude.

    optax forms ``logsumexp(z) - z[target]`` from the unshifted logits, so both terms are
    rounded at the scale of ``max |z|`` of the row before they cancel.
    """
    if f.quantity != "value" or f.expected is None or f.actual is None:
        return False
    if not integer_target(f) or f.params.get("label_smoothing"):
        return False
    z = rows(f)
    if not np.all(np.isfinite(z)):
        return False
    exp, act = floats(f.expected), floats(f.actual)
    if exp.shape != act.shape or not (np.all(np.isfinite(exp)) and np.all(np.isfinite(act))):
        return False
    t = np.clip(labels(f), 0, z.shape[1] - 1)
    keep = kept(f)
    w = np.ones(t.shape)
    if f.inputs.get("weight") is not None:
        w = floats(f.inputs["weight"])[t]
    w = np.where(keep, np.abs(w), 0.0)
    scale = np.max(np.abs(z), axis=1) + np.log(z.shape[1])
    per_row = 4.0 * w * ulp(scale, f.dtype)  # the log-normaliser's and z_t's rounding
    err = np.abs(act - exp)
    slack = 2.0 * ulp(exp, f.dtype)
    if is_token_loss(f) or f.params.get("reduction") == "mean":
        denom = np.sum(w) if np.sum(w) > 0 else 1.0
        bound = np.sum(per_row) / denom
        if f.loss == "perplexity":
            bound = bound * np.abs(exp) * 1.5  # exp(x + d) - exp(x) ~ exp(x) d
        return bool(np.all(err <= bound + keep.size * slack))
    if f.params.get("reduction") == "sum":
        return bool(np.all(err <= np.sum(per_row) + keep.size * slack))
    return bool(np.all(err.ravel() <= per_row + slack.ravel()))


# --------------------------------------------------------------------------- non-finite logits


def _row_mask(f: Finding, per_row: np.ndarray) -> np.ndarray | None:
    """Broadcast a per-row boolean over the quantity's shape (None: cannot localise)."""
    if f.actual is None:
        return None
    shape = np.shape(f.actual)
    if f.loss in AXIS_LOSSES:
        return None  # rows are along a swept axis; judged by value, below
    if shape == np.shape(f.inputs[first_input_name(f)]):  # a gradient of the first input
        return from_rows(f, np.repeat(per_row, num_classes(f)))
    if int(np.prod(shape)) == per_row.size:  # one value per row (reduction none)
        return per_row.reshape(shape)
    return None


def _plus_inf_nan(f: Finding) -> bool:
    """NaN (where the reference takes the limit) only in rows holding a ``+inf`` logit."""
    if f.expected is None or f.actual is None:
        return False
    if f.loss in AXIS_LOSSES:
        x, act = first_input(f), floats(f.actual)
        inf_rows = np.any(x == np.inf, axis=class_axis(f), keepdims=f.loss != "logsumexp")
        if f.quantity == "value" and f.loss == "logsumexp":  # exactly the reference elsewhere
            diff = disagreeing(f.expected, f.actual, rtol=0.0, atol=0.0)
            return diff is not None and bool(np.any(inf_rows)) and bool(np.all(~diff | inf_rows))
        inf_slices = np.broadcast_to(inf_rows, act.shape)
        diff = disagreeing(f.expected, f.actual, rtol=1e-2, atol=1e-6)
        if diff is None:
            return False
        return bool(np.any(inf_slices)) and bool(np.all(~diff | (inf_slices & np.isnan(act))))
    return _new_nan_only_in_rows(f, np.any(rows(f) == np.inf, axis=1))


def _neg_inf_zero_label(f: Finding) -> bool:
    """``0 * log_softmax(-inf) = 0 * -inf = NaN``: rows with a -inf logit of zero target."""
    if f.expected is None or f.actual is None or integer_target(f):
        return False
    z = rows(f)
    y = f.inputs.get("target")
    if y is None:
        return False
    return _new_nan_only_in_rows(f, np.any((z == -np.inf) & (as_rows(f, y) == 0), axis=1))


def _new_nan_only_in_rows(f: Finding, flagged: np.ndarray) -> bool:
    """NaN where the reference has none, only in the rows ``flagged`` (one flag per row
    of the first input); for a reduced value, NaN because some row is flagged."""
    if not flagged.any() or not has_nan(f.actual):
        return False
    nan = new_nan(f)
    mask = _row_mask(f, flagged)
    if mask is None:  # a reduced value
        return bool(nan.all())
    return bool(np.all(~nan | mask))


# --------------------------------------------------------------------------- focal, KL


def _tolerance(f: Finding, scale) -> np.ndarray:
    """A few ULPs of ``scale`` in the dtype under test (float64 arithmetic slack)."""
    return 8.0 * ulp(np.abs(np.asarray(scale, dtype=np.float64)), f.dtype) + 1e-12


def _lse_b_zero(f: Finding) -> bool:
    """The wrong target gradient sits only where a target is exactly 0 or 1 (gamma > 0)."""
    if f.quantity != "grad:target" or f.expected is None or f.actual is None:
        return False
    if float(f.params.get("gamma", 2.0)) == 0.0:
        return False
    y, act, exp = floats(f.inputs["target"]), floats(f.actual), floats(f.expected)
    if act.shape != y.shape or exp.shape != y.shape:
        return False
    # relative only: the wrong gradients at y in {0, 1} can be tiny (1e-20 at a confident
    # logit), and an absolute floor would call them right
    slack = 8.0 * ulp(np.abs(exp), f.dtype) + 1e-3 * np.abs(exp)
    off = ~(np.abs(act - exp) <= slack)
    off &= ~(np.isnan(act) & np.isnan(exp))
    return bool(off.any()) and bool(np.all(~off | (y == 0) | (y == 1)))


def _kl_zero_target_grad_nan(f: Finding) -> bool:
    """NaN target gradient only where the target probability is exactly 0."""
    if f.quantity != "grad:target" or f.expected is None or f.actual is None:
        return False
    if f.params.get("log_target"):
        return False
    y, act, exp = floats(f.inputs["target"]), floats(f.actual), floats(f.expected)
    if act.shape != y.shape:
        return False
    if f.api.startswith("optax.losses.generalized_kl_divergence"):
        exp = exp - _kl_scale(f, y.shape)  # its extra term's d/d(target)
    nan = np.isnan(act) & ~np.isnan(exp)
    rest = ~nan & ~(np.isnan(act) & np.isnan(exp))
    close = np.abs(act - exp) <= _tolerance(f, exp) + 1e-2 * np.abs(exp)
    close |= act == exp  # matching infinities
    return bool(nan.any()) and bool(np.all(~nan | (y == 0))) and bool(np.all(close[rest]))


def _kl_scale(f: Finding, shape: tuple[int, ...]):
    """The cotangent each element's term is weighted by in the reduced value."""
    reduction = f.params.get("reduction")
    if reduction == "none":
        return cotangent(shape)
    if reduction == "mean":
        return 1.0 / max(int(np.prod(shape)), 1)
    if reduction == "batchmean":
        return 1.0 / (shape[0] if shape else 1)
    return 1.0


def _generalized_kl_extra(f: Finding) -> bool:
    """The difference is exactly the generalized-KL term ``exp(input) - target``."""
    if f.expected is None or f.actual is None or f.params.get("log_target"):
        return False
    q, y = floats(f.inputs["input"]), floats(f.inputs["target"])
    c = _kl_scale(f, q.shape)
    with np.errstate(all="ignore"):
        if f.quantity == "value":
            extra = np.exp(q) - y
            if f.params.get("reduction") != "none":
                extra = np.sum(extra) * c
        elif f.quantity == "grad:input":
            extra = np.exp(q) * c
        elif f.quantity == "grad:target":
            extra = -np.ones_like(y) * c
        else:
            return False
        act, exp = floats(f.actual), floats(f.expected)
        want = exp + extra
        if act.shape != want.shape:
            return False
        finite = np.isfinite(want) & np.isfinite(act)
        same = (act == want) | (np.isnan(act) & np.isnan(want))
        size = np.abs(want) + np.abs(extra) + np.abs(exp)
        close = np.abs(act - want) <= _tolerance(f, size) * 4
    return bool(np.all(same | (finite & close)))


def _kl_zero_times_inf(f: Finding) -> bool:
    """NaN only from ``0 * inf`` terms: target 0 at input -inf, or log target -inf."""
    if f.expected is None or f.actual is None:
        return False
    q, t = floats(f.inputs["input"]), floats(f.inputs["target"])
    at = (t == -np.inf) if f.params.get("log_target") else (t == 0) & (q == -np.inf)
    if not at.any():
        return False
    nan = new_nan(f)
    if not nan.any():
        return False
    if np.shape(f.actual) == at.shape:
        return bool(np.all(~nan | at))
    return bool(np.all(nan))  # a reduced value


# --------------------------------------------------------------------------- element-wise NaNs


def _xlogy_zero_zero(f: Finding) -> bool:
    """NaN gradients only where xlogy(0, 0) or xlog1py(0, -1) is differentiated."""
    if not f.quantity.startswith("grad:"):
        return False
    p, y = floats(f.inputs["probs"]), floats(f.inputs["target"])
    if y.shape != p.shape:
        return False
    at = (y == 0) & (p == 0)
    if f.loss == "binary_cross_entropy":
        at |= (y == 1) & (p == 1)
    return new_nan_only_where(f, at)


def _log_zero_gather(f: Finding) -> bool:
    """NaN probability gradients only at zero probabilities off the target class."""
    if f.quantity != "grad:probs" or not integer_target(f):
        return False
    t, p = labels(f), rows(f)
    off = np.ones(p.shape, dtype=bool)
    ok = ~out_of_range(f)
    off[np.arange(p.shape[0])[ok], t[ok]] = False
    return new_nan_only_where(f, from_rows(f, (p == 0) & off))


def _infinite_logit_nan(f: Finding) -> bool:
    """NaN only at elements whose logit is +-inf (``0 * inf`` in the BCE formula)."""
    x = floats(f.inputs["logits"])
    if f.actual is None or f.expected is None:
        return False
    if np.shape(f.actual) == x.shape:
        return new_nan_only_where(f, np.isinf(x))
    return bool(np.isinf(x).any()) and bool(np.all(new_nan(f)))


def _invalid_probability_nan(f: Finding) -> bool:
    """The reference rejected probabilities outside [0, 1]; JAX computed NaN there."""
    if f.expected is not None or f.actual is None:
        return False
    p = floats(f.inputs.get("probs"))
    bad = (p < 0) | (p > 1)
    return bool(bad.any()) and has_nan(f.actual)


# --------------------------------------------------------------------------- subnormals


def _flush_to_zero(f: Finding) -> bool:
    """The reference on the inputs with subnormals flushed to zero matches the output.

    XLA's CPU runtime treats subnormal inputs and results as zero (denormals-are-zero /
    flush-to-zero) in float64, float32 and bfloat16 (float16 is computed in float32,
    where its subnormals are normal numbers).
    """
    if f.device != "cpu" or f.dtype not in ("float64", "float32", "bfloat16"):
        return False
    if f.expected is None or f.actual is None:
        return False
    tiny = float(np.finfo(np.float32 if f.dtype == "bfloat16" else numpy_dtype(f.dtype)).tiny)
    spec = LOSSES[f.loss]
    flushed, any_sub = {}, False
    for name, a in f.inputs.items():
        a = np.asarray(a)
        if spec.input(name).kind in ("labels", "mask") or a.dtype.kind != "f":
            flushed[name] = a
            continue
        sub = (a != 0) & (np.abs(a) < tiny)
        any_sub |= bool(sub.any())
        flushed[name] = np.where(sub, np.copysign(0.0, a), a)
    if not any_sub:
        return False
    try:
        golden = evaluate(f.loss, flushed, {k: v for k, v in f.params.items() if k in spec.params})
    except ValueError:
        return False
    want = golden.value if f.quantity == "value" else golden.grads.get(f.quantity[5:])
    if want is None:
        return False
    return agrees(want, f.actual, *tolerance(f))


# --------------------------------------------------------------------------- the entries

ENTRIES: list[Known] = [
    Known(
        id="jax-out-of-range-label-nan",
        framework="jax",
        apis=_GATHER_APIS,
        explanation=(
            "JAX cannot raise on out-of-range class indices: the label gather "
            "(take_along_axis, mode='fill') reads NaN, so the loss is NaN instead of an error."
        ),
        link="https://github.com/google-deepmind/optax/issues/1185",
        when=_oob_nan,
        statuses=("error",),
    ),
    Known(
        id="jax-negative-label-wraps",
        framework="jax",
        apis=_GATHER_APIS,
        explanation=(
            "A negative class index in [-C, 0) is taken from the end of the class axis "
            "(NumPy-style negative indexing), so label -1 silently means class C-1."
        ),
        link="https://docs.jax.dev/en/latest/_autosummary/jax.Array.at.html",
        when=_negative_wraps,
        statuses=("error",),
    ),
    Known(
        id="jax-one-hot-out-of-range-zeros",
        framework="jax",
        apis=("optax.losses.softmax_cross_entropy+one_hot+smooth_labels*",),
        explanation=(
            "jax.nn.one_hot encodes an out-of-range index as an all-zero row, so the "
            "smoothed-label loss is finite (only the smoothing term) instead of an error."
        ),
        link="https://docs.jax.dev/en/latest/_autosummary/jax.nn.one_hot.html",
        when=_one_hot_zero_row,
        statuses=("error",),
    ),
    Known(
        id="optax-integer-labels-low-precision-log-normalizer",
        framework="jax",
        apis=_LSE_APIS,
        explanation=(
            "softmax_cross_entropy_with_integer_labels returns logsumexp(z) - z[target] in "
            "the logits' dtype: in float16/bfloat16 the log-normaliser is rounded at the "
            "scale of max|z| before the subtraction, so the loss is quantised to that ULP."
        ),
        link="https://github.com/google-deepmind/optax/issues/1020",
        when=lambda f: f.dtype in ("float16", "bfloat16") and _lse_cancellation(f),
        statuses=("mismatch",),
    ),
    Known(
        id="optax-integer-labels-unshifted-log-normalizer",
        framework="jax",
        apis=_LSE_APIS,
        explanation=(
            "softmax_cross_entropy_with_integer_labels subtracts z[target] from "
            "logsumexp(z) without first shifting the logits by their maximum, so a large "
            "common offset cancels the loss (equal logits of 1e30 give 0, not log C)."
        ),
        link="https://github.com/google-deepmind/optax/pull/1792",
        when=lambda f: f.dtype in ("float64", "float32") and _lse_cancellation(f),
        statuses=("mismatch",),
    ),
    Known(
        id="jax-plus-inf-logit-nan",
        framework="jax",
        apis=(
            "optax.losses.softmax_cross_entropy*",
            "optax.losses.safe_softmax_cross_entropy*",
            "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels*",
            "jax.nn.softmax",
            "jax.nn.log_softmax",
        ),
        explanation=(
            "JAX's softmax family is documented to give NaN for a slice holding +inf "
            "(inf / inf), where the reference takes the limit of the logit growing."
        ),
        link="https://docs.jax.dev/en/latest/_autosummary/jax.nn.log_softmax.html",
        when=_plus_inf_nan,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="optax-softmax-ce-neg-inf-logit-zero-label",
        framework="jax",
        apis=("optax.losses.softmax_cross_entropy*",),
        explanation=(
            "optax.losses.softmax_cross_entropy multiplies labels by log_softmax, so a "
            "-inf logit with label 0 gives 0 * -inf = NaN (safe_softmax_cross_entropy "
            "is the documented alternative)."
        ),
        link="https://github.com/google-deepmind/optax/issues/896",
        when=_neg_inf_zero_label,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="jax-logsumexp-b-zero-jacobian",
        framework="jax",
        apis=("optax.losses.sigmoid_focal_loss*",),
        explanation=(
            "optax's focal weight is logsumexp(..., b=[1 - y, y]); JAX's logsumexp drops "
            "the derivative in b where b == 0, so d(loss)/d(target) is wrong at targets "
            "exactly 0 or 1."
        ),
        link="https://github.com/jax-ml/jax/issues/22398",
        when=_lse_b_zero,
        statuses=("mismatch", "nonfinite"),
    ),
    Known(
        id="optax-kl-zero-target-nan-grad",
        framework="jax",
        apis=("optax.losses.kl_divergence*", "optax.losses.generalized_kl_divergence*"),
        explanation=(
            "optax guards log(target) with jnp.where(target == 0, 0, log(target)), but the "
            "untaken branch is still differentiated: d/d(target) is NaN where target == 0."
        ),
        link="https://github.com/google-deepmind/optax/pull/1786",
        when=_kl_zero_target_grad_nan,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="optax-kl-zero-times-inf-nan",
        framework="jax",
        apis=(
            "optax.losses.kl_divergence*",
            "optax.losses.kl_divergence_with_log_targets*",
            "optax.losses.generalized_kl_divergence*",
        ),
        explanation=(
            "optax forms target * (log target - input) and exp(log_target) * (...) "
            "without masking: a zero target at input = -inf, or a log target of -inf, "
            "gives 0 * inf = NaN where the term is 0."
        ),
        link="https://github.com/google-deepmind/optax/pull/1786",
        when=_kl_zero_times_inf,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="jax-no-runtime-value-checks",
        framework="jax",
        apis=("-(jax.scipy.special.xlogy+xlog1py)*", "-jnp.sum(jax.scipy.special.xlogy*"),
        explanation=(
            "XLA has no runtime error mechanism, so a probability outside [0, 1] is not "
            "rejected: log of a negative number gives NaN instead of an error."
        ),
        link="https://github.com/google-deepmind/optax/issues/1185",
        when=_invalid_probability_nan,
        statuses=("error",),
    ),
    Known(
        id="jax-xlogy-custom-jvp-nan",
        framework="jax",
        apis=("-(jax.scipy.special.xlogy+xlog1py)*", "-jnp.sum(jax.scipy.special.xlogy*"),
        explanation=(
            "jax.scipy.special.xlogy / xlog1py return 0 at (0, 0) / (0, -1), but their "
            "custom JVP forms x / y there: the gradient is 0/0 = NaN at a zero target on a "
            "zero probability (or a one target on a one probability)."
        ),
        link="https://github.com/jax-ml/jax/issues/15709",
        when=_xlogy_zero_zero,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="jax-nan-gradient-of-unused-log-zero",
        framework="jax",
        apis=("-jnp.take_along_axis(jnp.log(probs))*",),
        explanation=(
            "log(probs) is taken over every class before the target is gathered; reverse "
            "mode multiplies the zero cotangent of an unused class by d log(p)/dp = 1/0, "
            "so a zero probability off the target gets a NaN gradient (0 * inf)."
        ),
        link="https://docs.jax.dev/en/latest/faq.html#gradients-contain-nan-where-using-where",
        when=_log_zero_gather,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="optax-sigmoid-bce-infinite-logits",
        framework="jax",
        apis=("optax.losses.sigmoid_binary_cross_entropy*", "optax.losses.sigmoid_focal_loss*"),
        explanation=(
            "optax computes -y * log_sigmoid(x) - (1 - y) * log_sigmoid(-x): an infinite "
            "logit gives 0 * inf = NaN for a matching hard label, where the loss is 0."
        ),
        link="https://github.com/google-deepmind/optax/pull/431",
        when=_infinite_logit_nan,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="xla-cpu-flushes-subnormals",
        framework="jax",
        apis=("*",),
        explanation=(
            "XLA's CPU backend runs with denormals-are-zero / flush-to-zero: subnormal "
            "inputs act as 0 in float64, float32 and bfloat16 (e.g. log of a subnormal "
            "probability is -inf); the output equals the reference on flushed inputs."
        ),
        link="https://github.com/jax-ml/jax/issues/16200",
        when=_flush_to_zero,
        statuses=("nonfinite", "mismatch"),
    ),
    Known(
        id="optax-generalized-kl-extra-term",
        framework="jax",
        apis=("optax.losses.generalized_kl_divergence*",),
        explanation=(
            "generalized_kl_divergence (convex_kl_divergence) is the Bregman divergence "
            "KL + sum(exp(log_predictions) - targets): equal to KL only for normalised "
            "distributions, and its gradients always carry the extra term."
        ),
        link="https://github.com/google-deepmind/optax/blob/main/optax/losses/_classification.py",
        when=_generalized_kl_extra,
        statuses=("mismatch", "nonfinite"),
    ),
]
