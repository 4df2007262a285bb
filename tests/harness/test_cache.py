"""The result cache: a rerun reuses exactly the rows whose key is unchanged, and the results
file is the same, row for row (timings aside), with or without it.

Most tests run a NumPy adapter written to the test's folder (``npcache``: sigmoid and
log_softmax), whose ``setup()`` raises when a file ``forbid`` lies next to it, so a run
that should start no worker fails loudly if it does. Runs are in-process (``cli.main``) so
that a test can change one part of the key at a time; workers are real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xentcheck
from xentcheck.cli import main
from xentcheck.harness import cache as cache_mod
from xentcheck.harness.results import read_results

ROOT = Path(__file__).resolve().parents[2]
TIMING = ("elapsed_s", "compile_s")
FW = "npsig"

ADAPTER = """\
import os
import time
from pathlib import Path

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output

HERE = Path(__file__).parent


def _setup():
    if (HERE / "forbid").exists():
        raise RuntimeError("a worker started although every row should come from the cache")


def _slow():
    if (HERE / "slow").exists():
        time.sleep(1.0)


def _sigmoid(call: Call) -> Output:
    _slow()
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    y = 1.0 / (1.0 + np.exp(-x))
    grads = {"x": call.cotangent * y * (1.0 - y)} if "x" in call.grad_inputs else {}
    return Output(value=y, grads=grads, out_dtype=call.dtype)


def _log_softmax(call: Call) -> Output:
    _slow()
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    axis = call.params["axis"]
    m = x.max(axis=axis, keepdims=True)
    y = x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    ct = np.asarray(call.cotangent, dtype=np.float64)
    grads = {"x": ct - np.exp(y) * ct.sum(axis=axis, keepdims=True)} if call.grad_inputs else {}
    return Output(value=y, grads=grads, out_dtype=call.dtype)


FRAMEWORK = Framework(
    name="npsig",
    apis=[Api("numpy.sigmoid", "sigmoid", _sigmoid),
          Api("numpy.log_softmax", "log_softmax", _log_softmax)],
    versions=lambda: {"numpy": np.__version__},
    devices=lambda: {"cpu": f"compile cache {os.environ.get('XENTCHECK_COMPILE_CACHE')}",
                     "gpu": None},
    setup=_setup,
)
"""

CASES = {
    "a.yaml": """\
cases:
  - id: lit
    description: a literal input
    loss: sigmoid
    inputs: {x: [-3.0, 0.5, 40.0]}
    dtypes: [float64, float32]
  - id: gen
    loss: sigmoid
    inputs: {x: {random: normal, shape: [5], seed: 3}}
    dtypes: [float32]
""",
    "b.yaml": """\
cases:
  - id: ls
    loss: log_softmax
    inputs: {x: [[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]]}
    params: {axis: [0, 1]}
    dtypes: [float64]
""",
}
ALL = {"a/lit", "a/gen", "b/ls[axis=0]", "b/ls[axis=1]"}


class Project:
    """The adapter, the case files and the cache folder of one test, and its runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases = root / "cases"
        self.cache = root / "cache"
        self.adapter = root / "npcache.py"

    def write(self) -> Project:
        self.adapter.write_text(ADAPTER)
        self.cases.mkdir(parents=True, exist_ok=True)
        for name, text in CASES.items():
            (self.cases / name).write_text(text)
        return self

    def copy_to(self, root: Path) -> Project:
        other = Project(root)
        shutil.copy2(self.adapter, other.adapter)
        shutil.copytree(self.cases, other.cases)
        if self.cache.exists():
            shutil.copytree(self.cache, other.cache)
        return other

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.cases / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    def argv(self, out: Path, *extra: str) -> list[str]:
        return ["run", "--adapter", "npcache:FRAMEWORK", "--cases", str(self.cases),
                "--out", str(out), "--quiet", "--fail-on", "never", "--jobs", "1",
                "--cache-dir", str(self.cache), *extra]  # fmt: skip

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(
            p for p in (str(self.root), str(ROOT), os.environ.get("PYTHONPATH")) if p
        )
        return {**os.environ, "PYTHONPATH": path}

    def run(self, *extra: str, out: str = "r.jsonl") -> tuple[dict, list[dict]]:
        """Run in this process (workers are subprocesses); (header, rows)."""
        with pytest.MonkeyPatch.context() as m:
            m.syspath_prepend(str(self.root))
            m.setenv("PYTHONPATH", self.env()["PYTHONPATH"])
            assert main(self.argv(self.root / out, *extra)) == 0
        [header], rows = read_results(self.root / out)
        return header, rows


def strip(rows: list[dict]) -> list[dict]:
    """Rows without timings, their case file named by its name (projects are copied)."""
    out = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    for r in out:
        r["source"] = {**r["source"], "file": Path(r["source"]["file"]).name}
    return out


def computed(header: dict) -> tuple[int, int, int, int]:
    """(reused rows, computed rows, instances computed, instances reused) of a run."""
    timing = header["frameworks"][FW]["timing"]
    c = header["cache"]
    return c["reused_rows"], c["computed_rows"], timing["instances"], timing["cached_instances"]


def rows_of(rows: list[dict], instances: set[str]) -> int:
    return sum(r["instance"] in instances for r in rows)


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path).write()


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> tuple[Project, list[dict]]:
    """A project whose cache holds every row (built once; tests copy it)."""
    p = Project(tmp_path_factory.mktemp("warm")).write()
    header, rows = p.run()
    assert computed(header) == (0, len(rows), len(ALL), 0)
    return p, rows


def test_cold_warm_and_after_editing_one_case_file(project):
    cold_header, cold = project.run(out="cold.jsonl")
    assert len(cold) == 10 and {r["instance"] for r in cold} == ALL
    assert computed(cold_header) == (0, 10, 4, 0)
    assert cold_header["cache"]["dir"] == str(project.cache)

    (project.root / "forbid").touch()  # a worker would fail setup: a crash row, not these
    warm_header, warm_rows = project.run(out="warm.jsonl")
    assert strip(warm_rows) == strip(cold)
    assert computed(warm_header) == (10, 0, 0, 4)
    assert warm_header["frameworks"][FW]["timing"]["worker_wall_s"] == 0
    assert warm_header["frameworks"][FW]["versions"] == cold_header["frameworks"][FW]["versions"]

    (project.root / "forbid").unlink()
    project.edit("b.yaml", "[0.5, -1.0, 4.0]", "[0.5, -1.0, 5.0]")
    header, rows = project.run(out="edited.jsonl")
    _, fresh = project.run("--no-cache", out="fresh.jsonl")
    assert strip(rows) == strip(fresh)
    assert strip(rows) != strip(cold)
    assert computed(header) == (6, 4, 2, 2)  # b's two instances, 2 rows each


def test_a_new_case_above_others_recomputes_it_alone_and_moves_their_lines(project):
    project.run()
    project.edit("a.yaml", "cases:\n", "cases:\n  - id: new\n    loss: sigmoid\n"
                 "    inputs: {x: [1.0]}\n    dtypes: [float64]\n")  # fmt: skip
    project.edit("a.yaml", "a literal input", "a literal input, described anew")
    header, rows = project.run()
    _, fresh = project.run("--no-cache", out="fresh.jsonl")
    assert strip(rows) == strip(fresh)
    assert computed(header) == (10, 2, 1, 4)
    lit = next(r for r in rows if r["instance"] == "a/lit")
    assert lit["source"]["line"] == 6 and lit["description"] == "a literal input, described anew"


def _bump_version(p, m):
    m.setattr(xentcheck, "__version__", "0.0.0+other")


def _edit_reference(p, m):
    m.setattr(cache_mod, "reference_digest", lambda: "an edited reference")


def _edit_adapter(p, m):
    p.adapter.write_text(p.adapter.read_text() + "# edited\n")


def _framework_version(p, m):
    real = cache_mod._version
    m.setattr(cache_mod, "_version", lambda d: "0.0.1" if d == "numpy" else real(d))


def _other_gpu(p, m):
    m.setattr(cache_mod, "_gpus", lambda: ["Model: another GPU"])


def _environment(p, m):
    m.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")


def _literal(p, m):
    p.edit("b.yaml", "[1.0, 2.0, 3.0]", "[1.5, 2.0, 3.0]")


def _seed(p, m):
    p.edit("a.yaml", "seed: 3", "seed: 4")


def _params(p, m):
    p.edit("b.yaml", "axis: [0, 1]", "axis: [0, -1]")


def _tolerance(p, m):
    p.edit("a.yaml", "    dtypes: [float64, float32]\n",
           "    dtypes: [float64, float32]\n    tolerance: {float32: {rtol: 1.0e-5, atol: 0.0}}\n")  # fmt: skip


def _tags(p, m):
    p.edit("a.yaml", "    dtypes: [float32]\n", "    dtypes: [float32]\n    tags: [t]\n")


#: what changes -> (how, extra run options, the instances recomputed)
KEY_PARTS = {
    "xentcheck version": (_bump_version, (), ALL),
    "reference source": (_edit_reference, (), ALL),
    "adapter source": (_edit_adapter, (), ALL),
    "framework version": (_framework_version, (), ALL),
    "device option": (None, ("--device", "cpu"), ALL),
    "GPU": (_other_gpu, (), ALL),
    "environment": (_environment, (), ALL),
    "dtype": (None, ("--dtype", "float32"), {"a/lit", "b/ls[axis=0]", "b/ls[axis=1]"}),
    "literal input": (_literal, (), {"b/ls[axis=0]", "b/ls[axis=1]"}),
    "generated input": (_seed, (), {"a/gen"}),
    "params": (_params, (), {"b/ls[axis=-1]"}),
    "tolerance": (_tolerance, (), {"a/lit"}),
    "tags": (_tags, (), {"a/gen"}),
}


@pytest.mark.parametrize("part", KEY_PARTS)
def test_changing_one_part_of_the_key_recomputes_exactly_the_rows_it_affects(
    part, warm, tmp_path, monkeypatch
):
    change, extra, expected = KEY_PARTS[part]
    p = warm[0].copy_to(tmp_path)
    if change is not None:
        change(p, monkeypatch)
    header, rows = p.run(*extra)
    n = rows_of(rows, expected)
    assert n > 0
    assert computed(header) == (len(rows) - n, n, len(expected), 4 - len(expected))


def test_the_known_differences_of_a_framework_are_in_the_key(project, monkeypatch):
    package = project.root / "npknown"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "npsig.py").write_text("ENTRIES = []\n")
    monkeypatch.syspath_prepend(str(project.root))
    monkeypatch.setattr(cache_mod, "KNOWN", "npknown")
    project.run()
    assert computed(project.run()[0])[0] == 10
    (package / "npsig.py").write_text("ENTRIES = []  # edited\n")
    assert computed(project.run()[0]) == (0, 10, 4, 0)


def test_the_modules_an_adapter_derives_from_are_in_its_key():
    files, others = cache_mod.source_closure(
        [cache_mod.WORKER, cache_mod.adapter_module("torch-compile"),
         *cache_mod.known_modules("torch-compile")]
    )  # fmt: skip
    for module in ("xentcheck.adapters.torch_adapter", "xentcheck.adapters.torch_compile_adapter",
                   "xentcheck.known.torch_compile", "xentcheck.known", "xentcheck.harness.compare",
                   "xentcheck.harness.worker", "xentcheck.reference.softmax", "xentcheck"):  # fmt: skip
        assert module in files
    assert "xentcheck.known.jax" not in files and "torch" in others and "numpy" in others


@pytest.mark.jax
def test_framework_versions_are_read_without_importing_the_framework():
    code = ("import sys; from xentcheck.harness.cache import framework_parts; "
            "d = framework_parts('jax', 'all')['distributions']; "
            "print(d['jax'], d['jaxlib'], d['optax'], 'jax' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    jax_v, jaxlib_v, optax_v, imported = out.stdout.split()
    assert imported == "False"
    import importlib.metadata as md

    assert (jax_v, jaxlib_v, optax_v) == (
        md.version("jax"),
        md.version("jaxlib"),
        md.version("optax"),
    )


def test_no_cache_runs_everything_and_leaves_the_cache_untouched(warm, tmp_path, monkeypatch):
    p = warm[0].copy_to(tmp_path)
    before = {f: f.read_bytes() for f in p.cache.rglob("*") if f.is_file()}
    monkeypatch.chdir(tmp_path)  # nor the default folder
    monkeypatch.setenv("XENTCHECK_CACHE_DIR", str(p.cache))
    header, rows = p.run("--no-cache")
    assert strip(rows) == strip(warm[1])
    assert header["cache"] == {"dir": None, "reused_rows": 0, "computed_rows": 10}
    assert header["frameworks"][FW]["devices"]["cpu"] == "compile cache None"
    assert {f: f.read_bytes() for f in p.cache.rglob("*") if f.is_file()} == before
    assert not (tmp_path / ".xentcheck-cache").exists()


def test_workers_are_given_the_compile_cache_folder(project):
    header, _ = project.run()
    assert (
        header["frameworks"][FW]["devices"]["cpu"]
        == f"compile cache {project.cache.resolve() / 'compile'}"
    )


def test_a_damaged_entry_is_recomputed_and_rewritten(warm, tmp_path):
    p = warm[0].copy_to(tmp_path)
    entries = sorted((p.cache / "results").rglob("*.json"))
    damaged = set()
    for entry, damage in zip(
        (e for e in entries if b'"rows":[{' in e.read_bytes()),
        (
            lambda b: b[: len(b) // 2],
            lambda b: b.replace(b'"pass"', b'"mismatch"'),
            lambda b: b"{}\n{}",
        ),
        strict=False,
    ):
        data = entry.read_bytes()
        damaged.add(json.loads(data.partition(b"\n")[2])["rows"][0]["instance"])
        entry.write_bytes(damage(data))
    assert len(damaged) == 3
    header, rows = p.run()
    assert strip(rows) == strip(warm[1])
    n = rows_of(rows, damaged)
    assert computed(header) == (10 - n, n, 3, 1)
    assert computed(p.run()[0]) == (10, 0, 0, 4)  # rewritten whole


def test_concurrent_runs_share_one_cache(warm, tmp_path):
    p = Project(tmp_path).write()
    procs = [subprocess.Popen([sys.executable, "-m", "xentcheck.cli", *p.argv(tmp_path / f"{k}.jsonl")],
                              env=p.env(), stderr=subprocess.PIPE) for k in range(2)]  # fmt: skip
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert not list(p.cache.rglob("*.tmp"))
    (p.root / "forbid").touch()
    header, rows = p.run()
    assert strip(rows) == strip(warm[1])
    assert computed(header) == (10, 0, 0, 4)


def _as_from_a_shell() -> None:
    """Ctrl-C as a shell delivers it: SIGINT handled by default and not blocked, whatever
    this test process inherited or a library in it set (a blocked or ignored SIGINT is
    passed on to children, and the run would never see the interrupt)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_run_resumes_and_stores_what_it_finished(project):
    out = project.root / "r.jsonl"
    (project.root / "slow").touch()  # each API call takes a second
    proc = subprocess.Popen([sys.executable, "-m", "xentcheck.cli", *project.argv(out)],
                            env=project.env(), stderr=subprocess.PIPE, preexec_fn=_as_from_a_shell)  # fmt: skip
    parts = project.root / "r.jsonl.parts"
    deadline = time.monotonic() + 120
    while not any(b'"kind":"done"' in f.read_bytes() for f in parts.glob("npcache*.jsonl")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, proc.stderr.read()
    finished = {r["instance"] for r in read_results(out)[1]}
    assert 0 < len(finished) < 4
    (project.root / "slow").unlink()
    header, rows = project.run("--resume")
    _, fresh = project.run("--no-cache", out="fresh.jsonl")
    assert strip(rows) == strip(fresh)
    assert header["cache"]["reused_rows"] == 0  # the finished part came from the parts
    assert computed(project.run()[0])[:2] == (10, 0)


@pytest.mark.torch
def test_torch_end_to_end_warm_run_starts_no_worker(tmp_path):
    (tmp_path / "cases").mkdir()
    shutil.copy(
        ROOT / "cases" / "log_softmax" / "basic.yaml", tmp_path / "cases" / "log_softmax.yaml"
    )
    argv = ["run", "--framework", "torch", "--cases", str(tmp_path / "cases"), "--quiet",
            "--fail-on", "never", "--jobs", "1", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    results = {}
    for name, extra in (("cold", []), ("warm", []), ("off", ["--no-cache"])):
        assert main([*argv, "--out", str(tmp_path / f"{name}.jsonl"), *extra]) == 0
        [header], rows = read_results(tmp_path / f"{name}.jsonl")
        results[name] = (header, strip(rows))
    (cold_h, cold), (warm_h, warm_rows), (_, off) = results["cold"], results["warm"], results["off"]
    assert cold and cold == warm_rows == off
    assert cold_h["cache"]["reused_rows"] == 0 and warm_h["cache"]["computed_rows"] == 0
    assert warm_h["cache"]["reused_rows"] == len(cold)
    timing = warm_h["frameworks"]["torch"]["timing"]
    assert timing["worker_wall_s"] == 0 and timing["instances"] == 0
    assert warm_h["frameworks"]["torch"]["versions"] == cold_h["frameworks"]["torch"]["versions"]
