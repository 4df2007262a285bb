"""Trials: a batch of fuzz cases run through real frameworks, and what each case showed.

A batch is one case file and one supervised run (:func:`xentcheck.harness.runner.run`):
every framework in its own worker process, so a crash or a hang is a ``crash`` or
``timeout`` row of the case that caused it, never the end of the fuzzing. Each case's
rows are then grouped on their own (:func:`xentcheck.findings.group.group_rows`), as a
plain ``xentcheck run`` of that case alone would group them.

A **behaviour** is one API's part of a finding: ``(framework, api, loss, kind,
signature, quantity)``. A finding's id digests the same fields with the APIs that share
it (:func:`~xentcheck.findings.group.finding_id`), and which APIs share it depends on
the other cases of a run; behaviours do not, so fuzz compares with a baseline and keeps
a shrinking finding "the same" by behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xentcheck.findings.group import PER_QUANTITY, Group, group_rows
from xentcheck.harness.cases import load_file
from xentcheck.harness.results import framework_specs, read_results
from xentcheck.harness.runner import Interrupted, run

Row = dict[str, Any]
Behaviour = tuple[str, str, str, str, str, str]


def behaviours(group: Group) -> list[Behaviour]:
    """The behaviours of a finding's group, one per API, sorted."""
    return sorted((group.framework, api, group.loss, group.kind, group.signature, group.quantity)
                  for api in group.apis)  # fmt: skip


def finding_behaviours(f: Mapping[str, Any]) -> list[Behaviour]:
    """The behaviours of a finding as ``xentcheck findings`` writes it, one per API."""
    quantity = str(f["quantity"]) if f["kind"] in PER_QUANTITY else ""
    return sorted((f["framework"], api, f["loss"], f["kind"], f["signature"], quantity)
                  for api in f["apis"])  # fmt: skip


def case_text(cases: Sequence[Mapping[str, Any]]) -> str:
    """A case file holding ``cases`` (lists of numbers flow on one line)."""
    return yaml.safe_dump({"cases": [dict(c) for c in cases]}, sort_keys=False,
                          default_flow_style=None, width=100, allow_unicode=True)  # fmt: skip


@dataclass
class Batch:
    """What one run of a batch gave: per case id, its rows and its groups."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    groups: dict[str, list[Group]] = field(default_factory=dict)
    headers: list[Row] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0

    def group_showing(self, case_id: str, behaviour: Behaviour) -> Group | None:
        """The group (finding) of case ``case_id`` that has ``behaviour``, if any."""
        return next((g for g in self.groups.get(case_id, []) if behaviour in behaviours(g)), None)

    def shows(self, case_id: str, behaviour: Behaviour) -> bool:
        """Whether case ``case_id`` showed ``behaviour`` in this batch."""
        return self.group_showing(case_id, behaviour) is not None


@dataclass
class Runner:
    """Runs batches of case dicts: the frameworks, device, criterion and known files of the
    fuzzing, a work folder, and where the goldens are kept between batches."""

    frameworks: list[str]
    device: str
    work: Path
    jobs: int = 1
    timeout: float = 60.0
    criterion: str = "ulp"
    known_files: Sequence[str] = ()
    batches: int = 0
    specs: dict[str, str] = field(default_factory=dict)  # a framework's row name -> its spec

    def run(
        self,
        cases: Sequence[Mapping[str, Any]],
        *,
        deadline: float | None = None,
        only: Mapping[str, Iterable[str]] | None = None,
        apis: Mapping[str, Iterable[str]] | None = None,
        name: str | None = None,
    ) -> Batch:
        """Run ``cases`` (unique ids) on the frameworks (``only``: framework, by its rows'
        name or its spec, -> case ids to run it on); stop at ``deadline`` with what
        finished (``interrupted``); Ctrl-C raises KeyboardInterrupt."""
        self.batches += 1
        stem = name or f"batch-{self.batches:04d}"
        folder = self.work / stem
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.yaml"
        path.write_text(case_text(cases), encoding="utf-8")
        return self.run_files([path], deadline=deadline, only=only, apis=apis)

    def run_files(
        self,
        paths: Sequence[Path],
        *,
        deadline: float | None = None,
        only: Mapping[str, Iterable[str]] | None = None,
        apis: Mapping[str, Iterable[str]] | None = None,
    ) -> Batch:
        """Run the case files ``paths`` (their cases' ids unique among them) as :meth:`run`
        runs its batch; ``apis``: framework -> the only APIs to run."""
        loaded = [c for p in paths for c in load_file(p, p.parent)]
        key = {c.id: c.key for c in loaded}
        keyed = None
        if only is not None:
            keyed = {self.specs.get(fw, fw): [key[i] for i in ids] for fw, ids in only.items()}
        frameworks = (
            self.frameworks if keyed is None else [f for f in self.frameworks if keyed.get(f)]
        )
        out = self.work / f"{paths[0].stem}.results.jsonl"
        batch = Batch()
        t0 = time.monotonic()
        if frameworks:
            try:
                run(frameworks, [str(p) for p in paths], loaded, None, self.device, out, self.jobs,
                    True, timeout=self.timeout, golden_cache=self.work / "goldens",
                    criterion=self.criterion, known_files=self.known_files,
                    deadline=deadline, only=keyed,
                    apis={self.specs.get(fw, fw): a for fw, a in (apis or {}).items()})  # fmt: skip
            except Interrupted:
                batch.interrupted = True
                if deadline is None or time.monotonic() < deadline:  # Ctrl-C, not the deadline
                    raise KeyboardInterrupt from None
            batch.headers, rows = read_results(out)
            self.specs.update(framework_specs(batch.headers))
        else:
            rows = []
        batch.wall_s = time.monotonic() - t0
        by_key = {c.key: c.id for c in loaded}
        for r in rows:
            cid = by_key.get(str(r.get("case")))
            if cid is not None and r.get("framework") != "reference":
                batch.rows.setdefault(cid, []).append(r)
        for cid, case_rows in batch.rows.items():
            batch.groups[cid] = [g for g in group_rows(case_rows) if g.kind != "semantic"]
        return batch
