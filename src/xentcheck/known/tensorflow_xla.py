"""Documented differences of ``tf.function(jit_compile=True)`` rows (framework
``tensorflow-xla``): those of eager TensorFlow / Keras (see :mod:`xentcheck.known.modes`),
and the one XLA adds: a compiled kernel cannot raise."""

from __future__ import annotations

from xentcheck.known import Finding, Known
from xentcheck.known import tensorflow as eager
from xentcheck.known.facts import has_nan, integer_target, rejected_labels
from xentcheck.known.modes import derive

MODE = "tf.function(jit_compile=True)"


def _wrap(api: str) -> str:
    return f"{MODE}({api})"


def _bad_label_nan(f: Finding) -> bool:
    """A label the reference rejects (outside ``[0, C)``, neither ignored nor masked out)
    came back as NaN, not an error."""
    if f.expected is not None or f.actual is None or not f.expect_error:
        return False
    return integer_target(f) and rejected_labels(f).size > 0 and has_nan(f.actual)


ENTRIES = [
    Known(
        id="xla-sparse-xent-bad-label-nan",
        framework="tensorflow-xla",
        apis=(
            _wrap("tf.nn.sparse_softmax_cross_entropy_with_logits*"),
            _wrap("keras.*sparse_categorical_crossentropy*"),
            _wrap("keras.*SparseCategoricalCrossentropy*"),
        ),
        explanation=(
            "An XLA-compiled kernel cannot raise: sparse softmax cross-entropy returns NaN "
            "for a label outside [0, num_classes), as the op documents for the GPU, where "
            "the eager CPU kernel raises."
        ),
        link="https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits",
        when=_bad_label_nan,
        statuses=("error",),
    ),
    *derive(eager.ENTRIES, "tensorflow-xla", _wrap),
]
