"""Write, and check, the locks that pin every package of every tox environment.

    .venv/bin/python tools/lock.py                 refresh every lock
    .venv/bin/python tools/lock.py --only NAME     refresh one lock set (repeatable)
    .venv/bin/python tools/lock.py --upgrade       the same, moving every unpinned package to its newest
    python tools/lock.py --check [--lock FILE]     check every lock against its inputs, and this
                                                   environment against FILE (default: the main lock)

Inputs, edited by hand: ``constraints.txt`` (one ``==`` line per framework), ``pyproject.toml``
(dependencies and every extra), ``requirements/tox.in`` (tox and pip-tools for ``.venv``) and
``requirements/versions/NAME.in`` (a version set: pins that replace constraints.txt's lines of
the same names). Outputs, never edited by hand:

- ``requirements/tox.txt``: what ``.venv`` holds (``pip install -r requirements/tox.txt``);
- ``requirements/seed.in``: the pip and setuptools that the locked virtualenv seeds into every
  tox environment (tox.ini makes it seed its embedded wheels, never newer downloads);
- one lock per lock set (:func:`lock_sets`), each a constraints file that tox.ini hands to pip
  as ``PIP_CONSTRAINT`` and that pins every package of the environments installed from it,
  transitive ones, the seed and the build backend included:

  - ``requirements/lock.txt``, the main lock: constraints.txt's versions, torch's CPU build;
  - ``requirements/gpu.txt``, the GPU lock: the same versions as CUDA builds (:data:`GPU_BUILDS`),
    resolved with ``requirements/gpu.in``, which this tool writes from constraints.txt;
  - ``requirements/versions/NAME.txt``: the main lock with a version set's pins;
- ``[build-system] requires`` in ``pyproject.toml``: the main lock's setuptools, pinned exactly.

The resolver is pip-tools' ``pip-compile``: it runs pip's own resolver with pip's own
configuration (this machine's find-links and extra indexes), so a lock is what ``pip install``
would pick here, and it needs only the packages' metadata (no wheel is installed). It keeps the
pins it starts from unless they conflict with an input or ``--upgrade`` is given: the main lock
starts from itself, so a refresh with unchanged inputs rewrites the same files, and every other
lock starts from the main lock, so it differs from it only where its inputs make it differ
(``--check`` names any other difference). The locks carry no hashes: they are constraints
files, and tox installs the project's own wheel, which has no hash to check.

torch is locked at its CPU build in the main lock and the version sets: ``torch==2.13.0+cpu``,
the local label recorded as resolved (pip ranks ``2.13.0+cpu`` above PyPI's CUDA ``2.13.0``,
and ``==2.13.0`` in constraints.txt matches both). The GPU lock asks for ``torch===2.13.0``
(arbitrary equality: PyPI's own wheel, never ``+cpu``). A refresh that resolves the other build
fails and leaves that lock as it was. ``--check`` exits 2 with one line per problem: a lock that
disagrees with an input, or an installed distribution that is not the version of the lock the
environment installs from (tox runs it before each environment's commands).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = "constraints.txt"
PYPROJECT = "pyproject.toml"
TOX_IN = "requirements/tox.in"
TOX_LOCK = "requirements/tox.txt"
SEED = "requirements/seed.in"
LOCK = "requirements/lock.txt"
GPU_IN = "requirements/gpu.in"
GPU_LOCK = "requirements/gpu.txt"
VERSIONS = "requirements/versions"
REFRESH = ".venv/bin/python tools/lock.py"
PYTHON = (3, 11)

CPU_WHEEL_SOURCES = (
    "find-links /opt/wheels, or --extra-index-url https://download.pytorch.org/whl/cpu"
)

# The GPU lock's requirement for each framework of constraints.txt that has a CUDA build
# ({version}: its constraints.txt pin). A requirement of another name replaces the CPU
# distribution: the GPU lock drops the extras that hold it and resolves their other packages.
GPU_BUILDS: Mapping[str, str] = {
    # PyPI's own torch wheel is the CUDA build; `===` never matches the local +cpu build
    "torch": "torch==={version}",
    "tensorflow": "tensorflow[and-cuda]=={version}",
    "jax": "jax[cuda12]=={version}",
    # both install the module onnxruntime: never both in one environment
    "onnxruntime": "onnxruntime-gpu=={version}",
}

PIP_COMPILE = (
    "--quiet",
    "--allow-unsafe",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--no-emit-trusted-host",
    "--newline=lf",
)

TOX_NOTE = f"""\
# The README's .venv: tox and the lock tool. Input: {TOX_IN}.
# Never edit by hand: change the input, then run `{REFRESH}`.
"""
SEED_NOTE = """\
# Written by tools/lock.py: the distributions the locked virtualenv seeds into a tox environment.
"""
GPU_IN_NOTE = f"""\
# Written by tools/lock.py from {CONSTRAINTS} and GPU_BUILDS: each framework's CUDA build
# (torch===: PyPI's own wheel, never +cpu), then the rest of the extras a GPU build replaces.
# The gpu tox environments install it beside the project's other extras, under {GPU_LOCK}.
"""


class LockError(Exception):
    """A problem with the locks or their inputs, as one line ``file:line: reason (fix)``."""


class Pin(NamedTuple):
    """One exact pin: its version and the line it was read from."""

    version: Version
    line: int


class LockSet(NamedTuple):
    """One lock and what it is resolved from.

    Every lock resolves pyproject.toml's dependencies and extras (less ``drop_extras``), the
    virtualenv seed and ``requirements``, under constraints.txt's pins with the pins of
    ``overrides`` in place of the lines of the same names, starting from the main lock's
    pins. ``labels`` names the local build label a distribution's pin must carry (``None``:
    none); no other pin carries one. ``inputs`` says so in words, for the lock's header.
    """

    name: str
    lock: str
    inputs: str
    overrides: str | None = None
    requirements: str | None = None
    drop_extras: tuple[str, ...] = ()
    labels: Mapping[str, str | None] = MappingProxyType({"torch": "cpu"})


MAIN = LockSet(
    "main",
    LOCK,
    f"{PYPROJECT} (dependencies, all extras), {CONSTRAINTS} (the framework pins) and\n"
    f"# {SEED} (what virtualenv seeds)",
)


def gpu_set(root: Path = ROOT) -> LockSet:
    """The GPU lock: GPU_BUILDS in place of the frameworks' CPU builds."""
    dropped = tuple(gpu_requirements(root)[1])
    return LockSet(
        "gpu",
        GPU_LOCK,
        f"{PYPROJECT} (dependencies, extras but {', '.join(dropped)}), {GPU_IN} (the CUDA\n"
        f"# builds, written from {CONSTRAINTS}), {CONSTRAINTS} and {SEED}.\n"
        f"# Resolved starting from {LOCK}'s pins",
        requirements=GPU_IN,
        drop_extras=dropped,
        labels=MappingProxyType({"torch": None}),
    )


def version_sets(root: Path = ROOT) -> list[LockSet]:
    """One lock set per ``requirements/versions/NAME.in``, locked in ``NAME.txt``.

    torch is the +cpu build unless the set pins another build by its label
    (``torch==2.13.0+cu126``: docs/versions.md).
    """
    sets = []
    for path in sorted((root / VERSIONS).glob("*.in")):
        pins = read_pins(path, root)
        labels = {"torch": "cpu"} | {n: p.version.local for n, p in pins.items() if p.version.local}
        sets.append(
            LockSet(
                path.stem,
                f"{VERSIONS}/{path.stem}.txt",
                f"the main lock's, with the pins of {VERSIONS}/{path.name}\n"
                f"# in place of {CONSTRAINTS}'s lines of the same names.\n"
                f"# Resolved starting from {LOCK}'s pins",
                overrides=f"{VERSIONS}/{path.name}",
                labels=MappingProxyType(labels),
            )
        )
    return sets


def lock_sets(root: Path = ROOT) -> list[LockSet]:
    """Every lock set: the main lock first (the others start from it), the GPU lock, then the
    version sets."""
    return [MAIN, gpu_set(root), *version_sets(root)]


def read_pins(path: Path, root: Path = ROOT) -> dict[str, Pin]:
    """Read a requirements file that holds only exact pins ``name==version``.

    Returns the pins by canonical name. Comments, blank lines and ``# via`` lines are skipped;
    any other line that is not one exact pin (a range, an extra, a marker, a duplicate name)
    raises LockError naming the file and line.
    """
    pins: dict[str, Pin] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{_rel(path, root)}:{number}"
        name, version = _exact_pin(text, where)
        if name in pins:
            raise LockError(f"{where}: {name} is pinned twice (keep one line)")
        pins[name] = Pin(version, number)
    return pins


def read_via(path: Path) -> dict[str, set[str]]:
    """The packages that require each pin of a lock, from pip-compile's ``# via`` lines.

    Input files (``-c constraints.txt``, ``-r file``) are left out; the project appears by its
    name (``xentcheck (pyproject.toml)`` is ``xentcheck``).
    """
    via: dict[str, set[str]] = {}
    current: set[str] | None = None
    for raw in path.read_text().splitlines():
        if raw and not raw.startswith((" ", "#")):
            name = canonicalize_name(raw.split("==", 1)[0].strip())
            current = via.setdefault(name, set())
            continue
        if current is None or not raw.startswith(" "):
            continue
        text = raw.strip().removeprefix("#").strip().removeprefix("via").strip()
        if text and not text.startswith("-"):
            current.add(canonicalize_name(text.split()[0]))
    return via


def build_requires(root: Path = ROOT) -> dict[str, Version]:
    """The ``[build-system] requires`` of pyproject.toml, each of which must be an exact pin."""
    path = root / PYPROJECT
    text = path.read_text()
    requires = tomllib.loads(text)["build-system"]["requires"]
    where = f"{PYPROJECT}:{_line_of(text, 'requires =')}"
    return dict(_exact_pin(item, where) for item in requires)


def framework_pins(lockset: LockSet, root: Path = ROOT) -> dict[str, tuple[Version, str]]:
    """The framework pins a lock set is resolved under: name -> (version, the file pinning it).

    A version set's file may only re-pin what constraints.txt pins (LockError otherwise).
    """
    pins = {n: (p.version, CONSTRAINTS) for n, p in read_pins(root / CONSTRAINTS, root).items()}
    if lockset.overrides is not None:
        for name, pin in read_pins(root / lockset.overrides, root).items():
            if name not in pins:
                raise LockError(
                    f"{lockset.overrides}:{pin.line}: {name} is not pinned in {CONSTRAINTS} "
                    f"(a version set re-pins framework pins only: add it there first)"
                )
            pins[name] = (pin.version, lockset.overrides)
    return pins


def gpu_requirements(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """The lines of requirements/gpu.in, and the extras of pyproject.toml the GPU lock drops.

    The lines are GPU_BUILDS at constraints.txt's versions, then the other requirements of
    the dropped extras: those that hold a distribution GPU_BUILDS replaces by another.
    """
    pins = read_pins(root / CONSTRAINTS, root)
    lines = []
    for name, template in GPU_BUILDS.items():
        if name not in pins:
            raise LockError(f"{CONSTRAINTS}:1: tools/lock.py's GPU_BUILDS names {name}: pin it")
        lines.append(template.format(version=pins[name].version))
    extras = tomllib.loads((root / PYPROJECT).read_text())["project"]["optional-dependencies"]
    replaced = set(GPU_BUILDS) - {_gpu_name(n) for n in GPU_BUILDS}
    dropped = [e for e, reqs in extras.items() if any(_name(r) in replaced for r in reqs)]
    others = {r for e in dropped for r in extras[e] if _name(r) not in GPU_BUILDS}
    return lines + sorted(others), dropped


def consistency_problems(root: Path = ROOT) -> list[str]:
    """Every way a lock disagrees with its inputs, one line each (empty when all agree)."""
    try:
        sets = lock_sets(root)
    except (LockError, OSError, KeyError) as exc:
        return [str(exc)]
    return [problem for lockset in sets for problem in lock_problems(lockset, root)]


def lock_problems(lockset: LockSet, root: Path = ROOT) -> list[str]:
    """Every way one lock disagrees with its inputs, one line each (empty when it agrees).

    Each framework pin (:func:`framework_pins`; in the GPU lock under its GPU build's name),
    each pin of the seed and of ``[build-system] requires`` must appear in the lock with the
    same version; a distribution that a GPU build replaces must not. Local labels follow
    ``lockset.labels``. The GPU lock's requirements/gpu.in must be what this tool writes
    from constraints.txt. A lock other than the main one may differ from the main lock only
    where its inputs make it differ (:func:`_difference_problems`).
    """
    fix = f"(run `{REFRESH}`)"
    if not (root / lockset.lock).is_file():
        only = "" if lockset is MAIN else f" --only {lockset.name}"
        return [f"{lockset.lock}:1: missing (run `{REFRESH}{only}`)"]
    try:
        lock = read_pins(root / lockset.lock, root)
        sources: dict[str, dict[str, Version]] = {}
        for name, (version, source) in framework_pins(lockset, root).items():
            sources.setdefault(source, {})[name] = version
        sources[SEED] = {n: p.version for n, p in read_pins(root / SEED, root).items()}
        sources[f"{PYPROJECT} [build-system] requires"] = build_requires(root)
        problems: list[str] = []
        if lockset.requirements == GPU_IN:
            problems += _gpu_in_problems(root)
            sources = _as_gpu_builds(sources)
        changed = _changed(lockset, root)
    except (LockError, OSError, KeyError) as exc:
        return [str(exc)]
    for source, pins in sources.items():
        for name, wanted in sorted(pins.items()):
            pin = lock.get(name)
            if pin is None:
                problems.append(
                    f"{lockset.lock}: {source} pins {name}=={wanted}, the lock lacks it {fix}"
                )
            elif Version(pin.version.public) != Version(wanted.public):
                problems.append(
                    f"{lockset.lock}:{pin.line}: {name}=={pin.version}, {source} pins "
                    f"{wanted} {fix}"
                )
    if lockset.requirements == GPU_IN:
        for name in sorted(set(GPU_BUILDS) - {_gpu_name(n) for n in GPU_BUILDS}):
            if name in lock:
                problems.append(
                    f"{lockset.lock}:{lock[name].line}: {name} is locked, its GPU build "
                    f"{_gpu_name(name)} replaces it {fix}"
                )
    problems += _label_problems(lockset, lock)
    if lockset.lock != LOCK and not problems:
        problems += _difference_problems(lockset, root, changed)
    return problems


def _changed(lockset: LockSet, root: Path) -> set[str]:
    """The packages a lock set's own inputs pin differently from the main lock's."""
    if lockset.overrides is not None:
        return set(read_pins(root / lockset.overrides, root))
    if lockset.requirements == GPU_IN:
        return set(GPU_BUILDS) | {_gpu_name(n) for n in GPU_BUILDS}
    return set()


def _as_gpu_builds(sources: dict[str, dict[str, Version]]) -> dict[str, dict[str, Version]]:
    """The GPU lock's sources: the framework pins that GPU_BUILDS names move to requirements/
    gpu.in, under the name of their GPU build."""
    pins = sources.pop(CONSTRAINTS)
    gpu = {_gpu_name(n): v for n, v in pins.items() if n in GPU_BUILDS}
    others = {n: v for n, v in pins.items() if n not in GPU_BUILDS}
    return {CONSTRAINTS: others, GPU_IN: gpu, **sources}


def _gpu_in_problems(root: Path) -> list[str]:
    path = root / GPU_IN
    if not path.is_file() or path.read_text() != _gpu_in_text(gpu_requirements(root)[0]):
        return [f"{GPU_IN}:1: not what {CONSTRAINTS} and GPU_BUILDS give (run `{REFRESH}`)"]
    return []


def _gpu_in_text(lines: Iterable[str]) -> str:
    return GPU_IN_NOTE + "".join(f"{line}\n" for line in lines)


def _label_problems(lockset: LockSet, lock: Mapping[str, Pin]) -> list[str]:
    """Each pin whose local label is not the one ``lockset.labels`` asks for."""
    problems = []
    for name, pin in sorted(lock.items()):
        label = lockset.labels.get(name)
        if pin.version.local == label:
            continue
        where = f"{lockset.lock}:{pin.line}: {name}=={pin.version}"
        if label is not None:
            source = CPU_WHEEL_SOURCES if label == "cpu" else "PyTorch's index: docs/versions.md"
            problems.append(f"{where} is not the +{label} build ({source}; then `{REFRESH}`)")
        elif name in lockset.labels:
            problems.append(
                f"{where} is a local build, not PyPI's own (CUDA) wheel (run `{REFRESH}`)"
            )
        else:
            problems.append(f"{where} is a local build (run `{REFRESH}`)")
    return problems


def _difference_problems(lockset: LockSet, root: Path, changed: set[str]) -> list[str]:
    """Each package where a lock differs from the main lock though its inputs do not make it.

    A package may differ (another version, new, or gone) when the lock set's inputs pin it
    (``changed``) or when a package that differs requires it (its ``# via`` lines in this
    lock); it may be gone when only packages that differ required it in the main lock.
    """
    main, here = read_pins(root / LOCK, root), read_pins(root / lockset.lock, root)
    main_via, here_via = read_via(root / LOCK), read_via(root / lockset.lock)
    differ = (main.keys() ^ here.keys()) | {
        n for n in main.keys() & here.keys() if main[n].version != here[n].version
    }
    explained = set(changed)  # a changed package keeps its version where only extras change
    grew = True
    while grew:
        grew = False
        for name in sorted(differ - explained):
            if name in here:
                ok = bool(here_via.get(name, set()) & explained)
            else:
                parents = main_via.get(name, set())
                ok = bool(parents) and parents <= differ | explained
            if ok:
                explained.add(name)
                grew = True
    fix = f"(run `{REFRESH} --only {lockset.name}`)"
    problems = []
    for name in sorted(differ - explained):
        if name in here:
            was = f"{main[name].version} there" if name in main else "absent there"
            problems.append(
                f"{lockset.lock}:{here[name].line}: {name}=={here[name].version} differs from "
                f"{LOCK} ({was}), and no package {lockset.name} changes requires it {fix}"
            )
        else:
            problems.append(
                f"{lockset.lock}: lacks {name}=={main[name].version} of {LOCK}, which packages "
                f"{lockset.name} leaves as they are require {fix}"
            )
    return problems


def installed_offenders(
    lock: Mapping[str, Pin],
    distributions: Iterable[importlib.metadata.Distribution],
    project: str,
    lock_name: str = LOCK,
) -> list[str]:
    """Each installed distribution that is not the locked version, one line each.

    A distribution missing from the lock is an offender too; only ``project`` (installed by tox
    from this checkout) is exempt. Versions compare as PEP 440 versions, local label included:
    a CUDA ``torch 2.13.0`` is an offender against a lock of ``2.13.0+cpu``, and the other way.
    """
    fix = "(recreate the environment: tox -r -e NAME)"
    offenders = []
    for dist in distributions:
        raw_name = dist.metadata["Name"]
        if raw_name is None:
            offenders.append(
                f"{lock_name}: a distribution without a name at {dist.locate_file('')}"
            )
            continue
        name = canonicalize_name(raw_name)
        if name == canonicalize_name(project):
            continue
        installed = Version(dist.version)
        pin = lock.get(name)
        if pin is None:
            offenders.append(f"{lock_name}: {name} {installed} is installed but not locked {fix}")
        elif installed != pin.version:
            offenders.append(
                f"{lock_name}:{pin.line}: {name} {installed} is installed, the lock pins "
                f"{pin.version} {fix}"
            )
    return sorted(offenders)


def project_name(root: Path = ROOT) -> str:
    """The name of the project in pyproject.toml."""
    return tomllib.loads((root / PYPROJECT).read_text())["project"]["name"]


def installed_distributions() -> list[importlib.metadata.Distribution]:
    """The distributions installed in this environment's site-packages.

    Only those folders count: packages that a library vendors and puts on ``sys.path``
    once imported (setuptools' ``_vendor``: wheel, packaging, platformdirs, ...) are part
    of that library's locked release, not installs of their own.
    """
    paths = sysconfig.get_paths()
    folders = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    return list(importlib.metadata.distributions(path=folders))


def check(root: Path = ROOT, lock: str = LOCK) -> list[str]:
    """Every lock's consistency problems, then this environment's offenders against ``lock``:
    the lock it installs from (relative to ``root``, or absolute: tox passes PIP_CONSTRAINT)."""
    problems = consistency_problems(root)
    if problems:
        return problems
    path = Path(lock) if Path(lock).is_absolute() else root / lock
    locks = {(root / s.lock).resolve(): s.lock for s in lock_sets(root)}
    name = locks.get(path.resolve())
    if name is None:
        return [
            f"{lock}:1: not a lock that tools/lock.py writes (one of {', '.join(locks.values())})"
        ]
    return installed_offenders(
        read_pins(root / name, root), installed_distributions(), project_name(root), name
    )


def refresh(root: Path, upgrade: bool, only: Iterable[str] = ()) -> list[str]:
    """Resolve the locks from their inputs (the module docstring lists them), or raise LockError.

    With ``only``, those lock sets alone (the tox lock and the seed stay as they are).
    Returns the names of the lock sets resolved. A lock changes only when its resolution
    succeeds with the local builds it needs.
    """
    if sys.version_info[:2] != PYTHON:
        raise LockError(
            f"tools/lock.py:1: the locks are for Python {'.'.join(map(str, PYTHON))}, this is "
            f"{sys.version.split()[0]} (run `{REFRESH}`)"
        )
    only = set(only)
    sets = lock_sets(root)
    unknown = only - {s.name for s in sets}
    if unknown:
        raise LockError(
            f"tools/lock.py:1: no lock set {', '.join(sorted(unknown))} (there are "
            f"{', '.join(s.name for s in sets)})"
        )
    extra = ("--upgrade",) if upgrade else ()
    if not only:
        _compile(root, [TOX_IN], TOX_LOCK, TOX_NOTE, extra)
        _check_virtualenv(root)
        _write(root / SEED, SEED_NOTE + "".join(f"{pin}\n" for pin in _seeded()))
    done = []
    for lockset in sets:
        if not only or lockset.name in only:
            started = time.monotonic()
            _refresh_set(root, lockset, extra if lockset is MAIN else ())
            print(f"lock: {lockset.lock} resolved in {time.monotonic() - started:.0f} s")
            done.append(lockset.name)
    _pin_build_requires(root, read_pins(root / LOCK, root)["setuptools"].version)
    return done


def _refresh_set(root: Path, lockset: LockSet, extra: tuple[str, ...]) -> None:
    """Resolve one lock set into a copy of the main lock (pip-compile keeps the pins it finds
    unless an input conflicts), then replace the lock with it."""
    if lockset.requirements == GPU_IN:
        _write(root / GPU_IN, _gpu_in_text(gpu_requirements(root)[0]))
    with tempfile.TemporaryDirectory() as tmp:
        constraints = [CONSTRAINTS]
        if lockset.overrides is not None:
            # constraints.txt without the lines the version set re-pins, beside the set's file;
            # named constraints.txt, so the lock's `# via` lines name the file its lines are from
            kept = Path(tmp) / CONSTRAINTS
            repinned = read_pins(root / lockset.overrides, root)
            lines = (root / CONSTRAINTS).read_text().splitlines()
            kept.write_text("".join(f"{x}\n" for x in lines if not _pins_one_of(x, repinned)))
            constraints = [str(kept), lockset.overrides]
        out = Path(tmp) / "lock.txt"
        if (root / LOCK).exists():
            shutil.copy(root / LOCK, out)
        extras = ["--all-extras"]
        if lockset.drop_extras:
            declared = tomllib.loads((root / PYPROJECT).read_text())["project"]
            extras = [
                f"--extra={e}"
                for e in declared["optional-dependencies"]
                if e not in lockset.drop_extras
            ]
        inputs = [PYPROJECT, SEED, *([lockset.requirements] if lockset.requirements else [])]
        flags = [*extra, *extras, *(f"--constraint={c}" for c in constraints)]
        _run_compile(root, inputs, str(out), lockset.lock, flags, _refresh_command(lockset))
        text = out.read_text().replace(f"{tmp}/", "")
        problems = _label_problems(lockset, read_pins(out, Path(tmp)))
    if problems:
        raise LockError(f"{problems[0]}: {lockset.lock} is unchanged")
    _write(root / lockset.lock, lock_header(lockset) + text)


def lock_header(lockset: LockSet) -> str:
    """The comment above a lock: what it is, its inputs, its torch, how to refresh it."""
    users = {
        MAIN.name: "every tox environment but the gpu and version-set ones",
        "gpu": "the gpu tox environments",
    }.get(lockset.name, f"the tox environment {lockset.name}")
    label = lockset.labels.get("torch")
    torch = {
        "cpu": f"torch is the CPU build (+cpu): {CPU_WHEEL_SOURCES}.",
        None: "torch is PyPI's own wheel, the CUDA build (torch=== in requirements/gpu.in).",
    }.get(label, f"torch is the +{label} build (from PyTorch's index: docs/versions.md).")
    return (
        f"# The lock of {users}\n# (tox.ini passes it to pip as PIP_CONSTRAINT).\n"
        f"# Inputs: {lockset.inputs}.\n# Resolved for CPython 3.11 on Linux x86_64.\n"
        f"# {torch}\n"
        f"# Never edit by hand: change an input, then run `{_refresh_command(lockset)}`.\n"
    )


def _refresh_command(lockset: LockSet) -> str:
    """The command that refreshes one lock (the main lock's refreshes every lock)."""
    return REFRESH if lockset is MAIN else f"{REFRESH} --only {lockset.name}"


def _pins_one_of(line: str, names: Mapping[str, Pin]) -> bool:
    text = line.split("#", 1)[0].strip()
    return bool(text) and _name(text) in names


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _gpu_name(name: str) -> str:
    """The distribution of a framework's GPU build (GPU_BUILDS)."""
    return _name(GPU_BUILDS[name].format(version="0"))


def _compile(root: Path, inputs: list[str], output: str, note: str, extra: Iterable[str]) -> None:
    """Run pip-compile on ``inputs`` into ``output`` in place, then put ``note`` above it."""
    _run_compile(root, inputs, output, output, list(extra), REFRESH)
    path = root / output
    _write(path, note + path.read_text())


def _run_compile(
    root: Path, inputs: list[str], output: str, name: str, flags: list[str], shown: str
) -> None:
    """pip-compile ``inputs`` into ``output``; LockError (``name`` unchanged) when it fails.
    ``shown`` is the command the output's header names."""
    command = [sys.executable, "-m", "piptools", "compile", *PIP_COMPILE, *flags]
    command += ["--output-file", output, *inputs]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": shown}
    result = subprocess.run(command, cwd=root, env=env, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        print(*_reasons(result.stdout + result.stderr), sep="\n", file=sys.stderr)
        raise LockError(
            f"{name}:1: pip-compile could not resolve {' '.join(inputs)} (its reason is above; "
            f"change the pins of {CONSTRAINTS}, of a version set or of {PYPROJECT}; {name} "
            f"is unchanged)"
        )


def _reasons(output: str) -> list[str]:
    """pip-compile's output without traceback frames and pip's notes on absent local indexes."""
    noise = ("Traceback", "The above exception", "  File ", "    ")
    return [
        line
        for line in output.splitlines()
        if line.strip() and not line.startswith(noise) and "is ignored: it is neither" not in line
    ]


def _check_virtualenv(root: Path) -> None:
    """The seed is read from this environment's virtualenv: it must be the locked one."""
    pin = read_pins(root / TOX_LOCK, root)["virtualenv"]
    here = Version(importlib.metadata.version("virtualenv"))
    if here != pin.version:
        raise LockError(
            f"{TOX_LOCK}:{pin.line}: virtualenv {pin.version} is locked, this environment has "
            f"{here} (run `.venv/bin/pip install -r {TOX_LOCK}`, then `{REFRESH}` again)"
        )


def _seeded() -> list[str]:
    """The ``name==version`` of each distribution virtualenv seeds, as tox.ini makes it seed."""
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "env"
        seed = ["--no-periodic-update", "--pip", "embed", "--setuptools", "embed"]
        subprocess.run([sys.executable, "-m", "virtualenv", "-q", *seed, str(env)], check=True)
        listing = (
            "import importlib.metadata as m\n"
            "print('\\n'.join(sorted(f\"{d.metadata['Name'].lower()}=={d.version}\" "
            "for d in m.distributions())))"
        )
        out = subprocess.run(
            [str(env / "bin" / "python"), "-c", listing], check=True, capture_output=True
        )
    return out.stdout.decode().split()


def _pin_build_requires(root: Path, setuptools: Version) -> None:
    """Set ``[build-system] requires`` to the lock's setuptools (it builds wheels by itself)."""
    path = root / PYPROJECT
    text = path.read_text()
    pattern = re.compile(r"^(\[build-system\]\n(?:[^\[].*\n)*?)requires = \[.*\]$", re.MULTILINE)
    new, count = pattern.subn(rf'\1requires = ["setuptools=={setuptools}"]', text)
    if count != 1:
        raise LockError(f"{PYPROJECT}:1: no `requires = [...]` line under [build-system]")
    if new != text:
        _write(path, new)


def _exact_pin(text: str, where: str) -> tuple[str, Version]:
    """Parse ``name==version`` (nothing else), or raise LockError at ``where``."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise LockError(
            f"{where}: {text!r} is not a requirement: {exc} (write name==version)"
        ) from None
    specs = list(req.specifier)
    if req.extras or req.marker or req.url or len(specs) != 1 or specs[0].operator != "==":
        raise LockError(f"{where}: {text!r} is not an exact pin (write name==version)")
    return canonicalize_name(req.name), Version(specs[0].version)


def _line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` holding ``needle`` (1 when none does)."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return 1


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Refresh the locks (default) or check them (``--check``); 2 with one line per problem."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check only; resolve nothing")
    mode.add_argument("--upgrade", action="store_true", help="move every pin to its newest")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="refresh this lock set only"
    )
    parser.add_argument(
        "--lock",
        default=LOCK,
        metavar="FILE",
        help=f"with --check: the lock this environment installs from (default {LOCK})",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(ROOT, args.lock)
            scope = f"their inputs, and this environment agrees with {args.lock}"
        else:
            refresh(ROOT, args.upgrade, args.only)
            problems, scope = consistency_problems(ROOT), "their inputs"
    except LockError as exc:
        problems, scope = [str(exc)], ""
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(f"lock: every lock agrees with {scope}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
