"""One row per documented difference: where it shows on a real framework, and where not.

Each :class:`Example` names an entry id, the framework and the one API it is run through
(on the CPU), a small case (YAML, as in ``cases/``) on which the entry explains the row of
``quantity``, and ``perturbed``: the same case with the entry's mechanism taken away
(the keys given replace the case's; ``inputs`` and ``params`` are merged key by key), whose
row the entry must not explain. ``alter`` optionally changes the real finding's numbers
by something the mechanism does not produce: the entry must not explain that either.
``note`` says what the example cannot show here (a mechanism of another device, say).
The tests in ``test_entries.py`` run every example; a new entry without one fails there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xentcheck.known import Finding

Alter = Callable[[Finding], Finding]


@dataclass(frozen=True)
class Example:
    id: str
    framework: str
    api: str
    case: str
    perturbed: str
    quantity: str = "value"
    alter: Alter | None = None
    note: str = ""


def add(delta: float, at: int | None = None) -> Alter:
    """``actual`` plus ``delta`` (at flat position ``at``, else everywhere)."""

    def alter(f: Finding) -> Finding:
        a = np.array(f.actual, dtype=np.float64)
        if at is None:
            a = a + delta
        else:
            a.flat[at] += delta
        return dataclasses.replace(f, actual=a)

    return alter


def nan_at(at: int) -> Alter:
    """``actual`` with a NaN at flat position ``at`` as well (where the mechanism does not act)."""

    def alter(f: Finding) -> Finding:
        a = np.array(f.actual, dtype=np.float64)
        a.flat[at] = np.nan
        return dataclasses.replace(f, actual=a)

    return alter


def finite(value: float) -> Alter:
    """``actual`` replaced by the finite ``value`` everywhere."""
    return lambda f: dataclasses.replace(f, actual=np.full(np.shape(f.actual), value))


def raised(error: str) -> Alter:
    """The framework raised ``error`` instead of returning a value."""
    return lambda f: dataclasses.replace(f, actual=None, error=error)


def error_text(error: str) -> Alter:
    """The framework raised, with another message."""
    return lambda f: dataclasses.replace(f, error=error)


LOGITS = "[[0.2, 0.3, 0.5], [1.0, 0.5, -1.0]]"
KL_INPUT = "[[-1.6094379124341003, -0.35667494393873245, -2.3025850929940455]]"
XLA = "tf.function(jit_compile=True)"

EXAMPLES: list[Example] = [
    # ------------------------------------------------------------------ torch
    Example(
        "torch-default-ignore-index",
        "torch",
        "torch.nn.functional.cross_entropy",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, -100]}}
        expect_error: true
        """,
        perturbed="inputs: {target: [2, -7]}",
        alter=lambda f: dataclasses.replace(f, inputs={**f.inputs, "target": np.array([2, -7])}),
    ),
    Example(
        "torch-bce-log-clamp",
        "torch",
        "torch.nn.functional.binary_cross_entropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.0, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [1.0e-30, 0.5]}",
        alter=add(1.0, at=0),
    ),
    Example(
        "torch-bce-grad-clamp",
        "torch",
        "torch.nn.functional.binary_cross_entropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [1.0e-13, 0.5], target: [0.0, 1.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [1.0e-6, 0.5]}",
        quantity="grad:probs",
        alter=add(0.5, at=1),
    ),
    Example(
        "torch-bce-input-range-check",
        "torch",
        "torch.nn.functional.binary_cross_entropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [.nan, 0.5], target: [1.0, 0.0]}
        """,
        perturbed="inputs: {probs: [0.25, 0.5]}",
        alter=error_text("RuntimeError: all elements of target should be between 0 and 1"),
    ),
    Example(
        "torch-bce-target-range-check",
        "torch",
        "torch.nn.functional.binary_cross_entropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.25, 0.5], target: [1.5, 0.0]}
        """,
        perturbed="inputs: {target: [1.0, 0.0]}",
        alter=error_text("RuntimeError: all elements of input should be between 0 and 1"),
    ),
    Example(
        "torch-bce-with-logits-infinite-logit",
        "torch",
        "torch.nn.functional.binary_cross_entropy_with_logits",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: [.inf, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [40.0, 0.5]}",
        alter=nan_at(1),
    ),
    Example(
        "torch-kl-div-target-grad-at-zero",
        "torch",
        "torch.nn.functional.kl_div",
        f"""
        loss: kl_divergence
        inputs: {{input: {KL_INPUT}, target: [[0.0, 0.6, 0.4]]}}
        params: {{reduction: sum}}
        """,
        perturbed="inputs: {target: [[0.2, 0.5, 0.3]]}",
        quantity="grad:target",
        alter=nan_at(1),
    ),
    Example(
        "torch-softmax-plus-inf",
        "torch",
        "torch.nn.functional.softmax",
        """
        loss: softmax
        inputs: {x: [[.inf, 1.0, 2.0], [0.5, 1.0, 2.0]]}
        """,
        perturbed="inputs: {x: [[30.0, 1.0, 2.0], [0.5, 1.0, 2.0]]}",
        alter=nan_at(4),
    ),
    # ------------------------------------------------------------ onnxruntime
    Example(
        "onnx-negative-label-wraps",
        "onnxruntime",
        "onnx.SoftmaxCrossEntropyLoss",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, -1]}}
        expect_error: true
        """,
        perturbed="inputs: {target: [2, -5]}",
        alter=add(0.5),
    ),
    # ------------------------------------------------------------- tensorflow
    Example(
        "keras-loss-object-computes-in-floatx",
        "tensorflow",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[100.1, 100.0, 0.0]], target: [0]}
        """,
        perturbed="dtypes: [float32]",
        alter=add(1e-3),
    ),
    Example(
        "keras-probabilities-clipped-to-epsilon",
        "tensorflow",
        "keras.losses.categorical_crossentropy",
        """
        loss: categorical_cross_entropy
        inputs: {probs: [[0.0, 0.5, 0.5]], target: [[1.0, 0.0, 0.0]]}
        """,
        perturbed="inputs: {probs: [[0.25, 0.25, 0.5]]}",
    ),
    Example(
        "keras-categorical-renormalises-probabilities",
        "tensorflow",
        "keras.losses.categorical_crossentropy",
        """
        loss: categorical_cross_entropy
        inputs: {probs: [[0.25, 0.25, 0.25]], target: [[0.0, 0.0, 1.0]]}
        """,
        perturbed="inputs: {probs: [[0.25, 0.25, 0.5]]}",
        alter=add(0.01),
    ),
    Example(
        "tf-softmax-xent-gradient-assumes-normalised-labels",
        "tensorflow",
        "tf.nn.softmax_cross_entropy_with_logits",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[0.2, 0.3, 0.5]], target: [[0.5, 0.25, 0.5]]}
        """,
        perturbed="inputs: {target: [[0.25, 0.25, 0.5]]}",
        quantity="grad:logits",
        alter=add(0.01, at=0),
    ),
    Example(
        "tf-where-propagates-nan-gradients",
        "tensorflow",
        "tf.nn.sparse_softmax_cross_entropy_with_logits+weight[target]+where(target!=ignore_index)",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[.nan, 1.0, 2.0], [0.2, 0.3, 0.5]], target: [-1, 2]}
        params: {ignore_index: -1}
        """,
        perturbed="inputs: {logits: [[0.0, 1.0, 2.0], [0.2, 0.3, 0.5]]}",
        quantity="grad:logits",
        alter=nan_at(4),
    ),
    Example(
        "keras-binary-losses-average-the-last-axis",
        "tensorflow",
        "keras.losses.BinaryCrossentropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [[0.25, 0.75], [0.5, 0.875]], target: [[0.0, 1.0], [1.0, 1.0]]}
        params: {reduction: sum}
        """,
        perturbed="inputs: {probs: [[0.25], [0.5]], target: [[0.0], [1.0]]}",
        alter=add(0.05),
    ),
    Example(
        "keras-kl-sums-over-the-class-axis",
        "tensorflow",
        "keras.losses.KLDivergence()(target,exp(input))",
        f"""
        loss: kl_divergence
        inputs: {{input: {KL_INPUT}, target: [[0.2, 0.5, 0.3]]}}
        params: {{reduction: mean}}
        """,
        perturbed="params: {reduction: sum}",
        alter=add(0.05),
    ),
    Example(
        "keras-mean-divides-by-element-count",
        "tensorflow",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)+sample_weight=weight[target]",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 0], weight: [1.0, 2.0, 3.0]}}
        params: {{reduction: mean}}
        """,
        perturbed="inputs: {weight: [1.0, 1.0, 1.0]}",
        alter=add(0.05),
    ),
    Example(
        "tf-one-hot-zero-row-for-bad-label",
        "tensorflow",
        "keras.losses.CategoricalCrossentropy(from_logits=True)+one_hot(target)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 3]}}
        params: {{label_smoothing: 0.125}}
        expect_error: true
        """,
        perturbed="{inputs: {target: [2, 1]}, expect_error: false}",
    ),
    Example(
        "tf-sparse-xent-checks-masked-labels",
        "tensorflow",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True,ignore_class)+sample_weight=mask",
        """
        loss: token_cross_entropy
        inputs:
          logits: [[[0.2, 0.3, 0.5, 0.1], [1.0, 0.5, -1.0, 0.0], [0.3, 0.1, 0.2, 0.4]]]
          target: [[1, 7, 2]]
          mask: [[1, 0, 1]]
        """,
        perturbed="inputs: {target: [[1, 3, 2]]}",
        alter=error_text("InvalidArgumentError: some other failure"),
    ),
    # ---------------------------------------------------------- tensorflow-xla
    Example(
        "xla-sparse-xent-bad-label-nan",
        "tensorflow-xla",
        f"{XLA}(tf.nn.sparse_softmax_cross_entropy_with_logits)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 7]}}
        expect_error: true
        tags: [compiled-modes]
        """,
        perturbed="{inputs: {target: [2, 1]}, expect_error: false}",
        alter=finite(1.5),
    ),
    # ------------------------------------------------------------- keras-torch
    Example(
        "keras-torch-default-ignore-index",
        "keras-torch",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, -100]}}
        expect_error: true
        """,
        perturbed="inputs: {target: [2, -7]}",
        alter=lambda f: dataclasses.replace(f, inputs={**f.inputs, "target": np.array([2, -7])}),
    ),
    # --------------------------------------------------------------------- jax
    Example(
        "jax-out-of-range-label-nan",
        "jax",
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 7]}}
        params: {{reduction: none}}
        expect_error: true
        """,
        perturbed="inputs: {target: [2, -1]}",
        alter=finite(1.5),
    ),
    Example(
        "jax-negative-label-wraps",
        "jax",
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, -1]}}
        params: {{reduction: none}}
        expect_error: true
        """,
        perturbed="inputs: {target: [2, 7]}",
        alter=nan_at(1),
    ),
    Example(
        "jax-one-hot-out-of-range-zeros",
        "jax",
        "optax.losses.softmax_cross_entropy+one_hot+smooth_labels",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 7]}}
        params: {{label_smoothing: 0.125, reduction: none}}
        expect_error: true
        """,
        perturbed="{inputs: {target: [2, 1]}, expect_error: false}",
        alter=nan_at(1),
    ),
    Example(
        "optax-integer-labels-low-precision-log-normalizer",
        "jax",
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[1000.0, 1001.0, 999.5], [-1000.0, -999.0, -1001.0]], target: [0, 2]}
        params: {reduction: none}
        dtypes: [float16]
        """,
        perturbed="inputs: {logits: [[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]}",
        alter=add(8.0),
    ),
    Example(
        "optax-integer-labels-unshifted-log-normalizer",
        "jax",
        "optax.losses.softmax_cross_entropy_with_integer_labels",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[1.0e+30, 1.0e+30, 1.0e+30]], target: [1]}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [[1.0, 1.0, 1.0]]}",
        alter=add(1e16),
    ),
    Example(
        "jax-plus-inf-logit-nan",
        "jax",
        "jax.nn.softmax",
        """
        loss: softmax
        inputs: {x: [[.inf, 1.0, 2.0], [0.5, 1.0, 2.0]]}
        """,
        perturbed="inputs: {x: [[30.0, 1.0, 2.0], [0.5, 1.0, 2.0]]}",
        alter=nan_at(4),
    ),
    Example(
        "optax-softmax-ce-neg-inf-logit-zero-label",
        "jax",
        "optax.losses.softmax_cross_entropy",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[-.inf, 1.0, 2.0], [0.2, 0.3, 0.5]], target: [[0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [[-30.0, 1.0, 2.0], [0.2, 0.3, 0.5]]}",
        alter=nan_at(1),
    ),
    Example(
        "jax-logsumexp-b-zero-jacobian",
        "jax",
        "optax.losses.sigmoid_focal_loss",
        """
        loss: sigmoid_focal_loss
        inputs: {logits: [0.5, -1.0], target: [1.0, 0.25]}
        params: {reduction: none}
        """,
        perturbed="inputs: {target: [0.875, 0.25]}",
        quantity="grad:target",
        alter=add(0.5, at=1),
    ),
    Example(
        "optax-kl-zero-target-nan-grad",
        "jax",
        "optax.losses.kl_divergence+sum",
        f"""
        loss: kl_divergence
        inputs: {{input: {KL_INPUT}, target: [[0.0, 0.6, 0.4]]}}
        params: {{reduction: sum}}
        """,
        perturbed="inputs: {target: [[0.2, 0.5, 0.3]]}",
        quantity="grad:target",
        alter=add(0.5, at=1),
    ),
    Example(
        "optax-kl-zero-times-inf-nan",
        "jax",
        "optax.losses.kl_divergence(axis=())",
        """
        loss: kl_divergence
        inputs: {input: [[-.inf, -0.5, -1.25]], target: [[0.0, 0.6, 0.4]]}
        params: {reduction: none}
        """,
        perturbed="inputs: {input: [[-30.0, -0.5, -1.25]]}",
        alter=nan_at(1),
    ),
    Example(
        "jax-no-runtime-value-checks",
        "jax",
        "-(jax.scipy.special.xlogy+xlog1py)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.25, -0.25], target: [0.0, 1.0]}
        params: {reduction: none}
        expect_error: true
        """,
        perturbed="{inputs: {probs: [0.25, 0.5]}, expect_error: false}",
        alter=finite(1.5),
    ),
    Example(
        "jax-xlogy-custom-jvp-nan",
        "jax",
        "-(jax.scipy.special.xlogy+xlog1py)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.0, 0.5], target: [0.0, 1.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [0.001, 0.5]}",
        quantity="grad:probs",
        alter=nan_at(1),
    ),
    Example(
        "jax-nan-gradient-of-unused-log-zero",
        "jax",
        "-jnp.take_along_axis(jnp.log(probs))",
        """
        loss: categorical_cross_entropy
        inputs: {probs: [[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]], target: [2, 0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [[0.125, 0.375, 0.5], [0.25, 0.25, 0.5]]}",
        quantity="grad:probs",
        alter=nan_at(4),
    ),
    Example(
        "optax-sigmoid-bce-infinite-logits",
        "jax",
        "optax.losses.sigmoid_binary_cross_entropy",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: [.inf, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [40.0, 0.5]}",
        alter=nan_at(1),
    ),
    Example(
        "xla-cpu-flushes-subnormals",
        "jax",
        "-(jax.scipy.special.xlogy+xlog1py)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [1.0e-310, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [1.0e-300, 0.5]}",
        alter=add(1.0, at=1),
        note="XLA flushes subnormals on the CPU only; on a GPU the example may pass.",
    ),
    Example(
        "optax-generalized-kl-extra-term",
        "jax",
        "optax.losses.generalized_kl_divergence+sum",
        """
        loss: kl_divergence
        inputs: {input: [[-1.0, -1.0, -1.0]], target: [[0.2, 0.5, 0.3]]}
        params: {reduction: sum}
        """,
        perturbed="inputs: {input: [[-1.6094379124341003, -0.6931471805599453, -1.2039728043259361]]}",
        alter=add(0.05),
    ),
    Example(
        "torch-ignore-index-with-probability-target",
        "torch",
        "torch.nn.functional.cross_entropy",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[0.5, 1.0, -0.5]], target: [[0.25, 0.75, 0.0]]}
        params: {ignore_index: 1}
        """,
        perturbed="params: {ignore_index: null}",
        alter=error_text("RuntimeError: Expected floating point type for target"),
    ),
    Example(
        "keras-binary-losses-empty-last-axis",
        "tensorflow",
        "keras.losses.binary_crossentropy(from_logits=True)",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: [], target: []}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [[0.5, 1.0]], target: [[1.0, 0.0]]}",
        alter=finite(0.5),
    ),
    Example(
        "keras-binary-losses-need-a-last-axis",
        "tensorflow",
        "keras.losses.binary_crossentropy(from_logits=True)",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: 2.0, target: 1.0}
        params: {reduction: mean}
        """,
        perturbed="inputs: {logits: [2.0], target: [1.0]}",
        alter=error_text("InvalidArgumentError: logits and labels must have the same shape"),
    ),
    # ------------------------------------------------------------- tf-compat-v1
    Example(
        "tf-compat-v1-weighted-loss-in-float32",
        "tf-compat-v1",
        "tf.compat.v1.losses.sparse_softmax_cross_entropy",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[0.0, 1.0e+39], [0.2, 0.3]], target: [0, 1]}
        params: {reduction: none}
        """,
        perturbed="{inputs: {logits: [[0.0, 1.0e+30], [0.2, 0.3]]}, dtypes: [float32]}",
        alter=add(1e-3, at=1),
    ),
    Example(
        "tf-compat-v1-log-loss-in-float32",
        "tf-compat-v1",
        "tf.compat.v1.losses.log_loss(epsilon=0.0)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.999, 0.5], target: [0.0, 1.0]}
        params: {reduction: none}
        """,
        perturbed="dtypes: [float32]",
        alter=add(1e-3, at=0),
    ),
    Example(
        "tf-compat-v1-log-loss-epsilon",
        "tf-compat-v1",
        "tf.compat.v1.losses.log_loss",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.0, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [0.25, 0.5]}",
        alter=add(1.0, at=0),
    ),
    Example(
        "tf-compat-v1-log-loss-flushes-subnormal-probabilities",
        "tf-compat-v1",
        "tf.compat.v1.losses.log_loss(epsilon=0.0)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [1.0e-38, 0.5], target: [1.0, 0.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [1.0e-30, 0.5]}",
        alter=finite(1.5),
        note="TensorFlow flushes denormals on its CPU threads; a GPU may read 1e-38 as it is.",
    ),
    Example(
        "tf-compat-v1-log-loss-zero-times-log-zero",
        "tf-compat-v1",
        "tf.compat.v1.losses.log_loss(epsilon=0.0)",
        """
        loss: binary_cross_entropy
        inputs: {probs: [0.0, 0.5], target: [0.0, 1.0]}
        params: {reduction: none}
        """,
        perturbed="inputs: {probs: [0.25, 0.5]}",
        alter=nan_at(1),
    ),
    Example(
        "tf-compat-v1-zero-weight-times-nonfinite-loss",
        "tf-compat-v1",
        "tf.compat.v1.losses.sparse_softmax_cross_entropy+weights=weight[target]*(target!=ignore_index)",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[.nan, 1.0, 2.0], [0.2, 0.3, 0.5]], target: [-1, 2]}
        params: {ignore_index: -1, reduction: none}
        """,
        perturbed="inputs: {logits: [[0.0, 1.0, 2.0], [0.2, 0.3, 0.5]]}",
        alter=nan_at(1),
    ),
    Example(
        "tf-compat-v1-log-loss-checks-no-range",
        "tf-compat-v1",
        "tf.compat.v1.losses.log_loss",
        """
        loss: binary_cross_entropy
        inputs: {probs: [1.5, 0.5], target: [0.0, 1.0]}
        params: {reduction: none}
        expect_error: true
        """,
        perturbed="{inputs: {probs: [0.25, 0.5]}, expect_error: false}",
        alter=finite(1.5),
    ),
    Example(
        "tf-compat-v1-mean-of-nothing-is-zero",
        "tf-compat-v1",
        "tf.compat.v1.losses.sparse_softmax_cross_entropy+weights=weight[target]*(target!=ignore_index)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [-1, -1]}}
        params: {{ignore_index: -1, reduction: mean}}
        """,
        perturbed="inputs: {target: [-1, 2]}",
        alter=finite(1.5),
    ),
    Example(
        "tf-compat-v1-softmax-xent-gradient-assumes-normalised-labels",
        "tf-compat-v1",
        "tf.compat.v1.losses.softmax_cross_entropy",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[0.2, 0.3, 0.5]], target: [[0.5, 0.25, 0.5]]}
        """,
        perturbed="inputs: {target: [[0.25, 0.25, 0.5]]}",
        quantity="grad:logits",
        alter=add(0.01, at=0),
    ),
    Example(
        "tf-compat-v1-one-hot-zero-row-for-bad-label",
        "tf-compat-v1",
        "tf.compat.v1.losses.softmax_cross_entropy+one_hot(target)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 3]}}
        params: {{label_smoothing: 0.125}}
        expect_error: true
        """,
        perturbed="{inputs: {target: [2, 1]}, expect_error: false}",
    ),
    # ----------------------------------------------------------------- tf-keras
    Example(
        "tf-keras-probabilities-clipped-to-epsilon",
        "tf-keras",
        "tf_keras.losses.categorical_crossentropy",
        """
        loss: categorical_cross_entropy
        inputs: {probs: [[0.0, 0.5, 0.5]], target: [[1.0, 0.0, 0.0]]}
        """,
        perturbed="inputs: {probs: [[0.25, 0.25, 0.5]]}",
    ),
    Example(
        "tf-keras-categorical-renormalises-probabilities",
        "tf-keras",
        "tf_keras.losses.categorical_crossentropy",
        """
        loss: categorical_cross_entropy
        inputs: {probs: [[0.25, 0.25, 0.25]], target: [[0.0, 0.0, 1.0]]}
        """,
        perturbed="inputs: {probs: [[0.25, 0.25, 0.5]]}",
        alter=add(0.01),
    ),
    Example(
        "tf-keras-softmax-xent-gradient-assumes-normalised-labels",
        "tf-keras",
        "tf_keras.losses.categorical_crossentropy(from_logits=True)",
        """
        loss: softmax_cross_entropy
        inputs: {logits: [[0.2, 0.3, 0.5]], target: [[0.5, 0.25, 0.5]]}
        """,
        perturbed="inputs: {target: [[0.25, 0.25, 0.5]]}",
        quantity="grad:logits",
        alter=add(0.01, at=0),
    ),
    Example(
        "tf-keras-binary-losses-average-the-last-axis",
        "tf-keras",
        "tf_keras.losses.BinaryCrossentropy(from_logits=True)",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: [[0.5, -1.0], [2.0, 0.25]], target: [[0.0, 1.0], [1.0, 1.0]]}
        params: {reduction: sum}
        """,
        perturbed="inputs: {logits: [[0.5], [2.0]], target: [[0.0], [1.0]]}",
        alter=add(0.05),
    ),
    Example(
        "tf-keras-kl-sums-over-the-class-axis",
        "tf-keras",
        "tf_keras.losses.KLDivergence()(target,exp(input))",
        f"""
        loss: kl_divergence
        inputs: {{input: {KL_INPUT}, target: [[0.2, 0.5, 0.3]]}}
        params: {{reduction: mean}}
        """,
        perturbed="params: {reduction: sum}",
        alter=add(0.05),
    ),
    Example(
        "tf-keras-mean-divides-by-element-count",
        "tf-keras",
        "tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)+sample_weight=weight[target]",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 0], weight: [1.0, 2.0, 3.0]}}
        params: {{reduction: mean}}
        """,
        perturbed="inputs: {weight: [1.0, 1.0, 1.0]}",
        alter=add(0.05),
    ),
    Example(
        "tf-keras-one-hot-zero-row-for-bad-label",
        "tf-keras",
        "tf_keras.losses.CategoricalCrossentropy(from_logits=True)+one_hot(target)",
        f"""
        loss: softmax_cross_entropy
        inputs: {{logits: {LOGITS}, target: [2, 3]}}
        params: {{label_smoothing: 0.125}}
        expect_error: true
        """,
        perturbed="{inputs: {target: [2, 1]}, expect_error: false}",
    ),
    Example(
        "tf-keras-sparse-xent-checks-masked-labels",
        "tf-keras",
        "tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True,ignore_class)+sample_weight=mask",
        """
        loss: token_cross_entropy
        inputs:
          logits: [[[0.2, 0.3, 0.5, 0.1], [1.0, 0.5, -1.0, 0.0], [0.3, 0.1, 0.2, 0.4]]]
          target: [[1, 7, 2]]
          mask: [[1, 0, 1]]
        """,
        perturbed="inputs: {target: [[1, 3, 2]]}",
        alter=error_text("InvalidArgumentError: some other failure"),
    ),
    Example(
        "tf-keras-binary-losses-empty-last-axis",
        "tf-keras",
        "tf_keras.losses.binary_crossentropy(from_logits=True)",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: [], target: []}
        params: {reduction: none}
        """,
        perturbed="inputs: {logits: [[0.5, 1.0]], target: [[1.0, 0.0]]}",
        alter=finite(0.5),
    ),
    Example(
        "tf-keras-binary-losses-need-a-last-axis",
        "tf-keras",
        "tf_keras.losses.binary_crossentropy(from_logits=True)",
        """
        loss: binary_cross_entropy_with_logits
        inputs: {logits: 2.0, target: 1.0}
        params: {reduction: mean}
        """,
        perturbed="inputs: {logits: [2.0], target: [1.0]}",
        alter=error_text("InvalidArgumentError: logits and labels must have the same shape"),
    ),
    Example(
        "tf-keras-empty-mean-is-zero",
        "tf-keras",
        "tf_keras.losses.CategoricalCrossentropy",
        """
        loss: categorical_cross_entropy
        inputs: {probs: {fill: 0.2, shape: [0, 5]}, target: {fill: 0.2, shape: [0, 5]}}
        params: {reduction: mean}
        """,
        perturbed="inputs: {probs: {fill: 0.2, shape: [1, 5]}, target: {fill: 0.2, shape: [1, 5]}}",
        alter=finite(1.5),
    ),
    Example(
        "tf-keras-binary-crossentropy-epsilon-after-clip",
        "tf-keras",
        "tf_keras.losses.BinaryCrossentropy",
        """
        loss: binary_cross_entropy
        inputs: {probs: [[0.25, 0.75], [0.5, 0.875]], target: [[0.0, 1.0], [1.0, 1.0]]}
        params: {reduction: mean}
        """,
        perturbed="dtypes: [float32]",
        alter=add(1e-4),
    ),
]
