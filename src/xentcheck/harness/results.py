"""Results files: JSON Lines, a run header first, then one result per line (docs/design.md).

Writers flush every line, so a run that dies keeps everything it finished. Two readers:
:func:`read_lines` (the runner's part files) skips a torn last line instead of failing;
:func:`read_results` (a finished results file, as ``xentcheck report`` takes it) checks
the whole file and raises :class:`ResultsError` naming the file and line of the first
thing that is not a results file: unreadable, empty, torn, not JSON, a foreign line.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from xentcheck import __version__
from xentcheck.harness.errors import CaseError, show
from xentcheck.host import cpu_name

#: the JSON kinds of values in results files, with the Python types ``json`` reads them as
JSON_KINDS: dict[str, tuple[type, ...]] = {
    "a string": (str,), "an object": (dict,), "an array": (list,),
    "a number or null": (int, float, type(None)), "an array or null": (list, type(None)),
}  # fmt: skip
#: every result row has at least these keys, each holding a value of this JSON kind
ROW_KINDS: dict[str, str] = {
    **dict.fromkeys(("case", "instance", "loss"), "a string"), "params": "an object",
    **dict.fromkeys(("framework", "api", "device", "dtype", "quantity", "status"), "a string"),
    **dict.fromkeys(("max_abs_err", "max_rel_err", "max_ulp"), "a number or null"),
    "expected": "an array or null", "actual": "an array or null",
}  # fmt: skip
REQUIRED_KEYS = tuple(ROW_KINDS)
#: a run header (the first line) has these keys, of these kinds
HEADER_KINDS: dict[str, str] = {"kind": "a string", "xentcheck_version": "a string"}
#: keys a run header may lack, of these kinds when present (the report reads them)
OPTIONAL_HEADER_KINDS: dict[str, str] = {"frameworks": "an object"}
STATUSES = ("pass", "mismatch", "nonfinite", "error", "crash", "timeout", "unsupported", "known")
#: statuses that are discrepancies (make ``--fail-on unexplained`` exit 1)
DISCREPANCIES = ("mismatch", "nonfinite", "error", "crash", "timeout")


def run_header(**extra: Any) -> dict[str, Any]:
    """The first line of a results file: what ran, where and when."""
    return {
        "kind": "run",
        "xentcheck_version": __version__,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        **extra,
    }


#: one results line: compact JSON, NaN and infinities refused (rows carry them as null)
_LINE = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


class ResultWriter:
    """Appends JSON lines to a file, flushing after each :meth:`write` and each
    :meth:`write_all` (one block of lines, written and flushed together)."""

    def __init__(self, path: str | Path, mode: str = "w") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = open(self.path, mode, encoding="utf-8")  # noqa: SIM115

    def write(self, row: dict[str, Any]) -> None:
        self.write_all((row,))

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        dumps = _LINE.encode
        self._f.write("".join(dumps(r) + "\n" for r in rows))
        self._f.flush()

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def framework_specs(headers: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each framework's name, as rows name it, -> what the run was given for it
    (``--framework NAME`` or ``--adapter MODULE:ATTR``): the run headers'
    ``frameworks[name].spec``; a framework whose headers lack it is left out."""
    out: dict[str, str] = {}
    for h in headers:
        for name, info in (h.get("frameworks") or {}).items():
            if isinstance(info, dict) and info.get("spec"):
                out[str(name)] = str(info["spec"])
    return out


def read_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete JSON object of a JSON Lines file; a torn or garbled line is skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield obj


class ResultsError(CaseError):
    """A file that is not a results file: ``path:line: reason (fix)`` on one line."""


_ABSENT = object()
#: what to do about a file that is not a results file
_FIX = "pass the file that `xentcheck run --out` wrote"


def read_results(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``([header], rows)`` of a finished results file, checked line by line.

    The first non-blank line must be a run header (``kind: run``), every later one a
    result row with :data:`REQUIRED_KEYS` of their JSON kinds and a known status;
    blank lines are skipped. A header with no rows (a run that selected nothing) is a
    results file. Raises :class:`ResultsError` (file, line, reason, fix) for an
    unreadable or empty file, a torn last line, a line that is not UTF-8 JSON, a missing
    or second header, and a foreign row; nothing else is raised for bad content.
    """
    header: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                obj = _parse(path, n, raw)
                if obj is None:
                    continue
                if header is None:
                    header = _check_header(path, n, obj)
                else:
                    rows.append(_check_row(path, n, obj))
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if header is None:
        raise ResultsError(path, None, f"empty results file: no run header ({_FIX})")
    return [header], rows


def _unreadable(path: str | Path, exc: OSError) -> ResultsError:
    if isinstance(exc, FileNotFoundError):
        why = f"no such results file (run `xentcheck run --out {path}` first)"
    elif isinstance(exc, IsADirectoryError):
        why = f"a folder, not a results file ({_FIX})"
    else:
        why = f"cannot read it: {exc.strerror or exc} (check the path and its permissions)"
    return ResultsError(path, None, why)


def _parse(path: str | Path, n: int, raw: bytes) -> Any:
    """The JSON value of line ``n`` (None for a blank line); a torn last line is truncation."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text) if text.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if not raw.endswith(b"\n"):
            why = "truncated: the last line is cut off (copy the file again, or rerun `xentcheck run`)"
            raise ResultsError(path, n, why) from None
        what = (
            "UTF-8 text"
            if isinstance(exc, UnicodeDecodeError)
            else f"JSON: {exc.msg}, column {exc.colno}"
        )
        raise ResultsError(path, n, f"not {what} ({_FIX}: one JSON object a line)") from None


def _check_header(path: str | Path, n: int, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("kind") != "run":
        raise ResultsError(
            path, n, f"not a xentcheck results file: the first line is not a run header ({_FIX})"
        )
    return _check_kinds(path, n, obj, HEADER_KINDS, OPTIONAL_HEADER_KINDS, "run header")


def _check_row(path: str | Path, n: int, obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict) and obj.get("kind") == "run":
        why = "a second run header: a results file holds one run (pass each run's file on its own)"
        raise ResultsError(path, n, why)
    if not isinstance(obj, dict):
        raise ResultsError(
            path, n, f"not a xentcheck result: {show(obj)} is not a JSON object ({_FIX})"
        )
    row = _check_kinds(path, n, obj, ROW_KINDS, {}, "result")
    if row["status"] not in STATUSES:
        why = f"unknown status {show(row['status'])} (one of {', '.join(STATUSES)}; {_FIX})"
        raise ResultsError(path, n, why)
    return row


def _check_kinds(
    path: str | Path,
    n: int,
    obj: dict[str, Any],
    required: dict[str, str],
    optional: dict[str, str],
    what: str,
) -> dict[str, Any]:
    """``obj`` if it has every ``required`` key and each key it has holds its JSON kind."""
    fits = all(type(obj.get(k, _ABSENT)) in JSON_KINDS[v] for k, v in required.items()) and all(
        type(obj[k]) in JSON_KINDS[v] for k, v in optional.items() if k in obj
    )  # type(), not isinstance: a JSON true is no number
    if fits:
        return obj
    missing = [k for k in required if k not in obj]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        why = f"no {', '.join(missing[:3])}{more}"
    else:
        key, kind = next(
            (k, v) for k, v in {**required, **optional}.items()
            if k in obj and type(obj[k]) not in JSON_KINDS[v]
        )  # fmt: skip
        why = f"{key} is {show(obj[key])}, not {kind}"
    raise ResultsError(path, n, f"not a xentcheck {what}: {why} ({_FIX})")


def read_runs(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(headers, rows)`` of several results files and folders (one per framework, GPU box,
    shard or version; a folder: every ``*.jsonl`` under it), each checked by
    :func:`read_results` and merged by :func:`xentcheck.harness.merge.read`: the reference
    rows every run repeats and a result two files hold alike are kept once, a framework
    held at several version sets has its rows labelled (``variant``), and two files that
    claim one result differently raise :class:`ResultsError` naming both."""
    from xentcheck.harness.merge import read

    merged = read(paths)
    return merged.headers, merged.rows
