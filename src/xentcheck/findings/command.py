"""``xentcheck findings RESULTS... [--format text|md|json] [-o FILE...] [--baseline OLD...]
[--known FILE...] [--verify] [--fail-on never|new]``: the findings of one or more results
files and folders.

The findings are grouped once and written in each format asked for: ``-o`` is repeatable,
and an output's format is ``--format`` where given, else its suffix's (``.json``, ``.md``,
``.txt``: :data:`SUFFIX_FORMATS`), else text; without ``-o`` they go to stdout.

Exit status: 0 (the findings are a listing, not a verdict); with ``--verify``, 1 when a
finding's script does not reproduce it; with ``--fail-on new``, 1 when an unexplained
finding is new against ``--baseline`` (the gate of ``xentcheck run --fail-on new``, for
results merged from many machines); 2 for bad input (a results or known-differences
file that cannot be used: one line ``file:line: reason (fix)``, nothing else written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xentcheck.findings.render import FORMATS
from xentcheck.harness.cache import add_cache_options, open_cache
from xentcheck.harness.errors import CaseError
from xentcheck.harness.results import read_runs


def add_parser(subparsers: Any) -> None:
    """Add the ``findings`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "findings",
        help="group results into distinct findings, each with a script and an issue draft",
        description="Group the non-passing results of one or more runs into findings (one "
        "per framework behaviour), most severe first; docs/findings.md.",
    )
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results files (xentcheck run --out) and folders of them (every *.jsonl under "
        "one): shards, machines and version sets merge (docs/report.md)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="text (a summary), md (an upstream issue draft per finding) or json (default: "
        "each -o FILE's suffix, .json, .md or .txt; else text)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="OLD",
        help="an older results file or folder (repeatable): each finding is new, unchanged or fixed",
    )
    p.add_argument(
        "--known",
        action="append",
        default=[],
        metavar="FILE",
        help="your own documented differences, YAML or Python (repeatable; docs/known.md)",
    )
    p.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        metavar="FILE",
        help="write the findings to FILE instead of stdout (repeatable: one grouping, "
        "several files, e.g. -o findings.json -o findings.md)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run every finding's script with xentcheck hidden and say whether it reproduces",
    )
    p.add_argument(
        "--fail-on",
        choices=("never", "new"),
        default="never",
        help="new: exit 1 when an unexplained finding is new against --baseline (default never)",
    )
    add_cache_options(p, "write every finding's script anew")
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="with --verify: scripts run at a time (default: the CPUs)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``xentcheck findings`` with parsed ``args``; returns the exit status."""
    from xentcheck import findings
    from xentcheck.known.user import KnownFileError, load_known

    if args.jobs < 1:
        print("xentcheck: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.fail_on == "new" and not args.baseline:
        print("xentcheck: error: --fail-on new needs --baseline OLD (the results to compare with)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        known = load_known(args.known or [])
        outputs = {path: output_format(path, args.format) for path in args.output}
        for path in outputs:
            check_output(path)
        cache = open_cache(args)
        if cache is not None:
            check_output(str(cache.root), "--cache-dir", folder=True)
        headers, rows = read_runs(args.results)
        baseline = read_runs(args.baseline) if args.baseline else None
    except (CaseError, KnownFileError) as exc:
        print(f"xentcheck: error: {exc}", file=sys.stderr)
        return 2
    found = findings.build(rows, headers, baseline=baseline, known=known, cache=cache)
    status = 0
    if args.verify:
        from xentcheck.findings.verify import verify

        live = [f for f in found if f["status"] != "fixed"]
        verdicts = {v.id: v for v in verify(live, jobs=args.jobs)}
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
    from xentcheck.findings.versions import upgrades

    if args.baseline and report_new(found) and args.fail_on == "new":
        status = 1
    if not outputs:
        sys.stdout.write(findings.render(found, args.format or "text", upgrades(found, headers)))
    for path, text in rendered(found, headers, outputs).items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
        print(
            f"xentcheck: {len(found)} findings written to {path} ({outputs[path]})", file=sys.stderr
        )
    return status


def report_new(found: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The unexplained findings of ``found`` that are new against its baseline; prints
    how many findings there are and one line per new one on stderr (the gate's lines)."""
    counts = Counter(f["status"] for f in found)
    new = [f for f in found if f["status"] == "new" and f["known"] is None]
    print(
        f"xentcheck: {len(found) - counts['fixed']} findings against the baseline: "
        f"{len(new)} new and unexplained, {counts['new'] - len(new)} new and known, "
        f"{counts['unchanged']} unchanged, {counts['fixed']} fixed",
        file=sys.stderr,
    )
    for f in new:
        label = f" [{f['label']}]" if f.get("variant") else ""
        print(f"xentcheck: new: {f['id']}{label}: {f['summary']}", file=sys.stderr)
    return new


#: the format of an ``-o`` file by its suffix, when ``--format`` is not given
SUFFIX_FORMATS = {".json": "json", ".md": "md", ".markdown": "md", ".txt": "text"}


def output_format(path: str, given: str | None) -> str:
    """The format of the output ``path``: ``given`` (``--format``), else by its suffix,
    else text."""
    return given or SUFFIX_FORMATS.get(Path(path).suffix.lower(), "text")


def rendered(
    found: Sequence[dict[str, Any]], headers: Sequence[dict[str, Any]], outputs: dict[str, str]
) -> dict[str, str]:
    """Each output path of ``outputs`` (path -> format) with ``found`` rendered in its
    format, what each upgrade changed computed once for all (``findings -o`` and
    ``report --findings`` write these)."""
    from xentcheck import findings
    from xentcheck.findings.versions import upgrades

    if not outputs:
        return {}
    changed = upgrades(list(found), list(headers))
    return {path: findings.render(found, fmt, changed) for path, fmt in outputs.items()}


def check_output(path: str, option: str = "-o", folder: bool = False) -> None:
    """Raise :class:`CaseError` unless ``path`` names a file (a folder, with ``folder``)
    that can be written."""
    p = Path(path)
    if p.exists() and p.is_dir() != folder:
        what, fix = ("a folder", "name a file in it") if p.is_dir() else ("a file", "name a folder")
        raise CaseError(path, None, f"{option} names {what} ({fix})")
    parent = p if p.is_dir() else p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise CaseError(
            path, None, f"{option}: cannot write in {parent} (choose a writable folder)"
        )
