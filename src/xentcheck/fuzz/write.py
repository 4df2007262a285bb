"""What fuzz leaves in ``--out-dir``: one case file per finding, ``findings.json``, and
``reference-bugs.json`` when the reference itself was wrong.

A case file ``cases/<finding-id>.yaml`` holds the shrunk case, its description written
from the finding's summary, tagged ``found-by-fuzz``: ``xentcheck run --cases`` on it
shows the finding again (the final batch checks exactly that, and the finding's
``reproduced`` says so). ``findings.json`` is the ``xentcheck findings --format json``
list, each finding with ``case_file`` (relative to the folder) and ``fuzz`` (seed, round,
sizes before and after shrinking).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xentcheck.fuzz.trials import case_text


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a killed fuzz leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def case_file_name(finding_id: str) -> str:
    """``cases/<finding-id>.yaml``."""
    return f"cases/{finding_id}.yaml"


def described(case: Mapping[str, Any], summary: str, finding_id: str) -> dict[str, Any]:
    """The case as written: an id from the finding's, a description from its summary."""
    out = dict(case)
    out["id"] = "fuzz-" + finding_id.rpartition(":")[2]
    out["description"] = f"{summary} (found by xentcheck fuzz: {finding_id})"
    tags = list(out.get("tags") or [])
    out["tags"] = tags if "found-by-fuzz" in tags else [*tags, "found-by-fuzz"]
    return out


def write_case(out_dir: Path, case: Mapping[str, Any], finding_id: str) -> str:
    """Write the case file of a finding; returns its path relative to ``out_dir``."""
    name = case_file_name(finding_id)
    text = "# Written by xentcheck fuzz. Promote it with: docs/fuzz.md\n" + case_text([case])
    write_atomic(out_dir / name, text)
    return name


def write_findings(out_dir: Path, found: Sequence[Mapping[str, Any]]) -> Path:
    """``findings.json``: the findings as ``xentcheck findings --format json`` writes them."""
    path = out_dir / "findings.json"
    write_atomic(path, json.dumps(list(found), indent=1, default=str) + "\n")
    return path


def write_reference_bugs(out_dir: Path, bugs: Sequence[Mapping[str, Any]]) -> Path:
    """``reference-bugs.json``: each a case file and the elements the reference got wrong."""
    path = out_dir / "reference-bugs.json"
    write_atomic(path, json.dumps(list(bugs), indent=1, default=str) + "\n")
    return path
