"""Known differences by framework version: ranges on entries, explain() honouring the run's
versions, and not_reproduced() over rows from real torch runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xentcheck.adapters import load_framework
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.results import run_header
from xentcheck.harness.worker import golden_for, rounded_inputs, run_framework
from xentcheck.known import (
    NOT_REPRODUCED,
    Finding,
    Known,
    entries,
    explain,
    installed_version,
    not_reproduced,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

KL_ENTRY = "torch-kl-div-target-grad-at-zero"

CASES = """
defaults:
  loss: kl_divergence
  params: {reduction: sum}
  dtypes: [float64]
cases:
  - id: zero-target
    description: torch's kl_div gradient is NaN at a zero target (xlogy at 0).
    inputs:
      input: [[-1.6094379124341003, -0.35667494393873245, -2.3025850929940455]]
      target: [[0.0, 0.6, 0.4]]
  - id: positive-target
    inputs:
      input: [[-1.6094379124341003, -0.35667494393873245, -2.3025850929940455]]
      target: [[0.2, 0.5, 0.3]]
"""


def _run(tmp_path: Path, only: str | None = None) -> tuple[list[dict], list[dict]]:
    """(headers, rows) of a real torch run of the KL cases (``only``: one case id)."""
    (tmp_path / "kl.yaml").write_text(CASES)
    instances = [i for c in load_cases([tmp_path]) for i in expand(c) if only in (None, c.id)]
    fw = load_framework("torch")
    fw.setup()
    rows: list[dict] = []
    run_framework(fw, instances, None, ["cpu"], rows.append)
    header = run_header(framework="torch", frameworks={"torch": {"versions": fw.versions()}})
    return [header], rows


def _finding(row: dict, instances, versions=None) -> Finding:
    """The Finding the worker built for a row, rebuilt from the same real torch output."""
    inst = next(i for i in instances if i.name == row["instance"])
    inputs = rounded_inputs(inst, inst.inputs(), row["dtype"])
    golden, _ = golden_for(inst, inputs)
    api = next(a for a in load_framework("torch").apis if a.name == row["api"])
    call = make_call(inst, inputs, row["dtype"], "cpu", golden)
    out = api.run(call)
    q = row["quantity"][5:]
    return Finding("torch", row["api"], inst.loss, row["params"], inputs, row["dtype"], "cpu",
                   row["quantity"], row["unexplained_status"], golden.grads[q], out.grads[q], None,
                   False, versions or {})  # fmt: skip


def test_the_kl_entry_explains_torch_today(tmp_path: Path) -> None:
    _, rows = _run(tmp_path)
    hit = [r for r in rows if r.get("known_id") == KL_ENTRY]
    assert {(r["case"].rsplit("/", 1)[-1], r["quantity"]) for r in hit} == {
        ("zero-target", "grad:target")
    }
    assert {r["api"] for r in hit} == {"torch.nn.functional.kl_div", "torch.nn.KLDivLoss"}


def test_explain_honours_the_run_versions(tmp_path: Path) -> None:
    _, rows = _run(tmp_path, only="zero-target")
    row = next(r for r in rows if r.get("known_id") == KL_ENTRY)
    instances = [i for c in load_cases([tmp_path]) for i in expand(c)]
    assert np.isnan(_finding(row, instances).actual).any()
    # torch 1.12 returned a zero derivative: outside the entry's range, nothing explains it
    assert explain(_finding(row, instances, {"torch": "1.12.1"})) is None
    assert explain(_finding(row, instances, {"torch": "2.13.0+cpu"})).id == KL_ENTRY
    assert explain(_finding(row, instances, {"torch": "2.14.0.dev20260101+cpu"})).id == KL_ENTRY
    # no versions in the finding: the installed torch's version is used
    assert explain(_finding(row, instances)).id == KL_ENTRY


def test_not_reproduced_lists_an_applicable_entry_that_matched_nothing(tmp_path: Path) -> None:
    # kl_div ran, but only on a target without zeros: the entry did not reproduce
    headers, rows = _run(tmp_path, only="positive-target")
    assert {r["status"] for r in rows} == {"pass"}
    gone = not_reproduced(headers, rows)
    kl = [g for g in gone if g["id"] == KL_ENTRY]
    assert len(kl) == 1
    assert kl[0]["status"] == NOT_REPRODUCED == "fixed (no longer reproduces)"
    assert kl[0]["apis"] == ["torch.nn.KLDivLoss", "torch.nn.functional.kl_div"]
    assert kl[0]["range"] == ">=1.13"
    assert kl[0]["versions"] == {"torch": torch.__version__}
    # entries whose APIs did not run are not judged (nothing about cross_entropy here)
    assert all(
        any(
            a.startswith("torch.nn.functional.kl_div") or a == "torch.nn.KLDivLoss"
            for a in g["apis"]
        )
        for g in gone
    )


def test_not_reproduced_does_not_judge_a_framework_that_runs_chosen_cases(tmp_path: Path) -> None:
    # a compiled mode runs only the cases carrying its tags: an entry's triggering case
    # may simply not be among them, so nothing is called fixed
    headers, rows = _run(tmp_path, only="positive-target")
    assert any(g["id"] == KL_ENTRY for g in not_reproduced(headers, rows))
    subset = [
        {**h, "frameworks": {fw: {**info, "case_tags": ["compiled-modes"]}
                             for fw, info in h["frameworks"].items()}}
        for h in headers
    ]  # fmt: skip
    assert not_reproduced(subset, rows) == []


def test_not_reproduced_is_empty_where_the_entry_matched(tmp_path: Path) -> None:
    headers, rows = _run(tmp_path)
    assert KL_ENTRY not in {g["id"] for g in not_reproduced(headers, rows)}


def test_not_reproduced_skips_entries_outside_the_run_version(tmp_path: Path) -> None:
    headers, rows = _run(tmp_path, only="positive-target")
    headers[0]["frameworks"]["torch"]["versions"]["torch"] = "1.12.1"
    assert KL_ENTRY not in {g["id"] for g in not_reproduced(headers, rows)}
    # a framework absent from the headers is not judged at all
    assert not_reproduced([], rows) == []


def test_version_ranges_parse_and_name_their_package() -> None:
    k = Known("x", "jax", ("optax.*",), "e", "l", lambda f: True, versions="optax<0.2.5")
    assert k.version_range()[0] == "optax"
    assert not k.applies_to({"optax": "0.2.8"}) and k.applies_to({"optax": "0.2.4"})
    bare = Known("y", "torch", ("t",), "e", "l", lambda f: True, versions=">=2.1,<2.14")
    assert bare.version_range()[0] == "torch"
    assert bare.applies_to({"torch": "2.13.0+cpu"}) and not bare.applies_to({"torch": "2.14.0"})
    assert Known("z", "torch", ("t",), "e", "l", lambda f: True).applies_to({"torch": "0.1"})
    with pytest.raises(ValueError, match="not a version range"):
        Known("bad", "torch", ("t",), "e", "l", lambda f: True, versions="two point one")


def test_shipped_ranges_include_the_pinned_versions() -> None:
    """Every shipped entry with a range applies to the versions installed here (the ones
    the README's tables come from); an entry outside would silently stop explaining."""
    ranged = 0
    for fw in ("torch", "tensorflow", "jax"):
        for k in entries(fw):
            rng = k.version_range()
            if rng is None:
                continue
            ranged += 1
            if installed_version(rng[0]) is not None:
                assert k.applies_to(), (k.id, k.versions, installed_version(rng[0]))
    assert ranged >= 2


def test_every_framework_with_a_known_module_finds_its_entries() -> None:
    """``keras-jax`` reads ``known/keras_jax.py``: a hyphenated framework name must not
    silently lose its documented differences."""
    from xentcheck.adapters import FRAMEWORKS

    known_dir = Path(entries.__code__.co_filename).parent
    for fw in FRAMEWORKS:
        module = known_dir / f"{fw.replace('-', '_')}.py"
        if module.exists():
            found = entries(fw)
            assert found and {k.framework for k in found} == {fw}, fw
    assert entries("no-such-framework") == [] and entries("../torch") == []
