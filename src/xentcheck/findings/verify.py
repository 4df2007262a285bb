"""Running findings' scripts as a maintainer would: alone, with xentcheck out of reach.

Each script runs in a fresh interpreter whose ``sys.modules['xentcheck']`` is None (so
any ``import xentcheck...`` fails), from a temporary directory outside the repository.
It reproduces when it exits 0.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the interpreter's command: hide xentcheck, then run the script as ``__main__``
HIDDEN = (
    "import runpy, sys; sys.modules['xentcheck'] = None; "
    "sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@dataclass(frozen=True)
class Verdict:
    """What running one finding's script gave."""

    id: str
    reproduced: bool | None  # None: the finding has no script
    returncode: int | None
    output: str  # the last lines of stdout and stderr


def run_script(text: str, timeout: float = 300.0, python: str = sys.executable) -> tuple[int, str]:
    """(exit status, last 2000 characters of output) of ``text`` run with xentcheck hidden;
    a run past ``timeout`` seconds is exit status 124."""
    with tempfile.TemporaryDirectory(prefix="xentcheck-verify-") as tmp:
        path = Path(tmp) / "repro.py"
        path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run(
                [python, "-c", HIDDEN, str(path)],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return 124, f"no result after {timeout:g} s"
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def verify(
    findings: Sequence[Mapping[str, Any]], timeout: float = 300.0, jobs: int = 1
) -> list[Verdict]:
    """Run every finding's script (``jobs`` at a time, each in its own interpreter) and
    say whether it reproduces; the verdicts in the findings' order."""

    def one(f: Mapping[str, Any]) -> Verdict:
        if not f.get("repro"):
            return Verdict(str(f["id"]), None, None, str(f.get("repro_note") or "no script"))
        code, text = run_script(str(f["repro"]), timeout)
        return Verdict(str(f["id"]), code == 0, code, text)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, findings))
