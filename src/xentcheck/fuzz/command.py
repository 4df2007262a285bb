"""The body of ``xentcheck fuzz`` (its options are in :mod:`xentcheck.cli`): check what
was asked, run :func:`xentcheck.fuzz.fuzz`, and say what it wrote.

A reference bug is printed first and loudly and makes the exit status 3; Ctrl-C (or
SIGTERM, as a cancelled CI job sends) writes what was found and exits 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.errors import CaseError
from xentcheck.reference import LOSSES

#: exit status when the reference disagrees with mpmath at some case
REFERENCE_BUG = 3


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, frameworks: list[str], known: list[Any]) -> int:
    """Run ``xentcheck fuzz`` with parsed, checked ``args``; returns the exit status."""
    from xentcheck.fuzz import Options, fuzz
    from xentcheck.harness.results import read_runs
    from xentcheck.harness.runner import default_jobs

    for loss in args.loss or []:
        if loss not in LOSSES:
            raise CaseError(
                "--loss", None, f"unknown loss {loss!r} (use one of: {', '.join(LOSSES)})"
            )
    jobs = args.jobs if args.jobs is not None else default_jobs(len(frameworks))
    if jobs < 1:
        raise CaseError("--jobs", None, "must be at least 1")
    baseline = read_runs(args.baseline) if args.baseline else None
    opts = Options(
        frameworks=frameworks, out_dir=Path(args.out_dir),
        losses=list(dict.fromkeys(args.loss)) if args.loss else list(LOSSES),
        dtypes=list(dict.fromkeys(args.dtype or FLOAT_DTYPES)),
        device=args.device, budget=args.budget, seed=args.seed, rounds=args.rounds, jobs=jobs,
        criterion=args.criterion, known_files=list(args.known), timeout=args.timeout,
        progress=None if args.quiet else sys.stderr,
    )  # fmt: skip
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        out = fuzz(opts, known, baseline)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for bug in out.reference_bugs:
        worst = bug["disagreements"][0]
        print(f"xentcheck fuzz: REFERENCE BUG: the reference's {bug['loss']} {worst['quantity']} "
              f"at {list(worst['index'])} is {worst['reference']!r}, mpmath says {worst['exact']} "
              f"({args.out_dir}/{bug['case_file']}); no framework is blamed for it",
              file=sys.stderr)  # fmt: skip
    s = out.search
    print(f"xentcheck fuzz: {len(out.findings)} findings written to {args.out_dir}/findings.json "
          f"({s.rounds} rounds, {s.cases} cases, {s.accepted} shrinking steps, "
          f"{out.wall_s:.0f} s of a {args.budget:.0f} s budget)", file=sys.stderr)  # fmt: skip
    for f in out.findings:
        print(f"  {f['id']}  {f['case_file']}  {f['summary']}", file=sys.stderr)
    if s.interrupted:
        print("xentcheck fuzz: interrupted; what was found is written", file=sys.stderr)
        return 130
    return REFERENCE_BUG if out.reference_bugs else 0
