"""The reference's argument checks are defined once: the loss functions and ``check``
raise the same words, and no module reaches into a sibling's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from xentcheck.reference import InputRejected, check, evaluate

REFERENCE = Path(__file__).resolve().parents[2] / "src" / "xentcheck" / "reference"

LOGITS = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -3.0]])
LABELS = np.array([2, 0])
PROBS = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])

#: (loss, inputs, params, the field check() names): inputs every loss function rejects
REJECTED = [
    ("sigmoid_focal_loss", {"logits": LOGITS, "target": PROBS}, {"gamma": -1}, "params.gamma"),
    ("sigmoid_focal_loss", {"logits": LOGITS, "target": PROBS}, {"alpha": np.nan}, "params.alpha"),
    ("nll", {"log_probs": LOGITS, "target": LABELS[:1]}, {}, "target"),
    ("nll", {"log_probs": LOGITS, "target": np.array([3, 0])}, {"ignore_index": 0}, "target"),
    ("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}, {"label_smoothing": 2}, "params.label_smoothing"),
    ("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS, "weight": [1.0]}, {}, "weight"),
    ("categorical_cross_entropy", {"probs": PROBS * 2, "target": LABELS}, {}, "probs"),
    ("binary_cross_entropy", {"probs": PROBS - 0.3, "target": PROBS}, {}, "probs"),
    ("kl_divergence", {"input": LOGITS, "target": -PROBS}, {}, "target"),
    ("logsumexp", {"x": LOGITS}, {"axis": 2}, "params.axis"),
    ("token_cross_entropy", {"logits": LOGITS, "target": np.array([0, 3])}, {}, "target"),
]  # fmt: skip


@pytest.mark.parametrize(("loss", "inputs", "params", "field"), REJECTED)
def test_check_raises_the_loss_functions_own_message(loss, inputs, params, field):
    with pytest.raises(ValueError) as computed:
        evaluate(loss, inputs, params)
    with pytest.raises(InputRejected) as checked:
        check(loss, inputs, params)
    assert str(checked.value) == str(computed.value)
    assert checked.value.field == field


def test_every_loss_rejects_an_unknown_reduction_in_the_same_words():
    words = set()
    for loss, inputs in [
        ("softmax_cross_entropy", {"logits": LOGITS, "target": LABELS}),
        ("nll", {"log_probs": LOGITS, "target": LABELS}),
        ("binary_cross_entropy", {"probs": PROBS, "target": PROBS}),
        ("sigmoid_focal_loss", {"logits": LOGITS, "target": PROBS}),
    ]:
        with pytest.raises(ValueError) as info:
            evaluate(loss, inputs, {"reduction": "avg"})
        words.add(str(info.value))
    assert words == {"unknown reduction 'avg'; use one of none, sum, mean"}


def _private_imports(path: Path) -> list[str]:
    """``module.name`` for every underscore name ``path`` imports from a module (private
    modules of the package, such as ``_dd``, are the package's own and may be imported)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xentcheck."):
            for a in node.names:
                is_module = (
                    node.module == "xentcheck.reference" and (REFERENCE / f"{a.name}.py").exists()
                )
                if a.name.startswith("_") and not is_module:
                    found.append(f"{node.module}.{a.name}")
    return found


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.py")), ids=lambda p: p.name)
def test_no_reference_module_imports_a_siblings_private_names(path):
    assert _private_imports(path) == []
