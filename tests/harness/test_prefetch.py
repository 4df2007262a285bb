"""While a worker imports its framework, the supervisor computes the goldens it will need
first (``Supervisor._prefetch``); the worker reads them, and the rows are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xentcheck.harness import supervisor
from xentcheck.harness.cases import load_cases
from xentcheck.harness.runner import run

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "cases" / "softmax_cross_entropy" / "basic.yaml"
DROP = ("elapsed_s", "compile_s")


def _run(tmp_path: Path, name: str, **options) -> tuple[list[dict], dict]:
    out = tmp_path / f"{name}.jsonl"
    rows = run(["torch"], [str(CASE)], load_cases([CASE]), ["float32", "float16"], "cpu", out,
               quiet=True, **options)  # fmt: skip
    header = json.loads(out.read_text().splitlines()[0])
    return [{k: v for k, v in r.items() if k not in DROP} for r in rows], header


@pytest.mark.torch
def test_a_starting_worker_reads_the_goldens_computed_meanwhile(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    rows, header = _run(tmp_path, "prefetched")
    timing = header["frameworks"]["torch"]["timing"]
    # torch's import takes the supervisor long enough for the first goldens at least
    assert timing["golden_hits"] > 0
    monkeypatch.setattr(supervisor.Supervisor, "_prefetch", lambda self, indices, ready: None)
    alone, header = _run(tmp_path, "alone")
    assert header["frameworks"]["torch"]["timing"]["golden_hits"] == 0
    assert rows == alone


@pytest.mark.torch
def test_with_a_golden_cache_the_goldens_go_there(tmp_path):
    pytest.importorskip("torch")
    goldens = tmp_path / "goldens"
    _, header = _run(tmp_path, "cached", golden_cache=goldens)
    assert header["frameworks"]["torch"]["timing"]["golden_hits"] > 0
    assert any(goldens.rglob("*.npz"))
    assert not (tmp_path / "cached.jsonl.parts").exists()


def test_option_values_reads_a_workers_arguments():
    args = ["--cases", "a", "--dtype", "float32", "--dtype", "float16", "--golden-cache", "g"]
    assert supervisor.option_values(args, "--dtype") == ["float32", "float16"]
    assert supervisor.option_values(args, "--golden-cache") == ["g"]
    assert supervisor.option_values(args, "--known") == []
