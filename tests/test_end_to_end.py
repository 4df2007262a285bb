"""End to end: `xentcheck run` over real PyTorch, TensorFlow and JAX, then `xentcheck report`.

No mocks: each framework runs in its own worker process exactly as in the main job. The
module needs all three; where one is not installed, every test skips and says which.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from xentcheck.harness.results import REQUIRED_KEYS, STATUSES, read_results

CASES = """\
cases:
  - id: worked
    loss: softmax_cross_entropy
    description: PyTorch's single-label snippet.
    inputs: {logits: [[0.2, 0.3, 0.5]], target: [2]}
    params: {reduction: mean}
    expected: {value: 0.9398310608444602}
    tolerance: {rtol: 1.0e-12}
    dtypes: [float64, float32]
  - id: zero-prob
    loss: binary_cross_entropy
    description: "<script>alert(1)</script> a probability of exactly 0 with target 1"
    inputs: {probs: [0.0, 0.5], target: [1.0, 0.0]}
    params: {reduction: none}
    dtypes: [float64]
  - id: bad-label
    loss: softmax_cross_entropy
    description: label 3 of 3 classes
    inputs: {logits: [[0.2, 0.3, 0.5]], target: [3]}
    expect_error: true
    dtypes: [float32]
"""

FRAMEWORKS = ["torch", "tensorflow", "jax"]
pytestmark = [pytest.mark.torch, pytest.mark.tensorflow, pytest.mark.jax]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    (d / "cases").mkdir()
    (d / "cases" / "e2e.yaml").write_text(textwrap.dedent(CASES))
    out = d / "results.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "xentcheck.cli",
        "run",
        "--cases",
        str(d / "cases"),
        "--out",
        str(out),
        "--fail-on",
        "never",
        "--jobs",
        "3",
    ]
    for fw in FRAMEWORKS:
        cmd += ["--framework", fw]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    return d, out, proc


def test_run_exits_0_with_fail_on_never_and_writes_a_header(run):
    _, out, proc = run
    assert proc.returncode == 0, proc.stderr
    headers, _ = read_results(out)
    assert len(headers) == 1
    h = headers[0]
    assert set(h["frameworks"]) == set(FRAMEWORKS)
    for fw in FRAMEWORKS:
        info = h["frameworks"][fw]
        assert info["versions"] and info["devices"]["cpu"]
        assert info["devices"].get("gpu") or info["skipped"]["gpu"]
    assert len(h["cases_digest"]) == 64


def test_every_row_follows_the_results_contract(run):
    _, out, _ = run
    _, rows = read_results(out)
    assert rows
    for r in rows:
        assert set(REQUIRED_KEYS) <= set(r), r
        assert r["status"] in STATUSES
    assert {r["framework"] for r in rows} == {"reference", *FRAMEWORKS}
    # the JSON is strict: no NaN/Infinity literals
    for line in out.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_worked_example_passes_in_every_framework_and_the_reference(run):
    _, out, _ = run
    _, rows = read_results(out)
    worked = [
        r
        for r in rows
        if r["case"] == "e2e/worked" and r["quantity"] == "value" and r["dtype"] == "float64"
    ]
    passed = {r["framework"] for r in worked if r["status"] == "pass"}
    assert passed == {"reference", *FRAMEWORKS}


def test_bad_label_records_what_each_framework_does(run):
    _, out, _ = run
    _, rows = read_results(out)
    bad = [r for r in rows if r["case"] == "e2e/bad-label" and r["framework"] in FRAMEWORKS]
    assert {r["framework"] for r in bad} == set(FRAMEWORKS)
    # torch raises on CPU (pass: rejected as expected); JAX returns a number (error)
    assert any(r["framework"] == "torch" and r["status"] == "pass" for r in bad)
    assert any(r["framework"] == "jax" and r["status"] in ("error", "known") for r in bad)
    # each row says what the framework did instead of (or by) rejecting the input
    assert all(r["behaviour"] == "raised IndexError" for r in bad if r["framework"] == "torch")
    assert {r["behaviour"] for r in bad if r["framework"] == "jax"} <= {
        "returned NaN", "returned Inf", "returned a finite value",
    }  # fmt: skip


def test_torch_bce_clamp_is_a_known_difference_with_a_link(run):
    _, out, _ = run
    _, rows = read_results(out)
    r = next(
        r
        for r in rows
        if r["api"] == "torch.nn.functional.binary_cross_entropy" and r["quantity"] == "value"
    )
    assert r["status"] == "known"
    assert r["link"].startswith("https://") and r["explanation"]
    assert r["actual"][0] == pytest.approx(100.0)


def test_report_escapes_case_text_and_summarises(run):
    d, out, _ = run
    html = d / "index.html"
    md = d / "diff.md"
    proc = subprocess.run(
        [sys.executable, "-m", "xentcheck.cli", "report", str(out), "-o", str(html), "--markdown", str(md)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = html.read_text()
    # the case text reaches the page only escaped (HTML entities or JSON \u003c escapes)
    assert "<script>alert(1)" not in page
    assert "alert(1)" in page
    assert "torch-bce-log-clamp" in md.read_text()


def test_report_keeps_each_result_once_across_merged_files(run):
    """The same results in two files (the reference's rows of every per-framework file, or
    a file given twice) are one result each in the merged report."""
    from xentcheck.report import load

    _, out, _ = run
    _, once = load([out])
    _, twice = load([out, out])
    n_ref = sum(r["framework"] == "reference" for r in once)
    assert n_ref > 0
    assert sum(r["framework"] == "reference" for r in twice) == n_ref
    assert len(twice) == len(once)
