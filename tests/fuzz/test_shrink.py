"""Shrinking fuzz cases without frameworks: every candidate is a valid, smaller case that
the reference judges as it judges the original, and a greedy loop with a planted
predicate reaches a case of a few elements."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from xentcheck.fuzz.shrink import (
    MAX_CANDIDATES,
    MAX_MATERIALISED,
    simplifications,
    size,
    value_cost,
)
from xentcheck.harness.cases import expand, load_file
from xentcheck.harness.generators import generate
from xentcheck.reference import LOSSES

INF, NAN = math.inf, math.nan


def case(loss: str, inputs: dict[str, Any], dtype: str = "float32", **fields: Any) -> dict:
    """A fuzz case dict (the fields the fuzzer writes)."""
    out = {"id": "f0001", "loss": loss, "description": "hand-written", "inputs": inputs,
           "dtypes": [dtype], "tags": ["found-by-fuzz"], **fields}  # fmt: skip
    return out


def gen(kind: str, shape: list[int], seed: int = 7, **options: Any) -> dict:
    return {"random": kind, "shape": shape, "seed": seed, **options}


# Hand-written cases of every loss of the registry: literals, generators (small and
# large), fills, K-dimensional and unbatched shapes, class indices with ignore_index in
# and out of range, optional inputs, non-finite values, every dtype, rejected inputs.
CASES: dict[str, list[dict]] = {
    "softmax_cross_entropy": [
        case(
            "softmax_cross_entropy",
            {
                "logits": [[1.5, -2.25, 3.0], [0.1, 57.3, 2.0], [0.7, 0.2, -INF]],
                "target": [2, -100, 1],
                "weight": [0.5, 1.0, 2.0],
            },
            params={"ignore_index": -100, "reduction": "sum"},
        ),
        case(
            "softmax_cross_entropy",
            {
                "logits": [[0.3, 1.7, -0.4], [2.5, 0.0, 1.25], [9.0, -3.5, 0.125]],
                "target": [0, 2, 1],
            },
            dtype="float64",
            params={"ignore_index": 1, "label_smoothing": 0.1},
        ),
        case(
            "softmax_cross_entropy",
            {
                "logits": [
                    [[0.5, 1.5], [2.5, -1.0], [0.0, 3.3]],
                    [[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]],
                ],
                "target": [[0, 2], [1, 1]],
            },
            params={"reduction": "none"},
        ),
        case(
            "softmax_cross_entropy",
            {"logits": [[0.2, 0.3, 0.5, 0.1]], "target": [[0.25, 0.25, 0.5, 0.0]]},
        ),
        case(
            "softmax_cross_entropy",
            {
                "logits": gen("normal", [16, 40], scale=30.0),
                "target": gen("labels", [16], classes=40),
                "weight": gen("uniform", [40], low=0.5, high=2.0),
            },
        ),
        case(
            "softmax_cross_entropy",
            {
                "logits": gen("normal", [4, 3]),
                "target": gen("probabilities", [4, 3], seed=3, scale=5.0),
            },
            dtype="bfloat16",
        ),
        case(
            "softmax_cross_entropy",
            {"logits": [[1.0, 2.0], [3.0, 4.5]], "target": [0, 2]},
            expect_error=True,
        ),
    ],
    "categorical_cross_entropy": [
        case(
            "categorical_cross_entropy",
            {"probs": [[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]], "target": [2, 0]},
        ),
        case(
            "categorical_cross_entropy",
            {
                "probs": [[0.125, 0.875], [1.0, 0.0], [0.3, 0.7]],
                "target": [[0.0, 1.0], [0.5, 0.5], [0.3, 0.7]],
            },
            dtype="float16",
        ),
        case(
            "categorical_cross_entropy",
            {"probs": [[0.2, -0.3, 1.1], [0.4, 0.4, 0.2]], "target": [1, 0]},
            expect_error=True,
        ),
    ],
    "nll": [
        case(
            "nll",
            {
                "log_probs": [
                    [-1.2, -0.4, -2.7, -3.1],
                    [-0.01, -5.5, -6.25, -7.0],
                    [-2.0, -2.0, -0.3, -1.9],
                ],
                "target": [3, 0, 2],
                "weight": [1.0, 0.5, 0.25, 2.0],
            },
            params={"ignore_index": 0, "reduction": "mean"},
        ),
        case(
            "nll",
            {
                "log_probs": [[[-0.5], [-1.5], [-2.5]], [[-0.1], [-0.2], [-0.3]]],
                "target": [[1], [0]],
            },
            dtype="float64",
        ),
        case("nll", {"log_probs": [[-1.0, -2.0]], "target": [5]}, expect_error=True),
    ],
    "binary_cross_entropy": [
        case(
            "binary_cross_entropy",
            {
                "probs": [[0.1, 0.95, 0.333], [0.0, 1.0, 0.75]],
                "target": [[0.0, 1.0, 1.0], [0.0, 1.0, 0.5]],
                "weight": [0.5, 2.0, 1.5],
            },
            params={"reduction": "none"},
        ),
        case(
            "binary_cross_entropy", {"probs": [0.5, 1.25], "target": [1.0, 0.0]}, expect_error=True
        ),
        case("binary_cross_entropy", {"probs": [[], []], "target": [[], []]}),  # empty
    ],
    "binary_cross_entropy_with_logits": [
        case(
            "binary_cross_entropy_with_logits",
            {
                "logits": [[0.37, NAN, -1.61], [88.7, INF, -12.25]],
                "target": [[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]],
                "weight": [[2.0], [0.5]],
                "pos_weight": [1.0, 3.0, 0.25],
            },
            dtype="float16",
            params={"reduction": "sum"},
        ),
        case(
            "binary_cross_entropy_with_logits",
            {"logits": gen("normal", [300], scale=10.0), "target": gen("binary", [300], seed=2)},
            dtype="float64",
        ),
    ],
    "smoothed_binary_cross_entropy": [
        case(
            "smoothed_binary_cross_entropy",
            {"logits": [[1.23456, -7.5], [0.0, 3.1415926]], "target": [[1.0, 0.0], [0.5, 1.0]]},
            params={"label_smoothing": 0.1},
        ),
    ],
    "kl_divergence": [
        case(
            "kl_divergence",
            {"input": [[-1.2, -0.36], [-2.3, -0.1]], "target": [[0.3, 0.7], [0.9, 0.1]]},
            params={"reduction": "batchmean"},
        ),
        case(
            "kl_divergence",
            {"input": gen("normal", [3, 5]), "target": gen("normal", [3, 5], seed=8)},
            params={"log_target": True},
        ),
        case(
            "kl_divergence", {"input": [[-1.0, -2.0]], "target": [[-0.5, 1.5]]}, expect_error=True
        ),
    ],
    "sigmoid_focal_loss": [
        case(
            "sigmoid_focal_loss",
            {
                "logits": [[2.5, -0.75, 13.0], [-9.5, 0.1, 0.2]],
                "target": [[1.0, 0.0, 1.0], [0.0, 1.0, 0.25]],
            },
            params={"alpha": None, "gamma": 0.5},
        ),
        case("sigmoid_focal_loss", {"logits": [1.0], "target": [1.5]}, expect_error=True),
    ],
    "token_cross_entropy": [
        case(
            "token_cross_entropy",
            {
                "logits": [
                    [
                        [0.5, 1.5, -2.0, 0.25, 3.0],
                        [1.0, 1.0, 1.0, 1.0, 1.0],
                        [7.5, -7.5, 0.0, 2.2, 1.1],
                    ],
                    [
                        [0.3, 0.3, 0.4, 9.9, -1.0],
                        [2.0, 4.0, 8.0, 16.0, 32.0],
                        [0.0, 0.0, 0.0, 0.0, -INF],
                    ],
                ],
                "target": [[4, -100, 0], [3, 1, 2]],
                "mask": [[1, 1, 0], [1, 1, 1]],
            },
            params={"ignore_index": -100},
        ),
        case(
            "token_cross_entropy",
            {
                "logits": gen("normal", [4, 1000], scale=5.0),
                "target": gen("labels", [4], classes=1000),
            },
        ),
        case(
            "token_cross_entropy",
            {"logits": [[0.1, 0.2], [0.3, 0.4]], "target": [0, 2]},
            expect_error=True,
        ),
    ],
    "perplexity": [
        case(
            "perplexity",
            {
                "logits": [[0.1, 2.2, -0.3, 4.4], [1.5, -1.5, 0.5, 0.25], [3.0, 2.0, 1.0, 0.0]],
                "target": [3, 2, 1],
            },
            dtype="float64",
            params={"ignore_index": 2},
        ),
        case(
            "perplexity",
            {
                "logits": {"fill": 0.5, "shape": [2, 3]},
                "target": [0, 2],
                "mask": gen("mask", [2], keep=0.5),
            },
        ),
    ],
    "softmax": [
        case(
            "softmax",
            {
                "x": [
                    [[0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], [5.5, 6.5, 7.5, 8.5]],
                    [[-0.1, -0.2, -0.3, -0.4], [INF, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]],
                ]
            },
            params={"axis": 1},
        ),
    ],
    "log_softmax": [
        case("log_softmax", {"x": [-INF, 0.5, 1.75]}, dtype="float64", params={"axis": 0}),
        case("log_softmax", {"x": [[1.0, 2.0]]}, params={"axis": 2}, expect_error=True),
    ],
    "logsumexp": [
        case("logsumexp", {"x": [[1000.5, 999.25, 3.0], [-0.5, NAN, 2.0]]}, params={"axis": -2}),
        case("logsumexp", {"x": {"fill": 88.75, "shape": [3, 4]}}, dtype="bfloat16"),
    ],
    "sigmoid": [
        case("sigmoid", {"x": 3.7}),
        case("sigmoid", {"x": [NAN, -0.37, 1e-30, 45.125]}, dtype="float16"),
    ],
    "log_sigmoid": [
        case("log_sigmoid", {"x": gen("normal", [20, 20], scale=50.0)}),
    ],
}

ALL = [(loss, k) for loss in LOSSES for k in range(len(CASES.get(loss, [])))]


def load(path: Path, cases: list[dict]) -> list:
    """Write ``cases`` to a case file and load it (CaseError where one is invalid)."""
    path.write_text(yaml.safe_dump({"cases": cases}, sort_keys=False), encoding="utf-8")
    return load_file(path)


def key(c: dict) -> str:
    return json.dumps(c, sort_keys=True)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_has_hand_written_cases(loss, tmp_path):
    """A new loss in the registry fails here until it has cases (and a layout: below)."""
    assert CASES.get(loss), f"no hand-written shrinking case for {loss}"
    for c in CASES[loss]:
        assert c["loss"] == loss
    load(tmp_path / "cases.yaml", [{**c, "id": f"c{k}"} for k, c in enumerate(CASES[loss])])


@pytest.mark.parametrize(("loss", "index"), ALL)
def test_every_candidate_is_a_smaller_valid_case_judged_the_same(loss, index, tmp_path):
    original = CASES[loss][index]
    before = key(original)
    candidates = list(simplifications(original))
    assert key(original) == before, "simplifications changed its argument"
    assert 0 < len(candidates) <= MAX_CANDIDATES
    keys = [key(c) for c in candidates]
    assert len(set(keys)) == len(keys), "duplicate candidates"
    assert before not in keys
    for c in candidates:
        assert size(c) < size(original), c
        for field in ("id", "loss", "tags", "description"):
            assert c[field] == original[field]
        assert c.get("expect_error", False) == original.get("expect_error", False)
        assert len(c["dtypes"]) == 1
    # each loads as a valid case file: the loader asks the reference about every input at
    # the case's dtype, and refuses a rejected input without expect_error (and an accepted
    # one with it), so loading also holds each candidate to the original's verdict
    renamed = [{**c, "id": f"s{k}"} for k, c in enumerate(candidates)]
    loaded = load(tmp_path / "candidates.yaml", renamed)
    assert [x.expect_error for x in loaded] == [original.get("expect_error", False)] * len(loaded)


def first_shape(c: dict) -> tuple[int, ...]:
    raw = c["inputs"][LOSSES[c["loss"]].inputs[0].name]
    return tuple(raw["shape"]) if isinstance(raw, dict) else np.shape(raw)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_shrinks_its_structure(loss):
    """Every accepted case has candidates whose first input has fewer elements, and ones
    with fewer dimensions where it has more than one (rows, classes, axes go)."""
    for original in CASES.get(loss, []):
        if original.get("expect_error"):
            continue
        shape = first_shape(original)
        shapes = [first_shape(c) for c in simplifications(original)]
        if math.prod(shape) > 1:
            assert any(math.prod(s) < math.prod(shape) for s in shapes), original
        if len(shape) > 1:
            assert any(len(s) < len(shape) for s in shapes), original


def test_size_order():
    assert [value_cost(v) for v in (0.0, 1.0, -1.0, 2.0, 0.5, 12.0, 2.5)] == [0, 1, 1, 3, 3, 4, 4]
    assert value_cost(0.1) < value_cost(0.123) < value_cost(3.14159) < value_cost(0.1 + 0.2)
    assert value_cost(2.0**127) < value_cost(INF) == value_cost(NAN) < value_cost(0.123)
    base = case("sigmoid", {"x": [0.5, 1.0]})
    smaller = [
        case("sigmoid", {"x": [0.5]}),  # fewer elements
        case("sigmoid", {"x": [0.0, 1.0]}),  # simpler values
        case("sigmoid", {"x": [0.5, 1.0]}, dtype="float16"),  # lower dtype
    ]
    for c in smaller:
        assert size(c) < size(base)
    assert size(case("sigmoid", {"x": [0.5, 1.0]}, dtype="float64")) > size(base)
    generated = case("sigmoid", {"x": gen("normal", [2])})
    written = case("sigmoid", {"x": generate("normal", (2,), 7, {}).tolist()})
    assert size(written) < size(generated)
    batched = case("softmax_cross_entropy", {"logits": [[0.5, 1.0]], "target": [1]})
    unbatched = case("softmax_cross_entropy", {"logits": [0.5, 1.0], "target": 1})
    assert size(unbatched) < size(batched)
    with_default = case("sigmoid_focal_loss", {"logits": [1.0], "target": [1.0]},
                        params={"gamma": 2.0})  # fmt: skip
    assert size(case("sigmoid_focal_loss", {"logits": [1.0], "target": [1.0]})) < size(with_default)


def test_classes_dropped_with_renumbered_labels_and_ignore_index_kept():
    c = case("softmax_cross_entropy",
             {"logits": [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5], [6.5, 7.5, 8.5]],
              "target": [0, 2, 1], "weight": [0.25, 0.5, 0.75]},
             params={"ignore_index": 1})  # fmt: skip
    got = {key(x) for x in simplifications(c)}
    # class 0 dropped: class 1 (ignored) becomes 0, class 2 becomes 1; the label of the
    # dropped class becomes an existing class other than the ignored one
    want = case("softmax_cross_entropy",
                {"logits": [[1.5, 2.5], [4.5, 5.5], [7.5, 8.5]], "target": [1, 1, 0],
                 "weight": [0.5, 0.75]},
                params={"ignore_index": 0})  # fmt: skip
    assert key(want) in got
    # class 2 dropped: its label becomes class 0 (class 1 is the ignored one)
    want = case("softmax_cross_entropy",
                {"logits": [[0.5, 1.5], [3.5, 4.5], [6.5, 7.5]], "target": [0, 0, 1],
                 "weight": [0.25, 0.5]},
                params={"ignore_index": 1})  # fmt: skip
    assert key(want) in got
    # the ignored class itself is never dropped, and no candidate keeping the three rows
    # stops ignoring the third one or starts ignoring another
    for x in simplifications(c):
        ignore = (x.get("params") or {}).get("ignore_index")
        t = np.asarray(x["inputs"]["target"])
        if ignore is not None and t.shape == (3,):
            assert list(t == ignore) == [False, False, True], x


def test_out_of_range_labels_stay_out_of_range(tmp_path):
    c = case("nll", {"log_probs": [[-1.0, -2.0, -3.0, -4.0]], "target": [6]}, expect_error=True)
    shrunk = [x for x in simplifications(c) if np.shape(x["inputs"]["log_probs"]) == (1, 3)]
    assert shrunk and all(x["inputs"]["target"] == [5] for x in shrunk)


def test_unbatched_and_axis_parameter_moved():
    c = case("softmax_cross_entropy", {"logits": [[0.5, 1.5, 2.5]], "target": [2]})
    assert any(x["inputs"] == {"logits": [0.5, 1.5, 2.5], "target": 2} for x in simplifications(c))
    x3 = np.arange(24, dtype=float).reshape(2, 3, 4) / 8
    for axis in (1, -2):
        c = case("softmax", {"x": x3.tolist()}, params={"axis": axis})
        removed = [x for x in simplifications(c) if np.ndim(x["inputs"]["x"]) == 2]
        assert len(removed) == 2
        for x in removed:  # the axis softmax runs along is still the one of extent 3
            a = x["params"]["axis"]
            assert np.shape(x["inputs"]["x"])[a] == 3 and (a < 0) == (axis < 0)


def test_generators_shrink_then_become_literals():
    """A generator too large to write out takes a smaller shape; where the result is
    small enough, it is written out first, so the values that remain are the same."""
    big = case("softmax_cross_entropy",
               {"logits": gen("normal", [64, 1000]), "target": gen("labels", [64], classes=1000),
                "weight": gen("uniform", [1000])})  # fmt: skip
    z = generate("normal", (64, 1000), 7, {})
    t = generate("labels", (64,), 7, {"classes": 1000})
    out = list(simplifications(big))
    for x in out:  # nothing over the limit is written out
        for raw in x["inputs"].values():
            assert isinstance(raw, dict) or np.size(raw) <= MAX_MATERIALISED
    shapes = {
        tuple(x["inputs"]["logits"]["shape"]) for x in out if "random" in x["inputs"]["logits"]
    }
    assert shapes == {(64, 1000), (32, 1000), (64, 500), (1, 1000), (1000,)}
    literal = {
        np.shape(x["inputs"]["logits"]): x for x in out if isinstance(x["inputs"]["logits"], list)
    }
    assert literal[(64, 1)]["inputs"]["logits"] == z[:, :1].tolist()
    assert literal[(64, 1)]["inputs"]["target"] == [0] * 64
    assert literal[(1, 1)]["inputs"]["logits"] == [[z[0, 0]]]
    halved = next(x for x in out if isinstance(x["inputs"]["logits"], dict)
                  and x["inputs"]["logits"]["shape"] == [64, 500])  # fmt: skip
    assert halved["inputs"]["weight"]["shape"] == [500]
    assert halved["inputs"]["target"] == np.where(t < 500, t, 499).tolist()
    small = case("softmax_cross_entropy", {"logits": gen("normal", [4, 5]), "target": [1, 4, 0, 2]})
    want = generate("normal", (4, 5), 7, {}).tolist()
    assert any(x["inputs"]["logits"] == want for x in simplifications(small))


def test_non_finite_values_kept_until_last():
    c = case("sigmoid", {"x": [NAN, 0.37, -INF]})
    out = [x for x in simplifications(c) if np.shape(x["inputs"]["x"]) == (3,)]
    finite_first = [i for i, x in enumerate(out) if all(map(math.isfinite, x["inputs"]["x"]))]
    changed = [i for i, x in enumerate(out) if not math.isnan(x["inputs"]["x"][0])
               or x["inputs"]["x"][2] != -INF]  # fmt: skip
    assert not finite_first or finite_first[0] >= len(out) - 3
    assert any(x["inputs"]["x"] == [2.0**127, 0.37, -(2.0**127)] for x in out)
    zeros = [x for x in out if x["inputs"]["x"][1] == 0.0]
    assert zeros and all(math.isnan(x["inputs"]["x"][0]) for x in zeros)
    # every candidate that touches a non-finite value comes after the others
    assert changed == list(range(len(out) - len(changed), len(out)))


def test_at_most_the_cap_and_aggressive_first():
    c = case("sigmoid", {"x": (np.arange(200) * 0.37 + 0.01).tolist()})
    out = list(simplifications(c))
    assert len(out) == MAX_CANDIDATES
    assert [len(x["inputs"]["x"]) for x in out[:3]] == [1, 100, 100]


# ------------------------------------------------------------ greedy shrinking


def greedy(c: dict, holds, tmp_path: Path) -> tuple[dict, int]:
    """Take the first candidate that still shows the planted behaviour until none does;
    each kept step is loaded from a case file, as the harness would read it."""

    def shows(x: dict) -> bool:
        loaded = load(tmp_path / "step.yaml", [x])[0]
        return holds(loaded.inputs, next(expand(loaded)).params)

    assert shows(c)
    steps = 0
    while True:
        nxt = next((x for x in simplifications(c) if shows(x)), None)
        if nxt is None:
            return c, steps
        assert size(nxt) < size(c)
        c, steps = nxt, steps + 1


def mat(inputs) -> dict[str, np.ndarray]:
    return {k: np.asarray(d.materialise()) for k, d in inputs.items()}


def elements(c: dict) -> int:
    return size(c)[0]


def test_greedy_shrinks_a_large_target_logit_to_two_elements(tmp_path):
    """Planted: some row's logit of its target class is above 50 (e.g. a framework that
    clips large target logits). From 16 x 40 generated logits to one class and one row."""

    def holds(inputs, params):
        a = mat(inputs)
        z = (
            a["logits"].reshape(-1, a["logits"].shape[-1])
            if a["logits"].ndim > 1
            else a["logits"][None]
        )
        t = a["target"].reshape(-1).astype(int)
        return bool(np.any(z[np.arange(len(t)), t] > 50))

    start = CASES["softmax_cross_entropy"][4]
    end, steps = greedy(start, holds, tmp_path)
    assert elements(end) == 2, end  # logits [v] and one label: unbatched, one class
    assert "weight" not in end["inputs"]
    assert value_cost(float(np.ravel(end["inputs"]["logits"])[0])) <= 4, end  # e.g. 64.0
    assert steps >= 5


def test_greedy_shrinks_a_nan_to_one_element_per_input(tmp_path):
    """Planted: a NaN logit. The weights go, every axis goes, the target becomes 0."""

    def holds(inputs, params):
        return bool(np.isnan(mat(inputs)["logits"]).any())

    start = CASES["binary_cross_entropy_with_logits"][0]
    end, _ = greedy(start, holds, tmp_path)
    assert elements(end) == 2, end
    assert set(end["inputs"]) == {"logits", "target"}
    assert math.isnan(end["inputs"]["logits"]) and end["inputs"]["target"] == 0.0, end
    assert end["dtypes"] == ["float16"] and "params" not in end


def test_greedy_keeps_ignore_index_meaningful(tmp_path):
    """Planted: some token is ignored through an in-range ignore_index. Classes below it
    go, the index follows its class down to 0, and it is never reset to the default."""

    def holds(inputs, params):
        ignore = params.get("ignore_index")
        return ignore is not None and bool(np.any(mat(inputs)["target"] == ignore))

    inputs = {
        "logits": gen("normal", [3, 8, 6], scale=4.0),
        "target": gen("labels", [3, 8], classes=6, seed=5),
    }
    start = case("perplexity", inputs, params={"ignore_index": 3})
    end, _ = greedy(start, holds, tmp_path)
    assert elements(end) == 2, end  # logits [V=1], target: one label
    assert end["params"] == {"ignore_index": 0} and end["inputs"]["target"] == 0, end
