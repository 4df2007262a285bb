"""``xentcheck run --shard I/N`` in real runs of torch and ONNX Runtime: the N shards
together are the whole run, row for row.

Both frameworks are cheap on CPU. The runs cover four shipped case files (22 instances:
activations with findings, a worked example with ``expected`` values and an error case, so
the reference's own rows are sharded too) for N in 1, 2, 3 and 5. The shards compose with
the rest of ``run``: N = 2 computes into a result cache, from which N = 5, N = 1 and two
shards of N = 3 take every row (no worker starts); the second shard of N = 3 computes
without the cache with ``--jobs 4`` (each framework split again inside the process);
``--framework``, ``--skip-tag`` and ``--tag`` narrow a sharded run as they narrow a whole
one; an interrupted shard finishes with ``--resume``. The shard rule itself, without a
framework, is checked in ``test_shard.py``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.harness.test_shard import (
    IDENTITY,
    TIMING,
    make_cases,
    rows_of,
    run_args,
    same_rows,
    xentcheck,
)
from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.merge import read
from xentcheck.harness.plan import Shard
from xentcheck.harness.results import read_results

pytestmark = [pytest.mark.torch, pytest.mark.onnxruntime]

FRAMEWORKS = ("torch", "onnxruntime")


def both(cases: Path, out: Path, *extra: str) -> list[str]:
    """``run`` arguments for both frameworks."""
    return run_args(cases, out, *extra, frameworks=FRAMEWORKS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The whole run, and the shards of N = 1, 2, 3, 5, of torch and ONNX Runtime."""
    for fw in FRAMEWORKS:
        pytest.importorskip(fw, reason=f"{fw} is not installed")
    d = tmp_path_factory.mktemp("shards")
    cases = make_cases(d / "cases")
    cache = str(d / "cache")
    xentcheck(*both(cases, d / "full.jsonl", "--no-cache", "--jobs", "2"))
    shards: dict[int, list[Path]] = {}
    for n, i in [
        (2, 1),
        (2, 2),
        (3, 1),
        (3, 2),
        (3, 3),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (1, 1),
    ]:
        out = d / f"shard-{i}-of-{n}.jsonl"
        how = ["--no-cache", "--jobs", "4"] if (n, i) == (3, 2) else ["--cache-dir", cache]
        xentcheck(*both(cases, out, "--shard", f"{i}/{n}", *how))
        shards.setdefault(n, []).append(out)
    return d, cases, shards


def test_the_n_shards_together_are_the_whole_run_row_for_row(runs):
    d, _, shards = runs
    full = rows_of(d / "full.jsonl")
    assert {r["framework"] for r in full} == {*FRAMEWORKS, "reference"}
    for n, files in shards.items():
        parts = [rows_of(f) for f in files]
        union = [r for p in parts for r in p]
        assert same_rows(union, full), n
        keys = [{tuple(r[k] for k in IDENTITY) for r in p} for p in parts]
        for a, b in itertools.combinations(keys, 2):
            assert not a & b  # disjoint: no instance in two shards, reference rows included
        for i, f in enumerate(files, 1):
            header = read_results(f)[0][0]
            assert header["shard"] == {"index": i, "count": n} and header["tags"] == []
        # merged as the report and findings merge them, they are the whole run again
        merged = read(files)
        assert same_rows(
            [{k: v for k, v in r.items() if k not in TIMING} for r in merged.rows], full
        )
        assert len(merged.runs) == 1 and merged.runs[0].shards == list(range(1, n + 1))
        assert merged.runs[0].missing == [] and merged.duplicates == 0
    # N = 3 split 22 instances into three non-empty shards
    assert all(rows_of(f) for f in shards[3])


def test_shards_take_their_rows_from_a_cache_filled_by_other_shards(runs):
    _, _, shards = runs
    for f in [*shards[5], *shards[1], shards[3][0], shards[3][2]]:  # N = 2 filled the cache
        header, rows = read_results(f)
        reference = sum(r["framework"] == "reference" for r in rows)
        assert header[0]["cache"]["reused_rows"] == len(rows) - reference > 0, f.name
        assert all(fw["timing"]["instances"] == 0 for fw in header[0]["frameworks"].values())


def test_a_shard_narrowed_by_framework_skip_tag_and_tag(runs, tmp_path):
    d, cases, shards = runs
    full = rows_of(d / "full.jsonl")
    cache = str(d / "cache")
    smoke = {c.key for c in load_cases([str(cases)]) if "gpu-smoke" in c.tags}
    assert smoke and len(smoke) < len(load_cases([str(cases)]))
    for how, keep in (
        (["--skip-tag", "gpu-smoke"], lambda r: r["case"] not in smoke),
        (["--tag", "gpu-smoke", "--tag", "worked-example"],
         lambda r: r["case"] in smoke or "worked-example" in (r.get("tags") or [])),
    ):  # fmt: skip
        parts = []
        for i in (1, 2):
            out = tmp_path / f"narrow-{i}.jsonl"
            xentcheck(*both(cases, out, "--shard", f"{i}/2", "--cache-dir", cache, *how))
            header, _ = read_results(out)
            assert header[0]["shard"] == {"index": i, "count": 2}
            parts += rows_of(out)
        assert same_rows(parts, [r for r in full if keep(r)]), how
        if how[0] == "--tag":
            assert read_results(out)[0][0]["tags"] == ["gpu-smoke", "worked-example"]
    out = tmp_path / "torch-only.jsonl"
    xentcheck(*run_args(cases, out, "--shard", "2/2", "--cache-dir", cache, frameworks=("torch",)))
    second = rows_of(shards[2][1])
    assert same_rows(rows_of(out), [r for r in second if r["framework"] in ("torch", "reference")])


def test_an_interrupted_shard_finishes_with_resume_and_another_shard_is_refused(runs, tmp_path):
    """The run is stopped in-process at once (the deadline fuzz uses, the same path as
    Ctrl-C), then finished by the command line with ``--resume``."""
    from xentcheck.harness.runner import Interrupted, run

    d, cases, shards = runs
    out = tmp_path / "resumed.jsonl"
    paths = [str(cases)]
    with pytest.raises(Interrupted):
        run(list(FRAMEWORKS), paths, load_cases(paths), None, "all", out, jobs=2, quiet=True,
            shard=Shard(2, 3), deadline=time.monotonic())  # fmt: skip
    assert out.with_name(out.name + ".parts").is_dir()
    refused = xentcheck(*both(cases, out, "--shard", "1/3", "--no-cache", "--resume"), check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "different shard ('2/3', now '1/3')" in refused.stderr
    # what the stop left undone comes from the cache (the parts keep what finished)
    xentcheck(*both(cases, out, "--shard", "2/3", "--cache-dir", str(d / "cache"), "--resume"))
    assert same_rows(rows_of(out), rows_of(shards[3][1]))


def test_every_case_of_the_folder_is_in_some_shard(runs):
    _, cases, shards = runs
    names = {i.name for c in load_cases([str(cases)]) for i in expand(c)}
    seen = [{r["instance"] for r in rows_of(f)} for f in shards[5]]
    assert set().union(*seen) == names
