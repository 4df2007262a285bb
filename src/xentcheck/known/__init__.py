"""The registry of documented differences: why a result differs, and where it is written.

A result that would be ``mismatch``, ``nonfinite`` or ``error`` becomes ``known`` when an
entry here explains it: the entry names the framework, the APIs (exact names or shell-style patterns),
a predicate over the :class:`Finding` that must hold, a one-line explanation and a link
to the framework's documentation or issue. Predicates are specific: they check the
condition the documentation states (an input probability below 1e-7 for a clip at 1e-7,
say), so a difference the entry does not explain stays a ``mismatch``.

An entry may name the framework versions it applies to (``versions=">=2.1,<2.14"``, a
packaging specifier on the framework's main package, or ``"optax<0.2.5"`` for another
package); a finding from a version outside the range is not explained by it, and
:func:`not_reproduced` lists the entries that apply to a run's versions but matched none
of its rows (fixed upstream, say). An entry without ``versions`` applies to every version.

Entries live in one module per framework (``known/torch.py`` ...) as ``ENTRIES`` lists;
a framework named ``X`` finds ``xentcheck.known.X`` when that module exists (``-`` read as ``_``).
Such a module holds its entries and the predicates that reproduce each documented
mechanism; what a predicate reads off a finding (its first input and class axis, labels,
kept positions, rejected labels, where it differs from the reference) is defined once in
:mod:`xentcheck.known.facts`, and an execution mode's entries are derived from its base
framework's by :mod:`xentcheck.known.modes`. Users declare entries of their own in YAML
or Python files (``--known FILE``, :mod:`xentcheck.known.user`); :func:`explain` tries
them after the built-in ones.

A predicate answers True (the entry explains the finding) or False (it does not, including
when the finding lacks what the predicate reads: no such input, no array to compare). A
predicate that raises is broken (a bug, or a framework or reference API it relies on
changed): :func:`explain` raises :class:`PredicateError`, or, given an ``errors`` list (the
harness's worker), records it there and goes on, so the run shows the broken entry instead
of reading its silence as "fixed (no longer reproduces)".
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


@dataclass(frozen=True)
class Finding:
    """One non-passing comparison, as the known-difference predicates see it.

    inputs are the dtype-rounded inputs (float64 / int64 / bool); expected is the golden
    array for ``quantity`` (None when the reference raised); actual is the framework's
    array (None when it raised; then ``error`` holds ``"ExcType: message"``).
    versions are the framework's package versions of the run (``Framework.versions()``,
    ``{"torch": "2.13.0+cpu", ...}``); when empty, the installed versions are looked up.
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
    versions: Mapping[str, str] = field(default_factory=dict)


#: framework name -> the package a bare ``versions`` specifier refers to
MAIN_PACKAGE: dict[str, str] = {
    "torch": "torch",
    "tensorflow": "tensorflow",
    "jax": "jax",
    "tf-compat-v1": "tensorflow",
    "tf-keras": "tf_keras",
}


@dataclass(frozen=True)
class Known:
    """A documented difference.

    versions: the versions it applies to: a specifier set on the framework's main
              package (``">=2.1,<2.14"``) or a requirement naming the package
              (``"optax<0.2.5"``, ``"keras>=3"``); empty: every version. State a range
              only where the framework's changelog, docs or issue tracker does.
    """

    id: str
    framework: str
    apis: tuple[str, ...]
    explanation: str
    link: str
    when: Callable[[Finding], bool]
    statuses: tuple[str, ...] = ("mismatch", "nonfinite", "error")
    versions: str = ""

    def __post_init__(self) -> None:
        if self.versions:
            self.version_range()  # a malformed range fails at import, not mid-run

    def version_range(self) -> tuple[str, SpecifierSet] | None:
        """(package, specifier set) of ``versions``, or None for every version."""
        if not self.versions:
            return None
        return _parse_range(self.versions, MAIN_PACKAGE.get(self.framework, self.framework))

    def applies_to(self, versions: Mapping[str, str] | None = None) -> bool:
        """True when the package version (from ``versions``, else the installed one) is in
        the entry's range; an entry without a range, or an unknown version, applies."""
        rng = self.version_range()
        if rng is None:
            return True
        package, spec = rng
        version = (versions or {}).get(package) or installed_version(package)
        if version is None:
            return True
        try:
            return spec.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return True

    def covers_api(self, api: str) -> bool:
        return any(api == p or fnmatch.fnmatchcase(api, p) for p in self.apis)

    def matches(self, f: Finding) -> bool:
        if f.framework != self.framework or f.status not in self.statuses:
            return False
        if not self.covers_api(f.api):
            return False
        if not self.applies_to(f.versions):
            return False
        try:
            return bool(self.when(f))
        except Exception as exc:  # a broken predicate is not a "no": say so
            raise PredicateError(self.id, exc) from exc


class PredicateError(Exception):
    """An entry's predicate raised on a finding (``entry_id``, the exception ``cause``).

    It means the entry is broken, not that it does not explain the finding: a predicate
    that cannot judge a finding (an input it reads is absent ...) returns False instead.
    """

    def __init__(self, entry_id: str, cause: BaseException) -> None:
        self.entry_id = entry_id
        self.cause = cause
        text = " ".join(str(cause).split())
        self.error = f"{type(cause).__name__}: {text[:300]}" if text else type(cause).__name__
        super().__init__(f"known entry {entry_id!r}: its predicate raised {self.error}")

    def as_row(self) -> dict[str, str]:
        """The JSON form a result row carries in ``known_errors``: ``{"id", "error"}``."""
        return {"id": self.entry_id, "error": self.error}


def _parse_range(text: str, default_package: str) -> tuple[str, SpecifierSet]:
    text = text.strip()
    try:
        if text[:1].isalpha():
            req = Requirement(text)
            return req.name, req.specifier
        return default_package, SpecifierSet(text)
    except (InvalidRequirement, InvalidSpecifier) as exc:
        raise ValueError(
            f"versions={text!r}: not a version range; write e.g. '>=2.1,<2.14' or 'optax<0.2.5'"
        ) from exc


@cache
def installed_version(package: str) -> str | None:
    """The version of ``package`` here: its imported module's ``__version__``, else the
    installed distribution's (``tensorflow`` is found as ``tensorflow-cpu`` too, for environments that install that build)."""
    module = sys.modules.get(package)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        pass
    for dist in importlib.metadata.packages_distributions().get(package, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


_cache: dict[str, list[Known]] = {}
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: modules of this package that hold no framework's entries
SHARED_MODULES = frozenset({"facts", "modes", "user"})


def entries(framework: str) -> list[Known]:
    """The entries for ``framework``: ``xentcheck.known.<framework>.ENTRIES``, a ``-`` in
    the name read as ``_`` (``keras-jax`` -> ``known/keras_jax.py``); empty when there is
    no such module."""
    if framework not in _cache:
        name = framework.replace("-", "_")
        module = f"xentcheck.known.{name}"
        if (
            _MODULE_NAME.match(name)
            and name not in SHARED_MODULES
            and importlib.util.find_spec(module) is not None
        ):
            _cache[framework] = list(importlib.import_module(module).ENTRIES)
        else:
            _cache[framework] = []
    return _cache[framework]


def explain(
    f: Finding, errors: list[PredicateError] | None = None, extra: Iterable[Known] = ()
) -> Known | None:
    """The first entry that explains ``f``, or None: the built-in entries of its framework
    first, then ``extra`` (a user's entries, :func:`xentcheck.known.user.load_known`; those
    of other frameworks are passed over).

    A predicate that raises makes this raise :class:`PredicateError`; with an ``errors``
    list it is appended there instead and the search goes on with the next entry.
    """
    for k in (*entries(f.framework), *extra):
        try:
            if k.matches(f):
                return k
        except PredicateError as err:
            if errors is None:
                raise
            errors.append(err)
    return None


_warned: set[tuple[str, str]] = set()


def warn_predicate_errors(errors: Iterable[PredicateError], framework: str) -> None:
    """One ``xentcheck: warning:`` line on stderr per broken entry of ``framework`` (once
    per process: a worker warns on the first row the entry could not judge)."""
    for err in errors:
        if (framework, err.entry_id) in _warned:
            continue
        _warned.add((framework, err.entry_id))
        print(
            f"xentcheck: warning: {framework}: {err}; the rows it judges stay unexplained "
            "and name it in known_errors",
            file=sys.stderr,
            flush=True,
        )


def predicate_errors(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The broken entries of a run: one dict per (framework, entry id) named in the rows'
    ``known_errors``, sorted, with ``id``, ``framework``, ``error`` (the first one seen)
    and ``rows`` (how many rows it could not judge)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        for e in r.get("known_errors") or ():
            key = (str(r.get("framework", "")), str(e.get("id", "")))
            entry = found.setdefault(
                key, {"id": key[1], "framework": key[0], "error": e.get("error", ""), "rows": 0}
            )
            entry["rows"] += 1
    return [found[k] for k in sorted(found)]


#: the status :func:`not_reproduced` reports
NOT_REPRODUCED = "fixed (no longer reproduces)"


def not_reproduced(
    headers: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Entries that apply to a run's framework versions and whose APIs the run exercised,
    but that explained none of its rows: the difference no longer reproduces.

    headers: the run headers of the results files (``header["frameworks"][fw]["versions"]``);
    rows: their result rows. Only frameworks named in a header are judged, with that
    header's versions. A run of a subset of the suite can leave an entry's triggering
    case out: read the list next to what ran (it is exact for a run of the full suite).
    A framework that runs only chosen cases by design (``case_tags`` in its header: the
    compiled modes) is not judged at all, nor is an entry whose predicate raised on a row
    (``known_errors``; see :func:`predicate_errors`): it is broken, not fixed.
    Returns one dict per entry, sorted by framework and id: ``id``, ``framework``,
    ``versions`` (the run's version of the package the entry is about), ``range``,
    ``apis`` (the exercised APIs it covers), ``explanation``, ``link``, ``status``.
    """
    versions: dict[str, dict[str, str]] = {}
    subset: set[str] = set()
    for h in headers:
        for fw, info in (h.get("frameworks") or {}).items():
            versions.setdefault(fw, {}).update((info or {}).get("versions") or {})
            if (info or {}).get("case_tags"):
                subset.add(fw)
    for fw in subset:
        del versions[fw]
    exercised: dict[str, set[str]] = {fw: set() for fw in versions}
    seen: set[tuple[str, str]] = set()
    for r in rows:
        fw = r.get("framework")
        if fw in exercised and r.get("api"):
            exercised[fw].add(r["api"])
        if r.get("known_id"):
            seen.add((fw, r["known_id"]))
        seen.update((fw, e.get("id")) for e in r.get("known_errors") or ())
    out = []
    for fw in sorted(versions):
        for k in entries(fw):
            if (fw, k.id) in seen or not k.applies_to(versions[fw]):
                continue
            apis = sorted(a for a in exercised[fw] if k.covers_api(a))
            if not apis:
                continue
            rng = k.version_range()
            package = rng[0] if rng else MAIN_PACKAGE.get(fw, fw)
            out.append(
                {
                    "id": k.id,
                    "framework": fw,
                    "versions": {package: versions[fw].get(package, "")},
                    "range": k.versions or "all versions",
                    "apis": apis,
                    "explanation": k.explanation,
                    "link": k.link,
                    "status": NOT_REPRODUCED,
                }
            )
    return out
