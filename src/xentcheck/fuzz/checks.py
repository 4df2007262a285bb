"""The reference checked against mpmath at the candidates' cases, before any is reported.

Checked where the loss is defined: finite inputs the reference accepts. At an infinite or
NaN input the reference follows conventions of its own (limits, documented per loss),
which its own tests check; mpmath does not decide them.

A check of a small case takes milliseconds, of a large one seconds, so
:class:`ReferenceChecks` works through the candidates on a background thread while
shrinking runs (the frameworks are in worker processes meanwhile) and keeps each result
by the case's content: the final phase only checks the cases that changed since.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xentcheck.fuzz.space import tested_inputs


def reference_check(case: Mapping[str, Any]) -> list[Any]:
    """The reference's disagreements with mpmath at ``case`` ([] when none, or when an
    input is not finite)."""
    from xentcheck.exact import reference_disagreements

    inputs = tested_inputs(case)
    if any(v.dtype.kind == "f" and not np.isfinite(v).all() for v in inputs.values()):
        return []
    return reference_disagreements(case["loss"], inputs, case.get("params") or {})


def _key(case: Mapping[str, Any]) -> str:
    what = {k: v for k, v in case.items() if k not in ("id", "description", "tags")}
    return json.dumps(what, sort_keys=True, default=str)


class ReferenceChecks:
    """:func:`reference_check` results by case content, computed ahead on a thread."""

    def __init__(self) -> None:
        self._done: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def of(self, case: Mapping[str, Any]) -> list[Any]:
        """The check of ``case`` (computed now unless done before)."""
        key = _key(case)
        with self._lock:
            if key in self._done:
                return self._done[key]
        result = reference_check(case)
        with self._lock:
            self._done[key] = result
        return result

    def start(self, cases: Callable[[], Sequence[Mapping[str, Any]]]) -> None:
        """Check ``cases()`` (called again and again: the candidates' current cases) until
        :meth:`stop`."""

        def work() -> None:
            while not self._stop.is_set():
                todo = [c for c in cases() if _key(c) not in self._done]
                if not todo:
                    self._stop.wait(0.5)
                for c in todo:
                    if self._stop.is_set():
                        return
                    self.of(c)

        self._thread = threading.Thread(target=work, name="reference-checks", daemon=True)
        self._thread.start()

    def stop(self, wait: float = 1.0) -> None:
        """Stop the thread: a check it is still in after ``wait`` seconds is left to
        finish on its own (a daemon thread; its result is not needed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait)

    def known(self, case: Mapping[str, Any]) -> list[Any] | None:
        """The check of ``case`` if it was done, else None."""
        with self._lock:
            return self._done.get(_key(case))
