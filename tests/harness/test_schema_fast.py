"""The per-loss validators accept exactly what the whole case schema accepts.

``schema.check_case`` asks a case naming a known loss of that loss's own validator first
(``_loss_validator``: the loss dispatch resolved, references inlined) and goes through the
whole schema only when it rejects the case; so a case the fast validator accepts must be
one the whole schema accepts, and, for the error messages to stay where they were, every
case it rejects must be one the schema rejects. Checked on every shipped case and on
hypothesis-edited copies of them (values swapped for other types, other losses'
inputs, generators and parameters, keys dropped and added).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xentcheck.harness import schema
from xentcheck.harness.cases import load_cases
from xentcheck.harness.errors import CaseError
from xentcheck.harness.generators import GENERATORS
from xentcheck.harness.yamlnodes import load_located
from xentcheck.reference import LOSSES

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "cases").rglob("*.yaml"))


def _plain(node: Any) -> Any:
    """A located YAML node as plain dicts and lists (NaN and infinities kept)."""
    return json.loads(json.dumps(node))


def _merged_cases() -> list[dict[str, Any]]:
    """Every shipped case with its file's defaults merged in, as ``load_file`` merges them."""
    out = []
    for path in SHIPPED:
        doc = load_located(path.read_text("utf-8"), str(path))
        defaults = doc.get("defaults") or {}
        out += [_plain({**defaults, **case}) for case in doc["cases"]]
    return out


CASES = _merged_cases()
FULL = schema._validator("resolved_case")


def _agree(case: Any) -> bool | None:
    """Whether the case's loss validator and the whole schema agree (None: no known loss)."""
    loss = case.get("loss") if isinstance(case, dict) else None
    if not isinstance(loss, str) or loss not in LOSSES:
        return None
    return schema._loss_validator(loss).is_valid(case) == FULL.is_valid(case)


def test_every_shipped_case_is_accepted_by_its_loss_validator():
    assert len(CASES) > 100
    for case in CASES:
        assert schema._loss_validator(case["loss"]).is_valid(case), case["id"]


VALUES = [
    None, True, 0, -1, 1.5, float("nan"), "x", "mean", "float16", "float8", [], {}, [1, 2],
    [[1.0, 2.0], [3.0]], ["a"], {"a": 1}, {"fill": 1.0, "shape": [2]}, {"fill": "x"},
    {"random": "normal", "shape": [2, 3]}, {"random": "labels", "shape": [2], "classes": 3},
    {"random": "labels", "shape": [2]}, {"random": "nope", "shape": [2]},
    {"random": "normal", "shape": [2], "classes": 3}, {"rtol": 1e-3}, {"ulp": 4},
    {"float32": {"rtol": 1e-3}}, {"value": 1.0}, {"reduction": "sum"}, {"reduction": ["none"]},
    *LOSSES, *GENERATORS,
]  # fmt: skip


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path of keys and indices into ``node`` (the node itself first)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):
            out += _paths(v, (*prefix, i))
    return out


def _edit(case: dict[str, Any], frac: float, how: str, value: Any, key: str) -> None:
    paths = [p for p in _paths(case) if p]
    path = paths[min(int(frac * len(paths)), len(paths) - 1)]
    parent = case
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "set":
        parent[last] = copy.deepcopy(value)
    elif how == "drop" and isinstance(parent, dict):
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[key] = copy.deepcopy(value)


KEYS = ["loss", "inputs", "params", "dtypes", "tags", "expected", "tolerance", "random",
        "shape", "seed", "fill", "classes", "logits", "target", "weight", "reduction", "x"]  # fmt: skip
edit = st.tuples(
    st.floats(0, 1, exclude_max=True),
    st.sampled_from(["set", "drop", "add"]),
    st.sampled_from(VALUES),
    st.sampled_from(KEYS),
)


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(base=st.sampled_from(CASES), edits=st.lists(edit, min_size=1, max_size=4),
       loss=st.sampled_from([None, *LOSSES]))  # fmt: skip
def test_edited_cases_get_the_same_verdict(base, edits, loss):
    case = copy.deepcopy(base)
    if loss is not None:  # another loss's case: its inputs and parameters may not fit
        case["loss"] = loss
    for e in edits:
        if case:
            _edit(case, *e)
    assert _agree(case) in (True, None)


def test_a_rejected_case_still_gets_the_whole_schemas_message(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "cases:\n  - id: a\n    loss: softmax_cross_entropy\n"
        "    inputs: {logits: [[1.0, 2.0]], target: [1]}\n    params: {reduction: bogus}\n"
    )
    with pytest.raises(CaseError, match=r"c\.yaml:5: cases\[0\]\.params\.reduction: unknown"):
        load_cases([p])
