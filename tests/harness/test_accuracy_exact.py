"""The ULP criterion passes every result that is the exact value rounded to its dtype.

A custom adapter returns the reference's golden, saturated and rounded to the dtype under
test (:func:`xentcheck.dtypes.saturate`, :func:`xentcheck.dtypes.quantize`) as a perfect
implementation would, for every loss of the registry; run in-process over the whole
shipped suite (the ``large-vocab`` cases but one, which is run on its own), no row may be
``mismatch`` or ``nonfinite``.
"""

from __future__ import annotations

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output
from xentcheck.dtypes import quantize, saturate
from xentcheck.harness.cases import load_cases
from xentcheck.harness.plan import instances_of, select_cases
from xentcheck.harness.worker import run_framework
from xentcheck.reference import LOSSES, evaluate


def rounded(a, dtype: str) -> np.ndarray:
    """The exact value ``a`` as a perfect ``dtype`` implementation returns it."""
    return quantize(saturate(np.asarray(a, dtype=np.float64), dtype), dtype)


def exact_rounded(call: Call) -> Output:
    """The golden rounded to the call's dtype (raises where the reference rejects)."""
    g = evaluate(call.loss, dict(call.inputs), {k: call.params[k] for k in call.explicit})
    grads = {k: rounded(v, call.dtype) for k, v in g.grads.items() if k in call.grad_inputs}
    return Output(value=rounded(g.value, call.dtype), grads=grads, out_dtype=call.dtype)


EXACT = Framework(
    name="exact",
    apis=[Api(f"exact.{loss}", loss, exact_rounded) for loss in LOSSES],
    versions=lambda: {"numpy": np.__version__},
    devices=lambda: {"cpu": "the test's CPU", "gpu": None},
)


def failing_rows(instances, criterion: str = "ulp") -> list[dict]:
    rows: list[dict] = []
    run_framework(EXACT, instances, None, ["cpu"], rows.append, criterion=criterion)
    assert rows, "the suite gave no rows"
    return [r for r in rows if r["status"] in ("mismatch", "nonfinite", "error")]


def test_the_exact_value_rounded_passes_everywhere_in_the_shipped_suite():
    instances = instances_of(select_cases(load_cases(), ["large-vocab"]))
    bad = failing_rows(instances)
    assert not bad, [(r["instance"], r["dtype"], r["quantity"], r["status"], r.get("message"),
                      r.get("excess")) for r in bad[:10]]  # fmt: skip


def test_the_exact_value_rounded_passes_a_large_vocabulary_case():
    (case,) = [
        c for c in load_cases() if c.key.endswith("softmax_cross_entropy/large_vocab/vocab-262144")
    ]
    assert not failing_rows(instances_of([case]))


def noisy(call: Call) -> Output:
    """The golden with relative noise of 1e-9 to 1e-2 (seeded by the input's bytes)."""
    g = evaluate(call.loss, dict(call.inputs), {k: call.params[k] for k in call.explicit})
    rng = np.random.default_rng(abs(hash(np.asarray(g.value).tobytes())) % 2**32)

    def shake(a):
        a = np.asarray(a, dtype=np.float64)
        return a * (1 + rng.normal(size=a.shape) * 10.0 ** rng.integers(-9, -2))

    grads = {k: shake(v) for k, v in g.grads.items() if k in call.grad_inputs}
    return Output(value=shake(g.value), grads=grads, out_dtype=call.dtype)


def test_the_tolerance_criterion_gives_todays_statuses():
    from xentcheck.harness.compare import tolerance_for

    fw = Framework("noisy", [Api(f"noisy.{loss}", loss, noisy) for loss in LOSSES],
                   lambda: {}, lambda: {"cpu": "cpu", "gpu": None})  # fmt: skip
    cases = [c for c in select_cases(load_cases(), ["large-vocab"]) if "basic" in c.key]
    by_key = {c.key: c.tolerance for c in cases}

    def r_case_tolerance(r):
        return by_key[r["case"]]

    rows: list[dict] = []
    run_framework(fw, instances_of(cases), ["float32", "float64"], ["cpu"], rows.append,
                  criterion="tolerance")  # fmt: skip
    compared = [r for r in rows if r["status"] in ("pass", "mismatch") and "excess" in r]
    assert {r["status"] for r in compared} == {"pass", "mismatch"}
    for r in compared:  # every status is torch.testing's rule at the row's rtol/atol
        assert (r["criterion"] == "tolerance" and "accuracy" not in r) or r["status"] == "mismatch"
        assert (r["status"] == "pass") == ((r["excess"] or 0.0) <= 1.0), r
        assert (r["rtol"], r["atol"]) == tolerance_for(r["dtype"], r_case_tolerance(r))
