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

from xentcheck.fuzz.driver import SHARES, Candidate, Options, Search, search, shrink
from xentcheck.fuzz.space import tested_inputs
from xentcheck.fuzz.trials import Batch, Behaviour, Runner, behaviours
from xentcheck.fuzz.write import described, write_case, write_findings, write_reference_bugs

__all__ = ["Options", "Outcome", "fuzz"]

#: seconds the final phase may run past the budget to finish writing
GRACE_S = 5.0


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
        quantity = f["quantity"] if f["kind"] in ("wrong", "precision", "nonfinite") else ""
        out.update((f["framework"], api, f["loss"], f["kind"], f["signature"], quantity)
                   for api in f["apis"])  # fmt: skip
    return out


def reference_check(c: Candidate) -> list[Any]:
    """The reference's disagreements with mpmath at the candidate's case ([] when none)."""
    from xentcheck.exact import reference_disagreements

    case = c.case
    return reference_disagreements(case["loss"], tested_inputs(case), case.get("params") or {})


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
    try:
        search(opts, runner, seen, t0 + SHARES[0] * opts.budget, state)
        state.times["search_s"] = time.monotonic() - t0
        shrink(opts, runner, t0 + SHARES[1] * opts.budget, state)
        state.times["shrink_s"] = time.monotonic() - t0 - state.times["search_s"]
    except KeyboardInterrupt:
        state.interrupted = "ctrl-c"
    _write(opts, runner, state, out, known, end if state.interrupted is None else None)
    shutil.rmtree(work, ignore_errors=True)
    out.wall_s = time.monotonic() - t0
    return out


def _write(opts: Options, runner: Runner, state: Search, out: Outcome, known: Sequence[Any],
           deadline: float | None) -> None:  # fmt: skip
    """Check the reference at each candidate, write the case files, run them once more
    (unless interrupted: then the rows that found them serve) and write findings.json."""
    from xentcheck.findings import build

    kept: list[tuple[Candidate, str]] = []
    for c in state.candidates:
        bad = reference_check(c)
        if bad:
            bug = _reference_bug(opts, c, bad)
            if all(b["id"] != bug["id"] for b in out.reference_bugs):
                out.reference_bugs.append(bug)
            continue
        group = next(g for g in c.batch.groups[c.case_id] if c.behaviour in behaviours(g))
        case = described(c.case, _summary_line(group), group.id)
        kept.append((c, write_case(opts.out_dir, case, group.id)))
    if out.reference_bugs:
        write_reference_bugs(opts.out_dir, out.reference_bugs)
    files = [opts.out_dir / name for _, name in kept]
    final: Batch | None = None
    if files and deadline is not None:
        only: dict[str, list[str]] = {}
        for c, name in kept:
            only.setdefault(c.framework, []).append(_case_id(opts.out_dir / name))
        final = runner.run_files(files, deadline=deadline + GRACE_S, only=only)
    found: list[dict[str, Any]] = []
    for c, name in kept:
        cid = _case_id(opts.out_dir / name)
        reproduced = final is not None and final.shows(cid, c.behaviour)
        batch, case_id = (final, cid) if reproduced else (c.batch, c.case_id)
        rows = batch.rows[case_id]
        for f in build(rows, batch.headers, known=known, per_case=True):
            if c.behaviour[1] in f["apis"] and _same(f, c.behaviour):
                f["case_file"] = name
                f["reproduced"] = reproduced if final is not None else None
                f["fuzz"] = {
                    "seed": opts.seed,
                    "round": c.found_in,
                    "drawn_size": list(c.drawn_size),
                    "behaviour": list(c.behaviour),
                }
                found.append(f)
                break
    out.findings = found
    write_findings(opts.out_dir, found)
    (opts.out_dir / "fuzz.json").write_text(json.dumps({
        "seed": opts.seed, "budget_s": opts.budget, "frameworks": opts.frameworks,
        "losses": opts.losses, "dtypes": opts.dtypes, "device": opts.device,
        "rounds": state.rounds, "cases": state.cases, "shrink_batches": state.shrink_batches,
        "shrink_steps": state.accepted, "findings": len(found),
        "reference_bugs": len(out.reference_bugs), "interrupted": state.interrupted,
        "times": state.times,
    }, indent=1) + "\n", encoding="utf-8")  # fmt: skip


def _same(f: dict[str, Any], b: Behaviour) -> bool:
    quantity = f["quantity"] if f["kind"] in ("wrong", "precision", "nonfinite") else ""
    return (f["framework"], f["loss"], f["kind"], f["signature"], quantity) == (b[0], *b[2:])


def _case_id(path: Path) -> str:
    return "fuzz-" + path.stem.rpartition(":")[2]


def _summary_line(group: Any) -> str:
    from xentcheck.findings import finding

    return finding(group)["summary"]


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
