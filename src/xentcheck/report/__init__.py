"""Rendering results: a self-contained HTML summary and a Markdown differences table.

``build_report(results, output)`` merges one or more results files (from several
machines or frameworks) into one page: the run headers, counts by status, a matrix of
the worst status per loss and framework API, and every non-passing result with its
errors, explanation and link. Everything that comes from a case file or a framework
message is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xentcheck.harness.results import read_results

Row = dict[str, Any]

# worst first
SEVERITY = ["crash", "timeout", "error", "nonfinite", "mismatch", "known", "unsupported", "pass"]
COLOURS = {
    "pass": "#2e7d32", "known": "#1565c0", "unsupported": "#757575", "mismatch": "#e65100",
    "nonfinite": "#ad1457", "error": "#c62828", "crash": "#4a148c", "timeout": "#4a148c",
}  # fmt: skip
README_BEGIN = "<!-- BEGIN GENERATED: xentcheck report --readme -->"
README_END = "<!-- END GENERATED -->"


def load(paths: Iterable[str | Path]) -> tuple[list[Row], list[Row]]:
    """Headers and rows of several results files.

    Every run checks the reference's ``expected`` values, so per-framework files each
    hold the same reference rows: those are kept once.
    """
    headers, rows, seen = [], [], set()
    for p in paths:
        h, r = read_results(p)
        headers += h
        for row in r:
            if row.get("framework") == "reference":
                if _key(row) in seen:
                    continue
                seen.add(_key(row))
            rows.append(row)
    return headers, rows


def worst(statuses: Iterable[str]) -> str:
    ranked = [s for s in SEVERITY if s in set(statuses)]
    return ranked[0] if ranked else "pass"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def build_report(
    results: list[str],
    output: str | Path,
    baselines: list[str] | None = None,
    markdown: str | None = None,
    readme: str | None = None,
) -> None:
    """Write the HTML report for ``results`` to ``output`` (and the Markdown table if asked)."""
    headers, rows = load(results)
    _, base_rows = load(baselines or [])
    page = render_html(headers, rows, base_rows)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    table = render_markdown(headers, rows)
    if markdown:
        Path(markdown).write_text(table, encoding="utf-8")
    if readme:
        update_readme(Path(readme), table)


def _key(r: Row) -> tuple:
    return (r["instance"], r["framework"], r["api"], r["device"], r["dtype"], r["quantity"])


def render_html(headers: list[Row], rows: list[Row], base_rows: list[Row]) -> str:
    counts = Counter(r["status"] for r in rows)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>xentcheck report</title><style>",
        "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}",
        "@media (prefers-color-scheme:dark){body{color:#ddd;background:#121212}td,th{border-color:#444!important}}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}",
        ".s{color:#fff;padding:1px 5px;border-radius:3px;white-space:nowrap}code{font-size:12px}",
        "</style></head><body><h1>xentcheck report</h1>",
    ]
    parts.append(
        "<h2>Runs</h2><table><tr><th>time</th><th>host</th><th>cpu</th><th>xentcheck</th><th>framework</th><th>versions</th><th>devices</th><th>skipped</th><th>cases digest</th></tr>"
    )
    for h in headers:
        for fw, info in (h.get("frameworks") or {"-": {}}).items():
            versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
            devices = ", ".join(f"{k}: {v}" for k, v in info.get("devices", {}).items() if v)
            skipped = ", ".join(f"{k}: {v}" for k, v in info.get("skipped", {}).items())
            parts.append(
                f"<tr><td>{_e(h.get('time'))}</td><td>{_e(h.get('host'))}</td><td>{_e(h.get('cpu'))}</td>"
                f"<td>{_e(h.get('xentcheck_version'))}</td><td>{_e(fw)}</td><td>{_e(versions)}</td>"
                f"<td>{_e(devices)}</td><td>{_e(skipped)}</td><td><code>{_e(str(h.get('cases_digest', ''))[:12])}</code></td></tr>"
            )
    parts.append("</table><h2>Counts</h2><p>")
    parts.append(" ".join(_badge(s) + f" {counts[s]}" for s in SEVERITY if counts[s]))
    parts.append(f" — {len(rows)} results</p>")
    parts.append(_matrix(rows))
    if base_rows:
        parts.append(_baseline(rows, base_rows))
    parts.append(_details(rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def _badge(status: str) -> str:
    return f"<span class='s' style='background:{COLOURS.get(status, '#000')}'>{_e(status)}</span>"


def _matrix(rows: list[Row]) -> str:
    cols = sorted(
        {
            (r["framework"], r["api"])
            for r in rows
            if r["framework"] != "reference" and r["api"] != "*"
        }
    )
    cells: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        cells[(r["loss"], r["framework"], r["api"])].append(r)
    losses = sorted({r["loss"] for r in rows if r["loss"] != "*"})
    out = [
        "<h2>Worst status per loss and API</h2><p>Cell: worst status over all instances, dtypes, devices and quantities; the largest ULP error among non-passing results.</p><table><tr><th>loss</th>"
    ]
    out += [f"<th>{_e(fw)}<br><code>{_e(api)}</code></th>" for fw, api in cols]
    out.append("</tr>")
    for loss in losses:
        out.append(f"<tr><th>{_e(loss)}</th>")
        for fw, api in cols:
            rs = cells.get((loss, fw, api))
            if not rs:
                out.append("<td></td>")
                continue
            w = worst(r["status"] for r in rs)
            ulps = [
                r["max_ulp"]
                for r in rs
                if r["status"] not in ("pass", "unsupported") and r.get("max_ulp") is not None
            ]
            n_bad = sum(r["status"] not in ("pass", "unsupported") for r in rs)
            extra = (
                f"<br>{n_bad}/{len(rs)}" + (f", ≤{max(ulps):.3g} ulp" if ulps else "")
                if n_bad
                else ""
            )
            out.append(f"<td>{_badge(w)}{extra}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _baseline(rows: list[Row], base_rows: list[Row]) -> str:
    old = {_key(r): r["status"] for r in base_rows}
    changes = Counter()
    for r in rows:
        before = old.get(_key(r))
        if before is None:
            changes["new"] += 1
        elif before != r["status"]:
            changes["fixed" if r["status"] == "pass" else "changed"] += 1
        else:
            changes["unchanged"] += 1
    return (
        "<h2>Against the baseline</h2><p>"
        + ", ".join(f"{k} {v}" for k, v in sorted(changes.items()))
        + "</p>"
    )


def _details(rows: list[Row]) -> str:
    bad = [r for r in rows if r["status"] not in ("pass", "unsupported")]
    bad.sort(
        key=lambda r: (
            SEVERITY.index(r["status"]) if r["status"] in SEVERITY else 99,
            r["framework"],
            r["api"],
            r["instance"],
        )
    )
    out = [f"<h2>Results that are not a pass ({len(bad)})</h2>"]
    if len(bad) > 5000:
        out.append(f"<p>Showing the first 5000 of {len(bad)}.</p>")
    out.append(
        "<table><tr><th>status</th><th>framework / api</th><th>instance</th><th>device</th><th>dtype</th><th>quantity</th><th>max abs</th><th>max rel</th><th>max ulp</th><th>expected</th><th>actual</th><th>why</th></tr>"
    )
    for r in bad[:5000]:
        why = r.get("explanation") or r.get("message") or ""
        link = (
            f" <a href='{_e(r['link'])}'>source</a>"
            if r.get("link", "").startswith(("https://", "http://"))
            else ""
        )
        src = r.get("source") or {}
        out.append(
            f"<tr><td>{_badge(r['status'])}</td><td>{_e(r['framework'])}<br><code>{_e(r['api'])}</code></td>"
            f"<td>{_e(r['instance'])}<br><small>{_e(r.get('description', ''))}<br>{_e(src.get('file', ''))}:{_e(src.get('line', ''))}</small></td>"
            f"<td>{_e(r['device'])}</td><td>{_e(r['dtype'])}</td><td>{_e(r['quantity'])}</td>"
            f"<td>{_fmt(r.get('max_abs_err'))}</td><td>{_fmt(r.get('max_rel_err'))}</td><td>{_fmt(r.get('max_ulp'))}</td>"
            f"<td><code>{_e(r.get('expected'))}</code></td><td><code>{_e(r.get('actual'))}</code></td><td>{_e(why)}{link}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


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
        if r["status"] == "known":
            known[(r["framework"], r["known_id"], r["explanation"], r.get("link", ""))].append(r)
        elif r["status"] in ("mismatch", "nonfinite", "error", "crash", "timeout"):
            unexplained[(r["framework"], r["loss"], r["status"])].append(r)
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


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the generated-block markers of ``path`` with ``table``."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no generated block ({README_BEGIN} ... {README_END})")
    path.write_text(
        pattern.sub(lambda _: f"{README_BEGIN}\n{table}{README_END}", text), encoding="utf-8"
    )
