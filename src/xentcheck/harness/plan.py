"""What a run covers: the selected cases, their instances in a fixed order, shards.

The runner and every worker build the same instance list from the same options, so an
instance is named by its index in it (the protocol between them, and the resume state).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from xentcheck.harness.cases import Case, Instance, expand


def select_cases(cases: Iterable[Case], skip_tags: Iterable[str] = ()) -> list[Case]:
    """The cases carrying none of ``skip_tags``."""
    skip = set(skip_tags)
    return [c for c in cases if not skip.intersection(c.tags)]


def instances_of(cases: Iterable[Case]) -> list[Instance]:
    """Every instance of ``cases`` in file and sweep order."""
    return [i for c in cases for i in expand(c)]


def runs_case(case_tags: frozenset[str] | None, case: Case) -> bool:
    """Whether a framework with ``Framework.case_tags`` runs ``case`` (None: every case)."""
    return case_tags is None or bool(case_tags.intersection(case.tags))


def shard_counts(n_frameworks: int, jobs: int) -> list[int]:
    """Shards per framework for ``jobs`` workers: one each, more when jobs exceed frameworks."""
    if jobs <= n_frameworks:
        return [1] * n_frameworks
    base, extra = divmod(jobs, n_frameworks)
    return [base + (k < extra) for k in range(n_frameworks)]


def interleave(indices: Sequence[int], shards: int) -> list[list[int]]:
    """Split ``indices`` into ``shards`` interleaved lists (k, k+s, k+2s, ...) to balance."""
    return [list(indices[k::shards]) for k in range(shards) if indices[k::shards]]
