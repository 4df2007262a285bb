"""Rendering results: a self-contained HTML report and a Markdown differences table.

``build_report(results, output)`` merges one or more results files and folders (one per
framework, shard, GPU box or framework version: :mod:`xentcheck.harness.merge`) into one
page (``page.py``, ``templates/``), which lists every source file and, for a framework
held at several version sets, what each upgrade changed. It opens on the run's findings (:func:`xentcheck.findings.build`: distinct discrepancies, by severity and
framework, each with its short script, issue draft and rows); below come the runs
(frameworks, versions, devices, suite digest), counts by status, a sortable and filterable
matrix of the worst status and ULP error, pictures of the error distribution and of CPU vs
GPU, and a drill-down for every discrepancy with its case source, inputs, expected vs
actual, explanation and a reproduction script. Everything from case files and framework
messages reaches the page as escaped JSON and is drawn as text.

``render_markdown``/``update_readme`` write the README's differences tables.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xentcheck.harness.results import read_runs
from xentcheck.report.model import SEVERITY as _SEVERITY

Row = dict[str, Any]

# worst first
SEVERITY = list(_SEVERITY)
COLOURS = {
    "pass": "#2e7d32", "known": "#1565c0", "unsupported": "#757575", "mismatch": "#e65100",
    "nonfinite": "#ad1457", "error": "#c62828", "crash": "#4a148c", "timeout": "#4a148c",
}  # fmt: skip
README_BEGIN = "<!-- BEGIN GENERATED: xentcheck report --readme -->"
README_END = "<!-- END GENERATED -->"


def load(paths: Iterable[str | Path]) -> tuple[list[Row], list[Row]]:
    """Headers and rows of several results files (:func:`~xentcheck.harness.results.read_runs`:
    each checked, the reference rows every run repeats kept once)."""
    return read_runs(paths)


def worst(statuses: Iterable[str]) -> str:
    """The worst of ``statuses`` (``pass`` for none)."""
    ranked = [s for s in SEVERITY if s in set(statuses)]
    return ranked[0] if ranked else "pass"


def build_report(
    results: list[str],
    output: str | Path,
    baselines: list[str] | None = None,
    markdown: str | None = None,
    readme: str | None = None,
    known: Sequence[Any] = (),
    findings: Sequence[str] = (),
    cache: Any = None,
) -> None:
    """Write the HTML report for ``results`` to ``output`` (and the Markdown table if asked).

    Several files and folders merge into one page (see :mod:`xentcheck.report.model`). The page opens
    on the findings of the merged rows (:func:`xentcheck.findings.build`, with ``known``,
    the user's known-difference entries, applied to rows not yet explained); ``baselines``
    mark each finding new, unchanged or fixed, and each result new, fixed, changed or
    unchanged, against an earlier run. Every file is read and checked first
    (:func:`~xentcheck.harness.results.read_results`): one that is not a results file, a
    folder with none, or two files claiming one result differently raises
    :class:`~xentcheck.harness.results.ResultsError` before anything is written.

    ``findings``: files to write the page's findings to as well, each in its suffix's
    format (``.json``, ``.md``, ``.txt``), as ``xentcheck findings -o FILE`` writes them
    from the same results, so the main job groups them once. When they cannot be
    computed the page is written (saying why) and :class:`FindingsFailed` is raised.

    ``cache``: a :class:`~xentcheck.harness.cache.ResultCache` that keeps the findings'
    scripts, so a report of unchanged results writes none anew, and the run's goldens,
    which the page's scripts look up before computing one (None: all made every time).
    """
    from xentcheck.harness.merge import read
    from xentcheck.report.model import wrap
    from xentcheck.report.page import findings_of, page_data, render_page
    from xentcheck.report.sources import CaseFiles

    merged = wrap(read(results))
    base = wrap(read(baselines)) if baselines else None
    case_files = CaseFiles(merged.headers, [Path(p).resolve().parent for p in merged.files])
    found, note = findings_of(merged, base, known, cache)
    texts = {}
    if found is not None:  # rendered before the page, which may reshape the findings
        from xentcheck.findings.command import output_format, rendered

        texts = rendered(found, merged.headers, {p: output_format(p, None) for p in findings})
    data = page_data(
        merged,
        base.rows if base is not None else None,
        baselines or [],
        case_files,
        findings=found,
        findings_note=note,
        goldens=_goldens(cache),
    )
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(data), encoding="utf-8")
    table = render_markdown(merged.headers, merged.rows)
    if markdown:
        Path(markdown).write_text(table, encoding="utf-8")
    if readme:
        update_readme(Path(readme), table)
    if findings and found is None:
        raise FindingsFailed(
            f"the findings could not be computed ({note}); {output} says so, and no findings file was written"
        )
    for path, text in texts.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")


class FindingsFailed(RuntimeError):
    """``build_report`` was asked for findings files and the findings failed."""


def render_html(headers: list[Row], rows: list[Row], base_rows: list[Row] | None = None) -> str:
    """The HTML page for already-loaded rows (one run; ``base_rows`` an optional baseline)."""
    from xentcheck.report.model import merge
    from xentcheck.report.page import findings_of, page_data, render_page

    merged = merge([("results.jsonl", headers, rows)])
    base = merge([("baseline.jsonl", [], base_rows)]) if base_rows else None
    found, note = findings_of(merged, base)
    return render_page(
        page_data(merged, base_rows if base_rows else None, findings=found, findings_note=note)
    )


def render_markdown(headers: list[Row], rows: list[Row]) -> str:
    """What each framework does differently, from a run, as two Markdown tables.

    Documented differences grouped by registry entry (with the APIs they hit), then the
    unexplained ones grouped by framework, loss and status, with the share that is
    float16/bfloat16.
    """
    versions = sorted(
        {f"{k} {v}" for h in headers for info in (h.get("frameworks") or {}).values()
         for k, v in info.get("versions", {}).items()}
    )  # fmt: skip
    lines = [
        f"Generated by `xentcheck report --readme` from a run of the shipped suite ({', '.join(versions)}).",
        "",
    ]
    known: dict[tuple, list[Row]] = defaultdict(list)
    unexplained: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        fw = r.get("variant") or r["framework"]  # a framework at several versions: each apart
        if r["status"] == "known":
            known[(fw, r["known_id"], r["explanation"], r.get("link", ""))].append(r)
        elif r["status"] in ("mismatch", "nonfinite", "error", "crash", "timeout"):
            unexplained[(fw, r["loss"], r["status"])].append(r)
    lines += ["**Documented differences** (status `known`):", ""]
    lines += [
        "| framework | what differs | losses | APIs | results | source |",
        "|---|---|---|---|---|---|",
    ]
    for (fw, kid, what, link), rs in sorted(known.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        losses = ", ".join(sorted({r["loss"] for r in rs}))
        apis = len({r["api"] for r in rs})
        src = f"[{kid}]({link})" if link else kid
        lines.append(f"| {fw} | {_md(what)} | {losses} | {apis} | {len(rs)} | {src} |")
    lines += [
        "",
        "**Unexplained differences** (left as found; most are half-precision accuracy):",
        "",
    ]
    lines += [
        "| framework | loss | status | results | float16/bfloat16 | APIs |",
        "|---|---|---|---|---|---|",
    ]
    for (fw, loss, status), rs in sorted(unexplained.items()):
        half = sum(r["dtype"] in ("float16", "bfloat16") for r in rs)
        apis = len({r["api"] for r in rs})
        lines.append(f"| {fw} | {loss} | {status} | {len(rs)} | {half} | {apis} |")
    counts = Counter(r["status"] for r in rows)
    lines += ["", "Totals: " + ", ".join(f"{s} {counts[s]}" for s in SEVERITY if counts[s]) + "."]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


_BLOCK = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.S)


def check_readme(path: Path) -> None:
    """Raise ValueError (one line, naming ``path``) unless it holds a generated block."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it ({exc}); name the file to update") from None
    if not _BLOCK.search(text):
        raise ValueError(
            f"{path}: no generated block (add the lines {README_BEGIN} and {README_END}"
            " where the table goes)"
        )


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the generated-block markers of ``path`` with ``table``."""
    check_readme(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        _BLOCK.sub(lambda _: f"{README_BEGIN}\n{table}{README_END}", text), encoding="utf-8"
    )


def _goldens(cache: Any) -> Any:
    """The goldens the run kept in ``cache`` (a :class:`~xentcheck.harness.cache.ResultCache`),
    read only: a golden not there is computed and not stored (None: compute each)."""
    if cache is None or not cache.goldens_dir.is_dir():
        return None
    from xentcheck.harness.goldens import GoldenCache

    return GoldenCache(cache.goldens_dir, write=False)
