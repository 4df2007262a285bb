"""The vocabulary the known-difference predicates share: what each fact reads off a finding."""

from __future__ import annotations

import numpy as np
import pytest

from xentcheck.known import Finding
from xentcheck.known import facts as F
from xentcheck.reference import LOSSES


def finding(loss: str, inputs: dict, *, params=None, expected=None, actual=None, dtype="float64"):
    return Finding(
        "torch", "api", loss, {**LOSSES[loss].params, **(params or {})},
        {k: np.asarray(v) for k, v in inputs.items()}, dtype, "cpu", "value", "mismatch",
        None if expected is None else np.asarray(expected, dtype=np.float64),
        None if actual is None else np.asarray(actual, dtype=np.float64), None, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("loss", "name", "shape", "params", "axis", "classes"),
    [
        ("softmax_cross_entropy", "logits", (2, 3, 4), {}, 1, 3),
        ("softmax_cross_entropy", "logits", (5,), {}, -1, 5),
        ("nll", "log_probs", (2, 3), {}, 1, 3),
        ("categorical_cross_entropy", "probs", (4, 6), {}, 1, 6),
        ("kl_divergence", "input", (2, 3), {}, 1, 3),
        ("token_cross_entropy", "logits", (2, 3, 7), {}, -1, 7),
        ("perplexity", "logits", (2, 3, 7), {}, -1, 7),
        ("log_softmax", "x", (2, 3, 4), {"axis": 0}, 0, 2),
        ("logsumexp", "x", (2, 3, 4), {}, -1, 4),
    ],
)
def test_the_class_axis_of_each_kind_of_loss(loss, name, shape, params, axis, classes):
    f = finding(loss, {name: np.zeros(shape)}, params=params)
    assert F.first_input_name(f) == name
    assert (F.class_axis(f), F.num_classes(f)) == (axis, classes)


@pytest.mark.parametrize(
    ("loss", "shape"),
    [("softmax_cross_entropy", (2, 3, 4)), ("softmax_cross_entropy", (5,)),
     ("token_cross_entropy", (2, 3, 7)), ("nll", (4, 3))],
)  # fmt: skip
def test_rows_put_the_classes_last_and_from_rows_undoes_it(loss, shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    f = finding(loss, {LOSSES[loss].inputs[0].name: x})
    r = F.rows(f)
    c = F.num_classes(f)
    assert r.shape == (x.size // c, c)
    # row m holds the classes of the m-th label (C order over the non-class axes)
    first = np.take(x, 0, axis=F.class_axis(f)).ravel()
    np.testing.assert_array_equal(r[:, 0], first)
    np.testing.assert_array_equal(F.from_rows(f, r), x)
    np.testing.assert_array_equal(F.as_rows(f, x), r)


def test_labels_kept_ignored_masked_and_rejected():
    f = finding(
        "token_cross_entropy",
        {"logits": np.zeros((1, 5, 3)), "target": [[0, -1, 3, 2, 7]],
         "mask": [[True, True, True, False, False]]},
        params={"ignore_index": -1},
    )  # fmt: skip
    np.testing.assert_array_equal(F.labels(f), [0, -1, 3, 2, 7])
    np.testing.assert_array_equal(F.not_ignored(f), [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(F.unmasked(f), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(F.kept(f), [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(F.out_of_range(f), [0, 1, 1, 0, 1])
    np.testing.assert_array_equal(F.rejected_labels(f), [3])  # 7 is masked, -1 ignored
    assert F.integer_target(f)
    soft = finding("softmax_cross_entropy", {"logits": np.zeros((1, 3)), "target": [[0.5] * 3]})
    assert not F.integer_target(soft)
    assert not F.integer_target(finding("softmax", {"x": [1.0]}))


def test_without_ignore_index_or_mask_every_label_counts():
    f = finding("softmax_cross_entropy", {"logits": np.zeros((3, 2)), "target": [0, -100, 2]})
    np.testing.assert_array_equal(F.kept(f), [1, 1, 1])
    np.testing.assert_array_equal(F.rejected_labels(f), [-100, 2])


def test_differs_at_the_tolerance_and_on_the_nonfinite_pattern():
    e = [1.0, 2.0, np.nan, np.inf, 5.0]
    a = [1.0 + 1e-9, 2.1, np.nan, np.inf, np.nan]
    f = finding("softmax", {"x": np.zeros(5)}, expected=e, actual=a)
    np.testing.assert_array_equal(F.differs(f), [0, 1, 0, 0, 1])
    assert F.differs(finding("softmax", {"x": [0.0]}, expected=e)) is None
    np.testing.assert_array_equal(F.new_nan(f), [0, 0, 0, 0, 1])


def test_differs_only_where_the_mechanism_acts():
    e, a = [1.0, 2.0, 3.0], [1.0, np.nan, 3.0]
    f = finding("softmax", {"x": np.zeros(3)}, expected=e, actual=a)
    assert F.differs_only_where(f, [False, True, False], nan_only=True)
    assert not F.differs_only_where(f, [True, False, True])
    assert not F.differs_only_where(
        finding("softmax", {"x": np.zeros(3)}, expected=e, actual=[1.0, 2.5, 3.0]),
        [False, True, False],
        nan_only=True,
    )
    same = finding("softmax", {"x": np.zeros(3)}, expected=e, actual=e)
    assert not F.differs_only_where(same, [True, True, True])  # nothing differs
    scalar = finding("softmax", {"x": np.zeros(3)}, expected=1.0, actual=np.nan)
    assert F.differs_only_where(scalar, [False, True, False], nan_only=True)  # acts somewhere
    assert F.new_nan_only_where(f, np.array([False, True, False]))
    assert not F.new_nan_only_where(f, np.array([True, False, False]))
    assert not F.new_nan_only_where(f, np.array([True, True]))  # another shape
