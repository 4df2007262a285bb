"""The runner: one worker process per framework, merged into one results file.

Each framework runs in ``python -m xentcheck.harness.worker`` of its own, writing a part
file line by line. When the workers are done the runner merges the parts behind one run
header. A worker that dies leaves its rows in place and adds a ``crash`` row with its
exit status and the last lines it printed. Cases with ``expected`` values check the
reference itself (rows with ``framework: reference``).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xentcheck.harness.cases import Case, discover, expand
from xentcheck.harness.compare import compare, tolerance_for
from xentcheck.harness.results import DISCREPANCIES, ResultWriter, read_results, run_header
from xentcheck.harness.worker import base_row, golden_for, no_comparison, rounded_inputs


def cases_digest(paths: Iterable[str]) -> str:
    """SHA-256 over the case files' relative paths and bytes, in sorted order."""
    h = hashlib.sha256()
    for file, root in discover(paths):
        h.update(str(file.relative_to(root)).encode() + b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


def reference_rows(cases: list[Case]) -> list[dict[str, Any]]:
    """Rows checking the reference against the ``expected`` values and ``expect_error`` of cases."""
    rows = []
    for case in cases:
        if case.expected is None and not case.expect_error:
            continue
        for inst in expand(case):
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
            rtol, atol = tolerance_for("float64", case.tolerance)
            wanted = [("value", case.expected.get("value"), golden.value)]
            wanted += [
                (f"grad:{k}", v, golden.grads.get(k))
                for k, v in case.expected.get("grads", {}).items()
            ]
            for quantity, expected, actual in wanted:
                if expected is None:
                    continue
                row = {**base, "quantity": quantity, "rtol": rtol, "atol": atol}
                if actual is None:
                    rows.append(
                        {**row, **no_comparison("mismatch", f"the reference has no {quantity}")}
                    )
                    continue
                c = compare(np.broadcast_to(expected, np.shape(actual)) if np.ndim(expected) == 0 else expected,
                            actual, "float64", rtol, atol)  # fmt: skip
                rows.append({**row, "status": c.status, "max_abs_err": c.max_abs_err, "max_rel_err": c.max_rel_err,
                             "max_ulp": c.max_ulp, "expected": c.expected, "actual": c.actual,
                             "message": "expected value from the case file vs the reference" + (f"; {c.note}" if c.note else "")})  # fmt: skip
    return rows


@dataclass
class WorkerResult:
    framework: str
    part: Path
    returncode: int
    tail: list[str]


def _run_worker(fw: str, args: list[str], part: Path, quiet: bool) -> WorkerResult:
    cmd = [
        sys.executable,
        "-m",
        "xentcheck.harness.worker",
        "--framework",
        fw,
        "--out",
        str(part),
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    tail: collections.deque[str] = collections.deque(maxlen=30)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip("\n"))
        if not quiet and line.startswith("xentcheck:"):
            print(line, end="", file=sys.stderr, flush=True)
    return WorkerResult(fw, part, proc.wait(), list(tail))


def run(
    frameworks: list[str],
    case_paths: list[str],
    cases: list[Case],
    dtypes: list[str] | None,
    device: str,
    out: Path,
    jobs: int = 1,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Run ``frameworks`` over ``cases``; write ``out``; return the result rows."""
    parts_dir = out.parent / (out.name + ".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    args = [a for p in case_paths for a in ("--cases", p)]
    args += [a for d in dtypes or [] for a in ("--dtype", d)]
    args += ["--device", device] + (["--quiet"] if quiet else [])
    results: dict[str, WorkerResult] = {}

    def work(fw: str) -> None:
        part = parts_dir / f"{fw}.jsonl"
        part.unlink(missing_ok=True)
        results[fw] = _run_worker(fw, args, part, quiet)

    pending = list(frameworks)
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        threads = [threading.Thread(target=work, args=(fw,)) for fw in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    header = run_header(
        cases=case_paths, cases_digest=cases_digest(case_paths), frameworks={}, argv=sys.argv[1:]
    )
    rows = reference_rows(cases)
    for fw in frameworks:
        r = results[fw]
        part_headers, part_rows = read_results(r.part) if r.part.exists() else ([], [])
        for h in part_headers:
            header["frameworks"].update(h.get("frameworks", {}))
        rows.extend(part_rows)
        if r.returncode != 0:
            last = part_rows[-1]["instance"] if part_rows else None
            rows.append(crash_row(fw, r, last))
    if len(frameworks) == 1:
        header["framework"] = frameworks[0]
    with ResultWriter(out) as w:
        w.write(header)
        w.write_all(rows)
    for r in results.values():
        if r.returncode == 0:
            r.part.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # left in place when a crashed worker's part is kept
        parts_dir.rmdir()
    return rows


def crash_row(fw: str, r: WorkerResult, last_instance: str | None) -> dict[str, Any]:
    """A ``crash`` row for a worker that exited with a non-zero status."""
    code = r.returncode
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    after = f" after {last_instance}" if last_instance else " before any result"
    unknown = {k: "*" for k in ("case", "instance", "loss", "api", "device", "dtype", "quantity")}
    message = f"worker {how}{after}; last output: " + " | ".join(r.tail[-8:])
    return {**unknown, "params": {}, "framework": fw, **no_comparison("crash", message)}


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
