"""The result cache: a rerun reuses the rows of every (framework, instance) whose key is unchanged.

One entry holds every row of one framework on one instance (all its dtypes, devices and
APIs) and the worker's timing of it. Its key is a SHA-256 digest of two parts:

* the framework key (:func:`framework_key`): the cache format, the xentcheck version,
  the reference's source (:func:`reference_digest`); the source of the worker and of the
  adapter module and of every module they import from xentcheck or from the adapter's own
  package (so ``torch-compile`` covers ``torch_adapter``, and a ``--adapter mod:attr`` its
  module), found by reading their ``import`` statements, nothing imported; the known
  differences that judge the framework (``known/<framework>.py`` and ``known/__init__.py``;
  every ``known`` module for an adapter outside the registry); the versions of the
  installed distributions those sources import and of everything they require, read from
  the installed metadata without importing the framework (so a framework whose rows are
  all cached starts no worker); Python; the CPU (model and instruction-set flags) and,
  unless ``--device cpu``, the GPUs the driver lists; the ``--device`` option; and the
  environment variables that steer frameworks (:data:`ENV_PREFIXES`); and how the rows
  are judged: the accuracy criterion and the user known-difference files (each path with
  its SHA-256).
* the instance key (:func:`instance_key`): the case's key, the instance's name, loss and
  parameters, the dtypes it runs at under ``--dtype``, its tags (they pick the cases of
  a framework with ``case_tags``), ``expect_error``, the case's tolerance, and each input:
  a literal's dtype, shape and bytes; a generated input's generator, shape, seed and
  options (the generator code and NumPy's version are in the framework key, so these fix
  the bytes without generating a large array just to hash it).

The rows copy a case's description and source line: they are not in the key, and reused
rows get the current ones (an edit above a case moves its line, not its results).
Timings (``elapsed_s``, ``compile_s``) of reused rows are those of the run that computed
them. Rows of an instance that crashed or timed out are never stored.

The findings' scripts are kept too (``<cache dir>/scripts/``), so a report of unchanged
results writes none anew: a script's key (:func:`script_key`) is what writes it (the source
closure of :data:`SCRIPTS` and of the adapter, the versions of what they import, Python,
the CPU, the steering environment variables), its example row but for the timings, its
title and the text of its case file. Only written scripts are kept; a note in place of a
script (the adapter does not load here, say) is looked for again next time.

Entries are files under ``<cache dir>/results/`` (and ``scripts/``), written to a
temporary file and renamed into place (:func:`atomic_write`), so concurrent runs never see
half an entry; each carries the SHA-256 of its payload, and an entry that does not parse
or match is ignored and recomputed.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from packaging.requirements import InvalidRequirement, Requirement

#: bump when the key or the entry layout changes
FORMAT = 1
#: environment variables that can change what a framework computes go into the key
ENV_PREFIXES = ("XENTCHECK_", "XLA_", "JAX_", "TF_", "KERAS_", "TORCH", "PYTORCH_", "CUDA_",
                "HIP_", "ROCR_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "ORT_", "ONNX")  # fmt: skip
#: ... except these, which change where things are kept, not what is computed
ENV_IGNORED = frozenset(
    {"XENTCHECK_CACHE_DIR", "XENTCHECK_COMPILE_CACHE", "XENTCHECK_REQUIRE_BROWSER"}
)
#: the environment variable naming the folder of the compile caches (the runner sets it for
#: its workers; adapters read it)
COMPILE_CACHE_ENV = "XENTCHECK_COMPILE_CACHE"
#: the package of the known differences
KNOWN = "xentcheck.known"
#: the module every row goes through
WORKER = "xentcheck.harness.worker"
#: the module that writes the findings' scripts (in a child interpreter per framework)
SCRIPTS = "xentcheck.findings.scripts"
#: a row's fields that time the run rather than say what it computed: not in a script's key
TIMINGS = frozenset({"elapsed_s", "compile_s"})
#: the cache folder when neither an option nor $XENTCHECK_CACHE_DIR names one
DEFAULT_CACHE_DIR = ".xentcheck-cache"
#: the environment variable naming the cache folder (tox sets it)
CACHE_ENV = "XENTCHECK_CACHE_DIR"
#: statuses whose rows say more about the run (a crash, a hang) than about the instance
NOT_STORED = frozenset({"crash", "timeout"})

Row = dict[str, Any]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` with what ``write(file)`` writes, through a temporary file in the same
    folder renamed into place: a reader sees the old entry or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


@functools.cache
def reference_digest() -> str:
    """SHA-256 over the reference package's ``.py`` files (relative path and bytes)."""
    import xentcheck.reference as ref

    root = Path(ref.__file__).parent
    return sources_digest({f.relative_to(root).as_posix(): f for f in root.rglob("*.py")})


# ------------------------------------------------------------------ sources, without importing


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), found without
    importing it or its packages; None when there is none (a built-in, an extension)."""
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        origin = Path(spec.origin) if spec.origin else None
        return origin if origin is not None and origin.suffix == ".py" else None
    for folder in spec.submodule_search_locations or []:
        base = Path(folder, *rest.split("."))
        for candidate in (base.parent / (base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@functools.cache
def _imports_of(path: str, mtime_ns: int, size: int, module: str) -> tuple[str, ...]:
    """Every module name an ``import`` in the file may refer to (both ``a.b`` and ``a.b.c``
    for ``from a.b import c``), relative imports resolved against ``module``."""
    tree = ast.parse(Path(path).read_bytes(), filename=path)
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return tuple(dict.fromkeys(n for n in names if n))


def source_closure(roots: Iterable[str]) -> tuple[dict[str, Path], set[str]]:
    """({module: source file}, top-level names of other imported modules) of ``roots``.

    Follows the imports of modules in ``xentcheck`` and in the roots' own top-level
    packages (with the ``__init__.py`` of every package on the way); the other imports
    (NumPy, the frameworks, the standard library) are returned by top-level name.
    """
    roots = list(roots)
    follow = {"xentcheck", *(r.partition(".")[0] for r in roots)}
    files: dict[str, Path] = {}
    others: set[str] = set()
    queue = list(roots)
    while queue:
        name = queue.pop()
        if name in files:
            continue
        path = module_file(name)
        if path is None:
            continue
        files[name] = path
        parts = name.split(".")
        queue.extend(".".join(parts[:k]) for k in range(1, len(parts)))
        st = path.stat()
        for imported in _imports_of(str(path), st.st_mtime_ns, st.st_size, name):
            top = imported.partition(".")[0]
            if top in follow:
                queue.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                others.add(top)
    return files, others


def sources_digest(files: dict[str, Path]) -> str:
    """SHA-256 over the names (module names, or relative paths) and bytes of ``files``."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    return h.hexdigest()


# ------------------------------------------------------------------ versions, without importing


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _distributions_of_modules() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirements(dist: str) -> list[str]:
    try:
        reqs = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = []
    for text in reqs:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):  # no optional extras
            names.append(req.name)
    return names


def distribution_versions(modules: Iterable[str]) -> dict[str, str | None]:
    """{distribution: version} of the distributions providing the top-level ``modules`` and
    of everything they require that is installed (a module with no distribution maps to
    None under its own name: its absence, or a later install, changes the key)."""
    owners = _distributions_of_modules()
    out: dict[str, str | None] = {}
    queue: list[str] = []
    for module in modules:
        dists = owners.get(module)
        if not dists:
            out[f"module:{module}"] = None if module_file(module) is None else "unpackaged"
        queue.extend(dists or [])
    while queue:
        dist = _canonical(queue.pop())
        if dist in out:
            continue
        out[dist] = _version(dist)
        if out[dist] is not None:
            queue.extend(_requirements(dist))
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ the machine


def _cpu() -> dict[str, Any]:
    """The CPU's model and a digest of its instruction-set flags (from /proc/cpuinfo)."""
    info = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for key in ("model name", "flags", "Features"):
        line = next((x for x in text.splitlines() if x.startswith(key)), None)
        if line is not None:
            info[key] = hashlib.sha256(line.split(":", 1)[1].strip().encode()).hexdigest()[:16]
    return info


def _gpus() -> list[str]:
    """What the NVIDIA driver says about each GPU, and its version ([] without one)."""
    root = Path("/proc/driver/nvidia")
    out = []
    for f in [*sorted(root.glob("gpus/*/information")), root / "version"]:
        try:
            out.append(f.read_text())
        except OSError:
            continue
    return out


def environment() -> dict[str, str]:
    """The environment variables that go into the key (:data:`ENV_PREFIXES`)."""
    return {k: v for k, v in sorted(os.environ.items())
            if k.startswith(ENV_PREFIXES) and k not in ENV_IGNORED}  # fmt: skip


# ------------------------------------------------------------------ keys


def adapter_module(framework: str) -> str:
    """The module defining the adapter of a built-in name, an entry point or a spec."""
    from xentcheck.adapters import FRAMEWORKS, entry_point_adapters

    if ":" in framework:
        return framework.partition(":")[0]
    if framework in FRAMEWORKS:
        return FRAMEWORKS[framework]
    return entry_point_adapters().get(framework, framework).partition(":")[0]


def known_modules(framework: str) -> list[str]:
    """The known-difference modules that judge ``framework``: its own module of
    :data:`KNOWN` (``-`` read as ``_``) and the package; every module of it for an adapter
    outside the registry, whose name is not known before it is imported."""
    from xentcheck.adapters import FRAMEWORKS

    if framework in FRAMEWORKS:
        return [KNOWN, f"{KNOWN}.{framework.replace('-', '_')}"]
    package = module_file(KNOWN)
    if package is None:
        return [KNOWN]
    return [KNOWN, *(f"{KNOWN}.{f.stem}" for f in sorted(package.parent.glob("*.py"))
                     if f.stem != "__init__")]  # fmt: skip


def framework_parts(
    framework: str, device: str, roots: Sequence[str] | None = None
) -> dict[str, Any]:
    """Everything but the instance that the rows of ``framework`` depend on (see the module
    docstring); the framework key is its digest. ``roots``: the modules whose source
    closure counts (default: the worker, the adapter and the known differences)."""
    import xentcheck
    from xentcheck.adapters import REQUIRES

    if roots is None:
        roots = [WORKER, adapter_module(framework), *known_modules(framework)]
    files, others = source_closure(roots)
    others.update(REQUIRES.get(framework, ()))
    return {
        "format": FORMAT,
        "framework": framework,
        "xentcheck": xentcheck.__version__,
        "reference": reference_digest(),
        "sources": sources_digest(files),
        "distributions": distribution_versions(sorted(others)),
        "python": [sys.version, sys.implementation.name, platform.machine()],
        "cpu": _cpu(),
        "device": device,
        "gpus": [] if device == "cpu" else _gpus(),
        "environment": environment(),
    }


def framework_key(framework: str, device: str, judged: dict[str, Any] | None = None) -> str:
    """The digest of :func:`framework_parts` and ``judged`` (the criterion and the user
    known files, with their SHA-256, that judge the rows; the default run's when None)."""
    judged = judged or {"criterion": "ulp", "known_files": []}
    return _sha(framework_parts(framework, device), judged)


@functools.cache
def script_writer_key(framework: str) -> str:
    """The digest of what writes the scripts of ``framework`` (a name or an adapter spec):
    the source closure of :data:`SCRIPTS` and of the adapter module, the versions of what
    they import, Python, the CPU and the environment variables that steer frameworks."""
    return _sha("scripts", framework_parts(framework, "cpu", [SCRIPTS, adapter_module(framework)]))


def script_key(writer_key: str, row: Row, title: str, case_text: str | None) -> str:
    """The key of one finding's script: the writer (:func:`script_writer_key`), its example
    row but for the run's timings (:data:`TIMINGS`), its title and the text of the case
    file the row's instance is rebuilt from."""
    kept = {k: v for k, v in row.items() if k not in TIMINGS}
    return _sha("script", writer_key, kept, title, case_text)


def _input_key(definition: Any) -> Any:
    """A literal's dtype, shape and bytes digest; a generated input's recipe."""
    if definition.literal is not None:
        a = definition.literal
        return ["literal", a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]
    return ["generated", definition.generator, list(definition.shape), definition.seed,
            definition.options, definition.fill]  # fmt: skip


def instance_key(instance: Any, dtypes: Sequence[str] | None) -> str:
    """The digest of what the rows of ``instance`` depend on (see the module docstring)."""
    case = instance.case
    return _sha({
        "case": case.key, "instance": instance.name, "loss": case.loss,
        "params": instance.params,
        "dtypes": [d for d in case.dtypes if not dtypes or d in dtypes],
        "tags": sorted(case.tags), "expect_error": case.expect_error,
        "tolerance": case.tolerance,
        "inputs": {name: _input_key(d) for name, d in sorted(case.inputs.items())},
    })  # fmt: skip


def restamp(rows: list[Row], instance: Any) -> list[Row]:
    """``rows`` with the description and source line of the current case."""
    case = instance.case
    source = {"file": case.source.file, "line": case.source.line}
    for row in rows:
        if "source" in row:
            row["source"] = dict(source)
        if "description" in row:
            row["description"] = case.description
    return rows


# ------------------------------------------------------------------ the store


@dataclass
class Reuse:
    """What a run takes from the cache.

    framework_keys: framework -> its key; instance_keys: by instance index;
    blocks: (framework, instance index) -> (rows, stats) found (rows re-stamped);
    headers: framework -> the worker header stored with it.
    """

    framework_keys: dict[str, str]
    instance_keys: list[str]
    blocks: dict[tuple[str, int], tuple[list[Row], dict[str, Any]]]
    headers: dict[str, dict[str, Any]]


def add_cache_options(parser: argparse.ArgumentParser, without: str) -> None:
    """``--cache-dir DIR`` and ``--no-cache`` (``without``: what a command does without)."""
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache of results, goldens, compiled programs and findings' scripts, reused "
        f"by later commands (default: ${CACHE_ENV}, else {DEFAULT_CACHE_DIR} in the current folder)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help=f"{without}, and read and write nothing in the cache folder",
    )


def open_cache(args: argparse.Namespace) -> ResultCache | None:
    """The cache the options of :func:`add_cache_options` name: None under ``--no-cache``,
    else the one in ``--cache-dir``, else in ``$XENTCHECK_CACHE_DIR``, else in
    :data:`DEFAULT_CACHE_DIR` of the current folder (the caller checks it can be written)."""
    if args.no_cache:
        return None
    return ResultCache(args.cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


class ResultCache:
    """Entries under ``root/results`` (rows) and ``root/scripts`` (the findings' scripts);
    ``reused_rows``/``computed_rows`` of the last run.

    An entry is two lines: a JSON head (format, key, payload SHA-256) and the JSON payload.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.reused_rows = 0
        self.computed_rows = 0

    @property
    def compile_dir(self) -> Path:
        """Where the frameworks' compilation caches live (a folder per framework)."""
        return self.root / "compile"

    @property
    def goldens_dir(self) -> Path:
        """Where the reference's goldens live (:class:`~xentcheck.harness.goldens.GoldenCache`)."""
        return self.root / "goldens"

    def _path(self, key: str, folder: str = "results") -> Path:
        return self.root / folder / key[:2] / f"{key}.json"

    def _read(self, key: str, folder: str = "results") -> Any:
        try:
            head, _, payload = self._path(key, folder).read_bytes().partition(b"\n")
            meta = json.loads(head)
            if (meta.get("format") != FORMAT or meta.get("key") != key
                    or meta.get("sha256") != hashlib.sha256(payload).hexdigest()):  # fmt: skip
                return None
            return json.loads(payload)
        except (OSError, ValueError, AttributeError):
            return None

    def _write(self, key: str, value: Any, folder: str = "results") -> None:
        payload = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
        head = json.dumps({"format": FORMAT, "key": key,
                           "sha256": hashlib.sha256(payload).hexdigest()}).encode()  # fmt: skip
        atomic_write(self._path(key, folder), lambda f: f.write(head + b"\n" + payload))

    def get(self, fw_key: str, inst_key: str) -> tuple[list[Row], dict[str, Any]] | None:
        """(rows, stats) stored for this framework and instance, or None."""
        found = self._read(_sha("rows", fw_key, inst_key))
        if (not isinstance(found, dict) or not isinstance(found.get("rows"), list)
                or not all(isinstance(r, dict) for r in found["rows"])):  # fmt: skip
            return None
        return found["rows"], found.get("stats") or {}

    def put(self, fw_key: str, inst_key: str, rows: list[Row], stats: dict[str, Any]) -> bool:
        """Store an instance's rows (not when one says it crashed or timed out)."""
        if any(r.get("status") in NOT_STORED for r in rows):
            return False
        self._write(_sha("rows", fw_key, inst_key), {"rows": rows, "stats": stats})
        return True

    def get_script(self, key: str) -> str | None:
        """The finding's script stored under ``key`` (:func:`script_key`), or None."""
        found = self._read(key, "scripts")
        return (
            found.get("script")
            if isinstance(found, dict) and isinstance(found.get("script"), str)
            else None
        )

    def put_script(self, key: str, script: str) -> None:
        self._write(key, {"script": script}, "scripts")

    def get_header(self, fw_key: str) -> dict[str, Any] | None:
        """The run header a worker of this framework wrote (versions, devices, APIs)."""
        found = self._read(_sha("header", fw_key))
        return found if isinstance(found, dict) and found.get("kind") == "run" else None

    def put_header(self, fw_key: str, header: dict[str, Any]) -> None:
        self._write(_sha("header", fw_key), header)

    def lookup(
        self, frameworks: Iterable[str], instances: Sequence[Any], dtypes: Sequence[str] | None,
        device: str, done: Collection[tuple[str, int]] = (), judged: dict[str, Any] | None = None,
    ) -> Reuse:  # fmt: skip
        """The keys of a run, and the stored rows of every (framework, instance) not ``done``.

        A framework's rows are reused only together with its stored worker header, so a
        framework whose every instance is found starts no worker. ``judged``: how the rows
        are judged (the criterion and the user known files with their SHA-256), part of
        every framework key.
        """
        fw_keys = {fw: framework_key(fw, device, judged) for fw in frameworks}
        inst_keys = [instance_key(i, dtypes) for i in instances]
        reuse = Reuse(fw_keys, inst_keys, {}, {})
        for fw, key in fw_keys.items():
            header = self.get_header(key)
            if header is None:
                continue
            reuse.headers[fw] = header
            for n, inst in enumerate(instances):
                found = None if (fw, n) in done else self.get(key, inst_keys[n])
                if found is not None:
                    reuse.blocks[(fw, n)] = (restamp(found[0], inst), found[1])
        return reuse

    def store(
        self, reuse: Reuse, blocks: dict[tuple[str, int], tuple[list[Row], dict[str, Any]]],
        headers: Iterable[dict[str, Any]], frameworks: Collection[str],
    ) -> None:  # fmt: skip
        """Store the worker headers and computed ``blocks`` of ``frameworks`` (not those
        taken from the cache, nor an instance that crashed or timed out)."""
        for h in headers:
            fw = h.get("framework_spec")
            if fw in frameworks:
                self.put_header(reuse.framework_keys[fw], {
                    "kind": "run", "framework": h.get("framework"), "framework_spec": fw,
                    "frameworks": h.get("frameworks", {}),
                })  # fmt: skip
        for (fw, n), (rows, stats) in blocks.items():
            if fw in frameworks and (fw, n) not in reuse.blocks:
                self.put(reuse.framework_keys[fw], reuse.instance_keys[n], rows, stats)
