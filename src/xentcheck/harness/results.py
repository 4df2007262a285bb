"""Results files: JSON Lines, a run header first, then one result per line (DESIGN.md).

Writers flush every line, so a run that dies keeps everything it finished. The reader
skips a torn last line (a run killed mid-write) instead of failing.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from xentcheck import __version__

#: every result row has at least these keys (DESIGN.md)
REQUIRED_KEYS = (
    "case", "instance", "loss", "params", "framework", "api", "device", "dtype", "quantity",
    "status", "max_abs_err", "max_rel_err", "max_ulp", "expected", "actual",
)  # fmt: skip
STATUSES = ("pass", "mismatch", "nonfinite", "error", "crash", "timeout", "unsupported", "known")
#: statuses that are discrepancies (make ``--fail-on unexplained`` exit 1)
DISCREPANCIES = ("mismatch", "nonfinite", "error", "crash", "timeout")


def run_header(**extra: Any) -> dict[str, Any]:
    """The first line of a results file: what ran, where and when."""
    return {
        "kind": "run",
        "xentcheck_version": __version__,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        **extra,
    }


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class ResultWriter:
    """Appends JSON lines to a file, flushing each one."""

    def __init__(self, path: str | Path, mode: str = "w") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = open(self.path, mode, encoding="utf-8")  # noqa: SIM115

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(row, allow_nan=False, separators=(",", ":")) + "\n")
        self._f.flush()

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self.write(r)

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete JSON object of a JSON Lines file; a torn or garbled line is skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield obj


def read_results(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(headers, rows) of a results file: header lines have ``kind == 'run'``."""
    headers, rows = [], []
    for obj in read_lines(path):
        (headers if obj.get("kind") == "run" else rows).append(obj)
    return headers, rows
