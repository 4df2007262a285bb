"""Writing the findings' scripts, framework by framework.

A script is written from the framework's adapter (its ``snippet``), so the adapter must
load, and with it the framework. Each framework's scripts are written by a child
interpreter of its own (``python -m xentcheck.findings.scripts JOBS OUT``; one per CPU at a
time, their outputs in the frameworks' order): Keras picks its
backend once per process, some frameworks abort a process that has loaded another (JAX
after TensorFlow and torch, in a test session), and ``xentcheck report`` and ``findings``
stay free of every framework.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xentcheck.findings.instances import CaseSources, rebuild
from xentcheck.harness.cache import ResultCache, script_key, script_writer_key
from xentcheck.harness.results import framework_specs

Row = dict[str, Any]
#: (script or None, note or None) of one job
Written = tuple[str | None, str | None]


def write_here(
    framework: str, jobs: Sequence[tuple[Row, str]], headers: Sequence[Row]
) -> list[Written]:
    """The scripts of ``jobs`` (example row, title) of ``framework``, written in this process
    (the adapter is loaded by what the run was given: the run header's ``spec``, for an
    adapter named ``--adapter MODULE:ATTR``)."""
    from xentcheck.adapters import load_framework
    from xentcheck.findings.repro import script

    try:
        fw = load_framework(framework_specs(headers).get(framework, framework))
    except Exception as exc:  # not installed here, or a custom adapter's module
        note = f"the {framework} adapter does not load here ({type(exc).__name__}: {exc})"
        return [(None, note)] * len(jobs)
    if fw.snippet is None:
        note = f"the {framework} adapter writes no snippets (a custom adapter): `xentcheck report` has the long script"
        return [(None, note)] * len(jobs)
    fw.setup()
    sources = CaseSources(headers)
    out: list[Written] = []
    for row, title in jobs:
        rebuilt = rebuild(sources, row)
        if isinstance(rebuilt, str):
            out.append((None, rebuilt))
            continue
        try:
            out.append((script(fw, row, rebuilt, title), None))
        except Exception as exc:  # an API with no declaration, a golden missing ...
            out.append(
                (
                    None,
                    f"no script for {row.get('api')} at {row.get('instance')}: {type(exc).__name__}: {exc}",
                )
            )
    return out


def write_in_child(
    framework: str, jobs: Sequence[tuple[Row, str]], headers: Sequence[Row]
) -> list[Written]:
    """:func:`write_here` in a child interpreter of its own."""
    keep = [{k: h.get(k) for k in ("case_files", "cases_root", "frameworks")} for h in headers]
    with tempfile.TemporaryDirectory(prefix="xentcheck-scripts-") as tmp:
        src, dst = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        src.write_text(
            json.dumps({"framework": framework, "headers": keep, "jobs": jobs}), encoding="utf-8"
        )
        done = subprocess.run(
            [sys.executable, "-m", "xentcheck.findings.scripts", str(src), str(dst)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not dst.is_file():
            tail = " ".join(done.stderr.strip().splitlines()[-1:])
            return [(None, f"writing the {framework} scripts failed: {tail}")] * len(jobs)
        return [tuple(x) for x in json.loads(dst.read_text(encoding="utf-8"))]  # type: ignore[misc]


def write_all(
    jobs: Mapping[str, Sequence[tuple[Row, str]]],
    headers: Sequence[Row],
    cache: ResultCache | None = None,
) -> dict[str, list[Written]]:
    """The scripts of every framework's jobs: framework -> one (script, note) per job,
    each framework's written by a child interpreter of its own, one child per CPU at a
    time (a child is mostly its framework's import).

    With a ``cache``, a job whose script is stored under its key
    (:func:`~xentcheck.harness.cache.script_key`) takes it from there, a framework whose
    every script is stored starts no child, and each script written is stored.
    """
    keys = _keys(jobs, headers) if cache is not None else {}
    out: dict[str, list[Written]] = {}
    todo: dict[str, list[int]] = {}
    for fw, fw_jobs in jobs.items():
        stored = (
            [cache.get_script(k) for k in keys[fw]] if cache is not None else [None] * len(fw_jobs)
        )
        out[fw] = [(text, None) for text in stored]
        missing = [n for n, text in enumerate(stored) if text is None]
        if missing:
            todo[fw] = missing
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        done = {
            fw: pool.submit(write_in_child, fw, [jobs[fw][n] for n in missing], headers)
            for fw, missing in todo.items()
        }
        for fw, future in done.items():
            for n, (text, note) in zip(todo[fw], future.result(), strict=True):
                out[fw][n] = (text, note)
                if cache is not None and text is not None:
                    cache.put_script(keys[fw][n], text)
    return out


def _keys(
    jobs: Mapping[str, Sequence[tuple[Row, str]]], headers: Sequence[Row]
) -> dict[str, list[str]]:
    """The cache key of every job (:func:`~xentcheck.harness.cache.script_key`)."""
    specs = framework_specs(headers)
    sources = CaseSources(headers)
    keys: dict[str, list[str]] = {}
    for fw, fw_jobs in jobs.items():
        writer = script_writer_key(specs.get(fw, fw))
        keys[fw] = [
            script_key(
                writer, row, title, sources.text(str((row.get("source") or {}).get("file") or ""))
            )
            for row, title in fw_jobs
        ]
    return keys


def main(argv: list[str] | None = None) -> int:
    """``python -m xentcheck.findings.scripts JOBS OUT``: write one framework's scripts."""
    src, dst = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(src).read_text(encoding="utf-8"))
    jobs = [(row, title) for row, title in spec["jobs"]]
    Path(dst).write_text(
        json.dumps(write_here(spec["framework"], jobs, spec["headers"])), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
