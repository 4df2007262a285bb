"""The runner: supervised worker processes per framework, merged into one results file.

Frameworks (and, with more jobs than frameworks, interleaved shards of one framework's
instances) run in worker processes watched by :mod:`xentcheck.harness.supervisor`: a
crash or a hang becomes a row for the instance it hit and the run goes on. Workers write
part files under ``OUT.parts/``; when all are done the runner merges them behind one run
header in a fixed order (reference rows, then framework, instance, and the worker's
dtype/device/API/quantity order), so an interrupted and resumed run gives the same rows
as an uninterrupted one. With the result cache (:mod:`xentcheck.harness.cache`, on by
default in the CLI) the blocks of unchanged (framework, instance) pairs come from the cache
and take the same place in that order; only the rest goes to workers. Cases with
``expected`` values check the reference itself (rows with ``framework: reference``).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from xentcheck.harness.cache import COMPILE_CACHE_ENV, ResultCache, Reuse
from xentcheck.harness.cases import Case, discover, expand
from xentcheck.harness.plan import (
    Shard,
    chosen,
    instances_of,
    interleave,
    select_cases,
    shard_counts,
)
from xentcheck.harness.progress import Progress
from xentcheck.harness.results import DISCREPANCIES, ResultWriter, run_header
from xentcheck.harness.supervisor import Parts, Supervisor, Unit, read_parts
from xentcheck.harness.worker import (
    base_row,
    compare_expected,
    expected_tolerance,
    golden_for,
    no_comparison,
    rounded_inputs,
)


def cases_digest(paths: Iterable[str]) -> str:
    """SHA-256 over the case files' relative paths and bytes, in sorted order."""
    h = hashlib.sha256()
    for file, root in discover(paths):
        h.update(str(file.relative_to(root)).encode() + b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


def reference_rows(cases: list[Case], only: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Rows checking the reference against the ``expected`` values and ``expect_error`` of
    cases (of the instances named in ``only``, when given: a shard's or a tag's)."""
    rows = []
    for case in cases:
        if case.expected is None and not case.expect_error:
            continue
        for inst in expand(case):
            if only is not None and inst.name not in only:
                continue
            inputs = rounded_inputs(inst, inst.inputs(), "float64")
            golden, err = golden_for(inst, inputs)
            base = base_row(inst, "reference", "xentcheck.reference.evaluate", "cpu", "float64")
            if golden is None:
                status = "pass" if case.expect_error else "mismatch"
                rows.append({**base, "quantity": "value", **no_comparison(status, err)})
                continue
            if case.expect_error:
                msg = (
                    "the case expects the input to be rejected, but the reference computes a value"
                )
                rows.append({**base, "quantity": "value", **no_comparison("mismatch", msg)})
            if case.expected is None:
                continue
            tolerance = expected_tolerance(case)
            bound = ", ".join(f"{k} {v:g}" for k, v in tolerance.items())
            wanted = [("value", case.expected.get("value"), golden.value)]
            wanted += [
                (f"grad:{k}", v, golden.grads.get(k))
                for k, v in case.expected.get("grads", {}).items()
            ]
            for quantity, expected, actual in wanted:
                if expected is None:
                    continue
                row = {**base, "quantity": quantity, **tolerance}
                if actual is None:
                    rows.append(
                        {**row, **no_comparison("mismatch", f"the reference has no {quantity}")}
                    )
                    continue
                c = compare_expected(expected, actual, tolerance)
                rows.append({**row, "status": c.status, "max_abs_err": c.max_abs_err, "max_rel_err": c.max_rel_err,
                             "max_ulp": c.max_ulp, "expected": c.expected, "actual": c.actual,
                             "message": f"expected value from the case file vs the reference ({bound})" + (f"; {c.note}" if c.note else "")})  # fmt: skip
    return rows


class RunError(Exception):
    """A run that cannot start as asked (``--resume`` without a matching run): one line, exit 2."""


class Interrupted(Exception):
    """Ctrl-C: the finished part was merged into ``out``; ``rows`` holds it."""

    def __init__(self, rows: list[dict[str, Any]], out: Path) -> None:
        super().__init__(f"interrupted; {len(rows)} results of finished instances in {out}")
        self.rows = rows


def case_files(case_paths: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """({path relative to its cases root: file text}, the cases roots) of every case file.

    Keys match the rows' case keys (``<relative path without suffix>/<id>``).
    """
    files: dict[str, str] = {}
    roots: list[str] = []
    for file, root in discover(case_paths):
        files[file.relative_to(root).as_posix()] = file.read_text(encoding="utf-8")
        if str(root) not in roots:
            roots.append(str(root))
    return files, roots


def _manifest(frameworks, case_paths, cases_sha, dtypes, device, skip_tags, n,
              criterion="ulp", known=(), tags=(), shard=None) -> dict[str, Any]:  # fmt: skip
    return {"frameworks": list(frameworks), "cases": list(case_paths), "cases_digest": cases_sha,
            "dtypes": sorted(dtypes or []), "device": device, "skip_tags": sorted(skip_tags),
            "instances": n, "criterion": criterion, "known_files": list(known),
            "tags": sorted(tags), "shard": None if shard is None else str(shard)}  # fmt: skip


def _known_files(paths: Sequence[str | Path]) -> list[dict[str, str]]:
    """[{path, sha256}] of the user known-difference files, in the order given (a file
    that cannot be read gets sha256 null; loading it reports why)."""
    out = []
    for p in paths:
        try:
            sha: str | None = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        except OSError:
            sha = None
        out.append({"path": str(p), "sha256": sha})
    return out


def _check_resume(parts_dir: Path, manifest: dict[str, Any], out: Path) -> None:
    file = parts_dir / "run.json"
    if not file.is_file():
        raise RunError(
            f"--resume: no interrupted run to resume for {out} ({file} not found); run without --resume"
        )
    try:
        old = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        raise RunError(
            f"--resume: {file} is damaged; run without --resume to start again"
        ) from None
    differing = [k for k in manifest if old.get(k) != manifest[k]]
    if differing:
        k = differing[0]
        what = "case files" if k == "cases_digest" else k
        raise RunError(f"--resume: the run in {parts_dir} had different {what} ({old.get(k)!r}, now "
                       f"{manifest[k]!r}); repeat its options or run without --resume")  # fmt: skip


def default_jobs(n_frameworks: int) -> int:
    """Frameworks in parallel on half the CPUs (one at a time on a 2-core machine)."""
    return max(1, min(n_frameworks, (os.cpu_count() or 1) // 2))


def run(
    frameworks: list[str],
    case_paths: list[str],
    cases: list[Case],
    dtypes: list[str] | None,
    device: str,
    out: Path,
    jobs: int = 1,
    quiet: bool = False,
    *,
    timeout: float = 300.0,
    resume: bool = False,
    skip_tags: Iterable[str] = (),
    golden_cache: Path | None = None,
    cache: ResultCache | None = None,
    progress_stream: TextIO | None = None,
    criterion: str = "ulp",
    known_files: Sequence[str | Path] = (),
    deadline: float | None = None,
    only: Mapping[str, Iterable[str]] | None = None,
    apis: Mapping[str, Iterable[str]] | None = None,
    tags: Iterable[str] = (),
    shard: Shard | None = None,
) -> list[dict[str, Any]]:
    """Run ``frameworks`` over ``cases`` in supervised workers; write ``out``; return its rows.

    ``jobs`` worker processes in all: frameworks in parallel and, when ``jobs`` exceeds
    their number, each framework's instances split into interleaved shards. Parts live in
    ``OUT.parts/`` until the run completes; ``resume`` continues an interrupted run there.
    With a ``cache`` (:mod:`xentcheck.harness.cache`) the rows of every (framework,
    instance) whose key is unchanged are reused, the rest run and are stored, the goldens
    live in its folder (unless ``golden_cache`` names another) and the workers are told its
    compile-cache folder (unless the environment names one); ``cache.reused_rows`` and
    ``cache.computed_rows`` count the rows of the results file. ``criterion`` (``ulp`` or
    ``tolerance``, :mod:`xentcheck.accuracy`) judges the rows; ``known_files`` are user
    known-difference files every worker loads; the header names both (each file with its
    SHA-256) and both are part of the result cache's key. Raises :class:`RunError`
    for a ``resume`` that does not match, :class:`Interrupted` on Ctrl-C or at ``deadline``
    (a :func:`time.monotonic` time; `fuzz` keeps to its budget with it), after merging
    what finished into ``out`` and storing it in the cache. ``only`` (framework -> case
    keys) runs each framework on those cases alone (`fuzz` shrinks a framework's finding
    without running the others); ``apis`` (framework -> API names) runs only those APIs
    of a framework (and only the header tells the run was limited). ``tags`` keeps the
    cases carrying one of them (none: every case); ``shard`` runs that shard of the
    instances (:mod:`xentcheck.harness.plan`), reference rows included; the header records
    both.
    """
    skip_tags = sorted(set(skip_tags))
    tags = sorted(set(tags))
    cases = select_cases(cases, skip_tags)
    instances = instances_of(cases)  # the index space the workers share: every instance
    selected = chosen(instances, tags, shard)
    parts_dir = out.parent / (out.name + ".parts")
    cases_sha = cases_digest(case_paths)
    known = _known_files(known_files)
    manifest = _manifest(
        frameworks, case_paths, cases_sha, dtypes, device, skip_tags, len(instances),
        criterion, known, tags, shard,
    )  # fmt: skip
    if resume:
        _check_resume(parts_dir, manifest, out)
    else:
        shutil.rmtree(parts_dir, ignore_errors=True)
        parts_dir.mkdir(parents=True)
        # written whole or not at all: a run killed here leaves nothing half-written to resume
        tmp = parts_dir / "run.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, parts_dir / "run.json")
    previous = read_parts(parts_dir)
    reuse = None
    if cache is not None:
        others = set(range(len(instances))).difference(selected)  # not this run's: not looked up
        skip = {*previous.blocks, *((fw, i) for fw in frameworks for i in others)}
        reuse = cache.lookup(frameworks, instances, dtypes, device, skip,
                             judged={"criterion": criterion, "known_files": known})  # fmt: skip
        golden_cache = golden_cache or cache.goldens_dir
    storable = _storable(parts_dir, reuse, resume)
    cache_dir = Path(golden_cache) if golden_cache else parts_dir / "goldens"
    args = [a for p in case_paths for a in ("--cases", str(p))]
    args += [a for d in dtypes or [] for a in ("--dtype", d)]
    args += [a for t in skip_tags for a in ("--skip-tag", t)]
    args += ["--device", device] + (["--quiet"] if quiet else [])
    args += ["--criterion", criterion]
    args += [a for k in known for a in ("--known", str(Path(k["path"]).resolve()))]
    reused = reuse.blocks if reuse is not None else {}
    mine = {fw: None if only is None else set(only.get(fw, ())) for fw in frameworks}
    todo = {
        fw: [i for i in selected
             if (fw, i) not in previous.blocks and (fw, i) not in reused
             and (mine[fw] is None or instances[i].case.key in mine[fw])]
        for fw in frameworks
    }  # fmt: skip
    units = [
        Unit(fw, shard)
        for fw, n in zip(frameworks, shard_counts(len(frameworks), jobs), strict=True)
        for shard in interleave(todo[fw], n)
    ]
    if golden_cache or len(units) > 1:  # a lone worker has no one to share goldens with
        args += ["--golden-cache", str(cache_dir.resolve())]
    progress = Progress({fw: len(selected) for fw in frameworks},
                        {fw: len(selected) - len(todo[fw]) for fw in frameworks},
                        quiet=quiet, stream=progress_stream,
                        labels={fw: fw.partition(":")[0].rpartition(".")[2] for fw in frameworks})  # fmt: skip
    env = {}
    if cache is not None and COMPILE_CACHE_ENV not in os.environ:
        env[COMPILE_CACHE_ENV] = str(cache.compile_dir.resolve())
    per_framework = {fw: [a for name in sorted(set(names)) for a in ("--api", name)]
                     for fw, names in (apis or {}).items()}  # fmt: skip
    sup = Supervisor(instances, args, parts_dir, progress, timeout=timeout, env=env,
                     framework_args=per_framework)  # fmt: skip
    interrupted = False
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(sup.run_unit, u) for u in units]
            try:
                while not all(f.done() for f in futures):
                    concurrent.futures.wait(futures, timeout=0.1 if deadline else 0.5)
                    if deadline is not None and time.monotonic() > deadline:
                        raise KeyboardInterrupt  # the same path as Ctrl-C
            except KeyboardInterrupt:
                interrupted = True
                sup.stop.set()
                concurrent.futures.wait(futures)
            for f in futures:
                f.result()
    finally:
        sup.close()
        progress.close()
    parts = read_parts(parts_dir)
    rows = reference_rows(cases, {instances[i].name for i in selected})
    rows += [sup.setup_failures[fw] for fw in frameworks if fw in sup.setup_failures]
    n_reused = 0
    for fw in frameworks:
        for i in selected:
            block = parts.blocks.get((fw, i))
            if block is None and (fw, i) in reused:
                block = reused[(fw, i)]
                n_reused += len(block[0])
            if block is not None:
                rows.extend(block[0])
    counts = {"dir": None if cache is None else str(cache.root), "reused_rows": n_reused,
              "computed_rows": len(rows) - n_reused}  # fmt: skip
    if cache is not None and reuse is not None:
        cache.reused_rows, cache.computed_rows = n_reused, len(rows) - n_reused
        cache.store(reuse, parts.blocks, parts.headers, storable)
    header = _header(
        frameworks, case_paths, cases_sha, parts, sup, skip_tags, timeout, reuse, counts
    )
    header.update(criterion=criterion, known_files=known, tags=tags,
                  shard=None if shard is None else shard.to_json(),
                  device=device, dtypes=sorted(dtypes) if dtypes else None)  # fmt: skip
    if apis:
        header["apis_only"] = {fw: sorted(set(names)) for fw, names in apis.items()}
    tmp = out.with_name(out.name + ".tmp")
    with ResultWriter(tmp) as w:
        w.write(header)
        w.write_all(rows)
    os.replace(tmp, out)
    if interrupted:
        raise Interrupted(rows, out)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return rows


def _storable(parts_dir: Path, reuse: Reuse | None, resume: bool) -> set[str]:
    """The frameworks whose computed rows may be stored: on a resume, those whose key is
    the one they had when the parts were started (an adapter edited in between must not
    store rows of the old code under the new key). Records the keys of a fresh run."""
    if reuse is None:
        return set()
    file = parts_dir / "cache-keys.json"
    if not resume:
        file.write_text(json.dumps(reuse.framework_keys, indent=1))
        return set(reuse.framework_keys)
    try:
        started = json.loads(file.read_text())
    except (OSError, ValueError):
        return set()
    return {
        fw
        for fw, k in reuse.framework_keys.items()
        if isinstance(started, dict) and started.get(fw) == k
    }


def _header(frameworks, case_paths, cases_sha, parts: Parts, sup: Supervisor, skip_tags, timeout,
            reuse: Reuse | None, cache: dict[str, Any]):  # fmt: skip
    files, roots = case_files(case_paths)
    where = {"cases_root": roots[0] if roots else None}  # the first; all in cases_roots
    if len(roots) > 1:
        where["cases_roots"] = roots
    header = run_header(cases=case_paths, cases_digest=cases_sha, **where, case_files=files,
                        skip_tags=skip_tags, timeout_s=timeout, frameworks={}, cache=cache,
                        argv=sys.argv[1:])  # fmt: skip
    names: dict[str, str] = {}
    cached = reuse.headers.values() if reuse is not None else []
    for h in [*cached, *parts.headers]:
        header["frameworks"].update(h.get("frameworks", {}))
        if h.get("framework_spec"):
            names[h["framework_spec"]] = h["framework"]
    for fw in frameworks:
        name = names.get(fw, fw)
        info = header["frameworks"].setdefault(name, {})
        info["spec"] = fw  # what --framework or --adapter named
        stats = [st for (f, _), (_, st) in parts.blocks.items() if f == fw]
        timing = {k: round(sum(st.get(k, 0) for st in stats), 3) for k in
                  ("api_s", "reference_s", "sensitivity_s", "compile_s", "golden_hits",
                   "golden_misses")}  # fmt: skip
        reused = sum(f == fw for f, _ in reuse.blocks) if reuse is not None else 0
        info["timing"] = {"worker_wall_s": round(parts.wall_s.get(fw, 0.0), 3), **timing,
                          "instances": len(stats), "cached_instances": reused,
                          "workers_replaced": sup.replaced[fw]}  # fmt: skip
    if len(frameworks) == 1:
        header["framework"] = names.get(frameworks[0], frameworks[0])
    return header


def exit_status(rows: list[dict[str, Any]], fail_on: str) -> int:
    """0 when the run conforms under ``fail_on``, 1 when it found what ``fail_on`` counts.

    ``unexplained`` (default): mismatch, nonfinite, error, crash or timeout rows;
    ``any``: those and ``known`` rows; ``never``: nothing from the frameworks.
    A reference row that fails (a case's ``expected`` value) always counts.
    """
    if any(r["framework"] == "reference" and r["status"] != "pass" for r in rows):
        return 1
    counted = {"unexplained": DISCREPANCIES, "any": (*DISCREPANCIES, "known"), "never": ()}[fail_on]
    return int(any(r["status"] in counted for r in rows))
