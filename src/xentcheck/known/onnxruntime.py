"""Documented differences of ONNX Runtime (see :mod:`xentcheck.known`).

ONNX Runtime runs ``SoftmaxCrossEntropyLoss`` and ``NegativeLogLikelihoodLoss`` through
the operators' ONNX function bodies (the class-index gather is a ``GatherElements``), so
their label handling is that of ``GatherElements``, which the ONNX specification defines
for negative indices.
"""

from __future__ import annotations

import numpy as np

from xentcheck.known import Finding, Known
from xentcheck.known.facts import (
    floats,
    integer_target,
    kept,
    labels,
    num_classes,
    rejected_labels,
    tolerance,
)
from xentcheck.reference import evaluate

_CLASS_INDEX_APIS = (
    "onnx.SoftmaxCrossEntropyLoss",
    "onnx.NegativeLogLikelihoodLoss",
    "onnx.NegativeLogLikelihoodLoss(Log(probs))",
)


def _negative_label_wraps(f: Finding) -> bool:
    """Every rejected label lies in ``[-C, 0)`` and the value ORT returned is the
    reference's value with those labels read from the end of the class axis."""
    if f.expected is not None or f.actual is None or f.quantity != "value":
        return False
    if not integer_target(f):
        return False
    bad, classes = rejected_labels(f), num_classes(f)
    if bad.size == 0 or not np.all((bad >= -classes) & (bad < 0)):
        return False
    t = labels(f)
    wrapped = np.where(kept(f) & (t < 0), t + classes, t).reshape(np.shape(f.inputs["target"]))
    params = {k: v for k, v in f.params.items() if v is not None}
    try:
        model = evaluate(f.loss, {**f.inputs, "target": wrapped}, params).value
    except ValueError:  # the reference rejects the wrapped input too: not this mechanism
        return False
    rtol, atol = tolerance(f)
    actual = floats(f.actual).reshape(np.shape(model))
    return bool(np.allclose(actual, model, rtol=rtol * 4, atol=atol, equal_nan=True))


ENTRIES: list[Known] = [
    Known(
        id="onnx-negative-label-wraps",
        framework="onnxruntime",
        apis=_CLASS_INDEX_APIS,
        explanation=(
            "SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss gather the target class with "
            "GatherElements, whose indices may be negative (counted from the end of the "
            "axis): label -1 silently means class C-1 instead of being rejected."
        ),
        link="https://onnx.ai/onnx/operators/onnx__GatherElements.html",
        when=_negative_label_wraps,
        statuses=("error",),
    ),
]
