"""The fuzzing loop: search, shrink, check the reference, write.

The budget is split in fixed shares (:data:`SHARES`): search rounds until 50 % of it,
shrinking until 78 %, the rest to check the reference, run the written case files once
more and build their findings. Every phase stops at its deadline with what it has (a run in flight is cut,
its finished instances kept); Ctrl-C skips to writing what was found so far.

Repeatable: round ``r`` draws from ``numpy.random.default_rng([seed, r])`` with weights
that depend only on what rounds ``< r`` found, shrinking tries candidates in a fixed order,
so the same seed gives the same rounds and the same cases on the same versions; the budget
decides how many rounds fit (``--rounds N`` fixes that number too).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.findings.group import SEVERITY
from xentcheck.fuzz.shrink import simplifications, size
from xentcheck.fuzz.space import Chooser, draw_case
from xentcheck.fuzz.trials import Batch, Behaviour, Runner, behaviours
from xentcheck.reference import LOSSES

#: the budget's shares: search ends at the first, shrinking at the second
SHARES = (0.5, 0.78)
#: a feature's weight is doubled per new finding a case carrying it showed, up to this
MAX_WEIGHT = 16.0
#: cases one shrinking batch runs, all findings together, and simplifications per finding
SHRINK_BATCH = 192
PER_CANDIDATE = 8


@dataclass
class Options:
    """What ``xentcheck fuzz`` was asked (the command's options)."""

    frameworks: list[str]
    out_dir: Path
    losses: list[str] = field(default_factory=lambda: list(LOSSES))
    dtypes: list[str] = field(default_factory=lambda: list(FLOAT_DTYPES))
    device: str = "cpu"
    budget: float = 600.0
    seed: int = 0
    rounds: int | None = None
    jobs: int = 1
    criterion: str = "ulp"
    known_files: Sequence[str] = ()
    timeout: float = 60.0
    progress: TextIO | None = sys.stderr


@dataclass
class Candidate:
    """An unexplained finding the search turned up, and its case as shrunk so far."""

    behaviour: Behaviour  # the one that was new; shrinking keeps it
    behaviours: list[Behaviour]
    case: dict[str, Any]
    found_in: int  # the search round
    drawn_size: tuple
    batch: Batch  # the run that showed the current case
    case_id: str  # the current case's id in that run
    tried: int = 0  # simplifications of the current case tried without success
    done: bool = False

    @property
    def framework(self) -> str:
        return self.behaviour[0]


@dataclass
class Search:
    """What the loop did: candidates, rounds, counts, phase times."""

    candidates: list[Candidate] = field(default_factory=list)
    rounds: int = 0
    cases: int = 0
    shrink_batches: int = 0
    accepted: int = 0
    interrupted: str | None = None  # "ctrl-c" or None
    times: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)


def round_size(budget: float) -> int:
    """Cases per search round: larger rounds for larger budgets (fewer worker starts)."""
    return int(min(48, max(8, budget // 12)))


def _say(opts: Options, text: str) -> None:
    if opts.progress is not None:
        print(f"xentcheck fuzz: {text}", file=opts.progress, flush=True)


def _tally(cands: Iterable[Candidate]) -> str:
    counts = Counter(c.framework for c in cands)
    return ", ".join(f"{fw} {n}" for fw, n in sorted(counts.items())) or "none yet"


def search(opts: Options, runner: Runner, known: set[Behaviour], deadline: float,
           state: Search) -> None:  # fmt: skip
    """Search rounds until ``deadline`` (or ``opts.rounds``): every unexplained behaviour
    not in ``known`` becomes a candidate (and known)."""
    size_of_round = round_size(opts.budget)
    for r in itertools.count():
        if (opts.rounds is not None and r >= opts.rounds) or time.monotonic() >= deadline:
            return
        rng = np.random.default_rng([opts.seed, r])
        cases, features = [], {}
        for k in range(size_of_round):
            ch = Chooser(rng, state.weights)
            loss = ch.pick("loss", tuple(opts.losses))
            case = draw_case(ch, loss, opts.dtypes, f"r{r:03d}-{k:02d}")
            cases.append(case)
            features[case["id"]] = ch.features
        batch = runner.run(cases, deadline=deadline, name=f"round-{r:03d}")
        state.rounds, state.cases = r + 1, state.cases + len(cases)
        new = 0
        for case in cases:
            for g in batch.groups.get(case["id"], []):
                bs = behaviours(g)
                fresh = [b for b in bs if b not in known]
                if not fresh:
                    continue
                known.update(bs)
                state.candidates.append(
                    Candidate(fresh[0], bs, case, r, size(case), batch, case["id"])
                )
                new += 1
                for f in set(features[case["id"]]):  # once per case, however often chosen
                    state.weights[f] = min(MAX_WEIGHT, state.weights.get(f, 1.0) * 2)
        left = max(0.0, deadline - time.monotonic())
        _say(opts, f"round {r + 1}: {len(cases)} cases, {new} new; {len(state.candidates)} "
                   f"findings so far ({_tally(state.candidates)}); search ends in {left:.0f} s")  # fmt: skip
        if batch.interrupted:
            return


def shrink(opts: Options, runner: Runner, deadline: float, state: Search) -> None:
    """Shrink every candidate while it shows its behaviour, in batches, until ``deadline``
    or until no simplification of any candidate keeps it.

    A batch holds up to :data:`SHRINK_BATCH` cases: :data:`PER_CANDIDATE` simplifications
    each of the pending candidates, the most severe first, taking turns when they do not
    all fit; each runs on its framework and API only.
    """
    turn = 0
    for step in itertools.count():
        pending = sorted((c for c in state.candidates if not c.done),
                         key=lambda c: SEVERITY[c.behaviour[3]])  # fmt: skip
        if not pending or time.monotonic() >= deadline:
            return
        tries: list[tuple[Candidate, list[dict[str, Any]]]] = []
        taken = 0
        for n in range(len(pending)):
            if taken + PER_CANDIDATE > SHRINK_BATCH and tries:
                break
            c = pending[(turn + n) % len(pending)]
            props = list(
                itertools.islice(simplifications(c.case), c.tried, c.tried + PER_CANDIDATE)
            )
            if not props:
                c.done = True
                continue
            for k, p in enumerate(props):
                p["id"] = f"s{step:03d}-{n:03d}-{k:02d}"
            tries.append((c, props))
            taken += len(props)
        turn += len(tries)
        if not tries:
            continue
        only: dict[str, list[str]] = {}
        apis: dict[str, set[str]] = {}
        for c, props in tries:
            only.setdefault(c.framework, []).extend(p["id"] for p in props)
            apis.setdefault(c.framework, set()).add(c.behaviour[1])
        batch = runner.run([p for _, props in tries for p in props], deadline=deadline,
                           only=only, apis=apis, name=f"shrink-{step:03d}")  # fmt: skip
        state.shrink_batches += 1
        for c, props in tries:
            hit = next((p for p in props if batch.shows(p["id"], c.behaviour)), None)
            if hit is not None:
                c.case, c.batch, c.case_id, c.tried = (
                    {**hit, "id": c.case["id"]},
                    batch,
                    hit["id"],
                    0,
                )
                state.accepted += 1
            elif all(p["id"] in batch.rows for p in props):
                c.tried += len(props)
            # else: cut by the deadline before all ran; nothing is concluded
        if batch.interrupted:
            return
