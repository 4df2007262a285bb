"""The fuzz search space without frameworks: every draw of every loss is a valid case file,
and the draws reach the regions the search is for (rejected inputs, edge values)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xentcheck.floats import FLOAT_FORMATS
from xentcheck.fuzz.space import LAYOUTS, ROLES, Chooser, draw_case
from xentcheck.fuzz.trials import case_text
from xentcheck.harness.cases import load_file
from xentcheck.reference import LOSSES

DRAWS = 40
DTYPES = ("float64", "float32", "float16", "bfloat16")
#: a fixed seed (not the clock): the same draws on every run
SEED = zlib.crc32(b"tests/fuzz/test_space.py")


def draw(loss: str, k: int, seed: int = SEED) -> dict[str, Any]:
    return draw_case(Chooser(np.random.default_rng([seed, k])), loss, DTYPES, f"d{k:03d}")


@pytest.fixture(scope="module")
def draws() -> dict[str, list[dict[str, Any]]]:
    """:data:`DRAWS` cases of every loss."""
    return {loss: [draw(loss, k) for k in range(DRAWS)] for loss in LOSSES}


def floats(x: Any) -> Iterator[float]:
    if isinstance(x, list):
        for v in x:
            yield from floats(v)
    elif isinstance(x, float):
        yield x


def edge_kinds(case: dict[str, Any]) -> set[str]:
    """Which of inf, nan and subnormal (in the case's dtype) the case's literals hold."""
    tiny = math.ldexp(1.0, FLOAT_FORMATS[case["dtypes"][0]][1])
    out = set()
    for v in (x for raw in case["inputs"].values() for x in floats(raw)):
        if math.isnan(v):
            out.add("nan")
        elif math.isinf(v):
            out.add("inf")
        elif 0 < abs(v) < tiny:
            out.add("subnormal")
    return out


def test_the_tables_cover_the_registry() -> None:
    assert set(LAYOUTS) == set(LOSSES)
    assert set(ROLES) == set(LOSSES)
    for loss, spec in LOSSES.items():
        assert set(ROLES[loss]) == {i.name for i in spec.inputs}, loss


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_draw_is_a_valid_case_file(
    loss: str, draws: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    for case in draws[loss]:
        assert case["loss"] == loss
        assert len(case["dtypes"]) == 1 and case["dtypes"][0] in DTYPES
        assert "found-by-fuzz" in case["tags"]
        file = tmp_path / f"{case['id']}.yaml"
        file.write_text(case_text([case]), encoding="utf-8")
        (loaded,) = load_file(file, tmp_path)  # checks expect_error against the reference too
        assert loaded.expect_error == bool(case.get("expect_error")), case


def test_draws_reach_rejected_inputs_and_edge_values(
    draws: dict[str, list[dict[str, Any]]],
) -> None:
    cases = [c for per_loss in draws.values() for c in per_loss]
    assert {bool(c.get("expect_error")) for c in cases} == {True, False}
    assert set().union(*map(edge_kinds, cases)) >= {"inf", "nan", "subnormal"}


def test_a_seed_draws_the_same_case_and_another_seed_another() -> None:
    def text(seed: int) -> list[str]:  # text: a NaN is not equal to itself
        return [case_text([draw(loss, 0, seed)]) for loss in LOSSES]

    assert text(SEED) == text(SEED)
    assert text(SEED) != text(SEED + 1)
