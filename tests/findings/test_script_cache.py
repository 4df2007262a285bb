"""The findings' script cache: a second ``findings`` (or ``report``) over unchanged results
writes no script anew and starts no child, gives the same findings byte for byte, and
each part of a script's key, changed alone, has the scripts it affects written again.
The page's own scripts look up the run's goldens and store none.

The adapter (``npscript``, written to the test's folder) is a NumPy sigmoid that is off by
a relative 1e-3, so every row is a finding, with a ``snippet``; each snippet it writes
adds a line to ``written.log`` next to it, and its ``setup()`` raises while a file
``forbid`` lies there (a child that starts then writes no script: the test sees it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xentcheck.cli import main
from xentcheck.harness import cache as cache_mod
from xentcheck.harness.goldens import GoldenCache
from xentcheck.harness.results import read_runs
from xentcheck.report.repro import bundle

ROOT = Path(__file__).resolve().parents[2]

ADAPTER = """\
from pathlib import Path

import numpy as np

from xentcheck.adapters.base import Api, Call, Framework, Output

HERE = Path(__file__).parent


def _setup():
    if (HERE / "forbid").exists():
        raise RuntimeError("a script child started although every script is cached")


def _sigmoid(call: Call) -> Output:
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    y = (1.0 / (1.0 + np.exp(-x))) * (1.0 + 1e-3)
    return Output(value=y, grads={}, out_dtype=call.dtype)


def _log_softmax(call: Call) -> Output:
    x = np.asarray(call.inputs["x"], dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    y = x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
    return Output(value=np.where(x > 5.0, np.nan, y), grads={}, out_dtype=call.dtype)


def _snippet(api: str, call: Call) -> str:
    with (HERE / "written.log").open("a") as log:
        log.write(f"{api} {call.dtype}\\n")
    x = np.asarray(call.inputs["x"], dtype=np.float64).tolist()
    return (
        "import numpy as np\\n"
        f"x = np.asarray({x!r}, dtype=np.{call.dtype})\\n"
        f"value = {api}(x)\\n"
        "grads = {}\\n"
    )


FRAMEWORK = Framework(
    name="npscript",
    apis=[Api("numpy.sigmoid", "sigmoid", _sigmoid),
          Api("numpy.log_softmax", "log_softmax", _log_softmax)],
    versions=lambda: {"numpy": np.__version__},
    devices=lambda: {"cpu": "numpy", "gpu": None},
    setup=_setup,
    snippet=_snippet,
)
"""

#: two case files, one finding each: the sigmoid is wrong, the log-softmax NaN above 5
CASES = {
    "a.yaml": """\
cases:
  - id: small
    description: a literal input
    loss: sigmoid
    inputs: {x: [-3.0, 0.5, 4.0]}
    dtypes: [float64, float32]
""",
    "b.yaml": """\
cases:
  - id: other
    description: another literal input
    loss: log_softmax
    inputs: {x: [[1.0, -2.0], [0.25, 8.0]]}
    params: {axis: -1}
    dtypes: [float64]
""",
}


class Project:
    """The adapter, the case files, the results and the cache folder of one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases = root / "cases"
        self.results = root / "r.jsonl"
        self.cache = root / "cache"
        self.log = root / "written.log"
        (root / "npscript.py").write_text(ADAPTER)
        self.cases.mkdir()
        for name, text in CASES.items():
            (self.cases / name).write_text(text)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.syspath_prepend(str(self.root))
        path = [str(self.root), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))

    def run(self, *cache: str) -> None:
        """Run the cases (``cache``: the options; default ``--no-cache``)."""
        assert main(["run", "--adapter", "npscript:FRAMEWORK", "--cases", str(self.cases),
                     "--out", str(self.results), "--quiet", "--fail-on", "never", "--jobs", "1",
                     *(cache or ["--no-cache"])]) == 0  # fmt: skip

    def findings(self, *extra: str) -> tuple[list[dict], int]:
        """(findings, scripts written by a child) of one ``xentcheck findings``."""
        before = self.written()
        out = self.root / "f.json"
        assert main(["findings", str(self.results), "-o", str(out),
                     "--cache-dir", str(self.cache), *extra]) == 0  # fmt: skip
        return json.loads(out.read_text()), self.written() - before

    def written(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def edit(self, change, header: bool = False) -> None:
        """Apply ``change`` to every row of the results file (to its header instead)."""
        rows = [json.loads(line) for line in self.results.read_text().splitlines()]
        for r in rows[:1] if header else rows[1:]:
            change(r)
        self.results.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    p = Project(tmp_path)
    p.env(monkeypatch)
    p.run()
    return p


def test_a_second_findings_writes_no_script_and_gives_the_same_bytes(project):
    cold, written = project.findings()
    assert written == len(cold) > 1 and all(f["repro"] for f in cold)
    (project.root / "forbid").touch()  # a child started now would write notes, not scripts
    warm, written = project.findings()
    assert written == 0 and warm == cold


def test_no_cache_writes_every_script_and_keeps_none(project):
    found, written = project.findings("--no-cache")
    assert written == len(found) and not project.cache.exists()


def _bump_timings(r: dict) -> None:
    r["elapsed_s"] = r.get("elapsed_s", 0.0) + 1.0


def _describe(r: dict) -> None:
    r["description"] = "edited"


def _edit_case_text(header: dict) -> None:
    """Case file b as the run recorded it (scripts rebuild inputs from that text)."""
    files = header["case_files"]
    [name] = [k for k in files if k.endswith("b.yaml")]
    files[name] = files[name].replace("another literal input", "edited")


def _edit_adapter(p: Project) -> None:
    path = p.root / "npscript.py"
    path.write_text(path.read_text() + "# edited\n")


#: part of the key -> (change, how many findings' scripts are written again: None = all;
#: editing case file b rewrites the script of its one finding)
PARTS = {
    "nothing": (lambda p, m: None, 0),
    "timings of the rows": (lambda p, m: p.edit(_bump_timings), 0),
    "a row field": (lambda p, m: p.edit(_describe), None),
    "the case file's text": (lambda p, m: p.edit(_edit_case_text, header=True), 1),
    "the adapter's source": (lambda p, m: _edit_adapter(p), None),
    "a steering environment variable": (
        lambda p, m: m.setenv("XLA_FLAGS", "--xla_dump_to=/x"),
        None,
    ),
}


@pytest.mark.parametrize("part", PARTS)
def test_changing_one_part_of_a_scripts_key_writes_exactly_the_scripts_it_affects(
    part, project, monkeypatch
):
    cold, _ = project.findings()
    change, again = PARTS[part]
    change(project, monkeypatch)
    cache_mod.script_writer_key.cache_clear()  # a command is one process: it keys once
    warm, written = project.findings()
    assert written == (len(warm) if again is None else again)
    if again == 0:  # the cached scripts are the ones written before
        assert [f["repro"] for f in warm] == [f["repro"] for f in cold]


def test_the_pages_scripts_read_the_runs_goldens_and_store_none(project):
    project.run("--cache-dir", str(project.cache))
    goldens = project.cache / "goldens"
    stored = sorted(goldens.rglob("*.npz"))
    assert stored
    headers, rows = read_runs([project.results])
    cached = GoldenCache(goldens, write=False)
    assert bundle(rows, headers, goldens=cached) == bundle(rows, headers)
    assert cached.hits > 0 and cached.misses == 0
    for path in stored:
        path.unlink()  # a golden the run did not keep is computed, and not stored
    none = GoldenCache(goldens, write=False)
    assert bundle(rows, headers, goldens=none) == bundle(rows, headers)
    assert none.misses > 0 and not list(goldens.rglob("*.npz"))


def test_what_writes_a_script_is_in_its_key():
    files, others = cache_mod.source_closure([cache_mod.SCRIPTS, cache_mod.adapter_module("torch")])
    for module in ("xentcheck.findings.scripts", "xentcheck.findings.repro",
                   "xentcheck.findings.instances", "xentcheck.adapters.torch_adapter",
                   "xentcheck.reference", "xentcheck.harness.worker"):  # fmt: skip
        assert module in files, module
    assert "torch" in others and "numpy" in others
