"""The suite's own rules, checked on its sources and on a small pytest run.

1. A test that needs a framework skips, with the reason, where the framework is absent.
   Checked two ways. A real pytest run with torch hidden shows that the markers of
   tests/conftest.py skip (and say why). A scan of every test module finds what needs a
   framework: an ``import`` of one of its packages, or a built-in framework name in a
   module that runs ``--framework NAME`` (a worker in a child process needs the framework
   as much as an import does); each need must be guarded by that framework's marker or
   ``pytest.importorskip`` on the test itself, or on the module for a need outside a test
   (a fixture, a helper, a constant). The scan cannot see which runs stop before loading
   the framework (a bad case file, a bad option): those tests are listed in
   :data:`NEEDS_NO_FRAMEWORK`, and a stale entry fails too.
2. No seed comes from the clock or the OS: no unseeded generator, no global ``random`` /
   ``np.random`` state, no seed computed from ``time``, ``os.urandom`` or ``uuid``, in
   tests/, bench/ and src/; Hypothesis runs derandomized (tests/conftest.py).
3. The shipped suite is arranged by loss only: every case file is
   ``cases/<loss>/<topic>.yaml`` and holds cases of that loss. A topic is a tag; the
   topics that select cases (``--skip-tag large-vocab``, the compiled modes'
   ``compiled-modes``) have one file per loss, holding exactly the cases with the tag.
   ``gpu-smoke`` (tools/gpu_check.py) is no topic: it marks representatives of several
   topics, in the files where they are.
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from xentcheck.adapters import REQUIRES
from xentcheck.adapters.compiled_modes import CASE_TAG
from xentcheck.harness.cases import load_cases

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
CONFTEST = TESTS / "conftest.py"

#: the top-level packages of the built-in frameworks
FRAMEWORK_MODULES = frozenset(m for mods in REQUIRES.values() for m in mods) | {"jaxlib"}

#: tests that name a framework on a command line that stops before loading it
NEEDS_NO_FRAMEWORK = {
    "tests/test_cli.py::test_broken_case_file_exits_2_without_traceback",
    "tests/test_cli.py::test_bad_adapter_spec_and_bad_timeout_are_one_line_errors",
    "tests/test_cli.py::test_run_checks_out_before_reading_cases",
    "tests/test_cli.py::test_fail_on_new_needs_a_baseline",
    "tests/test_cli.py::test_a_bad_known_file_stops_run_and_report_before_any_work",
    "tests/test_cli.py::test_a_bad_baseline_stops_run_before_any_work",
}


# --- 1. frameworks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """Packages ``modules`` needed at ``line``: inside test ``test`` (None: outside any
    test), or while the module is imported (``at_import``: only importorskip can guard)."""

    line: int
    test: str | None
    modules: frozenset[str]
    why: str
    at_import: bool = False


def _dotted(node: ast.AST) -> str:
    """``pytest.mark.torch`` for that attribute chain; "" for anything else."""
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return node.id if isinstance(node, ast.Name) else ""


def _guards(node: ast.AST) -> set[str]:
    """Packages guarded by what ``node`` holds: framework markers (each standing for the
    packages of its framework) and ``importorskip(...)``."""
    out: set[str] = set()
    for sub in ast.walk(node):
        name = _dotted(sub.func if isinstance(sub, ast.Call) else sub)
        marker = name.removeprefix("pytest.mark.")
        if marker in REQUIRES and name.startswith("pytest.mark."):
            out.update(REQUIRES[marker])
        if isinstance(sub, ast.Call) and name.endswith("importorskip") and sub.args:
            first = sub.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                out.add(first.value)
    return out


def _module_guards(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Packages guarded for the whole module: (by a module-level importorskip, which also
    guards the imports after it; by those and ``pytestmark``, which guard its tests)."""
    at_import: set[str] = set()
    marked: set[str] = set()
    for stmt in tree.body:
        targets = [t for t in getattr(stmt, "targets", [getattr(stmt, "target", None)]) if t]
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            marked |= _guards(stmt.value)
        elif isinstance(stmt, ast.Expr | ast.Assign) and "importorskip" in ast.dump(stmt):
            at_import |= _guards(stmt)
    return at_import, at_import | marked


def _after_flags(tree: ast.AST) -> Iterator[ast.expr]:
    """Every expression right after a ``"--framework"`` in a list, tuple or call's arguments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Call):
            seq = node.args if isinstance(node, ast.Call) else node.elts
            for flag, value in itertools.pairwise(seq):
                if isinstance(flag, ast.Constant) and flag.value == "--framework":
                    yield value


def _builtin_names(nodes: Iterable[ast.AST]) -> Iterator[ast.Constant]:
    return (n for n in nodes if isinstance(n, ast.Constant) and n.value in REQUIRES)


def _framework_runs(tree: ast.Module) -> Iterator[ast.Constant]:
    """Built-in names that reach a ``--framework`` option: ``"--framework", "torch"``; a
    name passed to a module function that puts a variable after ``"--framework"``; the
    names of a module-level list that a loop puts after ``"--framework"``."""
    flagged = {n.id for n in _after_flags(tree) if isinstance(n, ast.Name)}
    launchers = {
        f.name for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and any(isinstance(n, ast.Name) for n in _after_flags(f))
    }  # fmt: skip
    lists = {
        loop.iter.id for loop in ast.walk(tree)
        if isinstance(loop, ast.For) and isinstance(loop.iter, ast.Name)
        and isinstance(loop.target, ast.Name) and loop.target.id in flagged
    }  # fmt: skip
    yield from _builtin_names(_after_flags(tree))
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and _dotted(call.func) in launchers:
            yield from _builtin_names(call.args)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and {getattr(t, "id", None) for t in stmt.targets} & lists:
            yield from _builtin_names(ast.walk(stmt.value))


def _needs(tree: ast.Module) -> Iterator[Need]:
    """What in ``tree`` needs a framework, with the test (if any) it is in."""
    owner: dict[ast.AST, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name.startswith("test"):
            for sub in ast.walk(stmt):
                owner[sub] = stmt.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            mods = {n.partition(".")[0] for n in names if n} & FRAMEWORK_MODULES
            if mods and node.col_offset == 0:
                yield Need(node.lineno, None, frozenset(mods), "a module-level import", True)
            elif mods:
                yield Need(node.lineno, owner.get(node), frozenset(mods), "an import")
    for c in _framework_runs(tree):
        yield Need(
            c.lineno, owner.get(c), frozenset(REQUIRES[c.value]), f"runs --framework {c.value}"
        )


def unguarded(source: str, rel: str) -> list[str]:
    """``rel:line: why`` for each framework need in ``source`` that nothing skips."""
    tree = ast.parse(source)
    at_import, module = _module_guards(tree)
    tests = {
        s.name: _guards(ast.Module([*s.decorator_list, *s.body], []))
        for s in tree.body
        if isinstance(s, ast.FunctionDef) and s.name.startswith("test")
    }
    problems = []
    for need in _needs(tree):
        if need.test and f"{rel}::{need.test}" in NEEDS_NO_FRAMEWORK:
            continue
        if need.at_import:
            guarded, where = at_import, "use pytest.importorskip before it"
        else:
            guarded = module | (tests.get(need.test, set()) if need.test else set())
            where = f"test {need.test}" if need.test else "outside any test: guard the module"
        if not need.modules <= guarded:
            problems.append(f"{rel}:{need.line}: {need.why} ({where}) needs "
                            f"{sorted(need.modules - guarded)} unguarded")  # fmt: skip
    return problems


def _test_sources() -> Iterator[tuple[str, str]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_every_framework_need_in_the_tests_is_guarded_by_a_marker_or_importorskip():
    problems = [p for rel, src in _test_sources() for p in unguarded(src, rel)]
    assert problems == []


def test_the_exceptions_still_name_tests_that_run_a_framework():
    """A renamed or fixed test leaves no stale entry that would hide a later need."""
    named = set()
    for rel, src in _test_sources():
        tree = ast.parse(src)
        named |= {f"{rel}::{n.test}" for n in _needs(tree) if n.test}
    assert named >= NEEDS_NO_FRAMEWORK


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import torch\n", True),
        ('pytestmark = pytest.mark.torch\nimport torch\n', True),  # fails at collection
        ('pytest.importorskip("torch")\nimport torch.nn\n', False),
        ("from jax import numpy\n", True),
        ('torch = __import__("pytest").importorskip("torch")\n', False),
        ('import pytest\ntorch = pytest.importorskip("torch")\n', False),
        ('def test_a():\n    import torch\n', True),
        ('def test_a():\n    pytest.importorskip("torch")\n    import torch\n', False),
        ('@pytest.mark.torch\ndef test_a():\n    import torch\n', False),
        ('@pytest.mark.jax\ndef test_a():\n    import torch\n', True),
        ('pytestmark = [pytest.mark.jax]\ndef test_a():\n    from optax import losses\n', False),
        ('CMD = ["--framework", "tensorflow"]\ndef test_a():\n    run(CMD)\n', True),
        ('CMD = ["--framework", "tensorflow"]\ndef test_a():\n    pytest.importorskip("tensorflow")\n', True),
        ('pytestmark = [pytest.mark.tensorflow]\nCMD = ["--framework", "tensorflow"]\n', False),
        ('def test_a():\n    run("--framework", "jax")\n', True),
        ('def test_a():\n    run("--framework", "caffe")\n', False),
        ('def test_a():\n    rows = [{"framework": "torch"}]\n', False),
        ('def _run(fw):\n    return ["--framework", fw]\ndef test_a():\n    _run("jax")\n', True),
        ('FWS = ["jax"]\ndef test_a():\n    for fw in FWS:\n        cmd = ["--framework", fw]\n', True),
        ('FWS = ["jax"]\npytestmark = pytest.mark.jax\nfor fw in FWS:\n    c = ("--framework", fw)\n', False),
    ],
)  # fmt: skip
def test_the_scan_finds_unguarded_needs(source, found):
    assert bool(unguarded(source, "tests/x.py")) == found


def test_a_marked_test_skips_with_the_reason_when_its_framework_is_absent(tmp_path):
    """A real pytest run with this suite's conftest, torch hidden by a plugin loaded first
    (``None`` in sys.modules: find_spec gives None, ``import torch`` raises)."""
    (tmp_path / "hide_torch.py").write_text('import sys\nsys.modules["torch"] = None\n')
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text(encoding="utf-8"))
    (tmp_path / "test_needs_torch.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.mark.torch
        def test_uses_torch(needs_a_fixture):
            import torch  # fails here when the marker does not skip

        @pytest.fixture
        def needs_a_fixture():
            import torch  # and here, were the fixture set up first

        def test_needs_nothing():
            pass
        """))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "hide_torch", "-p", "no:cacheprovider",
         "-p", "no:xentcheck", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout
    assert "torch is not installed (needs torch)" in proc.stdout


def test_hypothesis_runs_derandomized_without_an_example_database(request):
    deterministic = settings.get_profile("deterministic")
    assert deterministic.derandomize and deterministic.database is None
    if request.config.getoption("hypothesis_profile", None) is None:  # not asked to explore
        assert settings.default.derandomize and settings.default.database is None


# --- 2. seeds ----------------------------------------------------------------------------

#: constructors and functions that take a seed
SEEDED = {"default_rng", "RandomState", "Random", "SeedSequence", "seed", "PCG64", "MT19937",
          "Philox", "SFC64", "manual_seed", "set_seed", "PRNGKey"}  # fmt: skip
#: calls whose result varies run to run
ENTROPY = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
           "now", "utcnow", "urandom", "uuid1", "uuid4", "getpid", "token_bytes",
           "randbits", "SystemRandom"}  # fmt: skip
#: the generators of np.random and random that are fine to call on the module
GENERATOR_FACTORIES = {"default_rng", "RandomState", "Generator", "SeedSequence", "Random",
                       "PCG64", "MT19937", "Philox", "SFC64", "BitGenerator"}  # fmt: skip


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    return (n for n in ast.walk(node) if isinstance(n, ast.Call))


def _entropy_in(node: ast.AST) -> str | None:
    for c in _calls(node):
        name = _dotted(c.func)
        if name.rpartition(".")[2] in ENTROPY:
            return name
    return None


def clock_seeds(source: str) -> list[str]:
    """``line: what`` for every seed in ``source`` that is missing or comes from the clock/OS."""
    tree = ast.parse(source)
    out = []
    for c in _calls(tree):
        name = _dotted(c.func)
        last = name.rpartition(".")[2]
        args = [*c.args, *(k.value for k in c.keywords)]
        if last in SEEDED and not args and name not in ("random.seed",):
            out.append(f"{c.lineno}: {name}() without a seed")
        elif name == "random.seed" and not args:
            out.append(f"{c.lineno}: random.seed() seeds from the OS")
        elif last in SEEDED and (src := _entropy_in(c)):
            out.append(f"{c.lineno}: {name}(...) seeded from {src}()")
        elif name.startswith(("random.", "np.random.", "numpy.random.")) and (
            last not in GENERATOR_FACTORIES and last not in SEEDED
        ):
            out.append(f"{c.lineno}: {name}() draws from the global, unseeded generator")
    for node in ast.walk(tree):  # seed = int(time.time()), then Random(seed)
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if any("seed" in n.lower() for n in names) and (src := _entropy_in(node.value)):
                out.append(f"{node.lineno}: {names[0]} comes from {src}()")
    return sorted(set(out), key=lambda s: int(s.partition(":")[0]))


def test_no_seed_in_tests_bench_or_src_comes_from_the_clock():
    found = [
        f"{p.relative_to(ROOT)}:{hit}"
        for folder in ("tests", "bench", "src")
        for p in sorted((ROOT / folder).rglob("*.py"))
        for hit in clock_seeds(p.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("seed = int(time.time())\nrng = random.Random(seed)\n", True),  # the old test_resume
        ("rng = np.random.default_rng()\n", True),
        ("rng = np.random.default_rng(time.time_ns())\n", True),
        ("random.seed()\n", True),
        ("np.random.seed(int.from_bytes(os.urandom(4)))\n", True),
        ("x = np.random.normal(size=3)\n", True),
        ("x = random.uniform(0, 1)\n", True),
        ("rng = np.random.default_rng(7)\nx = rng.normal(size=3)\n", False),
        ("rng = random.Random(seed)\nx = rng.uniform(0.1, 0.9)\n", False),
        ("t0 = time.monotonic()\nseconds = time.monotonic() - t0\n", False),
        ('key = jax.random.PRNGKey(0)\n', False),
    ],
)  # fmt: skip
def test_the_scan_finds_clock_and_missing_seeds(source, found):
    assert bool(clock_seeds(source)) == found


# --- 3. the suite by loss ----------------------------------------------------------------

#: topic file name -> the tag that stands for the topic
TOPIC_FILES = {"large_vocab": "large-vocab", "compiled_modes": CASE_TAG}


def misplaced(root: Path) -> list[str]:
    """``file:line: why`` for every case under ``root`` outside ``<its loss>/<topic>.yaml``,
    and for every case whose tag and topic file disagree (:data:`TOPIC_FILES`)."""
    out = []
    for case in load_cases([root]):
        rel = Path(case.source.file).relative_to(root)
        where = f"{rel.as_posix()}:{case.source.line}: case {case.id!r}"
        if rel.parts[:-1] != (case.loss,):
            out.append(f"{where} of {case.loss} belongs in {case.loss}/")
        for stem, tag in TOPIC_FILES.items():
            if (rel.stem == stem) != (tag in case.tags):
                out.append(f"{where}: the cases tagged {tag} are the ones in {stem}.yaml")
    return out


def test_every_shipped_case_sits_in_the_folder_of_its_loss():
    assert misplaced(ROOT / "cases") == []


def test_the_layout_check_finds_misplaced_cases(tmp_path):
    def case(path: str, loss: str, tags: str = "[]") -> None:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(
            f"cases:\n  - {{id: a, loss: {loss}, inputs: {{x: [1.0]}}, tags: {tags}}}\n"
        )

    case("sigmoid/basic.yaml", "sigmoid")
    case("sigmoid/large_vocab.yaml", "sigmoid", "[large-vocab]")
    case("errors/sigmoid.yaml", "sigmoid")
    case("log_sigmoid.yaml", "log_sigmoid")
    case("softmax/basic.yaml", "log_softmax")
    case("softmax/huge.yaml", "softmax", f"[{CASE_TAG}]")
    case("softmax/compiled_modes.yaml", "softmax")
    assert [line.split(":")[0] for line in misplaced(tmp_path)] == [
        "errors/sigmoid.yaml", "log_sigmoid.yaml", "softmax/basic.yaml",
        "softmax/compiled_modes.yaml", "softmax/huge.yaml",
    ]  # fmt: skip
