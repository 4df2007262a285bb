"""The registry of documented differences: why a result differs, and where it is written.

A result that would be ``mismatch``, ``nonfinite`` or ``error`` becomes ``known`` when an
entry here explains it: the entry names the framework, the APIs (exact names or shell-style patterns),
a predicate over the :class:`Finding` that must hold, a one-line explanation and a link
to the framework's documentation or issue. Predicates are specific: they check the
condition the documentation states (an input probability below 1e-7 for a clip at 1e-7,
say), so a difference the entry does not explain stays a ``mismatch``.

Entries live in one module per framework (``known/torch.py`` ...) as ``ENTRIES`` lists.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Finding:
    """One non-passing comparison, as the known-difference predicates see it.

    inputs are the dtype-rounded inputs (float64 / int64 / bool); expected is the golden
    array for ``quantity`` (None when the reference raised); actual is the framework's
    array (None when it raised; then ``error`` holds ``"ExcType: message"``).
    """

    framework: str
    api: str
    loss: str
    params: Mapping[str, Any]
    inputs: Mapping[str, np.ndarray]
    dtype: str
    device: str
    quantity: str
    status: str
    expected: np.ndarray | None
    actual: np.ndarray | None
    error: str | None
    expect_error: bool


@dataclass(frozen=True)
class Known:
    """A documented difference."""

    id: str
    framework: str
    apis: tuple[str, ...]
    explanation: str
    link: str
    when: Callable[[Finding], bool]
    statuses: tuple[str, ...] = ("mismatch", "nonfinite", "error")

    def matches(self, f: Finding) -> bool:
        if f.framework != self.framework or f.status not in self.statuses:
            return False
        if not any(f.api == p or fnmatch.fnmatchcase(f.api, p) for p in self.apis):
            return False
        try:
            return bool(self.when(f))
        except Exception:  # a predicate that cannot judge the finding does not explain it
            return False


_MODULES = ("torch", "tensorflow", "jax")
_cache: dict[str, list[Known]] = {}


def entries(framework: str) -> list[Known]:
    """The entries for ``framework`` (empty when it has none)."""
    if framework not in _cache:
        if framework in _MODULES:
            _cache[framework] = list(
                importlib.import_module(f"xentcheck.known.{framework}").ENTRIES
            )
        else:
            _cache[framework] = []
    return _cache[framework]


def explain(f: Finding) -> Known | None:
    """The first entry that explains ``f``, or None."""
    for k in entries(f.framework):
        if k.matches(f):
            return k
    return None
