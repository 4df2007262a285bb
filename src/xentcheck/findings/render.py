"""Findings as text (a terminal summary), Markdown (issue drafts) or JSON.

Text: counts by kind and status at the top, then what each upgrade changed (when a
framework ran at several version sets), then the findings grouped by framework (by label:
``jax 0.10.2``, when it has several), most severe first, one block each (id, status,
summary, where, known entry or "unexplained"). Markdown: the same counts and upgrades,
then every finding's issue draft. JSON: the list of finding dicts as
:func:`xentcheck.findings.build` gives them (an upgrade's outcome is in each finding's
``upgrade`` and ``fixed_in``).
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


def _label(f: Mapping[str, Any]) -> str:
    return str(f.get("label") or f["framework"])


def _upgrade_lines(upgrades: Sequence[Mapping[str, Any]], markdown: bool) -> list[str]:
    """What each upgrade changed: a head line per pair, a line per finding."""
    if not upgrades:
        return []
    lines = ["## What each upgrade changed" if markdown else "== What each upgrade changed", ""]
    for u in upgrades:
        n = {k: len(u[k]) for k in ("new", "fixed", "changed")}
        head = (f"{u['from']} -> {u['to']}: {n['new']} new, {n['fixed']} fixed, {n['changed']} changed, "
                f"{u['unchanged']} unchanged")  # fmt: skip
        if u["not_compared"]:
            head += f" ({u['not_compared']} not compared: the older one ran none of their results)"
        lines.append(f"### {u['framework']}: {head}" if markdown else head)
        if markdown:
            lines.append("")
        for what in ("new", "fixed", "changed"):
            for f in u[what]:
                if markdown:
                    lines.append(f"- **{what}** `{f['id']}` ({f['kind']}): {f['summary']}")
                    lines += (
                        [f"  - {c}" for c in (f.get("upgrade") or {}).get("changes", [])]
                        if what == "changed"
                        else []
                    )
                else:
                    lines.append(f"  {what:<8}{f['id']}  {f['summary']}")
                    lines += (
                        [f"          {c}" for c in (f.get("upgrade") or {}).get("changes", [])]
                        if what == "changed"
                        else []
                    )
        lines.append("")
    return lines


def _text(findings: Sequence[Mapping[str, Any]], upgrades: Sequence[Mapping[str, Any]] = ()) -> str:
    lines = [counts(findings), "", *_upgrade_lines(upgrades, markdown=False)]
    frameworks = sorted(
        {_label(f) for f in findings},
        key=lambda fw: (min(f["severity"] for f in findings if _label(f) == fw), fw),
    )
    for fw in frameworks:
        mine = [f for f in findings if _label(f) == fw]
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


def _markdown(
    findings: Sequence[Mapping[str, Any]], upgrades: Sequence[Mapping[str, Any]] = ()
) -> str:
    parts = [
        "# xentcheck findings",
        "",
        counts(findings),
        "",
        *_upgrade_lines(upgrades, markdown=True),
    ]
    for f in findings:
        parts += [
            f"<!-- {f['id']} ({f.get('status', 'new')}) -->",
            f.get("draft") or f"### {f['summary']}",
            "---",
            "",
        ]
    return "\n".join(parts)


def render(
    findings: Sequence[Mapping[str, Any]], fmt: str, upgrades: Sequence[Mapping[str, Any]] = ()
) -> str:
    """``findings`` as ``text``, ``md`` or ``json`` (ValueError for another format);
    ``upgrades`` (:func:`xentcheck.findings.versions.upgrades`) head the text and Markdown."""
    if fmt == "text":
        return _text(findings, upgrades)
    if fmt == "md":
        return _markdown(findings, upgrades)
    if fmt == "json":
        return json.dumps(list(findings), indent=1, default=str) + "\n"
    raise ValueError(f"unknown findings format {fmt!r}: use one of {', '.join(FORMATS)}")
