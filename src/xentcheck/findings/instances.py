"""Rebuilding a result row's instance, inputs and golden from the run's recorded case files.

A results header holds ``case_files`` (the text of every case file, keyed by its path
relative to the cases root); :class:`CaseSources` finds a row's instance again in them
(else on disk), and :func:`rebuild` gives the inputs exactly as the worker rounded them
for the row's dtype, with the reference's golden on them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from xentcheck.harness.cases import Instance, expand, load_file
from xentcheck.harness.errors import CaseError
from xentcheck.harness.worker import golden_for, rounded_inputs
from xentcheck.reference import Golden

Row = dict[str, Any]


class CaseSources:
    """Case-file texts by the ``source.file`` rows carry: the run's ``case_files``, else disk.

    Each file is loaded (validated) once; :meth:`instance` finds a row's instance in it.
    """

    def __init__(self, headers: Sequence[Row]) -> None:
        self.recorded: dict[str, str] = {}
        self.roots: list[Path] = []
        for h in headers:
            files = h.get("case_files")
            if isinstance(files, dict):
                self.recorded.update({str(k): str(v) for k, v in files.items()})
            if h.get("cases_root"):
                self.roots.append(Path(str(h["cases_root"])))
        self._loaded: dict[str, list | str] = {}

    def text(self, file: str) -> str | None:
        """The text of ``file`` (recorded, or read from disk), None when there is none."""
        if file in self.recorded:
            return self.recorded[file]
        posix = PurePosixPath(file)
        for key, text in self.recorded.items():  # recorded relative to a cases root
            k = PurePosixPath(key)
            if len(k.parts) and posix.parts[-len(k.parts) :] == k.parts:
                return text
        for base in (Path(), *self.roots):
            p = base / file
            if p.is_file():
                try:
                    return p.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    return None
        return None

    def _cases(self, file: str) -> list | str:
        if file in self._loaded:
            return self._loaded[file]
        text = self.text(file)
        if text is None:
            result: list | str = (
                f"the case file {file} is neither recorded in the results (their run header "
                "has no case_files) nor found on disk (relative to the current directory or "
                "the run's cases_root)"
            )
        else:
            with tempfile.TemporaryDirectory(prefix="xentcheck-repro-") as tmp:
                path = Path(tmp) / (PurePosixPath(file).name or "cases.yaml")
                path.write_text(text, encoding="utf-8")
                try:
                    result = load_file(path, None)
                except CaseError as exc:
                    result = f"the case file {file} no longer loads: {exc}"
        self._loaded[file] = result
        return result

    def instance(self, row: Row) -> Instance | str:
        """The row's instance, or the reason it cannot be rebuilt."""
        file = str((row.get("source") or {}).get("file") or "")
        if not file:
            return "the row names no case file (source.file)"
        cases = self._cases(file)
        if isinstance(cases, str):
            return cases
        case_key, name = str(row.get("case", "")), str(row.get("instance", ""))
        case_id = case_key.rsplit("/", 1)[-1]
        label = name[len(case_key) :] if name.startswith(case_key) else None
        for case in cases:
            if case.id != case_id:
                continue
            for inst in expand(case):
                if inst.name[len(case.key) :] == label:
                    return inst
        return f"the case file {file} has no instance {name!r} any more (was it edited?)"


@dataclass(frozen=True)
class Rebuilt:
    """A row's instance with its inputs as the worker rounded them and the golden."""

    instance: Instance
    inputs: dict[str, np.ndarray]
    golden: Golden | None
    rejected: str | None  # the reference's reason when it rejects the inputs


def rebuild(sources: CaseSources, row: Row) -> Rebuilt | str:
    """The row's instance, rounded inputs and golden; or the reason they cannot be had."""
    inst = sources.instance(row)
    if isinstance(inst, str):
        return inst
    with np.errstate(all="ignore"):  # the worker rounds (and overflows) the same way
        inputs = rounded_inputs(inst, inst.inputs(), str(row.get("dtype")))
        golden, rejected = golden_for(inst, inputs)
    return Rebuilt(inst, inputs, golden, rejected)


def input_elements(instance: Instance) -> int:
    """The number of input elements of ``instance`` (without building the arrays)."""
    total = 0
    for d in instance.case.inputs.values():
        total += int(d.literal.size) if d.literal is not None else int(np.prod(d.shape))
    return total
