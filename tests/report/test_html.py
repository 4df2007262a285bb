"""The HTML report in a real headless Chromium: no errors, no requests, filters, drill-down, escaping.

Skips when Chromium or playwright is missing, unless XENTCHECK_REQUIRE_BROWSER=1 (CI).
"""

import json
import os

import pytest

from xentcheck.report import build_report
from xentcheck.report.browser import BrowserMissing, session

XSS = "<script>alert(1)</script>"


def _row(fw, status, dtype, ulp, **extra):
    return {
        "case": "x/" + XSS, "instance": "x/" + XSS, "loss": "softmax_cross_entropy",
        "params": {"reduction": "mean"}, "framework": fw, "api": fw + ".api", "device": "cpu",
        "dtype": dtype, "description": XSS, "tags": ["edge"], "quantity": "value",
        "status": status, "max_abs_err": 1e-3, "max_rel_err": 1e-3, "max_ulp": ulp,
        "expected": [1.0], "actual": [1.001], "index": [0], "shape": [1],
        "message": XSS if status != "pass" else None, **extra,
    }  # fmt: skip


@pytest.fixture
def report(tmp_path):
    rows = [
        {"kind": "run", "xentcheck_version": "0", "cases_digest": "d" * 64, "frameworks": {}},
        _row("torch", "mismatch", "float16", 7.0, known_errors=[{"id": XSS, "error": XSS}]),
        _row("jax", "pass", "float32", 0.5),
    ]
    res = tmp_path / "r.jsonl"
    res.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "index.html"
    build_report([str(res)], out)
    return out


def test_page_escapes_filters_and_drills_down(report):
    assert XSS not in report.read_text()
    try:
        ctx = session()
        s = ctx.__enter__()
    except BrowserMissing as exc:
        if os.environ.get("XENTCHECK_REQUIRE_BROWSER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        s.page.goto(report.as_uri())
        s.page.wait_for_selector("html[data-ready='1']")
        assert s.page.evaluate("window.__xss === undefined")
        broken = s.page.locator("#broken-known li")  # an entry whose predicate raised
        assert broken.count() == 1 and XSS in broken.inner_text()
        assert s.page.locator("#shown").inner_text().startswith("2 of 2")
        s.page.locator("[data-facet=status] .chip[data-value=pass]").click()
        assert s.page.locator("#shown").inner_text().startswith("1 of 2")
        s.page.locator("#result-table tbody tr.r").first.click()
        drill = s.page.locator("#drill")
        assert XSS in drill.inner_text()
        assert drill.locator("script").count() == 0
        assert s.errors == [] and s.blocked == []
    finally:
        ctx.__exit__(None, None, None)
