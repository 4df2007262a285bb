"""``xentcheck findings RESULTS... [--format text|md|json] [--baseline OLD...] [--known FILE...]
[--verify]``: the findings of one or more results files.

Exit status: 0 (the findings are a listing, not a verdict); with ``--verify``, 1 when a
finding's script does not reproduce it; 2 for bad input (a results or known-differences
file that cannot be used: one line ``file:line: reason (fix)``, nothing else written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xentcheck.findings.render import FORMATS
from xentcheck.harness.errors import CaseError
from xentcheck.harness.results import read_results

Row = dict[str, Any]


def add_parser(subparsers: Any) -> None:
    """Add the ``findings`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "findings",
        help="group results into distinct findings, each with a script and an issue draft",
        description="Group the non-passing results of one or more runs into findings (one "
        "per framework behaviour), most severe first; docs/findings.md.",
    )
    p.add_argument(
        "results", nargs="+", metavar="RESULTS", help="results files (xentcheck run --out)"
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (a summary), md (an upstream issue draft per finding) or json",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="OLD",
        help="an older results file (repeatable): each finding is new, unchanged or fixed",
    )
    p.add_argument(
        "--known",
        action="append",
        default=[],
        metavar="FILE",
        help="your own documented differences, YAML or Python (repeatable; docs/known.md)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run every finding's script with xentcheck hidden and say whether it reproduces",
    )


def load(paths: Iterable[str | Path]) -> tuple[list[Row], list[Row]]:
    """Headers and rows of results files, each checked (:class:`ResultsError` for a bad
    one); the reference's own rows, which every run repeats, kept once."""
    headers: list[Row] = []
    rows: list[Row] = []
    seen: set[tuple[str, ...]] = set()
    for p in paths:
        h, r = read_results(p)
        headers += h
        for row in r:
            if row.get("framework") == "reference":
                key = tuple(str(row.get(k)) for k in ("instance", "dtype", "quantity"))
                if key in seen:
                    continue
                seen.add(key)
            rows.append(row)
    return headers, rows


def run(args: argparse.Namespace) -> int:
    """Run ``xentcheck findings`` with parsed ``args``; returns the exit status."""
    from xentcheck import findings
    from xentcheck.known.user import KnownFileError, load_known

    try:
        known = load_known(args.known or [])
        headers, rows = load(args.results)
        baseline = load(args.baseline) if args.baseline else None
    except (CaseError, KnownFileError) as exc:
        print(f"xentcheck: error: {exc}", file=sys.stderr)
        return 2
    found = findings.build(rows, headers, baseline=baseline, known=known)
    status = 0
    if args.verify:
        from xentcheck.findings.verify import verify

        live = [f for f in found if f["status"] != "fixed"]
        verdicts = {v.id: v for v in verify(live)}
        for f in live:
            v = verdicts[f["id"]]
            f["verified"] = v.reproduced
            if v.reproduced is False:
                status = 1
                print(
                    f"xentcheck: {f['id']}: the script does not reproduce it:\n{v.output}",
                    file=sys.stderr,
                )
        done = [v for v in verdicts.values() if v.reproduced is not None]
        print(
            f"xentcheck: {sum(bool(v.reproduced) for v in done)} of {len(done)} scripts reproduce "
            f"their finding ({len(verdicts) - len(done)} findings have none)",
            file=sys.stderr,
        )
    sys.stdout.write(findings.render(found, args.format))
    return status
