"""What a run covers: the selected cases, their instances in a fixed order, shards.

The runner and every worker build the same instance list from the same options, so an
instance is named by its index in it (the protocol between them, and the resume state).
``--tag`` and ``--shard`` choose indices of that list (:func:`chosen`): the workers are
given the chosen indices and never need to know why.

A run's shard ``I/N`` (:class:`Shard`) holds, of each case, the sweep points ``j`` with
``(offset(case) + j) mod N == I - 1``, where ``offset`` is the first 8 bytes of the SHA-256
of the case's key (``<file stem>/<id>``) and ``j`` the point's position in the case's own
sweep. So every case's sweep is dealt evenly over the shards (a case of N points or more
has one in each), cases of fewer points land on shards picked by their key, and the shard
of a point depends on nothing but its case's key and sweep: adding, removing, moving or
reordering other cases or files moves no instance to another shard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


_SHARD = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as ``--shard I/N`` writes it)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with ``1 <= I <= N``; ValueError (one line, with the fix) otherwise."""
        m = _SHARD.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"--shard {text}: write it as I/N, e.g. 2/3 (shard 2 of 3)")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or not 1 <= index <= count:
            raise ValueError(
                f"--shard {text}: I must be between 1 and N (N at least 1), e.g. 1/{max(count, 1)}"
            )
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        """What a run header records: ``{"index": I, "count": N}``."""
        return {"index": self.index, "count": self.count}


def case_offset(case_key: str) -> int:
    """The stable offset of a case in the shard rotation (first 8 bytes of SHA-256 of its key)."""
    return int.from_bytes(hashlib.sha256(case_key.encode("utf-8")).digest()[:8], "big")


def shard_of(instances: Sequence[Instance], count: int) -> list[int]:
    """The 1-based shard of each of ``instances`` among ``count`` (see the module docstring)."""
    position: dict[str, int] = {}
    out = []
    for inst in instances:
        key = inst.case.key
        j = position.get(key, 0)
        position[key] = j + 1
        out.append((case_offset(key) + j) % count + 1)
    return out


def chosen(
    instances: Sequence[Instance], tags: Iterable[str] = (), shard: Shard | None = None
) -> list[int]:
    """Indices of ``instances`` whose case carries one of ``tags`` (every case when none)
    and that fall in ``shard`` (all when None), in instance order."""
    wanted = set(tags)
    of = shard_of(instances, shard.count) if shard is not None else None
    return [
        n for n, inst in enumerate(instances)
        if (not wanted or wanted.intersection(inst.case.tags))
        and (of is None or of[n] == shard.index)
    ]  # fmt: skip


def shard_json(shard: Any) -> Shard | None:
    """The :class:`Shard` a run header records (``{"index", "count"}``), None when it
    records none or something else."""
    if isinstance(shard, dict):
        i, n = shard.get("index"), shard.get("count")
        if type(i) is int and type(n) is int and 1 <= i <= n:
            return Shard(i, n)
    return None
