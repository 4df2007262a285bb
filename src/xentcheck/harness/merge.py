"""Many results files as one set of rows: sources, shards, version sets, conflicts.

``xentcheck report`` and ``xentcheck findings`` take any number of results files and
folders (a folder: every ``*.jsonl`` under it, sorted, except the part files of an
unfinished run), from other machines, shards, devices and framework versions.
:func:`read` checks each file (:func:`~xentcheck.harness.results.read_results`) and
merges them (:func:`combine`):

- **Runs.** Files whose headers record a shard (``--shard I/N``) and agree on everything
  else that decides their rows (xentcheck version, case digest, criterion, tags and
  skipped tags, device and dtypes options, user known files, N, each framework and its
  versions) are the shards of one run: their rows are one run's rows. Every other file is
  a run of its own.
- **Labels.** A framework that the merged runs hold at one version set and on one kind of
  machine keeps its name. One held at several gets a *label* per run, its name and the
  versions that tell the runs apart (``jax 0.9.2 (jaxlib 0.9.2)`` and ``jax 0.10.2
  (jaxlib 0.10.2)``), and the machine (the devices its header names: CPU and GPU models)
  where two runs of one version set ran on different ones. Its rows carry the label as
  ``variant``, and its header entry as ``frameworks[name]["variant"]`` (with the label
  without the machine as ``version_set``); the rows keep the
  framework's name in ``framework``, so everything that looks a framework up by name
  (adapters, known entries, scripts) still finds it. A version set is the framework's
  recorded package versions, Python's aside.
- **Claims.** Two files that hold the same result (framework and label, case instance,
  API, device, dtype, quantity) must agree on it (status, errors, samples, known entry,
  behaviour; timings aside): it is kept once. Files that disagree are an error naming
  both (the same framework, version set and machine, shard and instance: two copies of
  one shard, say, one of them rerun after a change). The reference's own rows (``framework: reference``), which every run repeats, are kept once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xentcheck.harness.plan import Shard, shard_json
from xentcheck.harness.results import ResultsError, read_results

Row = dict[str, Any]

#: what a result's claim is: two files holding one result must agree on these
CLAIM = ("status", "max_abs_err", "max_rel_err", "max_ulp", "expected", "actual", "index",
         "shape", "known_id", "unexplained_status", "behaviour", "accuracy")  # fmt: skip
#: a result's identity within one label (the framework and label come first)
IDENTITY = ("case", "instance", "api", "device", "dtype", "quantity")
#: packages a version set leaves out (the interpreter differs between machines of one lock)
NOT_VERSIONS = ("python",)
#: a run header's fields that decide which rows a run holds: shards agreeing on all of
#: them (and on the frameworks and their versions) are one run
RUN_FIELDS = ("xentcheck_version", "cases_digest", "criterion", "skip_tags", "tags", "device",
              "dtypes", "apis_only", "known_files")  # fmt: skip


@dataclass
class Source:
    """One results file of a merge."""

    path: str
    header: Row
    rows: int  # the rows it holds
    run: int  # the run (its shards merged) it belongs to: index into Merged.runs
    shard: Shard | None
    labels: dict[str, str]  # framework -> its label in the merge (its name when unambiguous)


@dataclass
class Run:
    """The files of one run: its shards, or one unsharded file."""

    sources: list[int]  # indices into Merged.sources
    count: int | None  # N of its shards, None for an unsharded run
    shards: list[int]  # the shard indices present, sorted

    @property
    def missing(self) -> list[int]:
        """Shard indices of the run that no file holds."""
        return (
            [] if self.count is None else sorted(set(range(1, self.count + 1)) - set(self.shards))
        )


@dataclass
class Merged:
    """Rows of several results files, merged (see the module docstring)."""

    headers: list[Row]  # one per source, in order
    rows: list[Row]
    run_of: list[int]  # per row: index into headers (the file it came from)
    sources: list[Source] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    duplicates: int = 0  # results two files held alike, kept once (reference rows aside)

    @property
    def files(self) -> list[str]:
        return [s.path for s in self.sources]

    def variant(self, i: int) -> str:
        """Row ``i``'s label when its framework has several, else ""."""
        return str(self.rows[i].get("variant") or "")


def results_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The results files of ``paths``: a file as given, a folder as every ``*.jsonl`` under
    it (sorted by path; the part files of an unfinished run, ``OUT.parts/``, left out). A
    folder holding none is a :class:`ResultsError`."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted(
            (f for f in p.rglob("*.jsonl")
             if f.is_file() and not any(d.endswith(".parts") for d in f.relative_to(p).parts[:-1])),
            key=lambda f: f.relative_to(p).as_posix(),
        )  # fmt: skip
        if not found:
            raise ResultsError(p, None, "a folder, not a results file (and no *.jsonl under it: "
                               "name a results file, or the folder the runs' files were copied into)")  # fmt: skip
        out += found
    return out


def read(paths: Iterable[str | Path]) -> Merged:
    """Read and merge the results files and folders of ``paths`` (see the module
    docstring); raises :class:`ResultsError` for a file that is not a results file, a
    folder without any, or two files that claim one result differently."""
    return combine([(str(p), *read_results(p)) for p in results_paths(paths)])


def versions_of(header: Mapping[str, Any], framework: str) -> dict[str, str]:
    """The version set of ``framework`` in a run header: its recorded package versions
    without :data:`NOT_VERSIONS`."""
    info = (header.get("frameworks") or {}).get(framework) or {}
    versions = info.get("versions") if isinstance(info, dict) else None
    if not isinstance(versions, dict):
        return {}
    return {str(k): str(v) for k, v in versions.items() if k not in NOT_VERSIONS}


def framework_info(headers: Iterable[Row], framework: str, variant: str = "") -> dict[str, Any]:
    """The header entry (``frameworks[framework]``) of the run whose label of
    ``framework`` is ``variant``, or of the first run naming it when ``variant`` is ""
    or no run has that label; {} when no header names it."""
    first: dict[str, Any] | None = None
    for h in headers:
        info = (h.get("frameworks") or {}).get(framework)
        if not isinstance(info, dict):
            continue
        if variant and info.get("variant") == variant:
            return info
        if first is None:
            first = info
    return first or {}


def main_package(framework: str, versions: Mapping[str, str]) -> str | None:
    """The package a framework's version is named by: the framework's own name, else the
    first package its adapter requires, else the first recorded one (numpy aside)."""
    from xentcheck.adapters import REQUIRES

    if framework in versions:
        return framework
    first = (REQUIRES.get(framework) or ("",))[0]
    if first in versions:
        return first
    return next((k for k in versions if k != "numpy"), None)


def version_order(framework: str, versions: Mapping[str, str]) -> tuple:
    """A sort key of a framework's version sets: its main package's version, then the
    others by package name (PEP 440 order; a version that is not PEP 440 sorts by text,
    after those that are)."""
    from packaging.version import InvalidVersion, Version

    def one(v: str) -> tuple:
        try:
            return (0, Version(v), "")
        except InvalidVersion:
            return (1, Version("0"), v)

    main = main_package(framework, versions)
    rest = sorted(k for k in versions if k != main)
    return tuple(one(versions[k]) for k in ([main] if main else []) + rest)


def _machine(headers: Sequence[Row], framework: str) -> str:
    """The devices ``framework`` ran on in these headers (one run's files): each device's
    names, joined (``AMD EPYC 7763 · NVIDIA H100``; shards on other CPUs: ``A / B``)."""
    names: dict[str, set[str]] = defaultdict(set)
    for h in headers:
        info = (h.get("frameworks") or {}).get(framework) or {}
        devices = info.get("devices") if isinstance(info, dict) else None
        for dev, name in (devices if isinstance(devices, dict) else {}).items():
            if name:
                names[str(dev)].add(str(name))
    return " · ".join(" / ".join(sorted(names[d])) for d in sorted(names))


def _label(framework: str, versions: Mapping[str, str], shown: Sequence[str], machine: str) -> str:
    """``jax 0.10.2 (jaxlib 0.10.2)``, ``keras-jax (keras 3.12.0, jax 0.10.2)``, with
    ``· MACHINE`` when ``machine``: the packages of ``shown`` (the main package first)."""
    main = main_package(framework, versions)
    parts = [f"{p} {versions[p]}" for p in shown if p in versions and p != main]
    if main is not None and main == framework:
        text = f"{framework} {versions[main]}" + (f" ({', '.join(parts)})" if parts else "")
    else:
        head = [f"{main} {versions[main]}"] if main is not None else []
        inside = head + parts
        text = framework + (f" ({', '.join(inside)})" if inside else "")
    return text + (f" · {machine}" if machine else "")


def _run_key(header: Row, frameworks: Iterable[str]) -> str:
    """What the shards of one run share, their frameworks' versions aside (a shard that
    ran nothing records none: :func:`_agree` compares them)."""
    shard = shard_json(header.get("shard"))
    return json.dumps([[header.get(k) for k in RUN_FIELDS], shard.count if shard else None,
                       sorted(frameworks)], sort_keys=True, default=str)  # fmt: skip


def _agree(a: Mapping[str, Mapping[str, str]], b: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether two files' framework versions can be one run's: equal wherever both
    recorded them."""
    return all(a[fw] == b[fw] for fw in a.keys() & b.keys() if a[fw] and b[fw])


def _frameworks(header: Row, rows: Iterable[Row]) -> list[str]:
    named = [str(k) for k in (header.get("frameworks") or {})]
    seen = {str(r.get("framework", "")) for r in rows}
    return sorted(set(named) | seen - {"reference", ""})


def labels(
    runs: Sequence[tuple[Sequence[Row], Iterable[str]]],
) -> list[dict[str, tuple[str, str]]]:
    """Each run's (label, version-set name) of each of its frameworks (``("", "")`` for
    a framework with one label).

    ``runs``: (the headers of one run's files, its frameworks). A framework seen at one
    (version set, machine) keeps ""; otherwise each run's label names the packages whose
    versions differ between the framework's version sets (the main package always), and
    the machine where one version set ran on two; the version-set name is the label
    without the machine."""
    seen: dict[str, list[tuple[int, dict[str, str], str]]] = defaultdict(list)
    for n, (headers, frameworks) in enumerate(runs):
        for fw in frameworks:
            versions = next((v for h in headers if (v := versions_of(h, fw))), {})
            seen[fw].append((n, versions, _machine(headers, fw)))
    out: list[dict[str, tuple[str, str]]] = [{} for _ in runs]
    for fw, everything in seen.items():
        for n, _, _ in everything:
            out[n][fw] = ("", "")
        # a run that recorded no versions of it (it ran nothing: an empty shard, a worker
        # that died first) tells no version set apart
        entries = [e for e in everything if e[1]]
        sets = {json.dumps(v, sort_keys=True) for _, v, _ in entries}
        kinds = {(json.dumps(v, sort_keys=True), m) for _, v, m in entries}
        if len(kinds) < 2:
            continue
        for n, _, _ in everything:
            out[n][fw] = (f"{fw} (versions not recorded)", "")
        packages = sorted({k for _, v, _ in entries for k in v})
        differ = [p for p in packages if len({v.get(p) for _, v, _ in entries}) > 1]
        for n, versions, machine in entries:
            key = json.dumps(versions, sort_keys=True)
            machines = {m for s, m in kinds if s == key}
            main = main_package(fw, versions)
            shown = [main] if main else []
            shown += differ if len(sets) > 1 else []
            out[n][fw] = (_label(fw, versions, shown, machine if len(machines) > 1 else ""),
                          _label(fw, versions, shown, ""))  # fmt: skip
    return out


def combine(files: Sequence[tuple[str, Sequence[Row], Sequence[Row]]]) -> Merged:
    """Merge ``(path, headers, rows)`` of several results files (see the module docstring).

    A file may hold no header (``[]``: rows made in memory). Raises :class:`ResultsError`
    naming both files when two of them claim one result differently.
    """
    headers: list[Row] = []
    for _, hs, _ in files:
        h = dict(hs[0]) if hs else {}
        if isinstance(h.get("frameworks"), dict):
            h["frameworks"] = {k: dict(v) if isinstance(v, dict) else v
                               for k, v in h["frameworks"].items()}  # fmt: skip
        headers.append(h)
    fws = [_frameworks(h, rs) for h, (_, _, rs) in zip(headers, files, strict=True)]
    # runs: shards agreeing on their run key merge; any other file is a run of its own
    run_of_file: list[int] = []
    runs: list[Run] = []
    keyed: dict[str, list[tuple[int, dict[str, dict[str, str]]]]] = {}  # key -> (run, versions)
    for n, h in enumerate(headers):
        shard = shard_json(h.get("shard"))
        versions = {fw: versions_of(h, fw) for fw in fws[n]}
        key = _run_key(h, fws[n]) if shard is not None else None
        candidates = keyed.get(key, []) if key is not None else []
        at = next((i for i, (_, seen) in enumerate(candidates) if _agree(seen, versions)), None)
        if at is not None:
            index, seen = candidates[at]
            for fw, v in versions.items():
                seen[fw] = seen.get(fw) or v
            runs[index].sources.append(n)
            runs[index].shards = sorted({*runs[index].shards, shard.index})
            run_of_file.append(index)
            continue
        if key is not None:
            keyed.setdefault(key, []).append((len(runs), versions))
        runs.append(Run([n], shard.count if shard else None, [shard.index] if shard else []))
        run_of_file.append(len(runs) - 1)
    run_labels = labels(
        [([headers[n] for n in r.sources], sorted({fw for n in r.sources for fw in fws[n]}))
         for r in runs]
    )  # fmt: skip
    sources = []
    for n, (path, _, rs) in enumerate(files):
        mine = run_labels[run_of_file[n]]
        for fw in fws[n]:
            label, version_set = mine.get(fw, ("", ""))
            if label:
                frameworks = headers[n].setdefault("frameworks", {})
                frameworks[fw] = {**(frameworks.get(fw) or {}), "variant": label,
                                  "version_set": version_set}  # fmt: skip
        sources.append(Source(path, headers[n], len(rs), run_of_file[n],
                              shard_json(headers[n].get("shard")),
                              {fw: mine.get(fw, ("", ""))[0] or fw for fw in fws[n]}))  # fmt: skip
    return _rows(files, headers, sources, runs, run_labels, run_of_file)


def _rows(
    files: Sequence[tuple[str, Sequence[Row], Sequence[Row]]], headers: list[Row],
    sources: list[Source], runs: list[Run], run_labels: list[dict[str, tuple[str, str]]],
    run_of_file: list[int],
) -> Merged:  # fmt: skip
    out: list[Row] = []
    run_of: list[int] = []
    where: dict[tuple, int] = {}  # identity -> position in out
    origin: list[int] = []  # per kept row: its file
    reference: set[tuple] = set()
    duplicates = 0
    for n, (path, _, rs) in enumerate(files):
        mine = run_labels[run_of_file[n]]
        for r in rs:
            fw = str(r.get("framework", ""))
            if fw == "reference":  # every run checks the reference: one copy is enough
                key = tuple(r.get(k) for k in ("instance", "api", "device", "dtype", "quantity"))
                if key in reference:
                    continue
                reference.add(key)
                out.append(r)
                run_of.append(n)
                origin.append(n)
                continue
            label = mine.get(fw, ("", ""))[0]
            row = {**r, "variant": label} if label else r
            key = (fw, label, *(r.get(k) for k in IDENTITY))
            at = where.get(key)
            if at is None:
                where[key] = len(out)
                out.append(row)
                run_of.append(n)
                origin.append(n)
                continue
            duplicates += 1
            first = origin[at]
            if first == n:  # one file holding a result twice: the later line stands
                out[at] = row
                continue
            _check_claim(files[first][0], out[at], path, row, label or fw)
    return Merged(headers, out, run_of, sources, runs, duplicates)


def _check_claim(path_a: str, a: Row, path_b: str, b: Row, label: str) -> None:
    """Raise unless ``a`` (from ``path_a``) and ``b`` (from ``path_b``) claim alike."""
    what = " ".join(str(b.get(k)) for k in ("instance", "api", "device", "dtype", "quantity"))
    differing = [k for k in CLAIM if a.get(k) != b.get(k)]
    if differing:
        k = differing[0]
        raise ResultsError(path_b, None, f"claims {label} {what} with {k} {json.dumps(b.get(k))}, "
                           f"but {path_a} claims it with {json.dumps(a.get(k))}: the two files "
                           "disagree on one result (pass one of them, or rerun both)")  # fmt: skip
