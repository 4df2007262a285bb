"""The HTML report in a real headless Chromium: no errors, no requests, filters, drill-down,
escaping; the findings list it opens on (filters, script and copy button, rows, escaping);
a ULP of a zero golden and the accuracy fields.

Skips when Chromium or playwright is missing, unless XENTCHECK_REQUIRE_BROWSER=1 (CI).
"""

import json
import time

import pytest

from tests.report import synthetic as syn
from tests.report.chromium import chromium
from xentcheck.harness.results import read_results
from xentcheck.report import build_report
from xentcheck.report.model import merge
from xentcheck.report.page import page_data, render_page

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
    with chromium() as s:
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


# ---------- the findings list (interface 5): drawn from finding dicts, no framework runs ----------

SCRIPT_XSS = "</script><script>window.__xss = 1</script>"
DRAFT_XSS = '## <img src=x onerror="window.__xss = 2">\n\n```python\n' + SCRIPT_XSS + "\n```\n"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the findings tests (skips without one, as above)."""
    with chromium() as s:
        yield s


def _findings_page(tmp_path):
    """A page of three frameworks' rows and four findings: torch's wrong gradient
    (unexplained, new), torch's half-precision loss (known, unchanged), jax's NaN (a summary
    and script that try to run) and a fixed one; with a baseline."""
    wrong = [
        syn.row(f"w/{n}", "torch", "mismatch", "float32", quantity="grad:logits") for n in "ab"
    ]
    half = [
        syn.row("h/a", "torch", "known", dtype, known_id="torch-half")
        for dtype in ("float16", "bfloat16")
    ]
    nan = [syn.row("n/a", "jax", "nonfinite", "float64", actual=["nan"])]
    zero = syn.row("z/a", "tensorflow", "pass", "float64", max_ulp=3.6627316300150997e307,
                   max_abs_err=1.8e-16, max_rel_err=None, expected=[0.0], actual=[1.8e-16])  # fmt: skip
    fine = [syn.row("p/a", "torch"), zero]
    # fmt: off
    findings = [
        syn.finding(wrong, "wrong", 1, "torch.loss: gradient 1% off on every non-target class"),
        syn.finding(half, "precision", 5, "torch.loss loses 2 digits in float16",
                    known="torch-half", explanation="computes in half", link="https://example.org/h",
                    status="unchanged"),
        syn.finding(nan, "nonfinite", 3, XSS, repro=SCRIPT_XSS, draft=DRAFT_XSS),
        syn.finding([syn.row("f/a", "jax", "mismatch")], "wrong", 2, "jax.loss was wrong",
                    status="fixed", row_keys=[["f/a", "f/a[gone]", "jax.loss", "cpu", "float32", "value"]]),
    ]
    # fmt: on
    rows = wrong + half + nan + fine
    res = syn.write(tmp_path / "r.jsonl", syn.header(), rows)
    old = syn.write(tmp_path / "old.jsonl", syn.header(), fine)
    merged = merge([(str(res), *read_results(res))])
    data = page_data(merged, merge([(str(old), *read_results(old))]).rows, [str(old)],
                     with_inputs=False, with_repro=False, findings=findings)  # fmt: skip
    out = tmp_path / "findings.html"
    out.write_text(render_page(data), encoding="utf-8")
    return out, findings


def _open(s, path):
    s.errors.clear()
    s.page.goto(path.as_uri())
    s.page.wait_for_selector("html[data-ready='1']")


def _shown_findings(s) -> list[str]:
    return s.page.locator("#findings details.finding .f-summary").all_inner_texts()


def test_the_page_opens_on_the_findings_list(browser, tmp_path):
    page_path, findings = _findings_page(tmp_path)
    s = browser
    _open(s, page_path)
    # the first section after the header is the findings list, and it is on the first screen
    first = s.page.evaluate("document.querySelector('main > section').id")
    assert first == "findings-section"
    box = s.page.locator("#findings details.finding").first.bounding_box()
    assert box is not None and box["y"] + box["height"] < 900
    # the headline counts findings by kind (the fixed one is not current), not rows
    head = s.page.locator("#headline").inner_text()
    assert "3 findings" in head and "2 unexplained" in head, head
    assert [b.get_attribute("data-kind") for b in s.page.locator("#headline [data-kind]").all()] == [
        "wrong", "nonfinite", "precision"
    ]  # fmt: skip
    # grouped by framework (the group with the most severe finding first), severity within
    groups = s.page.locator("#findings .fgroup").all()
    assert [g.get_attribute("data-framework") for g in groups] == ["torch", "jax"]
    assert _shown_findings(s) == [findings[0]["summary"], findings[1]["summary"],
                                  findings[3]["summary"], XSS]  # fmt: skip
    assert s.errors == [] and s.blocked == []


def test_finding_filters_kind_framework_known_and_baseline(browser, tmp_path):
    page_path, findings = _findings_page(tmp_path)
    s = browser
    _open(s, page_path)
    chip = s.page.locator
    chip("[data-facet=f-kind] .chip[data-value=precision]").click()
    assert findings[1]["summary"] not in _shown_findings(s) and len(_shown_findings(s)) == 3
    chip("[data-facet=f-framework] .chip[data-value=torch]").click()
    assert _shown_findings(s) == [findings[3]["summary"], XSS]
    chip("#findings-filters button", has_text="reset").click()
    chip("[data-facet=f-known] .chip[data-value=unexplained]").click()
    assert _shown_findings(s) == [findings[1]["summary"]]
    chip("#findings-filters button", has_text="reset").click()
    chip("[data-facet=f-status] .chip[data-value=new]").dblclick()
    assert _shown_findings(s) == [findings[0]["summary"], XSS]
    assert "2 of 4 findings" in s.page.locator("#findings-shown").inner_text()
    s.page.locator("#headline-unexplained").click()  # the headline's count is a filter too
    assert _shown_findings(s) == [findings[0]["summary"], XSS]
    assert s.errors == []


def test_a_finding_expands_to_its_script_draft_and_rows(browser, tmp_path):
    page_path, findings = _findings_page(tmp_path)
    s = browser
    s.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _open(s, page_path)
    item = s.page.locator("#findings details.finding").first
    item.locator("summary").click()
    body = item.locator(".f-body")
    script = body.locator("pre.finding-script")
    assert script.text_content() == findings[0]["repro"]
    assert body.locator("pre.finding-draft").inner_text().startswith("## " + findings[0]["summary"])
    copy = body.locator(".script-block", has=s.page.locator("pre.finding-script")).locator(
        "button.copy"
    )
    assert copy.get_attribute("aria-controls") == script.get_attribute("id")
    copy.click()
    toast = body.locator(".toast").first
    for _ in range(100):  # the page's CSP forbids wait_for_function's eval: poll
        if toast.text_content() == "copied":
            break
        time.sleep(0.05)
    assert toast.text_content() == "copied"
    assert s.page.evaluate("navigator.clipboard.readText()") == findings[0]["repro"]
    # its rows link into the drill-down, which names the finding and shows its short script
    assert body.locator("tr.fr").count() == 2
    body.locator("tr.fr").first.click()
    assert s.page.locator("#f-finding").is_visible()
    assert s.page.locator("#shown").inner_text().startswith("2 of ")
    drill = s.page.locator("#drill")
    assert findings[0]["summary"] in drill.locator("#drill-finding").inner_text()
    assert drill.locator("pre.script").text_content() == findings[0]["repro"]
    assert s.errors == [] and s.blocked == []


def test_finding_text_from_a_case_file_is_drawn_as_text(browser, tmp_path):
    page_path, _ = _findings_page(tmp_path)
    html = page_path.read_text(encoding="utf-8")
    assert XSS not in html and SCRIPT_XSS not in html and "<img" not in html
    s = browser
    _open(s, page_path)
    item = s.page.locator("#findings details.finding", has_text=XSS)
    item.locator("summary").click()
    assert item.locator("pre.finding-script").text_content() == SCRIPT_XSS
    assert item.locator("pre.finding-draft").text_content() == DRAFT_XSS
    assert s.page.locator("#findings script, #findings img").count() == 0
    assert s.page.evaluate("window.__xss === undefined")
    assert s.errors == [] and s.blocked == []


def test_a_zero_golden_shows_no_ulp_and_accuracy_shows_in_the_drill_down(browser, tmp_path):
    zero = syn.row("z/a", "tensorflow", "pass", "float64", max_ulp=3.6627316300150997e307,
                   max_abs_err=1.8e-16, max_rel_err=None, expected=[0.0], actual=[1.8e-16])  # fmt: skip
    lost = syn.row("l/a", "tensorflow", "mismatch", "float32", criterion="ulp", allowed_ulp=2.0,
                   excess=40.0, accuracy="precision", digits_lost=1.9)  # fmt: skip
    res = syn.write(tmp_path / "z.jsonl", syn.header(), [zero, lost])
    out = tmp_path / "z.html"
    build_report([str(res)], out)
    s = browser
    _open(s, out)
    cells = s.page.locator("table.mx td.c").all_inner_texts()
    assert "–" in cells and not any("e30" in c or "e307" in c for c in cells), cells
    s.page.locator("#result-table tbody tr.r", has_text="z/a").click()
    assert "– (ULP error not defined" in s.page.locator("#drill").inner_text()
    s.page.locator("#result-table tbody tr.r", has_text="l/a").click()
    drill = s.page.locator("#drill").inner_text()
    assert "precision: the right formula" in drill and "1.9 decimal digits lost" in drill
    assert "error / allowance 40 (fails)" in drill
    assert s.errors == [] and s.blocked == []
