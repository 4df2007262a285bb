"""``xentcheck fuzz``: find the discrepancies nobody wrote a case for, and write the case.

:func:`fuzz` draws cases from the whole space the registry describes
(:mod:`~xentcheck.fuzz.space`), runs them through the frameworks in supervised batches
and judges them as ``xentcheck run`` does (:mod:`~xentcheck.fuzz.trials`: the accuracy
criterion, the built-in and the user's known differences). Every unexplained behaviour
not in the baseline is a candidate; the search leans toward the features of the cases
that found them. Each candidate shrinks while it keeps its behaviour
(:mod:`~xentcheck.fuzz.shrink`, :func:`~xentcheck.fuzz.driver.shrink`). Before one is
reported, the reference is checked at its case against mpmath (:mod:`xentcheck.exact`):
a disagreement there is a **reference bug**, printed first, written to
``reference-bugs.json``, and never blamed on a framework. The rest is written
(:mod:`~xentcheck.fuzz.write`): ``cases/<finding-id>.yaml`` and ``findings.json``.
docs/fuzz.md is the user's page.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xentcheck.fuzz.checks import ReferenceChecks
from xentcheck.fuzz.driver import SHARES, Candidate, Options, Search, search, shrink
from xentcheck.fuzz.shrink import size
from xentcheck.fuzz.trials import Batch, Behaviour, Runner, finding_behaviours
from xentcheck.fuzz.write import (
    described,
    write_atomic,
    write_case,
    write_findings,
    write_reference_bugs,
)

Row = dict[str, Any]
#: after Ctrl-C, cases above this many input elements are written without the reference
#: check the background thread had not reached (``reference_checked: false``): it can take
#: seconds per row of a large vocabulary
QUICK_CHECK_ELEMENTS = 4096

__all__ = ["Options", "Outcome", "fuzz"]


@dataclass
class Outcome:
    """What a fuzz run wrote: the findings, the reference bugs, and how the search went."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    reference_bugs: list[dict[str, Any]] = field(default_factory=list)
    search: Search = field(default_factory=Search)
    wall_s: float = 0.0


def baseline_behaviours(baseline: tuple[list, list], known: Sequence[Any]) -> set[Behaviour]:
    """The behaviours of every finding of the baseline ``(headers, rows)`` (explained
    ones too)."""
    from xentcheck.findings import build

    headers, rows = baseline
    out: set[Behaviour] = set()
    for f in build(rows, headers, known=known, scripts=False):
        out.update(finding_behaviours(f))
    return out


def fuzz(
    opts: Options, known: Sequence[Any] = (), baseline: tuple[list, list] | None = None
) -> Outcome:
    """Run a fuzzing session (:class:`Options`); ``known``: the user's loaded entries
    (``opts.known_files`` are their files, for the workers); ``baseline``: ``(headers,
    rows)`` of a suite run (:func:`xentcheck.harness.results.read_runs`)."""
    t0 = time.monotonic()
    out = Outcome()
    state = out.search
    work = opts.out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    runner = Runner(list(opts.frameworks), opts.device, work, jobs=opts.jobs,
                    timeout=opts.timeout, criterion=opts.criterion,
                    known_files=list(opts.known_files))  # fmt: skip
    seen = baseline_behaviours(baseline, known) if baseline is not None else set()
    end = t0 + opts.budget
    checks = ReferenceChecks()
    try:
        search(opts, runner, seen, t0 + SHARES[0] * opts.budget, state)
        state.times["search_s"] = time.monotonic() - t0
        checks.start(lambda: [c.case for c in state.candidates])
        shrink(opts, runner, t0 + SHARES[1] * opts.budget, state)
        state.times["shrink_s"] = time.monotonic() - t0 - state.times["search_s"]
    except KeyboardInterrupt:
        state.interrupted = "ctrl-c"
    finally:
        checks.stop()
    _write(opts, runner, state, out, known, checks, end if state.interrupted is None else None)
    shutil.rmtree(work, ignore_errors=True)
    out.wall_s = time.monotonic() - t0
    return out


def _write(opts: Options, runner: Runner, state: Search, out: Outcome, known: Sequence[Any],
           checks: ReferenceChecks, deadline: float | None) -> None:  # fmt: skip
    """Check the reference at each candidate, write the case files, run them once more
    (unless interrupted: then the rows that found them serve) and write findings.json.

    A case file is named by the id a run of it alone gives: the final run runs every API
    (shrinking ran only the finding's), so a finding whose APIs turn out to be shared is
    renamed and run again; when time is short, the rows that found it serve instead
    (``reproduced`` false or null).
    """
    from xentcheck.findings import build

    t0 = time.monotonic()
    kept: list[tuple[Candidate, str]] = []
    unchecked: set[int] = set()  # after Ctrl-C, large cases the thread had not reached
    for c in state.candidates:
        bad = checks.known(c.case)
        if bad is None and deadline is None and size(c.case)[0] > QUICK_CHECK_ELEMENTS:
            unchecked.add(id(c))
            bad = []
        elif bad is None:
            bad = checks.of(c.case)
        if bad:
            bug = _reference_bug(opts, c, bad)
            if all(b["id"] != bug["id"] for b in out.reference_bugs):
                out.reference_bugs.append(bug)
            continue
        group = c.batch.group_showing(c.case_id, c.behaviour)
        if group is None:  # the batch kept with a candidate is the one that showed it
            raise RuntimeError(f"fuzz: {c.case_id} lost its behaviour {c.behaviour}")
        kept.append((c, _write_case(opts.out_dir, c.case, group)))
    state.times["reference_s"] = time.monotonic() - t0
    if out.reference_bugs:
        write_reference_bugs(opts.out_dir, out.reference_bugs)
    runs: list[Batch] = []
    if kept and deadline is not None:
        runs.append(_rerun(opts, runner, kept, deadline - _build_reserve(opts, len(kept))))
        renamed = []
        for k, (c, name) in enumerate(kept):
            g = runs[0].group_showing(_case_id(name), c.behaviour)
            if g is not None and _case_file_id(name) != g.id:
                (opts.out_dir / name).unlink()
                kept[k] = (c, _write_case(opts.out_dir, c.case, g))
                renamed.append(kept[k])
        if renamed and not runs[0].interrupted:
            runs.append(_rerun(opts, runner, renamed, deadline - _build_reserve(opts, len(kept))))
    state.times["final_run_s"] = time.monotonic() - t0 - state.times["reference_s"]
    rows: list[Row] = []
    headers: list[Row] = []
    where: dict[int, tuple[str, bool | None]] = {}  # candidate -> (its rows' case key, reproduced)
    for k, (c, name) in enumerate(kept):
        cid = _case_id(name)
        batch = next((b for b in reversed(runs) if b.shows(cid, c.behaviour)), None)
        ran = any(cid in b.rows for b in runs)  # a run cut by the deadline may not reach it
        reproduced: bool | None = True if batch is not None else (False if ran else None)
        if batch is None:
            batch, cid = c.batch, c.case_id
        rows += batch.rows[cid]
        if not any(h is batch.headers[0] for h in headers):
            headers += batch.headers
        where[k] = (str(batch.rows[cid][0].get("case")), reproduced)
    found: list[dict[str, Any]] = []
    built = build(rows, headers, known=known, per_case=True) if rows else []
    for k, (c, name) in enumerate(kept):
        key, reproduced = where[k]
        mine = (f for f in built if f["cases"] == [key] and c.behaviour in finding_behaviours(f))
        f = next(mine, None)
        if f is None:
            continue
        f = {**f, "case_file": name, "reproduced": reproduced,
             "reference_checked": id(c) not in unchecked,
             "fuzz": {"seed": opts.seed, "round": c.found_in, "drawn_size": list(c.drawn_size),
                      "size": list(size(c.case)), "behaviour": list(c.behaviour)}}  # fmt: skip
        found.append(f)
    state.times["build_s"] = (
        time.monotonic() - t0 - state.times["reference_s"] - state.times["final_run_s"]
    )
    out.findings = found
    write_findings(opts.out_dir, found)
    write_atomic(opts.out_dir / "fuzz.json", json.dumps({
        "seed": opts.seed, "budget_s": opts.budget, "frameworks": opts.frameworks,
        "losses": opts.losses, "dtypes": opts.dtypes, "device": opts.device,
        "rounds": state.rounds, "cases": state.cases, "shrink_batches": state.shrink_batches,
        "shrink_steps": state.accepted, "findings": len(found),
        "reference_bugs": len(out.reference_bugs), "interrupted": state.interrupted,
        "times": {k: round(v, 3) for k, v in state.times.items()},
    }, indent=1) + "\n")  # fmt: skip


def _build_reserve(opts: Options, n: int) -> float:
    """Seconds kept for building the findings (a child process per framework writes the
    scripts: its start-up, then a fraction of a second per finding)."""
    return 10.0 + 4.0 * len(opts.frameworks) + 0.1 * n


def _rerun(
    opts: Options, runner: Runner, kept: list[tuple[Candidate, str]], deadline: float
) -> Batch:
    only: dict[str, list[str]] = {}
    for c, name in kept:
        only.setdefault(c.framework, []).append(_case_id(name))
    files = [opts.out_dir / name for _, name in kept]
    return runner.run_files(files, deadline=max(deadline, time.monotonic() + 1.0), only=only)


def _write_case(out_dir: Path, case: dict[str, Any], group: Any) -> str:
    from xentcheck.findings import finding

    return write_case(out_dir, described(case, finding(group)["summary"], group.id), group.id)


def _case_file_id(name: str) -> str:
    return Path(name).stem


def _case_id(name: str | Path) -> str:
    """The id of the case in case file ``name`` (:func:`~xentcheck.fuzz.write.described`)."""
    return "fuzz-" + Path(name).stem.rpartition(":")[2]


def _reference_bug(opts: Options, c: Candidate, bad: list[Any]) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256(json.dumps(c.case, sort_keys=True, default=str).encode()).hexdigest()[
        :10
    ]
    name = f"reference:{c.case['loss']}:{digest}"
    case = {**c.case, "id": f"reference-{digest}",
            "description": f"The reference disagrees with mpmath at this {c.case['loss']} case "
                           f"(found by xentcheck fuzz while judging {c.framework})."}  # fmt: skip
    return {
        "id": name, "loss": c.case["loss"], "params": c.case.get("params") or {},
        "dtype": c.case["dtypes"][0], "case_file": write_case(opts.out_dir, case, name),
        "seen_as": list(c.behaviour),
        "disagreements": [dataclasses.asdict(d) for d in bad[:20]],
    }  # fmt: skip
