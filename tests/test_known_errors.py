"""A known-difference predicate that raises is a broken entry, never a silent "no".

``explain`` lets the error through (so a test of the entry fails); in a run the worker keeps
the row unexplained, names the entry and the exception in the row (``known_errors`` and
``message``, which reach the results file), and warns once per entry on stderr; the report
does not call the entry "fixed (no longer reproduces)".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from xentcheck import known
from xentcheck.harness.results import ResultWriter, read_results, run_header
from xentcheck.known import (
    Finding,
    Known,
    PredicateError,
    explain,
    not_reproduced,
    predicate_errors,
)
from xentcheck.report.model import merge
from xentcheck.report.page import page_data


def _reads_logits(f: Finding) -> bool:
    """A predicate written for logits losses: a BCE-on-probabilities finding has none."""
    return bool(np.isinf(f.inputs["logits"]).any())


BROKEN = Known("test-broken-entry", "torch", ("torch.nn.functional.binary_cross_entropy",),
               "e", "l", _reads_logits)  # fmt: skip
FINE = Known("test-fine-entry", "torch", ("torch.nn.functional.binary_cross_entropy",),
             "e", "l", lambda f: f.actual is not None)  # fmt: skip


def _finding() -> Finding:
    inputs = {"probs": np.array([0.0, 0.5]), "target": np.array([1.0, 0.0])}
    return Finding("torch", "torch.nn.functional.binary_cross_entropy", "binary_cross_entropy",
                   {"reduction": "none"}, inputs, "float64", "cpu", "value", "nonfinite",
                   np.array([np.inf, 0.69]), np.array([100.0, 0.69]), None, False)  # fmt: skip


def test_a_raising_predicate_propagates_naming_the_entry(monkeypatch) -> None:
    monkeypatch.setitem(known._cache, "torch", [BROKEN, FINE])
    with pytest.raises(PredicateError, match=r"test-broken-entry.*KeyError: 'logits'") as info:
        explain(_finding())
    assert info.value.entry_id == "test-broken-entry"
    assert isinstance(info.value.cause, KeyError)
    with pytest.raises(PredicateError):
        BROKEN.matches(_finding())


def test_with_an_errors_list_the_search_records_it_and_goes_on(monkeypatch) -> None:
    monkeypatch.setitem(known._cache, "torch", [BROKEN, FINE])
    errors: list[PredicateError] = []
    assert explain(_finding(), errors) is FINE
    assert [e.as_row() for e in errors] == [
        {"id": "test-broken-entry", "error": "KeyError: 'logits'"}
    ]


def test_a_predicate_that_declines_is_no_error(monkeypatch) -> None:
    declines = dataclasses.replace(BROKEN, when=lambda f: "logits" in f.inputs and False)
    monkeypatch.setitem(known._cache, "torch", [declines])
    errors: list[PredicateError] = []
    assert explain(_finding(), errors) is None and errors == []


def test_a_run_keeps_the_row_unexplained_and_says_why(monkeypatch, capsys, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the run needs PyTorch")
    from xentcheck.adapters import load_framework
    from xentcheck.harness.cases import expand, load_cases
    from xentcheck.harness.worker import run_framework

    (tmp_path / "bce.yaml").write_text(
        "cases:\n"
        "  - id: zero-prob\n"
        "    loss: binary_cross_entropy\n"
        "    inputs: {probs: [0.0, 0.5], target: [1.0, 0.0]}\n"
        "    params: {reduction: [none, sum]}\n"
        "    dtypes: [float64]\n"
    )
    instances = [i for c in load_cases([tmp_path / "bce.yaml"]) for i in expand(c)]
    fw = load_framework("torch")
    fw = dataclasses.replace(fw, apis=[a for a in fw.apis if a.name == BROKEN.apis[0]])
    monkeypatch.setitem(known._cache, "torch", [BROKEN])
    monkeypatch.setattr(known, "_warned", set())
    rows: list[dict] = []
    run_framework(fw, instances, None, ["cpu"], rows.append)

    judged = [r for r in rows if r["quantity"] == "value"]
    assert len(judged) == 2  # reduction none and sum
    for r in judged:
        assert r["status"] in ("mismatch", "nonfinite")  # unexplained, not known
        assert "known_id" not in r
        assert r["known_errors"] == [{"id": "test-broken-entry", "error": "KeyError: 'logits'"}]
        assert "known entry 'test-broken-entry': its predicate raised KeyError" in r["message"]
    warnings = [
        line for line in capsys.readouterr().err.splitlines() if "test-broken-entry" in line
    ]
    assert len(warnings) == 1 and warnings[0].startswith("xentcheck: warning: torch: ")

    # the fields reach the results file, and the report does not call the entry fixed
    out = tmp_path / "results.jsonl"
    header = run_header(framework="torch", frameworks={"torch": {"versions": fw.versions()}})
    with ResultWriter(out) as w:
        w.write(header)
        w.write_all(rows)
    headers, read = read_results(out)
    assert [r.get("known_errors") for r in read if r["quantity"] == "value"] == [
        r["known_errors"] for r in judged
    ]
    assert "test-broken-entry" not in {g["id"] for g in not_reproduced(headers, read)}
    broken = sum(1 for r in read if r.get("known_errors"))
    assert broken >= 2
    assert predicate_errors(read) == [
        {"id": "test-broken-entry", "framework": "torch", "error": "KeyError: 'logits'",
         "rows": broken}
    ]  # fmt: skip
    # ... and the report lists it among the broken entries
    page = page_data(merge([(str(out), headers, read)]), with_inputs=False, with_repro=False)
    assert page["brokenKnown"] == predicate_errors(read)
