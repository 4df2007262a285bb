"""The README picture: ``python -m xentcheck.report.screenshot`` on a real small run.

Runs the worked examples and three case files with findings (an invalid input torch
accepts, a masked gradient that is NaN, a documented ignore_index default) through the
real command line with PyTorch, photographs the report in headless Chromium and checks
the file is a PNG of the asked size (read from its IHDR chunk); the page of that run opens
on the findings :func:`xentcheck.findings.build` gives for it. Skips when Chromium or
playwright is missing, unless XENTCHECK_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from xentcheck.report.browser import BrowserMissing, chromium_path

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    *sorted((ROOT / "cases").glob("*/worked_examples.yaml")),
    *(ROOT / "cases" / f for f in ("categorical_cross_entropy/errors.yaml",
                                   "token_cross_entropy/mask.yaml",
                                   "categorical_cross_entropy/bad_labels.yaml")),
]  # fmt: skip
CLI = "import sys; from xentcheck.cli import main; sys.exit(main())"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser() -> None:
    """Skip (or fail, under XENTCHECK_REQUIRE_BROWSER=1) before the run when there is no browser."""
    try:
        chromium_path()
        import playwright.sync_api  # noqa: F401
    except (BrowserMissing, ImportError) as exc:
        if os.environ.get("XENTCHECK_REQUIRE_BROWSER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG: the IHDR chunk must come first, right after the signature."""
    assert data[:8] == PNG_SIGNATURE, data[:8]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shot") / "results-torch.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "run", "--framework", "torch", *(a for c in CASES for a in ("--cases", str(c))),
         "--out", str(out), "--fail-on", "never", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
    return out


@pytest.mark.parametrize(
    ("extra", "size"),
    [([], (1440, 1000)), (["--width", "900", "--height", "700", "--dark", "--drill"], (900, 700))],
)
def test_screenshot_of_a_real_run_is_a_png_of_the_asked_size(
    browser, torch_results, tmp_path, extra, size
):
    png = tmp_path / "docs" / "report.png"
    proc = subprocess.run(
        [sys.executable, "-m", "xentcheck.report.screenshot", str(torch_results), "-o", str(png),
         *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = png.read_bytes()
    # the device scale factor may be above 1 on some hosts: allow whole multiples
    w, h = png_size(data)
    scale = w / size[0]
    assert scale in (1, 2, 3) and h == size[1] * scale, (w, h)
    assert len(data) > 10_000  # a drawn page, not a blank image


def test_screenshot_without_results_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "xentcheck.report.screenshot", str(tmp_path / "missing.jsonl"),
         "-o", str(tmp_path / "r.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "missing.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.png").exists()


def test_the_report_of_a_real_run_opens_on_its_findings(browser, torch_results, tmp_path):
    from xentcheck.findings import build
    from xentcheck.report import build_report, load
    from xentcheck.report.browser import session

    headers, rows = load([torch_results])
    found = build(rows, headers)
    assert len(found) >= 3  # the case files above were chosen for their findings
    page = tmp_path / "index.html"
    build_report([str(torch_results)], page)
    with session() as s:
        s.page.goto(page.as_uri())
        s.page.wait_for_selector("html[data-ready='1']")
        head = s.page.locator("#headline").inner_text()
        assert f"{len(found)} findings" in head, head
        summaries = s.page.locator("#findings details.finding .f-summary").all_inner_texts()
        assert sorted(summaries) == sorted(f["summary"] for f in found)
        first = s.page.locator("#findings details.finding").first
        first.locator("summary").click()
        shown = next(f for f in found if f["summary"] == summaries[0])
        assert first.locator("pre.finding-script").text_content() == shown["repro"]
        assert first.locator("pre.finding-draft").text_content() == shown["draft"]
        assert first.locator("tr.fr").count() == min(20, shown["rows"])
        assert s.errors == [] and s.blocked == []
