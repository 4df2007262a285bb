"""One report and its findings from every results file under a folder (``tox -e merge``).

    python tools/merge.py [RESULTS [OUT]] [--baseline OLD]... [--fail-on never|new]

RESULTS (default ``reports``) is searched recursively for ``*.jsonl`` files that are results
files (their first line is a run header, ``"kind": "run"``); other ``.jsonl`` files are
named and left out, and so is everything under OUT. OUT (default ``RESULTS/merged``)
receives ``index.html``, ``differences.md``, ``findings.json`` and ``findings.md``, all from
one ``xentcheck report --findings`` over every file found (the findings grouped once, as
``xentcheck findings`` groups them): shards, machines and version sets as the report
combines them.

``--baseline OLD`` (a results file or a folder, searched the same way; repeatable) is
handed to the report: the findings become new, unchanged or fixed. ``--fail-on new``
(with a baseline) exits 1 when a finding that no known entry explains is new, after
writing everything and naming each one; ``never`` (the default) always exits 0 once the
page is built. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class MergeError(Exception):
    """Bad input, as one line naming the path and the fix."""


def results_files(folder: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """The results files under ``folder`` (sorted), and the other ``.jsonl`` files found.

    A results file's first line is a run header (``"kind": "run"``). Files under ``exclude``
    are not looked at. A file that is itself given is taken when it is a results file.
    """
    if folder.is_file():
        candidates = [folder]
    elif folder.is_dir():
        candidates = sorted(folder.rglob("*.jsonl"))
    else:
        raise MergeError(f"{folder}: no such file or folder (name the folder of results files)")
    found, others = [], []
    for path in candidates:
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        (found if _is_results(path) else others).append(path)
    return found, others


def _is_results(path: Path) -> bool:
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(header, dict) and header.get("kind") == "run"


def new_unexplained(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings a ``--fail-on new`` gate stops on: new against the baseline, and
    explained by no known entry (as ``xentcheck run --fail-on new`` counts them)."""
    return [f for f in findings if f.get("status") == "new" and f.get("known") is None]


def commands(
    files: Sequence[Path], out: Path, baselines: Sequence[Path]
) -> list[tuple[list[str], list[Path]]]:
    """The xentcheck commands that build the page, each with the files it writes (one
    ``report``: the page, its Markdown table and the findings, grouped once)."""
    xentcheck = [sys.executable, "-m", "xentcheck"]
    names = [str(p) for p in files]
    report_base = [a for b in baselines for a in ("--baseline", str(b))]
    written = [
        out / name for name in ("index.html", "differences.md", "findings.json", "findings.md")
    ]
    return [
        (
            [*xentcheck, "report", *names, "-o", str(written[0]), *report_base,
             "--markdown", str(written[1]), "--findings", str(written[2]),
             "--findings", str(written[3])],
            written,
        ),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Build the merged page; 0 once built, 1 when the ``--fail-on new`` gate stops, 2 on
    bad input."""
    parser = argparse.ArgumentParser(
        prog="merge", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[2]
    )
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "reports")
    parser.add_argument("out", nargs="?", type=Path, help="default: RESULTS/merged")
    parser.add_argument("--baseline", action="append", type=Path, default=[], metavar="OLD")
    parser.add_argument("--fail-on", choices=("never", "new"), default="never")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # our lines in order with the commands' own
    out = args.out or args.results / "merged"
    try:
        if args.fail_on == "new" and not args.baseline:
            raise MergeError("--fail-on new: needs --baseline OLD (the results to compare with)")
        files, others = results_files(args.results, exclude=out)
        if not files:
            raise MergeError(
                f"{args.results}: no results files (*.jsonl starting with a run header) in it"
            )
        baselines = [p for b in args.baseline for p in results_files(b)[0]]
        if args.baseline and not baselines:
            raise MergeError(f"{args.baseline[0]}: no results files in the baseline")
    except MergeError as exc:
        print(f"merge: error: {exc}", file=sys.stderr)
        return 2
    for path in others:
        print(f"merge: {path}: not a results file (no run header), left out")
    print(f"merge: {len(files)} results files from {args.results} into {out}")
    out.mkdir(parents=True, exist_ok=True)
    for command, written in commands(files, out, baselines):
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(
                f"merge: `{' '.join(command[1:4])} ...` exited {done.returncode}", file=sys.stderr
            )
            return done.returncode
        print(f"merge: wrote {', '.join(map(str, written))}")
    if args.fail_on == "new":
        stopped = new_unexplained(json.loads((out / "findings.json").read_text()))
        for finding in stopped:
            print(f"merge: new: {finding['id']}: {finding.get('summary', '')}")
        if stopped:
            print(f"merge: {len(stopped)} findings new against the baseline: --fail-on new fails")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
