"""``xentcheck run --shard I/N`` and ``--tag``: a fixed 1/N of the instances.

The shard rule (:mod:`xentcheck.harness.plan`) is checked on the shipped suite: balanced,
and stable when cases are added, removed or reordered; bad ``--shard`` and ``--tag``
values are one-line errors. Real sharded runs, whose N shards together are the whole run
row for row, are in ``test_shard_runs.py``; the helpers here serve them and the merge
tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from xentcheck.cli import main
from xentcheck.harness.cases import load_cases, shipped_suite
from xentcheck.harness.plan import Shard, chosen, instances_of, shard_of
from xentcheck.harness.results import read_results

#: shipped case files of the small real runs (loss/file, as the suite names them)
CASE_FILES = (
    "sigmoid/basic.yaml",
    "log_sigmoid/basic.yaml",
    "softmax_cross_entropy/worked_examples.yaml",
    "softmax/errors.yaml",
)
#: fields that legitimately differ between two runs of the same rows
TIMING = ("elapsed_s", "compile_s")
IDENTITY = ("framework", "instance", "api", "device", "dtype", "quantity")


def make_cases(folder: Path, files: tuple[str, ...] = CASE_FILES) -> Path:
    """A case folder holding copies of shipped case files (keys stay ``loss/file/id``)."""
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shipped_suite() / name, folder / name)
    return folder


def xentcheck(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The installed command line in a child process, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "xentcheck", *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_args(cases: Path, out: Path, *extra: str, frameworks: tuple[str, ...]) -> list[str]:
    fws = [a for fw in frameworks for a in ("--framework", fw)]
    return ["run", *fws, "--cases", str(cases), "--out", str(out), "--fail-on", "never",
            "--quiet", *extra]  # fmt: skip


def rows_of(path: Path) -> list[dict]:
    """The rows of a results file without their timings."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_results(path)[1]]


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Whether two lists hold the same rows (as a multiset: shards come in another order)."""
    dump = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    return Counter(map(dump, a)) == Counter(map(dump, b))


# ---------------------------------------------------------------- the rule, no framework


@pytest.mark.torch
def test_bad_shards_and_tags_are_one_line_and_exit_2(capsys, tmp_path):
    cases = make_cases(tmp_path / "cases", CASE_FILES[:1])
    for bad in ("0/3", "4/3", "a/b", "3/0", "1/2/3", ""):
        code = main(run_args(cases, tmp_path / "r.jsonl", "--shard", bad, frameworks=("torch",)))
        err = capsys.readouterr().err
        assert (
            code == 2
            and err.startswith(f"xentcheck: error: --shard {bad}")
            and err.count("\n") == 1
        ), err
    code = main(
        run_args(cases, tmp_path / "r.jsonl", "--tag", "no-such-tag", frameworks=("torch",))
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        "xentcheck: error: --tag no-such-tag: no case carries it (the cases' tags: "
    )
    assert not (tmp_path / "r.jsonl").exists()  # nothing ran


def test_shard_parse_and_header_form():
    s = Shard.parse("2/3")
    assert (s.index, s.count, str(s), s.to_json()) == (2, 3, "2/3", {"index": 2, "count": 3})
    assert Shard.parse("1/1") == Shard(1, 1)


def test_shards_of_the_shipped_suite_are_balanced_and_deal_each_sweep_evenly():
    instances = instances_of(load_cases([str(shipped_suite())]))
    for n in (2, 3, 5):
        sizes = Counter(shard_of(instances, n))
        assert sorted(sizes) == list(range(1, n + 1))
        assert max(sizes.values()) <= 1.15 * min(sizes.values()), (n, sizes)
        # a case of n sweep points or more has one in every shard, within one of even
        by_case: dict[str, Counter] = {}
        for inst, k in zip(instances, shard_of(instances, n), strict=True):
            by_case.setdefault(inst.case.key, Counter())[k] += 1
        for key, c in by_case.items():
            if sum(c.values()) >= n:
                assert len(c) == n and max(c.values()) - min(c.values()) <= 1, (key, c)


def test_a_shard_does_not_move_when_other_cases_are_added_removed_or_reordered():
    cases = load_cases([str(shipped_suite())])
    whole = {
        i.name: k
        for i, k in zip(instances_of(cases), shard_of(instances_of(cases), 3), strict=True)
    }
    kept = cases[::2][::-1]  # half the cases, in reverse order
    part = instances_of(kept)
    assert all(whole[i.name] == k for i, k in zip(part, shard_of(part, 3), strict=True))
    # the shards of N partition any selection: disjoint, and together all of it
    picked = [set(chosen(part, (), Shard(i, 3))) for i in (1, 2, 3)]
    assert sum(map(len, picked)) == len(part) == len(set().union(*picked))
