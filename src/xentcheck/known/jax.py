"""Documented differences of jax / optax (see :mod:`xentcheck.known`).

Every entry names the mechanism its source documents and checks, in its predicate, that
the finding is an instance of that mechanism (the labels really are out of range, the
row really holds ``+inf``, the error really is within the rounding of the logits'
magnitude ...), so a difference the entry does not explain stays a ``mismatch``.
"""

from __future__ import annotations

import numpy as np

from xentcheck.dtypes import ulp
from xentcheck.known import Finding, Known

# --------------------------------------------------------------------------- helpers

#: APIs that read class indices through a gather (``take_along_axis``)
_GATHER_APIS = (
    "optax.losses.softmax_cross_entropy_with_integer_labels*",
    "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels*",
    "-jnp.take_along_axis*",
)

_FIRST = {
    "softmax_cross_entropy": "logits",
    "categorical_cross_entropy": "probs",
    "nll": "log_probs",
    "token_cross_entropy": "logits",
    "perplexity": "logits",
    "kl_divergence": "input",
    "softmax": "x",
    "log_softmax": "x",
    "logsumexp": "x",
}


def _token_loss(f: Finding) -> bool:
    return f.loss in ("token_cross_entropy", "perplexity")


def _rows(f: Finding) -> np.ndarray:
    """The first input as rows ``[M, C]`` over its class axis (last for token losses)."""
    x = np.asarray(f.inputs[_FIRST[f.loss]], dtype=np.float64)
    if _token_loss(f) or x.ndim == 1:
        return x.reshape(-1, x.shape[-1])
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _labels(f: Finding) -> np.ndarray:
    return np.asarray(f.inputs["target"]).astype(np.int64).ravel()


def _kept(f: Finding) -> np.ndarray:
    t = _labels(f)
    keep = np.ones(t.shape, dtype=bool)
    ignore = f.params.get("ignore_index")
    if ignore is not None:
        keep &= t != int(ignore)
    mask = f.inputs.get("mask")
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool).ravel()
    return keep


def _bad_labels(f: Finding) -> np.ndarray:
    """The kept labels outside ``[0, C)``."""
    t = _labels(f)
    classes = _rows(f).shape[1]
    return t[_kept(f) & ((t < 0) | (t >= classes))]


def _integer_target(f: Finding) -> bool:
    t = f.inputs.get("target")
    return t is not None and np.asarray(t).dtype.kind in "iu"


def _has_nan(a) -> bool:
    return a is not None and bool(np.isnan(np.asarray(a, dtype=np.float64)).any())


# --------------------------------------------------------------------------- labels


def _oob_nan(f: Finding) -> bool:
    """Reference rejected an out-of-range label and JAX returned NaN for it."""
    if f.expected is not None or f.actual is None or not _integer_target(f):
        return False
    bad = _bad_labels(f)
    classes = _rows(f).shape[1]
    far = (bad >= classes) | (bad < -classes)
    return bad.size > 0 and bool(far.any()) and _has_nan(f.actual)


def _negative_wraps(f: Finding) -> bool:
    """Every rejected label lies in ``[-C, 0)``: read from the end of the class axis."""
    if f.expected is not None or f.actual is None or not _integer_target(f):
        return False
    bad = _bad_labels(f)
    classes = _rows(f).shape[1]
    return bad.size > 0 and bool(np.all((bad < 0) & (bad >= -classes))) and not _has_nan(f.actual)


def _one_hot_zero_row(f: Finding) -> bool:
    """A rejected label became an all-zero one-hot row: a finite loss."""
    if f.expected is not None or f.actual is None or not _integer_target(f):
        return False
    return _bad_labels(f).size > 0 and bool(np.all(np.isfinite(f.actual)))


# --------------------------------------------------------------------------- log-normaliser


def _lse_cancellation(f: Finding) -> bool:
    """The value error is within a few ULPs (in the dtype) of the logits' magnitude.

    optax forms ``logsumexp(z) - z[target]`` from the unshifted logits, so both terms are
    rounded at the scale of ``max |z|`` of the row before they cancel.
    """
    if f.quantity != "value" or f.expected is None or f.actual is None:
        return False
    if not _integer_target(f) or f.params.get("label_smoothing"):
        return False
    z = _rows(f)
    if not np.all(np.isfinite(z)):
        return False
    exp = np.asarray(f.expected, dtype=np.float64)
    act = np.asarray(f.actual, dtype=np.float64)
    if exp.shape != act.shape or not (np.all(np.isfinite(exp)) and np.all(np.isfinite(act))):
        return False
    t = np.clip(_labels(f), 0, z.shape[1] - 1)
    keep = _kept(f)
    w = np.ones(t.shape)
    if f.inputs.get("weight") is not None:
        w = np.asarray(f.inputs["weight"], dtype=np.float64)[t]
    w = np.where(keep, np.abs(w), 0.0)
    scale = np.max(np.abs(z), axis=1) + np.log(z.shape[1])
    per_row = 4.0 * w * ulp(scale, f.dtype)  # the log-normaliser's and z_t's rounding
    err = np.abs(act - exp)
    slack = 2.0 * ulp(exp, f.dtype)
    if _token_loss(f) or f.params.get("reduction") == "mean":
        denom = np.sum(w) if np.sum(w) > 0 else 1.0
        bound = np.sum(per_row) / denom
        if f.loss == "perplexity":
            bound = bound * np.abs(exp) * 1.5  # exp(x + d) - exp(x) ~ exp(x) d
        return bool(np.all(err <= bound + keep.size * slack))
    if f.params.get("reduction") == "sum":
        return bool(np.all(err <= np.sum(per_row) + keep.size * slack))
    return bool(np.all(err.ravel() <= per_row + slack.ravel()))


# --------------------------------------------------------------------------- non-finite logits


def _row_mask(f: Finding, rows: np.ndarray) -> np.ndarray | None:
    """Broadcast a per-row boolean over the quantity's shape (None: cannot localise)."""
    if f.actual is None:
        return None
    shape = np.shape(f.actual)
    x = np.asarray(f.inputs[_FIRST[f.loss]])
    if f.loss in ("softmax", "log_softmax", "logsumexp"):
        return None  # rows are along a swept axis; judged by value, below
    if shape == x.shape:  # a gradient of the first input, class axis 1 (last for tokens)
        if _token_loss(f) or x.ndim == 1:
            return np.repeat(rows, x.shape[-1]).reshape(shape)
        moved = (x.shape[0], *x.shape[2:], x.shape[1])
        return np.moveaxis(np.repeat(rows, x.shape[1]).reshape(moved), -1, 1)
    if int(np.prod(shape)) == rows.size:  # one value per row (reduction none)
        return rows.reshape(shape)
    return None


def _plus_inf_nan(f: Finding) -> bool:
    """NaN (where the reference takes the limit) only in rows holding a ``+inf`` logit."""
    if f.expected is None or f.actual is None:
        return False
    x = np.asarray(f.inputs[_FIRST[f.loss]], dtype=np.float64)
    if f.loss in ("softmax", "log_softmax", "logsumexp"):
        axis = int(f.params.get("axis", -1))
        inf_rows = np.any(x == np.inf, axis=axis, keepdims=f.loss != "logsumexp")
        act = np.asarray(f.actual, dtype=np.float64)
        exp = np.asarray(f.expected, dtype=np.float64)
        if f.quantity == "value" and f.loss == "logsumexp":
            diff = ~((act == exp) | (np.isnan(act) & np.isnan(exp)))
            return bool(np.any(inf_rows)) and bool(np.all(~diff | inf_rows))
        rows = np.broadcast_to(inf_rows, act.shape)
        diff = ~(np.isclose(act, exp, rtol=1e-2, atol=1e-6) | (np.isnan(act) & np.isnan(exp)))
        return bool(np.any(rows)) and bool(np.all(~diff | (rows & np.isnan(act))))
    rows = np.any(_rows(f) == np.inf, axis=1)
    if not rows.any() or not _has_nan(f.actual):
        return False
    act = np.asarray(f.actual, dtype=np.float64)
    exp = np.asarray(f.expected, dtype=np.float64)
    new_nan = np.isnan(act) & ~np.isnan(exp)
    mask = _row_mask(f, rows)
    if mask is None:  # a reduced value: NaN because some row holds +inf
        return bool(new_nan.all())
    return bool(np.all(~new_nan | mask))


def _neg_inf_zero_label(f: Finding) -> bool:
    """``0 * log_softmax(-inf) = 0 * -inf = NaN``: rows with a -inf logit of zero target."""
    if f.expected is None or f.actual is None or _integer_target(f):
        return False
    z = _rows(f)
    y = f.inputs.get("target")
    if y is None:
        return False
    y = np.asarray(y, dtype=np.float64)
    y = y.reshape(-1, y.shape[-1]) if y.ndim == 1 else np.moveaxis(y, 1, -1).reshape(z.shape)
    rows = np.any((z == -np.inf) & (y == 0), axis=1)
    if not rows.any() or not _has_nan(f.actual):
        return False
    act = np.asarray(f.actual, dtype=np.float64)
    new_nan = np.isnan(act) & ~np.isnan(np.asarray(f.expected, dtype=np.float64))
    mask = _row_mask(f, rows)
    if mask is None:
        return bool(new_nan.all())
    return bool(np.all(~new_nan | mask))


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
        id="optax-integer-labels-unshifted-log-normalizer",
        framework="jax",
        apis=(
            "optax.losses.softmax_cross_entropy_with_integer_labels*",
            "jnp.exp(optax.losses.softmax_cross_entropy_with_integer_labels*",
        ),
        explanation=(
            "softmax_cross_entropy_with_integer_labels returns logsumexp(z) - z[target] "
            "without shifting by the row maximum, in the logits' dtype: the loss is only "
            "accurate to the rounding of max|z| (0 for equal logits of 1e30, coarse in bfloat16)."
        ),
        link="https://github.com/google-deepmind/optax/issues/1020",
        when=_lse_cancellation,
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
            "jax.nn.logsumexp",
            "jax.scipy.special.softmax",
            "jax.scipy.special.log_softmax",
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
]
