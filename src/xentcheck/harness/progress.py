"""Progress of a run on stderr: one updating bar on a terminal, periodic lines otherwise.

On a terminal the bar shows instances done of all, the rate, the ETA and each
framework's count on one line, redrawn at most a few times a second. When stderr is not
a terminal (CI logs) a plain line is printed every ``interval`` seconds instead. With
``quiet`` nothing is printed. Thread-safe: the supervisor's threads report into it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts of instances done per framework, reported on ``stream``.

    ``labels`` maps a framework key to the name shown (an adapter spec's module name).
    """

    def __init__(
        self,
        totals: dict[str, int],
        done: dict[str, int] | None = None,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float = 15.0,
        tty: bool | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.totals = dict(totals)
        self.done = {k: (done or {}).get(k, 0) for k in totals}
        self.quiet = quiet
        self.labels = labels or {}
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if not self.tty else 0.2
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._start_done = sum(self.done.values())
        self._last = self._start
        self._drawn = False

    def line(self) -> str:
        """The status text: counts, percentage, rate, ETA and per-framework counts."""
        done, total = sum(self.done.values()), sum(self.totals.values())
        elapsed = time.monotonic() - self._start
        rate = (done - self._start_done) / elapsed if elapsed > 0 else 0.0
        left = total - done
        eta = _clock(left / rate) if rate > 0 else "?"
        pct = 100 * done / total if total else 100.0
        per = "  ".join(
            f"{self.labels.get(k, k)} {self.done[k]}/{self.totals[k]}" for k in self.totals
        )
        text = f"{done}/{total} instances {pct:3.0f}%  {rate:.1f}/s  ETA {eta}  | {per}"
        if self.tty:
            width = 24
            fill = int(width * done / total) if total else width
            text = f"[{'#' * fill}{'-' * (width - fill)}] " + text
        return "xentcheck: " + text

    def advance(self, framework: str, n: int = 1) -> None:
        """Count ``n`` more instances of ``framework`` as done; redraw when due."""
        with self._lock:
            self.done[framework] = self.done.get(framework, 0) + n
            now = time.monotonic()
            if not self.quiet and now - self._last >= self.interval:
                self._last = now
                self._show()

    def message(self, text: str) -> None:
        """Print a message line without garbling the bar."""
        if self.quiet:
            return
        with self._lock:
            if self._drawn:
                self.stream.write("\r\033[K")
                self._drawn = False
            self.stream.write(text.rstrip("\n") + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Leave the final state on its own line (terminal only)."""
        with self._lock:
            if not self.quiet and self.tty:
                self._show()
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def _show(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
            self._drawn = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
