"""Runner helpers: crash rows and exit statuses."""

from pathlib import Path

from xentcheck.harness.results import REQUIRED_KEYS
from xentcheck.harness.runner import WorkerResult, crash_row, exit_status


def test_crash_row_names_the_signal_the_last_instance_and_output():
    r = crash_row(
        "torch", WorkerResult("torch", Path("p"), -11, ["one", "two"]), "c/x[reduction=sum]"
    )
    assert set(REQUIRED_KEYS) <= set(r)
    assert r["status"] == "crash" and r["framework"] == "torch"
    assert (
        r["message"]
        == "worker killed by signal 11 after c/x[reduction=sum]; last output: one | two"
    )
    r = crash_row("jax", WorkerResult("jax", Path("p"), 3, []), None)
    assert r["message"].startswith("worker exit status 3 before any result")


def test_exit_status_follows_fail_on():
    known = [{"framework": "torch", "status": "known"}, {"framework": "torch", "status": "pass"}]
    bad = [*known, {"framework": "jax", "status": "mismatch"}]
    assert exit_status(known, "unexplained") == 0
    assert exit_status(known, "any") == 1
    assert exit_status(bad, "unexplained") == 1
    assert exit_status(bad, "never") == 0
    wrong_reference = [{"framework": "reference", "status": "mismatch"}]
    assert exit_status(wrong_reference, "never") == 1
