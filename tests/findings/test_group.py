"""Grouping hand-made result rows into findings: collapse, split, kinds, severity, ids, baseline."""

from __future__ import annotations

import random

import pytest

from xentcheck.findings import build
from xentcheck.findings.group import SEVERITY, row_kind, signature

F, M = "torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"


def row(api: str = F, *, case: str = "c/a", dtype: str = "float32", quantity: str = "value",
        status: str = "mismatch", ulp: float = 100.0, **extra) -> dict:  # fmt: skip
    """A results row as the worker writes one (only what grouping reads)."""
    return {
        "case": case, "instance": case, "loss": "softmax_cross_entropy", "params": {},
        "framework": "torch", "api": api, "device": "cpu", "dtype": dtype,
        "quantity": quantity, "status": status, "max_ulp": ulp, "max_rel_err": 1e-3,
        "max_abs_err": 1e-4, "index": [0], "shape": [2], "expected": [1.0, 2.0],
        "actual": [1.1, 2.0], "expect_error": False, "source": {"file": "c.yaml", "line": 1},
        **extra,
    }  # fmt: skip


def findings(rows, **kw):
    return build(rows, [{}], scripts=False, **kw)


def test_two_apis_failing_at_the_same_points_are_one_finding():
    rows = [
        row(api, case=c, dtype=d)
        for api in (F, M)
        for c in ("c/a", "c/b")
        for d in ("float32", "float16")
    ]
    (f,) = findings(rows)
    assert f["apis"] == sorted([F, M]) and f["rows"] == 8
    assert f["dtypes"] == ["float16", "float32"] and f["cases"] == ["c/a", "c/b"]


def test_two_apis_failing_at_different_points_are_two_findings():
    rows = [row(F, case="c/a"), row(F, case="c/b"), row(M, case="c/a")]
    found = findings(rows)
    assert sorted(f["apis"] for f in found) == [[M], [F]]


def test_api_variants_at_different_sweep_points_of_the_same_cases_are_one_finding():
    rows = [
        row(f"{F}+{red}", case=c) | {"instance": f"{c}[reduction={red}]"}
        for red in ("sum", "mean")
        for c in ("c/a", "c/b")
    ]
    (f,) = findings(rows)
    assert f["apis"] == [f"{F}+mean", f"{F}+sum"]
    assert len(findings([*rows, row(f"{F}+sum", case="c/other")])) == 2


def test_dtypes_devices_and_sweep_points_collapse():
    rows = [
        row(dtype=d, case=f"c/{i}") | {"device": dev}
        for i, d in enumerate(["float64", "float32", "bfloat16"])
        for dev in ("cpu", "gpu")
    ]
    (f,) = findings(rows)
    assert f["devices"] == ["cpu", "gpu"] and len(f["dtypes"]) == 3 and f["rows"] == 6


def test_value_and_gradient_are_two_findings_but_one_documented_difference_is_one():
    wrong = [row(quantity="value"), row(quantity="grad:logits")]
    assert len(findings(wrong)) == 2
    known = [
        row(quantity=q, status="known", known_id="k1", explanation="Documented.", link="L")
        for q in ("value", "grad:logits")
    ]
    (f,) = findings(known)
    assert f["kind"] == "semantic" and f["known"] == "k1" and f["quantity"] == "grad:logits, value"


@pytest.mark.parametrize(
    ("status", "extra", "kind"),
    [
        ("mismatch", {}, "wrong"),
        ("mismatch", {"accuracy": "wrong"}, "wrong"),
        ("mismatch", {"accuracy": "precision", "digits_lost": 2.5}, "precision"),
        ("nonfinite", {}, "nonfinite"),
        ("error", {"message": "ValueError: boom"}, "error-behaviour"),
        (
            "error",
            {"expect_error": True, "behaviour": "returned a finite value"},
            "error-behaviour",
        ),
        ("crash", {}, "crash"),
        ("timeout", {}, "crash"),
        ("known", {"known_id": "k"}, "semantic"),
        ("pass", {}, None),
        ("unsupported", {}, None),
    ],
)
def test_kinds(status, extra, kind):
    assert row_kind(row(status=status, **extra)) == kind


def test_signatures_split_behaviours_of_one_api():
    nan = row(status="nonfinite", expected=[1.0, 2.0], actual=["nan", 2.0], index=[0])
    inf = row(status="nonfinite", expected=[1.0, 2.0], actual=["inf", 2.0], index=[0], case="c/b")
    assert (
        signature(nan, "nonfinite") == "finite -> NaN"
        and signature(inf, "nonfinite") == "finite -> +Inf"
    )
    raises = [
        row(status="error", message="ValueError: x", case="c/x"),
        row(status="error", message="TypeError: y", case="c/y"),
    ]
    assert len(findings([nan, inf])) == 2 and len(findings(raises)) == 2


def test_severity_order_puts_a_silent_wrong_number_first():
    rows = [
        row(status="known", known_id="k", explanation="E.", link="L", case="c/1"),
        row(status="mismatch", accuracy="precision", case="c/2"),
        row(status="crash", message="killed by SIGSEGV", case="c/3"),
        row(status="error", message="ValueError: no", case="c/4"),
        row(status="nonfinite", actual=["nan", 2.0], case="c/5"),
        row(status="mismatch", case="c/6"),
    ]
    found = findings(rows)
    assert [f["kind"] for f in found] == [
        "wrong",
        "nonfinite",
        "error-behaviour",
        "crash",
        "precision",
        "semantic",
    ]
    assert [f["severity"] for f in found] == sorted(SEVERITY.values())


def test_ids_do_not_depend_on_row_order_or_counts():
    rows = [
        row(api, case=c, dtype=d, quantity=q)
        for api in (F, M)
        for c in ("c/a", "c/b")
        for d in ("float32", "float16")
        for q in ("value", "grad:logits")
    ]
    ids = sorted(f["id"] for f in findings(rows))
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(f["id"] for f in findings(shuffled)) == ids
    fewer = [r for r in rows if r["case"] == "c/a"]  # half the rows: the same behaviours
    assert sorted(f["id"] for f in findings(fewer)) == ids
    other = [r | {"max_ulp": 9e9} for r in rows]  # larger errors: still the same behaviour
    assert sorted(f["id"] for f in findings(other)) == ids


def test_baseline_status_new_unchanged_fixed():
    stays, goes, comes = (
        row(case="c/a"),
        row(case="c/b", status="nonfinite", actual=["nan", 2]),
        row(case="c/c", status="error", message="KeyError: 3"),
    )
    old = [stays, goes]
    now = [stays, goes | {"status": "pass"}, comes]
    found = findings(now, baseline=([{}], old))
    status = {f["kind"]: f["status"] for f in found}
    assert status == {"wrong": "unchanged", "nonfinite": "fixed", "error-behaviour": "new"}
    assert all(f["status"] == "new" for f in findings(now))
    # a baseline finding whose points did not run now is not called fixed
    assert "fixed" not in {f["status"] for f in findings([stays], baseline=([{}], old))}


def test_a_user_entry_explains_unexplained_rows():
    from xentcheck.known import Known

    entry = Known(
        "mine",
        "torch",
        (F,),
        "We differ on purpose.",
        "https://example.org",
        lambda f: f.quantity == "value",
    )
    (f, g) = sorted(
        findings([row(F), row(F, quantity="grad:logits")], known=[entry]), key=lambda f: f["kind"]
    )
    assert (f["kind"], f["known"], f["explanation"]) == (
        "semantic",
        "mine",
        "We differ on purpose.",
    )
    assert (g["kind"], g["known"]) == ("wrong", None)


def test_summary_reads_like_a_bug_title():
    (f,) = findings([row(quantity="grad:logits", ulp=170000.0, shape=[2, 262144], dtype="float32")])
    assert f["summary"] == (
        "torch.nn.functional.cross_entropy: the gradient wrt logits is wrong by up to 1.7e5 ULP "
        "(relative error 0.001) in float32 on shape [2, 262144]"
    )


def test_summary_names_a_flushed_value_and_a_flushed_subnormal():
    flushed = row(expected=[4e-18, 1.0], actual=[0.0, 1.0], ulp=1e20)
    (f,) = findings([flushed])
    assert "the value is 0 where the reference is 4e-18 (flushed) in float32" in f["summary"]
    subnormal = row(expected=[3.7e-44, 1.0], actual=[0.0, 1.0], accuracy="precision",
                    digits_lost=0.7)  # fmt: skip
    (g,) = findings([subnormal])
    assert g["kind"] == "precision"
    assert "is 0 where the reference is 3.7e-44, a subnormal (flushed to zero)" in g["summary"]
