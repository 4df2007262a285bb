"""Where a case was written, and what its inputs were, for the report's drill-down.

The YAML text comes from the run header's ``case_files`` (``{relpath: text}``) when the
run recorded it, else from the file on disk (relative to the working directory or to the
results file), else it is "not available". Inputs are regenerated from that same text
(literals and seeded generators are reproducible) and abbreviated: shape, a few values,
and min/max/mean for large arrays.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

Row = dict[str, Any]

MAX_SHOWN = 24  # arrays up to this many elements are shown whole
HEAD = 8  # elements shown of a larger array


class CaseFiles:
    """The text of case files, looked up by the ``source.file`` path that rows carry."""

    def __init__(self, headers: Sequence[Row], search_dirs: Iterable[str | Path] = ()) -> None:
        self.recorded: dict[str, str] = {}
        for h in headers:
            files = h.get("case_files")
            if isinstance(files, dict):
                self.recorded.update({str(k): str(v) for k, v in files.items()})
        self.dirs = [Path.cwd(), *map(Path, search_dirs)]
        self._cache: dict[str, str | None] = {}

    def text(self, relpath: str) -> str | None:
        """The file's text, or None when neither the run nor the disk has it."""
        if relpath in self._cache:
            return self._cache[relpath]
        text = self.recorded.get(relpath)
        if text is None:
            for d in self.dirs:
                for base in (d, *d.parents):
                    p = base / relpath
                    if p.is_file():
                        try:
                            text = p.read_text(encoding="utf-8")
                        except (OSError, UnicodeDecodeError):
                            continue
                        break
                if text is not None:
                    break
        self._cache[relpath] = text
        return text


def case_span(text: str, line: int) -> tuple[int, int]:
    """1-based first and last line of the YAML list entry that starts at ``line``.

    The entry ends before the next line indented no deeper than its ``-`` (the next case,
    or the next top-level key); trailing blank and comment lines are dropped.
    """
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return (1, 0)
    start = lines[line - 1]
    indent = len(start) - len(start.lstrip())
    end = line
    for i in range(line, len(lines)):
        s = lines[i]
        if s.strip() and not s.lstrip().startswith("#"):
            if len(s) - len(s.lstrip()) <= indent:
                break
            end = i + 1
    return (line, end)


def _cases_root(case_key: str, relpath: str) -> PurePosixPath | None:
    """The cases root of a file from a case key (``dir/file/id``) and the file's path."""
    stem_parts = PurePosixPath(case_key).parent.parts
    file_parts = PurePosixPath(relpath).with_suffix("").parts
    if stem_parts and file_parts[-len(stem_parts) :] == stem_parts:
        return PurePosixPath(*file_parts[: -len(stem_parts)])
    return None


def summarise_array(a: np.ndarray) -> dict[str, Any]:
    """Shape, dtype kind and a short text of ``a`` (whole when small)."""
    a = np.asarray(a)
    flat = a.ravel()
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if flat.size <= MAX_SHOWN:
        out["text"] = np.array2string(
            a, separator=", ", threshold=MAX_SHOWN + 1, max_line_width=100
        )
        return out
    out["text"] = (
        "[" + ", ".join(_num(x) for x in flat[:HEAD]) + f", … {flat.size - HEAD} more]  (flattened)"
    )
    if a.dtype.kind in "fiu":
        fin = flat[np.isfinite(flat)] if a.dtype.kind == "f" else flat
        if fin.size:
            out["stats"] = {
                "min": _num(fin.min()),
                "max": _num(fin.max()),
                "mean": _num(fin.astype(np.float64).mean()),
            }
        if a.dtype.kind == "f" and fin.size != flat.size:
            out.setdefault("stats", {})["non-finite"] = str(int(flat.size - fin.size))
    return out


def _num(x: Any) -> str:
    x = x.item() if hasattr(x, "item") else x
    return repr(x) if isinstance(x, float) else str(x)


def instance_inputs(
    case_files: CaseFiles, rows: Iterable[Row], limit: int = 5000
) -> dict[str, dict[str, Any]]:
    """Abbreviated inputs of the instances of ``rows``: instance name -> input -> summary.

    Loads each case file once, from the recorded or on-disk text; an instance whose file
    cannot be loaded (gone, or changed so the case is missing) is left out.
    """
    from xentcheck.harness.cases import expand, load_file
    from xentcheck.harness.errors import CaseError

    wanted: dict[str, tuple[str, str]] = {}
    for r in rows:
        src = r.get("source") or {}
        if r.get("instance") and src.get("file") and r["instance"] not in wanted:
            wanted[r["instance"]] = (str(src["file"]), str(r.get("case", "")))
            if len(wanted) >= limit:
                break
    by_file: dict[str, list[str]] = {}
    for inst, (f, _) in wanted.items():
        by_file.setdefault(f, []).append(inst)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="xentcheck-report-") as tmp:
        for relpath, names in by_file.items():
            text = case_files.text(relpath)
            root = _cases_root(wanted[names[0]][1], relpath)
            if text is None or root is None:
                continue
            path = Path(tmp) / relpath.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            try:
                cases = load_file(path, Path(tmp) / str(root))
            except (CaseError, ValueError, OSError):
                continue
            want = set(names)
            for case in cases:
                hits = [i.name for i in expand(case) if i.name in want]
                if not hits:
                    continue
                try:  # every instance of a case has the same inputs (sweeps are params)
                    raw = next(expand(case)).inputs()
                except Exception:  # a generator that no longer exists, say
                    continue
                summary = {k: summarise_array(v) for k, v in raw.items()}
                out.update(dict.fromkeys(hits, summary))
    return out
