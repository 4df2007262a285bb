"""Documented differences of Keras 3 on its PyTorch backend (framework ``keras-torch``):
the Keras-level entries of the tensorflow registry (epsilon clipping, floatx, the mean's
denominator ...), which live in Keras's backend-neutral loss code, and torch's default
``ignore_index``, which Keras's torch backend inherits."""

from __future__ import annotations

import dataclasses

from xentcheck.known import tensorflow as tf_entries
from xentcheck.known import torch as torch_entries
from xentcheck.known.modes import derive

_SPARSE = (
    "keras.losses.sparse_categorical_crossentropy*",
    "keras.losses.SparseCategoricalCrossentropy*",
    "keras.ops.sparse_categorical_crossentropy*",
)

_TORCH_DEFAULT_IGNORE = next(
    k for k in torch_entries.ENTRIES if k.id == "torch-default-ignore-index"
)

ENTRIES = [
    *derive([k for k in tf_entries.ENTRIES if k.id.startswith("keras-")], "keras-torch"),
    dataclasses.replace(
        _TORCH_DEFAULT_IGNORE,
        id="keras-torch-default-ignore-index",
        framework="keras-torch",
        apis=_SPARSE,
        explanation=(
            "Keras's torch backend computes sparse categorical cross-entropy with "
            "torch.nn.functional.cross_entropy / nll_loss and torch's default "
            "ignore_index=-100: a label -100 is silently skipped instead of rejected."
        ),
        link="https://github.com/keras-team/keras/blob/master/keras/src/backend/torch/nn.py",
        versions="",
    ),
]
