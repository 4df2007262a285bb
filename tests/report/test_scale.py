"""A 100,000-result report: small enough to ship, smooth enough to use.

A synthetic run (the shipped suite's instances, 3 frameworks x 4 dtypes, ~90% pass, every
other status with expected and actual values and messages; the row shape and header of a
real run, case files included, so the page carries sources, inputs and reproduction
scripts) is built into a page, which must
stay under 20 MB and, in a real headless Chromium, load and apply a status filter without
errors or requests within generous bounds (the test machine is small and shared). The
size and timings are printed (run pytest with ``-s`` to see them).

The browser part skips when Chromium or playwright is missing, unless
XENTCHECK_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.report import synthetic as syn
from tests.report.chromium import chromium
from xentcheck.report import build_report

ROOT = Path(__file__).resolve().parents[2]
N = 100_000
MAX_BYTES = 20 * 1024 * 1024
MAX_LOAD_S = 30.0
MAX_FILTER_S = 10.0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """(rows, results path, page path, seconds to build the page)."""
    tmp = tmp_path_factory.mktemp("scale")
    # the shipped suite's real instances, with the case files in the header as a real run
    # has them: the page then carries case sources, inputs and reproduction scripts
    fields, instances = syn.shipped_suite(ROOT / "cases")
    rows = syn.big_rows(N, instances=instances)
    results = syn.write(tmp / "results.jsonl", syn.header(**fields), rows)
    page = tmp / "index.html"
    t0 = time.perf_counter()
    build_report([str(results)], page)
    return rows, results, page, time.perf_counter() - t0


def test_synthetic_run_is_realistic(big):
    rows = big[0]
    counts = Counter(r["status"] for r in rows)
    assert len(rows) == N
    assert 0.85 < counts["pass"] / N < 0.95
    assert {"mismatch", "known", "nonfinite", "error", "unsupported"} <= set(counts)
    assert {r["framework"] for r in rows} == set(syn.FRAMEWORKS)
    assert {r["dtype"] for r in rows} == set(syn.DTYPES)
    assert len({r["case"] for r in rows}) > 300
    assert len({r["instance"] for r in rows}) > 900
    assert len({r["api"] for r in rows}) >= 3 * 8
    identities = {(r["instance"], r["framework"], r["api"], r["dtype"]) for r in rows}
    assert len(identities) == N  # no row replaces another when merged


def test_page_of_100k_results_is_under_20_mb(big):
    _, results, page, build_s = big
    size = page.stat().st_size
    print(
        f"\n[scale] {N:,} results: results file {results.stat().st_size / 1e6:.1f} MB, "
        f"page {size / 1e6:.2f} MB, built in {build_s:.1f} s"
    )
    assert size < MAX_BYTES


def _shown(page) -> tuple[int, int]:
    """(matching, total) from the '#shown' line ("9,987 of 100,000 results match")."""
    text = page.locator("#shown").inner_text()
    nums = [int(re.sub(r"\D", "", n)) for n in re.findall(r"\d[\d,.\s\u202f]*\d|\d", text)]
    assert len(nums) >= 2, text
    return nums[0], nums[1]


def test_page_of_100k_results_loads_and_filters_smoothly(big):
    rows, _, page_path, _ = big
    with chromium() as s:
        t0 = time.perf_counter()
        s.page.goto(page_path.as_uri(), timeout=120_000)
        s.page.wait_for_selector("html[data-ready='1']", timeout=120_000)
        load_s = time.perf_counter() - t0
        assert _shown(s.page) == (N, N)
        # one status filter: turn 'pass' off, wait until the page has drawn the result
        filter_s = s.page.evaluate(
            """async () => {
                const chip = document.querySelector("[data-facet=status] .chip[data-value=pass]");
                const t0 = performance.now();
                chip.click();
                await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
                return (performance.now() - t0) / 1000;
            }"""
        )
        not_pass = sum(r["status"] != "pass" for r in rows)
        assert _shown(s.page) == (not_pass, N)
        # a discrepancy's drill-down, with its reproduction script from the real case file
        t1 = time.perf_counter()
        s.page.locator("#result-table tbody tr.r").first.click()
        script = s.page.locator("#drill pre.script").first
        script.wait_for(timeout=60_000)
        drill_s = time.perf_counter() - t1
        text = script.inner_text()
        assert "import" in text and "No reproduction" not in text
        print(
            f"\n[scale] {N:,} results: load {load_s:.2f} s, status filter {filter_s:.2f} s, "
            f"drill-down {drill_s:.2f} s"
        )
        assert s.errors == [], s.errors[:3]
        assert s.blocked == [], s.blocked[:3]
        assert load_s < MAX_LOAD_S
        assert filter_s < MAX_FILTER_S
        assert drill_s < MAX_FILTER_S
