"""The ``xentcheck`` command: ``run``, ``report``, ``cases``, ``schema`` (docs/design.md).

Exit status: 0 all conform (or only known differences), 1 discrepancies found, 2 bad
input (a broken case file or results file, an unknown framework, an output path that
cannot be written) with a one-line reason and no traceback, before any work is done.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

from xentcheck import __version__
from xentcheck.adapters import FRAMEWORKS
from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.errors import CaseError

#: the cache folder when neither --cache-dir nor $XENTCHECK_CACHE_DIR names one
DEFAULT_CACHE_DIR = ".xentcheck-cache"
#: the environment variable naming the cache folder (tox sets it)
CACHE_ENV = "XENTCHECK_CACHE_DIR"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xentcheck", description="Cross-entropy conformance across frameworks."
    )
    p.add_argument("--version", action="version", version=f"xentcheck {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run cases through frameworks and write results (JSON Lines)")
    r.add_argument(
        "--framework",
        action="append",
        metavar="NAME",
        help=f"one of {', '.join(FRAMEWORKS)} (repeatable; default: all installed)",
    )
    r.add_argument(
        "--cases",
        action="append",
        metavar="PATH",
        help="case file or folder (repeatable; default: the suite shipped with xentcheck)",
    )
    r.add_argument(
        "--dtype",
        action="append",
        choices=FLOAT_DTYPES,
        metavar="D",
        help="limit to these dtypes (repeatable)",
    )
    r.add_argument(
        "--device",
        choices=["cpu", "gpu", "all"],
        default="all",
        help="default all: CPU, and GPU where present",
    )
    r.add_argument(
        "--adapter",
        action="append",
        metavar="MODULE:ATTR",
        help="also run a Framework defined outside xentcheck (repeatable)",
    )
    r.add_argument(
        "--skip-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="skip cases carrying TAG (repeatable; e.g. large-vocab)",
    )
    r.add_argument("--out", required=True, metavar="FILE.jsonl")
    r.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes in all: frameworks in parallel, and shards of a framework's "
        "instances when N exceeds them (default: frameworks on half the CPUs)",
    )
    r.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="per-instance limit; a hung instance becomes a timeout row (default 300)",
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run with the same options and --out",
    )
    r.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache of results, goldens and compiled programs, reused by later runs "
        f"(default: ${CACHE_ENV}, else {DEFAULT_CACHE_DIR} in the current folder)",
    )
    r.add_argument(
        "--no-cache",
        action="store_true",
        help="compute every row, and read and write nothing in the cache folder",
    )
    r.add_argument(
        "--golden-cache",
        metavar="DIR",
        help="keep reference goldens in DIR instead (default: in the cache folder; with "
        "--no-cache per run, then deleted)",
    )
    r.add_argument("--fail-on", choices=["unexplained", "any", "never"], default="unexplained",
                   help="exit 1 on unexplained discrepancies (default), on any non-conformance including known ones, or never")  # fmt: skip
    r.add_argument("--quiet", action="store_true", help="no progress bar or lines")

    rep = sub.add_parser("report", help="render results as HTML")
    rep.add_argument("results", nargs="+", metavar="FILE.jsonl")
    rep.add_argument("-o", "--output", required=True, metavar="reports/index.html")
    rep.add_argument(
        "--baseline", action="append", metavar="OLD.jsonl", help="earlier results to diff against"
    )
    rep.add_argument(
        "--markdown", metavar="FILE.md", help="also write the differences table as Markdown"
    )
    rep.add_argument(
        "--readme",
        metavar="README.md",
        help="replace the generated block of this README with the table",
    )

    c = sub.add_parser("cases", help="validate and list cases")
    c.add_argument(
        "--cases",
        action="append",
        metavar="PATH",
        help="case file or folder (repeatable; default: the suite shipped with xentcheck)",
    )

    sch = sub.add_parser("schema", help="print the JSON Schema of case files")
    sch.add_argument(
        "--losses", action="store_true", help="print the Markdown table of the losses instead"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CaseError, UsageError) as exc:
        print(f"xentcheck: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xentcheck: interrupted", file=sys.stderr)
        return 130


def _load(paths: list[str] | None):
    from xentcheck.harness.cases import expand, load_cases

    if not paths:
        from xentcheck.harness.cases import shipped_suite

        paths = [str(shipped_suite())]
    cases = load_cases(paths)
    return paths, cases, [i for c in cases for i in expand(c)]


def check_output(path: str | Path, option: str, *, folder: bool = False) -> None:
    """Raise :class:`UsageError` unless ``path`` can be written as ``option`` asks.

    A file (``folder=False``) must not be an existing folder, a folder not an existing
    file; the nearest existing ancestor must be a folder in which a file can be created
    (missing folders below it are created later). Checked by creating and deleting a
    temporary file there, so nothing is left behind and no work is done first.
    """
    path = ancestor = Path(path)
    try:
        if path.exists() and path.is_dir() != folder:
            what, fix = (
                ("a folder", "name a file in it") if path.is_dir() else ("a file", "name a folder")
            )
            raise UsageError(f"{path}: {option} names {what} ({fix})")
        ancestor = path if path.is_dir() else path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(
                f"{path}: {option}: {ancestor} is a file, not a folder (choose another path)"
            )
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise UsageError(
            f"{path}: {option}: cannot write in {ancestor}: {exc.strerror or exc}"
            " (choose a writable folder)"
        ) from None


def _frameworks(args) -> list[str]:
    """The frameworks to run: --framework names and --adapter specs (default: all installed)."""
    from xentcheck.adapters import available_frameworks, entry_point_adapters

    known = [*FRAMEWORKS, *entry_point_adapters()]
    names = list(args.framework or [])
    for fw in names:
        if fw not in known and ":" not in fw:
            raise UsageError(f"unknown framework {fw!r}; use one of: {', '.join(known)}")
    for spec in args.adapter or []:
        module, _, attr = spec.partition(":")
        if not module or not attr:
            raise UsageError(f"--adapter {spec}: write it as MODULE:ATTRIBUTE")
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(f"--adapter {spec}: no module {module!r} on the Python path")
        names.append(spec)
    if not names:
        names = available_frameworks()
    return list(dict.fromkeys(names))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_run(args) -> int:
    from xentcheck.harness.runner import Interrupted, RunError, default_jobs, exit_status, run

    frameworks = _frameworks(args)
    jobs = args.jobs if args.jobs is not None else default_jobs(len(frameworks))
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    check_output(args.out, "--out")
    if args.golden_cache:
        check_output(args.golden_cache, "--golden-cache", folder=True)
    cache = None
    if not args.no_cache:
        from xentcheck.harness.cache import ResultCache

        folder = args.cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
        check_output(folder, "--cache-dir", folder=True)
        cache = ResultCache(folder)
    paths, cases, instances = _load(args.cases)
    skipped = set(args.skip_tag)
    if not args.quiet:
        kept = [c for c in cases if not skipped.intersection(c.tags)]
        n = sum(1 for i in instances if not skipped.intersection(i.case.tags))
        print(
            f"xentcheck: {len(kept)} cases, {n} instances; frameworks: {', '.join(frameworks)};"
            f" {jobs} worker(s)",
            file=sys.stderr,
        )
    out = Path(args.out)
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job stops like Ctrl-C
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        rows = run(frameworks, paths, cases, args.dtype, args.device, out, jobs=jobs,
                   quiet=args.quiet, timeout=args.timeout, resume=args.resume,
                   skip_tags=args.skip_tag,
                   golden_cache=Path(args.golden_cache) if args.golden_cache else None,
                   cache=cache)  # fmt: skip
    except RunError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # --out, --golden-cache or --cache-dir not writable, say
        raise UsageError(
            f"cannot write {exc.filename or args.out}: {exc.strerror or exc}"
        ) from None
    except Interrupted as exc:
        print(
            f"xentcheck: {exc}; the same command with --resume finishes the run",
            file=sys.stderr,
        )
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    counts = Counter(r["status"] for r in rows)
    summary = ", ".join(f"{k} {counts[k]}" for k in sorted(counts))
    reused = (f" ({cache.reused_rows} from the cache in {cache.root}, {cache.computed_rows} computed)"
              if cache is not None else " (cache off)")  # fmt: skip
    print(f"xentcheck: {len(rows)} results in {out}{reused}: {summary}", file=sys.stderr)
    return exit_status(rows, args.fail_on)


def cmd_report(args) -> int:
    from xentcheck.report import build_report, check_readme

    check_output(args.output, "-o")
    if args.markdown:
        check_output(args.markdown, "--markdown")
    if args.readme:
        if not Path(args.readme).is_file():
            raise UsageError(f"{args.readme}: --readme names no file (name the file to update)")
        try:
            check_readme(Path(args.readme))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    build_report(  # reads and checks every results file before it writes anything
        args.results,
        args.output,
        baselines=args.baseline or [],
        markdown=args.markdown,
        readme=args.readme,
    )
    print(f"xentcheck: report written to {args.output}", file=sys.stderr)
    return 0


def cmd_cases(args) -> int:
    _, cases, instances = _load(args.cases)
    for case in cases:
        n = sum(1 for i in instances if i.case is case)
        tags = f" [{', '.join(case.tags)}]" if case.tags else ""
        print(f"{case.key}  {case.loss}  {n} instance(s) x {len(case.dtypes)} dtype(s){tags}")
    by_loss = Counter(i.loss for i in instances)
    print(
        f"{len(cases)} cases, {len(instances)} instances: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_loss.items()))
    )
    return 0


def cmd_schema(args) -> int:
    from xentcheck.harness import schema

    sys.stdout.write(schema.losses_markdown() if args.losses else schema.text())
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "cases": cmd_cases, "schema": cmd_schema}


if __name__ == "__main__":
    sys.exit(main())
