"""The README picture: a report built from real results, photographed in headless Chromium.

    python -m xentcheck.report.screenshot reports/results-*.jsonl -o docs/report.png

Builds the report into a temporary folder (or takes ``--html`` of an existing one), opens
it, opens the first mismatch's drill-down when ``--drill`` is given, and saves a PNG of
the top of the page: the findings list the report opens on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from xentcheck.report.browser import BrowserMissing, session


def screenshot(
    html: Path,
    png: Path,
    width: int = 1440,
    height: int = 1000,
    dark: bool = False,
    drill: bool = False,
) -> None:
    """Open ``html`` and save what a laptop screen shows of it to ``png``."""
    with session(width, height, dark) as s:
        s.page.goto(html.resolve().as_uri())
        s.page.wait_for_selector("html[data-ready='1']", timeout=60_000)
        if drill:
            s.page.select_option("#mx-sort", "worst")
            s.page.locator("#result-table tbody tr.r").first.click()
            s.page.locator("#drill").scroll_into_view_if_needed()
        png.parent.mkdir(parents=True, exist_ok=True)
        s.page.screenshot(path=str(png), full_page=False)
        if s.errors:
            raise RuntimeError("the report logged errors: " + "; ".join(s.errors[:3]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m xentcheck.report.screenshot", description=__doc__.split("\n")[0]
    )
    ap.add_argument("results", nargs="*", metavar="FILE.jsonl")
    ap.add_argument("-o", "--output", required=True, metavar="docs/report.png")
    ap.add_argument(
        "--html", metavar="index.html", help="photograph this report instead of building one"
    )
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    ap.add_argument("--drill", action="store_true", help="open the first result's drill-down")
    args = ap.parse_args(argv)
    if not args.html and not args.results:
        print("xentcheck: error: give results files or --html", file=sys.stderr)
        return 2
    for f in args.results:
        if not Path(f).is_file():
            print(f"xentcheck: error: {f}: no such results file", file=sys.stderr)
            return 2
    try:
        with tempfile.TemporaryDirectory(prefix="xentcheck-shot-") as tmp:
            html = Path(args.html) if args.html else Path(tmp) / "index.html"
            if not args.html:
                from xentcheck.report import build_report

                build_report(args.results, html)
            screenshot(html, Path(args.output), args.width, args.height, args.dark, args.drill)
    except BrowserMissing as exc:
        print(f"xentcheck: error: {exc}", file=sys.stderr)
        return 2
    print(f"xentcheck: screenshot written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
