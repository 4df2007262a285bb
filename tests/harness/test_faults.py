"""Fault injection: real worker processes that segfault, exit, hang, run out of memory or
poison their (pretend) GPU context, around instances that must still produce their rows.

The adapter (tests/harness/faulty_adapter.py) is a real Framework loaded by the worker
through ``--adapter module:attr``; nothing is mocked.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from xentcheck.harness.results import REQUIRED_KEYS, read_results

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = "tests.harness.faulty_adapter:FRAMEWORK"

#: instance -> first input value (which fault faulty.sigmoid injects; 0.5 etc.: none)
CASES = {
    "ok-first": 0.5,
    "segfault": 1.0,
    "ok-second": -0.5,
    "exit7": 2.0,
    "hang": 3.0,
    "hog": 4.0,
    "poison": 5.0,
    "ok-last": 0.25,
}
FAULTS = {"segfault", "exit7", "hang", "hog", "poison"}


def _cases_file(folder: Path) -> Path:
    entries = "".join(
        f"  - id: {name}\n    loss: sigmoid\n    inputs: {{x: [{x}, 0.0]}}\n"
        for name, x in CASES.items()
    )
    f = folder / "faults.yaml"
    f.write_text("defaults: {dtypes: [float64]}\ncases:\n" + entries)
    return f


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    out = d / "r.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XENTCHECK_WORKER_MEMORY_LIMIT": "1G"}
    cmd = [sys.executable, "-m", "xentcheck.cli", "run", "--adapter", ADAPTER, "--cases", str(_cases_file(d)),
           "--out", str(out), "--timeout", "4", "--jobs", "2", "--fail-on", "never"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    return out, proc, time.monotonic() - t0


def _by_case(out):
    _, rows = read_results(out)
    by = {}
    for r in rows:
        by.setdefault(r["case"].split("/")[-1], []).append(r)
    return by


def test_the_run_survives_every_fault_and_exits_0(faulty_run):
    out, proc, _ = faulty_run
    assert proc.returncode == 0, proc.stderr
    assert not out.with_name(out.name + ".parts").exists()
    for r in read_results(out)[1]:
        assert set(REQUIRED_KEYS) <= set(r)


def test_instances_around_the_faults_keep_all_their_rows(faulty_run):
    by = _by_case(faulty_run[0])
    for name in CASES.keys() - FAULTS:
        rows = by[name]
        assert Counter((r["api"], r["quantity"], r["status"]) for r in rows) == Counter(
            {
                (api, q, "pass"): 1
                for api in ("numpy.sigmoid", "faulty.sigmoid")
                for q in ("value", "grad:x")
            }
        ), name


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        (
            "segfault",
            "crash",
            "worker killed by signal 11 (SIGSEGV) in faulty.sigmoid (float64, cpu)",
        ),
        ("exit7", "crash", "worker exit status 7 in faulty.sigmoid (float64, cpu)"),
        ("hang", "timeout", "no result after 4 s (--timeout) in faulty.sigmoid (float64, cpu)"),
    ],
)
def test_a_dead_or_hung_worker_is_one_row_for_the_instance_it_was_running(
    faulty_run, case, status, words
):
    rows = _by_case(faulty_run[0])[case]
    assert len(rows) == 1
    r = rows[0]
    assert (r["status"], r["framework"], r["api"], r["dtype"], r["device"]) == (
        status,
        "faulty",
        "faulty.sigmoid",
        "float64",
        "cpu",
    )
    assert r["instance"] == f"faults/{case}" and r["loss"] == "sigmoid"
    assert r["message"].startswith(words), r["message"]


def test_memory_refused_by_the_limit_is_an_error_row_and_the_worker_lives_on(faulty_run):
    rows = {(r["api"], r["quantity"]): r for r in _by_case(faulty_run[0])["hog"]}
    assert rows[("faulty.sigmoid", "value")]["status"] == "error"
    assert "MemoryError" in rows[("faulty.sigmoid", "value")]["message"]
    assert rows[("numpy.sigmoid", "value")]["status"] == "pass"


def test_a_poisoned_context_keeps_its_rows_and_the_worker_is_replaced(faulty_run):
    out, proc, _ = faulty_run
    rows = {(r["api"], r["quantity"]): r for r in _by_case(out)["poison"]}
    assert rows[("faulty.sigmoid", "value")]["status"] == "error"
    assert "device-side assert" in rows[("faulty.sigmoid", "value")]["message"]
    assert rows[("numpy.sigmoid", "grad:x")]["status"] == "pass"
    assert "GPU context is poisoned" in proc.stderr
    headers, _ = read_results(out)
    timing = headers[0]["frameworks"]["faulty"]["timing"]
    # segfault, exit7, hang and poison each cost a worker
    assert timing["workers_replaced"] == 4
    assert timing["instances"] == len(CASES)


def test_fault_figures(faulty_run):
    """Print the figures for the closing note (pytest -s shows them)."""
    out, _, seconds = faulty_run
    by = _by_case(out)
    survived = sum(1 for name in FAULTS if by.get(name))
    intact = sum(1 for name in CASES.keys() - FAULTS if len(by[name]) == 4)
    print(f"\nfaults injected {len(FAULTS)}, survived {survived} (each a row for its own instance); "
          f"clean instances intact {intact}/{len(CASES) - len(FAULTS)}; run took {seconds:.1f} s")  # fmt: skip
    assert survived == len(FAULTS)


def test_a_framework_that_cannot_start_is_one_crash_row_and_the_others_run(tmp_path):
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cases = tmp_path / "ok.yaml"
    cases.write_text("cases:\n  - {id: ok, loss: sigmoid, inputs: {x: [0.5]}, dtypes: [float64]}\n")
    cmd = [sys.executable, "-m", "xentcheck.cli", "run", "--adapter", "tests.harness.faulty_adapter:BROKEN",
           "--adapter", ADAPTER, "--cases", str(cases), "--out", str(out), "--quiet", "--jobs", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr  # a crash is a discrepancy
    _, rows = read_results(out)
    crashed = [r for r in rows if r["status"] == "crash"]
    assert len(crashed) == 1
    msg = crashed[0]["message"]
    assert msg.startswith("worker exit status 3 before running any instance; last output:")
    assert "RuntimeError: no driver found for this fake accelerator" in msg
    assert {r["status"] for r in rows if r["framework"] == "faulty"} == {"pass"}
