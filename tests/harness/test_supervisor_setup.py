"""A framework that cannot start is one crash row, whatever ``--jobs`` is.

The adapters are real Frameworks in a module written for the test and loaded with
``--adapter module:attr``: one whose setup raises an ImportError (a missing driver
package), one whose setup segfaults, and a working one beside them. With ``--jobs 4``
each framework's instances are split into two shards, each with a worker of its own;
the rows must be exactly those of ``--jobs 1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xentcheck.harness.results import read_results

ADAPTERS = """\
    import ctypes
    import dataclasses

    import numpy as np

    from xentcheck.adapters.base import Api, Framework, Output


    def _sigmoid(call):
        y = 1.0 / (1.0 + np.exp(-np.asarray(call.inputs["x"], dtype=np.float64)))
        grads = {"x": call.cotangent * y * (1.0 - y)} if "x" in call.grad_inputs else {}
        return Output(value=y, grads=grads, out_dtype=call.dtype)


    def _import_a_driver():
        import no_such_accelerator_driver  # noqa: F401


    def _segfault():
        ctypes.string_at(0)


    WORKS = Framework(name="works", apis=[Api("works.sigmoid", "sigmoid", _sigmoid)],
                      versions=lambda: {"numpy": np.__version__},
                      devices=lambda: {"cpu": "cpu", "gpu": None})
    RAISES = dataclasses.replace(WORKS, name="raises", setup=_import_a_driver)
    SEGFAULTS = dataclasses.replace(WORKS, name="segfaults", setup=_segfault)
"""

#: enough instances that every shard of --jobs 4 has some
CASES = "".join(
    f"  - {{id: s{k}, loss: sigmoid, inputs: {{x: [{k / 4}]}}, dtypes: [float64]}}\n"
    for k in range(6)
)
#: row fields that legitimately differ between two runs
TIMING = ("elapsed_s", "compile_s")


def _run(tmp_path: Path, jobs: int, *specs: str) -> tuple[subprocess.CompletedProcess, list]:
    out = tmp_path / f"jobs{jobs}.jsonl"
    cmd = [sys.executable, "-m", "xentcheck.cli", "run", "--cases", str(tmp_path / "c.yaml"),
           "--out", str(out), "--jobs", str(jobs)]  # fmt: skip
    for spec in specs:
        cmd += ["--adapter", f"setup_adapters:{spec}"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    rows = read_results(out)[1] if out.exists() else []
    return proc, [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        ("RAISES", "ModuleNotFoundError: No module named 'no_such_accelerator_driver'"),
        ("SEGFAULTS", "worker killed by signal 11 (SIGSEGV) before running any instance"),
    ],
)
def test_a_framework_that_cannot_start_is_one_crash_row_at_any_jobs(tmp_path, broken, words):
    (tmp_path / "setup_adapters.py").write_text(textwrap.dedent(ADAPTERS))
    (tmp_path / "c.yaml").write_text("cases:\n" + CASES)
    runs = {jobs: _run(tmp_path, jobs, broken, "WORKS") for jobs in (1, 4)}
    for proc, _ in runs.values():
        assert proc.returncode == 1, proc.stderr  # a crash is a discrepancy
    (_, one), (proc4, four) = runs[1], runs[4]
    spec = f"setup_adapters:{broken}"
    crashed = [r for r in four if r["framework"] == spec]
    assert len(crashed) == 1, [r["message"][:80] for r in crashed]
    assert crashed[0]["status"] == "crash" and words in crashed[0]["message"]
    assert proc4.stderr.count(f"{spec}: worker") == 1  # and said once
    # the working framework runs every instance, unaffected
    works = [r for r in four if r["framework"] == "works"]
    assert {r["instance"] for r in works} == {f"c/s{k}" for k in range(6)}
    assert {r["status"] for r in works} == {"pass"}
    assert four == one
