"""Write, and check, the locks that pin every package of every tox environment.

    .venv/bin/python tools/lock.py             refresh requirements/tox.txt and requirements/lock.txt
    .venv/bin/python tools/lock.py --upgrade   the same, moving every unpinned package to its newest
    python tools/lock.py --check               check the lock against its inputs and this environment

Inputs, edited by hand: ``constraints.txt`` (one ``==`` line per framework), ``pyproject.toml``
(dependencies and every extra) and ``requirements/tox.in`` (tox and pip-tools for ``.venv``).
Outputs, never edited by hand:

- ``requirements/tox.txt``: what ``.venv`` holds (``pip install -r requirements/tox.txt``);
- ``requirements/seed.in``: the pip and setuptools that the locked virtualenv seeds into every
  tox environment (tox.ini makes it seed its embedded wheels, never newer downloads);
- ``requirements/lock.txt``: every package of every tox environment, transitive ones, the seed
  and the build backend included; tox.ini hands it to pip as ``PIP_CONSTRAINT``;
- ``[build-system] requires`` in ``pyproject.toml``: the lock's setuptools, pinned exactly.

The resolver is pip-tools' ``pip-compile``: it runs pip's own resolver with pip's own
configuration (this machine's find-links and extra indexes), so the lock is what ``pip install``
would pick here, and it keeps the pins of the existing lock unless they conflict with an input
or ``--upgrade`` is given, so a refresh with unchanged inputs rewrites the same files. The lock
carries no hashes: it is a constraints file, and tox installs the project's own wheel, which has
no hash to check.

torch is locked at its CPU build: ``torch==2.13.0+cpu``, the local label recorded as resolved
(pip ranks ``2.13.0+cpu`` above PyPI's CUDA ``2.13.0``, and ``==2.13.0`` in constraints.txt
matches both). A refresh that resolves any other build fails, naming where the CPU wheel comes
from. ``--check`` exits 2 with one line per problem: a lock that disagrees with an input, or an
installed distribution that is not the locked version (tox runs it before each environment's
commands).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
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
REFRESH = ".venv/bin/python tools/lock.py"
PYTHON = (3, 11)

# Distributions locked at a local build, and the label: torch's CPU wheel (never the CUDA one).
LOCAL_LABELS: Mapping[str, str] = {"torch": "cpu"}
CPU_WHEEL_SOURCES = (
    "find-links /opt/wheels, or --extra-index-url https://download.pytorch.org/whl/cpu"
)

PIP_COMPILE = (
    "--quiet",
    "--allow-unsafe",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--no-emit-trusted-host",
    "--newline=lf",
)

LOCK_NOTE = f"""\
# The lock of every tox environment (tox.ini passes it to pip as PIP_CONSTRAINT).
# Inputs: pyproject.toml (dependencies, all extras), {CONSTRAINTS} (the framework pins) and
# {SEED} (what virtualenv seeds). Resolved for CPython 3.11 on Linux x86_64.
# torch is the CPU build (+cpu): {CPU_WHEEL_SOURCES}.
# Never edit by hand: change an input, then run `{REFRESH}`.
"""
TOX_NOTE = f"""\
# The README's .venv: tox and the lock tool. Input: {TOX_IN}.
# Never edit by hand: change the input, then run `{REFRESH}`.
"""
SEED_NOTE = """\
# Written by tools/lock.py: the distributions the locked virtualenv seeds into a tox environment.
"""


class LockError(Exception):
    """A problem with the locks or their inputs, as one line ``file:line: reason (fix)``."""


class Pin(NamedTuple):
    """One exact pin: its version and the line it was read from."""

    version: Version
    line: int


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


def build_requires(root: Path = ROOT) -> dict[str, Version]:
    """The ``[build-system] requires`` of pyproject.toml, each of which must be an exact pin."""
    path = root / PYPROJECT
    text = path.read_text()
    requires = tomllib.loads(text)["build-system"]["requires"]
    where = f"{PYPROJECT}:{_line_of(text, 'requires =')}"
    return dict(_exact_pin(item, where) for item in requires)


def consistency_problems(root: Path = ROOT) -> list[str]:
    """Every way the lock disagrees with its inputs, one line each (empty when it agrees).

    Each pin of constraints.txt, of the seed and of ``[build-system] requires`` must appear in
    the lock with the same version. A distribution of LOCAL_LABELS must carry its label in the
    lock (torch ``2.13.0+cpu`` satisfies ``torch==2.13.0``); no other pin may carry one.
    """
    try:
        lock = read_pins(root / LOCK, root)
        sources = {
            CONSTRAINTS: {n: p.version for n, p in read_pins(root / CONSTRAINTS, root).items()},
            SEED: {n: p.version for n, p in read_pins(root / SEED, root).items()},
            f"{PYPROJECT} [build-system] requires": build_requires(root),
        }
    except (LockError, OSError, KeyError) as exc:
        return [str(exc)]
    fix = f"(run `{REFRESH}`)"
    problems = []
    for source, pins in sources.items():
        for name, wanted in sorted(pins.items()):
            pin = lock.get(name)
            if pin is None:
                problems.append(f"{LOCK}: {source} pins {name}=={wanted}, the lock lacks it {fix}")
            elif Version(pin.version.public) != Version(wanted.public):
                problems.append(
                    f"{LOCK}:{pin.line}: {name}=={pin.version}, {source} pins {wanted} {fix}"
                )
    for name, pin in sorted(lock.items()):
        label = LOCAL_LABELS.get(name)
        if pin.version.local == label:
            continue
        if label is None:
            problems.append(f"{LOCK}:{pin.line}: {name}=={pin.version} is a local build {fix}")
        else:
            problems.append(
                f"{LOCK}:{pin.line}: {name}=={pin.version} is not the +{label} build "
                f"({CPU_WHEEL_SOURCES}; then `{REFRESH}`)"
            )
    return problems


def installed_offenders(
    lock: Mapping[str, Pin],
    distributions: Iterable[importlib.metadata.Distribution],
    project: str,
) -> list[str]:
    """Each installed distribution that is not the locked version, one line each.

    A distribution missing from the lock is an offender too; only ``project`` (installed by tox
    from this checkout) is exempt. Versions compare as PEP 440 versions, local label included:
    a CUDA ``torch 2.13.0`` is an offender against a lock of ``2.13.0+cpu``.
    """
    fix = "(recreate the environment: tox -r -e NAME)"
    offenders = []
    for dist in distributions:
        raw_name = dist.metadata["Name"]
        if raw_name is None:
            offenders.append(f"{LOCK}: a distribution without a name at {dist.locate_file('')}")
            continue
        name = canonicalize_name(raw_name)
        if name == canonicalize_name(project):
            continue
        installed = Version(dist.version)
        pin = lock.get(name)
        if pin is None:
            offenders.append(f"{LOCK}: {name} {installed} is installed but not locked {fix}")
        elif installed != pin.version:
            offenders.append(
                f"{LOCK}:{pin.line}: {name} {installed} is installed, the lock pins "
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


def check(root: Path = ROOT) -> list[str]:
    """The lock's consistency problems plus this environment's offenders against the lock."""
    problems = consistency_problems(root)
    if problems:
        return problems
    lock = read_pins(root / LOCK, root)
    return installed_offenders(lock, installed_distributions(), project_name(root))


def refresh(root: Path, upgrade: bool) -> None:
    """Resolve every lock from its inputs (the module docstring lists them), or raise LockError.

    Files change only when their resolution succeeds; a lock whose torch is not the CPU build
    is put back as it was.
    """
    if sys.version_info[:2] != PYTHON:
        raise LockError(
            f"tools/lock.py:1: the locks are for Python {'.'.join(map(str, PYTHON))}, this is "
            f"{sys.version.split()[0]} (run `{REFRESH}`)"
        )
    extra = ("--upgrade",) if upgrade else ()
    _compile(root, [TOX_IN], TOX_LOCK, TOX_NOTE, extra)
    _check_virtualenv(root)
    _write(root / SEED, SEED_NOTE + "".join(f"{pin}\n" for pin in _seeded()))
    before = (root / LOCK).read_text() if (root / LOCK).exists() else None
    _compile(root, [PYPROJECT, SEED], LOCK, LOCK_NOTE, (*extra, "--all-extras", "-c", CONSTRAINTS))
    lock = read_pins(root / LOCK, root)
    for name, label in LOCAL_LABELS.items():
        pin = lock.get(name)
        if pin is not None and pin.version.local != label:
            if before is not None:
                _write(root / LOCK, before)
            raise LockError(
                f"{LOCK}:{pin.line}: {name} resolved to {pin.version}, not the +{label} build "
                f"(make the CPU wheel reachable: {CPU_WHEEL_SOURCES}; the lock is unchanged)"
            )
    _pin_build_requires(root, lock["setuptools"].version)


def _compile(root: Path, inputs: list[str], output: str, note: str, extra: Iterable[str]) -> None:
    """Run pip-compile on ``inputs`` into ``output``, then put ``note`` above its header."""
    command = [sys.executable, "-m", "piptools", "compile", *PIP_COMPILE, *extra]
    command += ["--output-file", output, *inputs]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": REFRESH}
    result = subprocess.run(command, cwd=root, env=env, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        print(*_reasons(result.stdout + result.stderr), sep="\n", file=sys.stderr)
        raise LockError(
            f"{output}:1: pip-compile could not resolve {' '.join(inputs)} (its reason is "
            f"above; change the pins of {CONSTRAINTS} or {PYPROJECT}; {output} is unchanged)"
        )
    path = root / output
    _write(path, note + path.read_text())


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
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems, scope = check(), "its inputs and this environment"
        else:
            refresh(ROOT, args.upgrade)
            problems, scope = consistency_problems(ROOT), "its inputs"
    except LockError as exc:
        problems, scope = [str(exc)], ""
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(f"lock: {LOCK} agrees with {scope}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
