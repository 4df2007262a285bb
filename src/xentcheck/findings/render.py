"""Findings as text (a terminal summary), Markdown (issue drafts) or JSON.

Text: counts by kind and status at the top, then the findings grouped by framework, most
severe first, one block each (id, status, summary, where, known entry or "unexplained").
Markdown: the same counts, then every finding's issue draft. JSON: the list of finding
dicts as :func:`xentcheck.findings.build` gives them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

FORMATS = ("text", "md", "json")


def counts(findings: Sequence[Mapping[str, Any]]) -> str:
    """``12 findings (3 unexplained, 40 rows): wrong 2, ...; new 10, fixed 2``."""
    from xentcheck.findings.group import KINDS

    live = [f for f in findings if f.get("status") != "fixed"]
    kinds = Counter(f["kind"] for f in live)
    status = Counter(f.get("status", "new") for f in findings)
    unexplained = sum(1 for f in live if not f.get("known"))
    rows = sum(int(f.get("rows", 0)) for f in live)
    by_kind = ", ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k])
    by_status = ", ".join(f"{s} {status[s]}" for s in ("new", "unchanged", "fixed") if status[s])
    return (
        f"{len(live)} findings ({unexplained} unexplained, covering {rows} rows)"
        + (f": {by_kind}" if by_kind else "")
        + (f"; {by_status}" if by_status else "")
    )


def _text(findings: Sequence[Mapping[str, Any]]) -> str:
    lines = [counts(findings), ""]
    frameworks = sorted(
        {f["framework"] for f in findings},
        key=lambda fw: (min(f["severity"] for f in findings if f["framework"] == fw), fw),
    )
    for fw in frameworks:
        mine = [f for f in findings if f["framework"] == fw]
        lines.append(f"== {fw}: {len(mine)} finding{'s' if len(mine) != 1 else ''}")
        for f in mine:
            lines.append(f"[{f['severity']}] {f['kind']} {f['id']} ({f.get('status', 'new')})")
            lines.append(f"    {f['summary']}")
            lines.append(
                f"    {f['rows']} rows; {', '.join(f['dtypes'])}; {', '.join(f['devices'])}; "
                f"{len(f['cases'])} case(s); APIs: {', '.join(f['apis'])}"
            )
            lines.append(f"    known: {f['known']}" if f.get("known") else "    unexplained")
            if not f.get("repro"):
                lines.append(f"    no script: {f.get('repro_note')}")
            if "verified" in f:
                lines.append(
                    f"    script: {'reproduces' if f['verified'] else 'does NOT reproduce'}"
                )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown(findings: Sequence[Mapping[str, Any]]) -> str:
    parts = ["# xentcheck findings", "", counts(findings), ""]
    for f in findings:
        parts += [
            f"<!-- {f['id']} ({f.get('status', 'new')}) -->",
            f.get("draft") or f"### {f['summary']}",
            "---",
            "",
        ]
    return "\n".join(parts)


def render(findings: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """``findings`` as ``text``, ``md`` or ``json`` (ValueError for another format)."""
    if fmt == "text":
        return _text(findings)
    if fmt == "md":
        return _markdown(findings)
    if fmt == "json":
        return json.dumps(list(findings), indent=1, default=str) + "\n"
    raise ValueError(f"unknown findings format {fmt!r}: use one of {', '.join(FORMATS)}")
