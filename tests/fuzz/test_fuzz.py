"""``xentcheck fuzz`` end to end, run as a user runs it (a subprocess in the repository root).

The frameworks are the real adapters of :mod:`tests.fuzz.adapters`, loaded by spec: one with
a planted bug (a mean over ignored labels divides by every label), an exact twin without
it, an independent numpy sigmoid, and one that segfaults on NaN. Budgets are small and most
runs fix their ``--rounds``, so the module takes a few minutes on two shared cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from xentcheck.harness.results import read_results

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLANTED = "tests.fuzz.adapters:PLANTED"
EXACT = "tests.fuzz.adapters:EXACT"
NUMPY_SIGMOID = "tests.fuzz.adapters:NUMPY_SIGMOID"
CRASHY = "tests.fuzz.adapters:CRASHY"
#: the planted run: small enough to be quick, long enough to shrink to the end
PLANTED_RUN = ("--loss", "softmax_cross_entropy", "--budget", "40", "--seed", "1", "--rounds", "3")
#: input elements and lines of the smallest case the planted run writes (measured: 6 and 15)
MAX_ELEMENTS, MAX_LINES = 8, 20


def xentcheck(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m xentcheck ARGS`` in the repository root (the adapters' import root)."""
    return subprocess.run(
        [sys.executable, "-m", "xentcheck", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fuzz(out_dir: Path, adapter: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``xentcheck fuzz`` of one test adapter on the CPU, quiet, into ``out_dir``."""
    return xentcheck("fuzz", "--adapter", adapter, "--device", "cpu", "--quiet", *args,
                     "--out-dir", str(out_dir), **kw)  # fmt: skip


def findings(out_dir: Path) -> list[dict[str, Any]]:
    return json.loads((out_dir / "findings.json").read_text(encoding="utf-8"))


def case_texts(out_dir: Path) -> dict[str, str]:
    """Every written case file's text, by name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((out_dir / "cases").glob("*"))}


def leaves(x: Any) -> Iterator[Any]:
    """The numbers of a nested-list literal."""
    if isinstance(x, list):
        for v in x:
            yield from leaves(v)
    else:
        yield x


def elements(case: Mapping[str, Any]) -> int:
    """Input elements of a case dict in all (a generator or fill counts its shape)."""
    return sum(
        math.prod(v["shape"]) if isinstance(v, dict) else len(list(leaves(v)))
        for v in case["inputs"].values()
    )


def only_case(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert len(doc["cases"]) == 1, path
    return doc["cases"][0]


def run_findings(cases: Path, adapter: str, out: Path) -> list[dict[str, Any]]:
    """``xentcheck run`` of ``cases`` on ``adapter``, then its findings (json)."""
    r = xentcheck("run", "--cases", str(cases), "--adapter", adapter, "--device", "cpu",
                  "--fail-on", "never", "--no-cache", "--quiet", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    f = xentcheck("findings", str(out), "--format", "json")
    assert f.returncode == 0, f.stderr
    return json.loads(f.stdout)


def planted_bug_applies(case: Mapping[str, Any]) -> bool:
    """Whether the planted bug can show on ``case``: a mean over class indices some of
    which equal the ignore_index."""
    params = case.get("params") or {}
    ignore, target = params.get("ignore_index"), case["inputs"].get("target")
    return (
        params.get("reduction", "mean") == "mean"
        and ignore is not None
        and isinstance(target, list)
        and any(v == ignore for v in leaves(target))
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A result cache of the module's own for the module-wide runs."""
    return {"XENTCHECK_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """The out-dir of the planted run (:data:`PLANTED_RUN`)."""
    out = tmp_path_factory.mktemp("planted") / "fuzz"
    r = fuzz(out, PLANTED, *PLANTED_RUN, env=env)
    assert r.returncode == 0, r.stderr
    return out


# ------------------------------------------------------------------ the planted bug


def test_the_planted_bug_is_found_and_shrunk(planted: Path, tmp_path: Path) -> None:
    found = findings(planted)
    assert found, "the planted bug was not found"
    for f in found:
        # the planted bug and nothing else: the adapter is exact where the bug cannot show
        assert f["apis"] == ["planted.softmax_cross_entropy"], f["id"]
        assert f["kind"] in ("wrong", "precision"), f["id"]
        assert f["reproduced"] is True, f["id"]
        case = only_case(planted / f["case_file"])
        assert planted_bug_applies(case), f["case_file"]
        assert "found-by-fuzz" in case["tags"]
        assert f["id"] in case["description"]
    smallest = min(found, key=lambda f: elements(only_case(planted / f["case_file"])))
    file = planted / smallest["case_file"]
    assert elements(only_case(file)) <= MAX_ELEMENTS, file.read_text()
    assert len(file.read_text().splitlines()) <= MAX_LINES, file.read_text()
    assert xentcheck("cases", "--cases", str(file)).returncode == 0
    again = run_findings(file, PLANTED, tmp_path / "again.jsonl")
    assert smallest["id"] in [f["id"] for f in again]


def test_every_written_case_reproduces_its_finding(planted: Path, tmp_path: Path) -> None:
    again = {f["id"] for f in run_findings(planted / "cases", PLANTED, tmp_path / "all.jsonl")}
    assert {f["id"] for f in findings(planted)} <= again


def test_without_the_planted_bug_nothing_is_found(tmp_path: Path) -> None:
    r = fuzz(tmp_path / "fuzz", EXACT, *PLANTED_RUN)
    assert r.returncode == 0, r.stderr
    assert findings(tmp_path / "fuzz") == []
    assert not (tmp_path / "fuzz" / "cases").exists()


# ------------------------------------------------------------------ a reference bug

#: puts a relative error of 1e-6 into the reference's sigmoid value, in every process
WRONG_REFERENCE = """\
import dataclasses

import numpy as np

import xentcheck.reference as reference

_spec = reference.LOSSES["sigmoid"]


def _off(*args, **kwargs):
    value, grads = _spec.fn(*args, **kwargs)
    return np.asarray(value) * (1 + 1e-6), grads


reference.LOSSES["sigmoid"] = dataclasses.replace(_spec, fn=_off)
"""
SIGMOID_RUN = ("--loss", "sigmoid", "--budget", "30", "--seed", "1", "--rounds", "3")


def test_a_reference_bug_is_reported_as_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WRONG_REFERENCE, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    out = tmp_path / "fuzz"
    r = fuzz(out, NUMPY_SIGMOID, *SIGMOID_RUN, env={"PYTHONPATH": path})
    assert r.returncode == 3, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("xentcheck fuzz:")]
    assert said and "REFERENCE BUG" in said[0], r.stderr
    bugs = json.loads((out / "reference-bugs.json").read_text(encoding="utf-8"))
    assert bugs
    for bug in bugs:
        assert bug["loss"] == "sigmoid"
        assert (out / bug["case_file"]).is_file()
        assert {d["quantity"] for d in bug["disagreements"]} == {"value"}
    blamed = [f["id"] for f in findings(out) if f["kind"] in ("wrong", "precision")]
    assert blamed == []


def test_the_numpy_sigmoid_agrees_with_the_true_reference(tmp_path: Path) -> None:
    r = fuzz(tmp_path / "fuzz", NUMPY_SIGMOID, *SIGMOID_RUN)
    assert r.returncode == 0, r.stderr
    assert "REFERENCE BUG" not in r.stderr
    assert not (tmp_path / "fuzz" / "reference-bugs.json").exists()
    assert findings(tmp_path / "fuzz") == []


# ------------------------------------------------------------------ repeatable, bounded

#: fixed rounds, and a budget that leaves shrinking room to finish (no deadline cuts it)
REPEAT_RUN = ("--loss", "softmax_cross_entropy", "--rounds", "4", "--budget", "120")


def test_the_same_seed_writes_the_same_findings_and_cases(tmp_path: Path) -> None:
    outs = [tmp_path / name for name in ("a", "b", "other")]
    # seeds whose rounds find the planted bug (half the seeds' four rounds do not)
    for out, seed in zip(outs, ("3", "3", "4"), strict=True):
        r = fuzz(out, PLANTED, *REPEAT_RUN, "--seed", seed)
        assert r.returncode == 0, r.stderr
    a, b, other = (findings(out) for out in outs)
    assert a and other, "a seed found nothing: the comparison would be empty"
    assert [f["id"] for f in a] == [f["id"] for f in b]
    assert [f["fuzz"] for f in a] == [f["fuzz"] for f in b]
    assert case_texts(outs[0]) == case_texts(outs[1])
    # another seed draws other cases: the sizes of the cases that found something differ
    drawn = [sorted(map(tuple, (f["fuzz"]["drawn_size"] for f in x))) for x in (a, other)]
    assert drawn[0] != drawn[1]


@pytest.mark.torch
def test_the_budget_is_honoured(tmp_path: Path) -> None:
    budget = 12
    t0 = time.monotonic()
    r = xentcheck("fuzz", "--framework", "torch", "--device", "cpu", "--quiet", "--budget",
                  str(budget), "--seed", "1", "--out-dir", str(tmp_path / "fuzz"))  # fmt: skip
    wall = time.monotonic() - t0
    assert r.returncode in (0, 3), r.stderr  # 3: the reference disagreed with mpmath somewhere
    assert (tmp_path / "fuzz" / "findings.json").is_file()
    # the allowance: interpreter start-up, a batch cut at its deadline, writing
    assert wall <= budget + 8, f"{wall:.1f} s for a {budget} s budget"


def batch_running(out: Path) -> bool:
    """Whether a batch's workers are writing (their part files are there) in ``out``."""
    try:
        return any(
            f.suffix == ".jsonl" and not f.name.startswith("supervisor.")
            for d in (out / "work").glob("*.parts")
            for f in d.iterdir()
        )
    except OSError:  # the batch ended meanwhile
        return False


def test_ctrl_c_keeps_what_was_found(tmp_path: Path) -> None:
    out = tmp_path / "fuzz"
    p = subprocess.Popen(
        [sys.executable, "-m", "xentcheck", "fuzz", "--adapter", PLANTED, "--device", "cpu",
         "--loss", "softmax_cross_entropy", "--budget", "300", "--seed", "1",
         "--out-dir", str(out)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a test session started in the background (CI, nohup) inherits
        # SIGINT ignored, and Python then keeps it ignored in the child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert p.stderr is not None
        for line in p.stderr:
            if "findings so far (" in line and "none yet" not in line:
                break
        else:
            pytest.fail("no progress line with a finding")
        # interrupt while a batch runs, as a Ctrl-C mostly does: once its workers write
        running = time.monotonic() + 10
        while time.monotonic() < running and not batch_running(out):
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        # stopping writes the findings (their scripts in a child process): seconds
        rest = p.communicate(timeout=30)[1]
        assert p.returncode == 130, rest
        assert time.monotonic() - t0 < 30
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    found = findings(out)
    assert found
    for f in found:
        assert (out / f["case_file"]).is_file()
    assert json.loads((out / "fuzz.json").read_text())["interrupted"] == "ctrl-c"


# ------------------------------------------------------------------ crashes, baseline


def test_a_crash_becomes_a_crash_finding_with_its_case(tmp_path: Path) -> None:
    out = tmp_path / "fuzz"
    # seed 5 draws a NaN in its second round (about one sigmoid case in thirty has one)
    r = fuzz(out, CRASHY, "--loss", "sigmoid", "--budget", "16", "--seed", "5", "--rounds", "6")
    assert r.returncode == 0, r.stderr
    crashes = [f for f in findings(out) if f["kind"] == "crash"]
    assert crashes, r.stderr
    file = out / crashes[0]["case_file"]
    assert ".nan" in file.read_text(encoding="utf-8")
    again = tmp_path / "again.jsonl"
    r = xentcheck("run", "--cases", str(file), "--adapter", CRASHY, "--device", "cpu",
                  "--fail-on", "never", "--no-cache", "--quiet", "--out", str(again))  # fmt: skip
    assert r.returncode == 0, r.stderr
    _, rows = read_results(again)
    assert "crash" in {row["status"] for row in rows}


def test_a_baseline_hides_what_it_already_shows(planted: Path, tmp_path: Path) -> None:
    first = {f["id"] for f in findings(planted)}
    assert first
    base = tmp_path / "base.jsonl"
    r = xentcheck("run", "--cases", str(planted / "cases"), "--adapter", PLANTED, "--device",
                  "cpu", "--fail-on", "never", "--no-cache", "--quiet", "--out", str(base))  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "fuzz"
    r = fuzz(out, PLANTED, *PLANTED_RUN, "--baseline", str(base))
    assert r.returncode == 0, r.stderr
    assert first.isdisjoint(f["id"] for f in findings(out))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--loss", "no_such_loss"], "no_such_loss"),
        (["--budget", "0"], "--budget"),
        (["--baseline", "{tmp}/missing.jsonl"], "missing.jsonl"),
        (["--out-dir", "{tmp}/a-file"], "--out-dir"),
    ],
    ids=["unknown-loss", "zero-budget", "missing-baseline", "out-dir-is-a-file"],
)
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, args: list[str], named: str) -> None:
    (tmp_path / "a-file").write_text("")
    args = [a.format(tmp=tmp_path) for a in args]
    out = [] if "--out-dir" in args else ["--out-dir", str(tmp_path / "fuzz")]
    r = xentcheck("fuzz", "--adapter", PLANTED, "--device", "cpu", *args, *out, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("xentcheck: error:") and named in lines[0]
    assert not (tmp_path / "fuzz").exists()
