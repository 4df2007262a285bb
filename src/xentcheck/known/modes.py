"""Documented differences carried over to another execution mode or backend of an API.

A compiled mode (``torch.compile``, XLA, JAX without jit) or another Keras backend runs
the same library code as the framework it derives from, so the documented mechanisms of
that framework (a clamp, a default ``ignore_index``, a Keras epsilon) hold there too.
:func:`derive` copies such entries to the derived framework: the row names are wrapped
as the derived framework names them, and the predicate judges the finding as if it came
from the original framework and API, so it stays exactly as specific as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from xentcheck.known import MAIN_PACKAGE, Finding, Known

__all__ = ["derive"]


def derive(
    entries: Iterable[Known],
    framework: str,
    wrap: Callable[[str], str] = lambda api: api,
    runs: Callable[[str], bool] = lambda api: True,
) -> list[Known]:
    """``entries`` of another framework, re-registered for ``framework``.

    wrap:  the derived row name of an original API name (or pattern), e.g.
           ``lambda api: f"torch.compile({api})"``.
    runs:  whether the derived framework runs an original API name (or pattern) at all;
           the patterns it does not run are left out, and so is an entry left with none.
    """
    out = []
    for k in entries:
        apis = tuple(wrap(p) for p in k.apis if runs(p))
        if not apis:
            continue
        versions = k.versions
        if versions and not versions.strip()[:1].isalpha():  # a bare range on the main package
            versions = f"{MAIN_PACKAGE.get(k.framework, k.framework)}{versions.strip()}"
        out.append(
            dataclasses.replace(
                k,
                framework=framework,
                apis=apis,
                when=_as_original(k, wrap),
                versions=versions,
            )
        )
    return out


def _as_original(k: Known, wrap: Callable[[str], str]) -> Callable[[Finding], bool]:
    """``k.when`` applied to the finding renamed back to ``k``'s framework and API."""
    probe = wrap("\0")
    prefix, _, suffix = probe.partition("\0")

    def when(f: Finding) -> bool:
        api = f.api
        if prefix and api.startswith(prefix) and api.endswith(suffix):
            api = api[len(prefix) : len(api) - len(suffix)]
        return bool(k.when(dataclasses.replace(f, framework=k.framework, api=api)))

    return when
