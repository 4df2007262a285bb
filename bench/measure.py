"""Measuring helpers: run a child process and time it, read peak resident memory.

Children that measure something print one JSON object as the last line of their stdout
(:func:`emit`); :func:`run_json` runs them and parses it. Peak memory is the kernel's
high-water mark of the resident set (``VmHWM`` in ``/proc/self/status``), which counts
every page the process ever had resident at once, interpreter and libraries included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = float(1 << 30)
ROOT = Path(__file__).resolve().parent.parent


def proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in bytes; None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes (VmHWM, else ``ru_maxrss``)."""
    hwm = proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(obj: dict[str, Any]) -> None:
    """Print ``obj`` as the last line of stdout, for :func:`run_json`."""
    sys.stdout.write("\n" + json.dumps(obj) + "\n")
    sys.stdout.flush()


def child_env() -> dict[str, str]:
    """The environment of measuring children: this one, with the project importable."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_timed(cmd: list[str], timeout: float | None = None) -> tuple[float, int, str]:
    """Run ``cmd``; return (wall seconds, exit status, combined output)."""
    t0 = time.perf_counter()
    p = subprocess.run(
        cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=ROOT,
        errors="replace",
    )  # fmt: skip
    return time.perf_counter() - t0, p.returncode, p.stdout + p.stderr


def run_json(cmd: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run a measuring child and return the JSON object of its last stdout line.

    Raises RuntimeError with the child's last output when it fails.
    """
    p = subprocess.run(
        cmd, capture_output=True, text=True, env=child_env(), timeout=timeout, cwd=ROOT,
        errors="replace",
    )  # fmt: skip
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    if p.returncode != 0 or not lines:
        tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-6:])
        raise RuntimeError(f"{' '.join(cmd[1:4])}... exited {p.returncode}: {tail}")
    return json.loads(lines[-1])
