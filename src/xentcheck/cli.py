"""The ``xentcheck`` command: ``run``, ``report``, ``findings``, ``cases``, ``schema``
(docs/design.md, docs/running.md).

Exit status: 0 all conform (or only known differences), 1 discrepancies found (with
``run --fail-on new``: a finding new against the baseline), 2 bad input (a broken case,
results or known-differences file, an unknown framework, an output path that cannot be
written) with a one-line reason and no traceback, before any work is done.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from xentcheck import __version__
from xentcheck.accuracy import CRITERIA
from xentcheck.adapters import FRAMEWORKS
from xentcheck.dtypes import FLOAT_DTYPES
from xentcheck.harness.cache import add_cache_options
from xentcheck.harness.errors import CaseError

#: what makes ``run`` exit 1: statuses of rows, or findings new against ``--baseline``
FAIL_ON = ("unexplained", "any", "never", "new")


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
        "--cases",
        action="append",
        metavar="PATH",
        help="case file or folder (repeatable; default: the suite shipped with xentcheck)",
    )
    _selection_options(r, "run")
    r.add_argument(
        "--skip-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="skip cases carrying TAG (repeatable; e.g. large-vocab)",
    )
    r.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="run only cases carrying TAG (repeatable: any of them; e.g. gpu-smoke)",
    )
    r.add_argument(
        "--shard",
        metavar="I/N",
        help="run shard I of N: a fixed 1/N of the instances, the same on every machine "
        "(docs/running.md); the N shards' files merge into the whole run",
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
    add_cache_options(r, "compute every row")
    r.add_argument(
        "--golden-cache",
        metavar="DIR",
        help="keep reference goldens in DIR instead (default: in the cache folder; with "
        "--no-cache per run, then deleted)",
    )
    r.add_argument("--fail-on", choices=FAIL_ON, default="unexplained",
                   help="exit 1 on unexplained discrepancies (default), on any non-conformance including known ones, never, "
                        "or on unexplained findings new against --baseline")  # fmt: skip
    r.add_argument(
        "--baseline",
        action="append",
        metavar="OLD.jsonl",
        help="an earlier results file (repeatable): the findings new against it, for --fail-on new",
    )
    r.add_argument(
        "--criterion",
        choices=CRITERIA,
        default=CRITERIA[0],
        help="how values are judged: ulp (default: error in ULPs of the dtype) or tolerance "
        "(the former fixed rtol/atol, for comparison)",
    )
    _known_option(r)
    r.add_argument("--quiet", action="store_true", help="no progress bar or lines")

    rep = sub.add_parser("report", help="render results as HTML")
    rep.add_argument(
        "results",
        nargs="+",
        metavar="FILE.jsonl|DIR",
        help="results files and folders of them (every *.jsonl under one): shards, machines "
        "and framework versions merge into one page (docs/report.md)",
    )
    rep.add_argument("-o", "--output", required=True, metavar="reports/index.html")
    rep.add_argument(
        "--baseline",
        action="append",
        metavar="OLD.jsonl|DIR",
        help="earlier results (files or folders) to diff against",
    )
    rep.add_argument(
        "--markdown", metavar="FILE.md", help="also write the differences table as Markdown"
    )
    rep.add_argument(
        "--readme",
        metavar="README.md",
        help="replace the generated block of this README with the table",
    )
    rep.add_argument(
        "--findings",
        action="append",
        default=[],
        metavar="FILE",
        help="also write the page's findings to FILE, in its suffix's format (.json, .md, "
        ".txt), as `xentcheck findings -o FILE` would (repeatable; grouped once for all)",
    )
    add_cache_options(rep, "write every finding's script anew")
    _known_option(rep)

    from xentcheck.findings import command as findings_command

    findings_command.add_parser(sub)

    _fuzz_parser(sub)

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


def _selection_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--framework``, ``--adapter``, ``--dtype`` and ``--device``, as run and fuzz take them."""
    parser.add_argument(
        "--framework",
        action="append",
        metavar="NAME",
        help=f"one of {', '.join(FRAMEWORKS)} (repeatable; default: all installed)",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        metavar="MODULE:ATTR",
        help=f"also {verb} a Framework defined outside xentcheck (repeatable)",
    )
    parser.add_argument(
        "--dtype",
        action="append",
        choices=FLOAT_DTYPES,
        metavar="D",
        help="limit to these dtypes (repeatable; default: all four)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "gpu", "all"],
        default="all",
        help="default all: CPU, and GPU where present",
    )


def _fuzz_parser(sub: Any) -> None:
    f = sub.add_parser(
        "fuzz",
        help="search for unexplained findings, shrink each, and write it as a case",
        description="Draw cases from every loss, parameter, dtype and edge value, judge them "
        "against the reference, shrink each unexplained finding and write DIR/cases/<id>.yaml "
        "and DIR/findings.json (docs/fuzz.md). Exit 0; 3 when the reference itself disagrees "
        "with mpmath somewhere (DIR/reference-bugs.json); 130 on Ctrl-C, after writing.",
    )
    f.add_argument(
        "--loss",
        action="append",
        metavar="NAME",
        help="limit to these losses (repeatable; default: every loss)",
    )
    _selection_options(f, "fuzz")
    f.add_argument(
        "--budget",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="wall-clock time for the whole session, writing included (default 600)",
    )
    f.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="the same seed draws the same cases (default 0)",
    )
    f.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="at most N search rounds, for runs that must repeat exactly",
    )
    f.add_argument(
        "--baseline",
        action="append",
        metavar="RESULTS.jsonl",
        help="results of a suite run (repeatable): only findings absent from it are written",
    )
    f.add_argument("--out-dir", required=True, metavar="DIR")
    f.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes (default: frameworks on half the CPUs)",
    )
    f.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="per-instance limit; a hang becomes a crash finding (default 60)",
    )
    f.add_argument(
        "--criterion",
        choices=CRITERIA,
        default=CRITERIA[0],
        help="how values are judged (as run's --criterion)",
    )
    _known_option(f)
    f.add_argument("--quiet", action="store_true", help="no progress lines")  # fmt: skip


def open_cache_option(args: argparse.Namespace):
    """The :class:`~xentcheck.harness.cache.ResultCache` the options name (None: --no-cache);
    a folder that cannot be made is a usage error."""
    from xentcheck.harness.cache import open_cache

    cache = open_cache(args)
    if cache is not None:
        check_output(cache.root, "--cache-dir", folder=True)
    return cache


def _known_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known",
        action="append",
        default=[],
        metavar="FILE",
        help="your own documented differences, YAML or Python (repeatable; docs/known.md)",
    )


def load_known_files(paths: list[str] | None) -> list:
    """The user's known-difference entries of ``paths`` (``--known``), checked before any
    work: a bad file is a :class:`UsageError` (``file:line: reason (fix)``)."""
    from xentcheck.known.user import KnownFileError, load_known

    try:
        return load_known(paths or [])
    except KnownFileError as exc:
        raise UsageError(str(exc)) from None


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


def _shard(text: str | None):
    """The :class:`~xentcheck.harness.plan.Shard` of ``--shard I/N`` (None without it)."""
    from xentcheck.harness.plan import Shard

    if text is None:
        return None
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_tags(tags: list[str], cases) -> None:
    """Every ``--tag`` must be carried by at least one loaded case."""
    carried = {t for c in cases for t in c.tags}
    for tag in dict.fromkeys(tags):
        if tag not in carried:
            known = ", ".join(sorted(carried)) or "none"
            raise UsageError(f"--tag {tag}: no case carries it (the cases' tags: {known})")


def cmd_run(args) -> int:
    from xentcheck.harness.plan import chosen
    from xentcheck.harness.runner import Interrupted, RunError, default_jobs, exit_status, run

    shard = _shard(args.shard)
    frameworks = _frameworks(args)
    jobs = args.jobs if args.jobs is not None else default_jobs(len(frameworks))
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.fail_on == "new" and not args.baseline:
        raise UsageError("--fail-on new needs --baseline OLD.jsonl (the run to compare with)")
    check_output(args.out, "--out")
    known = load_known_files(args.known)
    baseline = _read_baseline(args.baseline)
    if args.golden_cache:
        check_output(args.golden_cache, "--golden-cache", folder=True)
    cache = open_cache_option(args)
    paths, cases, instances = _load(args.cases)
    _check_tags(args.tag, cases)
    skipped = set(args.skip_tag)
    if not args.quiet:
        kept = [i for i in instances if not skipped.intersection(i.case.tags)]
        picked = [kept[n] for n in chosen(kept, args.tag, shard)]
        where = f" (shard {shard})" if shard is not None else ""
        print(
            f"xentcheck: {len({i.case.key for i in picked})} cases, {len(picked)} instances{where};"
            f" frameworks: {', '.join(frameworks)}; {jobs} worker(s)",
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
                   skip_tags=args.skip_tag, tags=args.tag, shard=shard,
                   golden_cache=Path(args.golden_cache) if args.golden_cache else None,
                   cache=cache, criterion=args.criterion, known_files=args.known)  # fmt: skip
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
    if baseline is not None:
        new = _new_findings(out, baseline, known)
        if args.fail_on == "new":  # a failing reference row (a case's expected) still counts
            return int(bool(new) or exit_status(rows, "never"))
    return exit_status(rows, args.fail_on)


def _read_baseline(paths: list[str] | None):
    """``(headers, rows)`` of the ``--baseline`` files, read and checked now (a bad one is
    one line and exit 2 before any work), or None without any."""
    if not paths:
        return None
    from xentcheck.report import load

    return load(paths)


def _new_findings(out: Path, baseline, known: list) -> list[dict]:
    """The unexplained findings of the results file ``out`` that are new against
    ``baseline``; prints how many findings there are and one line per new one."""
    from xentcheck import findings
    from xentcheck.findings.command import report_new
    from xentcheck.report import load

    headers, rows = load([out])
    found = findings.build(rows, headers, baseline=baseline, known=known, scripts=False)
    return report_new(found)


def cmd_report(args) -> int:
    from xentcheck.report import FindingsFailed, build_report, check_readme

    check_output(args.output, "-o")
    for path in args.findings:
        check_output(path, "--findings")
    cache = open_cache_option(args)
    known = load_known_files(args.known)
    if args.markdown:
        check_output(args.markdown, "--markdown")
    if args.readme:
        if not Path(args.readme).is_file():
            raise UsageError(f"{args.readme}: --readme names no file (name the file to update)")
        try:
            check_readme(Path(args.readme))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        build_report(  # reads and checks every results file before it writes anything
            args.results,
            args.output,
            baselines=args.baseline or [],
            markdown=args.markdown,
            readme=args.readme,
            known=known,
            findings=args.findings,
            cache=cache,
        )
    except FindingsFailed as exc:
        print(f"xentcheck: error: {exc}", file=sys.stderr)
        return 1
    print(f"xentcheck: report written to {args.output}", file=sys.stderr)
    for path in args.findings:
        print(f"xentcheck: findings written to {path}", file=sys.stderr)
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


def cmd_fuzz(args) -> int:
    from xentcheck.fuzz import command

    frameworks = _frameworks(args)
    if args.budget <= 0 or args.timeout <= 0:
        raise UsageError("--budget and --timeout must be positive numbers of seconds")
    if args.rounds is not None and args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    check_output(args.out_dir, "--out-dir", folder=True)
    known = load_known_files(args.known)
    return command.run(args, frameworks, known)


def cmd_findings(args) -> int:
    from xentcheck.findings import command

    return command.run(args)


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "findings": cmd_findings,
    "fuzz": cmd_fuzz,
    "cases": cmd_cases,
    "schema": cmd_schema,
}


if __name__ == "__main__":
    sys.exit(main())
