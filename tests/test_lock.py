"""The locks (requirements/lock.txt, the GPU lock requirements/gpu.txt, the version sets'
requirements/versions/*.txt): the running environment holds exactly its lock's versions, and
every lock agrees with its inputs (constraints.txt, a version set's pins, the virtualenv seed,
pyproject's build-system requires) and differs from the main lock only where those make it.

The first test checks the environment it runs in, so it runs where tox.ini says the
environment is locked (``XENTCHECK_LOCKED_ENV=1``, set for every tox environment) and skips
in a hand-made development venv, which holds tools the lock does not. The rest hold
everywhere: they read the committed files, or feed tools/lock.py's checks deliberately wrong
files and installed distributions, so that a check that cannot fail would show here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xentcheck_lock_tool", ROOT / "tools/lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


lock = _load_lock_tool()
INPUTS = (
    lock.CONSTRAINTS,
    lock.PYPROJECT,
    lock.SEED,
    lock.LOCK,
    lock.GPU_IN,
    lock.GPU_LOCK,
    *(p.relative_to(ROOT).as_posix() for p in sorted((ROOT / lock.VERSIONS).iterdir())),
)
VERSION_SETS = lock.version_sets(ROOT)


@pytest.mark.skipif(
    os.environ.get("XENTCHECK_LOCKED_ENV") != "1",
    reason="not a locked environment: tox sets XENTCHECK_LOCKED_ENV=1 (run `tox -e tests`)",
)
def test_installed_distributions_match_the_lock() -> None:
    installed_from = os.environ.get("PIP_CONSTRAINT", str(ROOT / lock.LOCK))
    assert lock.check(ROOT, installed_from) == []


def test_vendored_copies_on_sys_path_are_not_installs() -> None:
    """setuptools puts its _vendor folder (wheel, packaging, ...) on sys.path once imported."""
    pytest.importorskip("setuptools", reason="needs setuptools, which vendors its dependencies")
    import setuptools  # noqa: F401  (imports put setuptools/_vendor on sys.path)

    vendored = [d for d in importlib.metadata.distributions() if "_vendor" in str(d._path)]
    if not vendored:
        pytest.skip("this setuptools vendors nothing on sys.path")
    found = {str(d._path) for d in lock.installed_distributions()}
    assert not found.intersection(str(d._path) for d in vendored)


def test_every_lock_agrees_with_its_inputs() -> None:
    """Each lock set's pins, labels and gpu.in, and no difference from the main lock that its
    inputs do not explain."""
    assert [s.name for s in lock.lock_sets(ROOT)][:2] == ["main", "gpu"]
    assert {s.name for s in VERSION_SETS} >= {
        "jax-0.9.2",
        "jax-0.8.3",
        "tensorflow-2.20.0",
        "onnxruntime-1.30.0",
    }
    problems = lock.consistency_problems(ROOT)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lockset", [lock.MAIN, *VERSION_SETS], ids=lambda s: s.name)
def test_torch_is_locked_at_its_cpu_build(lockset) -> None:
    pins = lock.read_pins(ROOT / lockset.lock)
    constraint = lock.read_pins(ROOT / lock.CONSTRAINTS)["torch"].version
    assert constraint.local is None  # constraints.txt names the public release
    assert pins["torch"].version.public == constraint.public
    assert pins["torch"].version.local == "cpu"


def _differences(lockset) -> dict[str, tuple[str | None, str | None]]:
    main, here = lock.read_pins(ROOT / lock.LOCK), lock.read_pins(ROOT / lockset.lock)
    return {
        name: (str(main[name].version) if name in main else None,
               str(here[name].version) if name in here else None)
        for name in main.keys() | here.keys()
        if name not in main or name not in here or main[name].version != here[name].version
    }  # fmt: skip


@pytest.mark.parametrize("lockset", VERSION_SETS, ids=lambda s: s.name)
def test_a_version_set_differs_from_the_main_lock_where_its_pins_do(lockset) -> None:
    """Every pin of the set is in its lock at the set's version, the main lock has another
    one, and every other difference is a package that a pinned package requires."""
    pins = lock.read_pins(ROOT / lockset.overrides)
    differences = _differences(lockset)
    assert pins and set(pins) <= set(differences)
    for name, pin in pins.items():
        assert differences[name][1] == str(pin.version)
    via = lock.read_via(ROOT / lockset.lock)
    for name in set(differences) - set(pins):
        assert name in via, f"{name} is gone from {lockset.lock}: nothing else may go"
        assert via[name] & set(differences), f"{name} differs, and no changed package needs it"


def test_the_version_sets_are_the_issues_matrix() -> None:
    """JAX at two earlier minors with their optax, TensorFlow 2.20 with Keras and tf-keras,
    an earlier ONNX Runtime: each set's own lock holds them."""
    wanted = {
        "jax-0.9.2": {"jax": "0.9.2", "jaxlib": "0.9.2", "optax": "0.2.7"},
        "jax-0.8.3": {"jax": "0.8.3", "jaxlib": "0.8.3", "optax": "0.2.6"},
        "tensorflow-2.20.0": {"tensorflow": "2.20.0", "keras": "3.11.3", "tf-keras": "2.20.1"},
        "onnxruntime-1.30.0": {"onnxruntime": "1.30.0", "onnx": "1.23.2"},
    }
    for name, versions in wanted.items():
        pins = lock.read_pins(ROOT / f"{lock.VERSIONS}/{name}.txt")
        assert {n: str(pins[n].version) for n in versions} == versions, name


def test_the_gpu_lock_pins_the_cuda_builds() -> None:
    """PyPI's own torch (never +cpu), tensorflow with its and-cuda packages, jax with its CUDA
    12 plugin, onnxruntime-gpu in place of onnxruntime: each at constraints.txt's version."""
    constraints = {n: p.version for n, p in lock.read_pins(ROOT / lock.CONSTRAINTS).items()}
    gpu = lock.read_pins(ROOT / lock.GPU_LOCK)
    via = lock.read_via(ROOT / lock.GPU_LOCK)
    assert gpu["torch"].version == constraints["torch"]
    assert gpu["torch"].version.local is None
    assert gpu["tensorflow"].version == constraints["tensorflow"]
    assert gpu["jax"].version == constraints["jax"]
    assert gpu["jax-cuda12-plugin"].version == constraints["jax"]
    assert "jax" in via["jax-cuda12-plugin"]
    assert gpu["onnxruntime-gpu"].version == constraints["onnxruntime"]
    assert "onnxruntime" not in gpu
    cuda = {n for n in gpu if n.startswith("nvidia-")}
    assert any("tensorflow" in via[n] for n in cuda), "tensorflow[and-cuda] pulls nothing"
    assert any("torch" in via[n] for n in cuda), "torch is not a CUDA build"
    assert not {n for n in lock.read_pins(ROOT / lock.LOCK) if n.startswith("nvidia-")}
    requirements = (ROOT / lock.GPU_IN).read_text().splitlines()
    assert f"torch==={constraints['torch']}" in requirements  # `===`: never the +cpu build
    assert f"tensorflow[and-cuda]=={constraints['tensorflow']}" in requirements
    assert f"jax[cuda12]=={constraints['jax']}" in requirements
    assert lock.gpu_set(ROOT).drop_extras == ("onnxruntime",)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the lock and its inputs, to break one at a time."""
    for name in INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _pin_line(path: Path, name: str) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith(f"{name}=="))


JAX_SET = f"{lock.VERSIONS}/jax-0.8.3"


@pytest.mark.parametrize(
    ("file", "old", "new", "named"),
    [
        (lock.CONSTRAINTS, "jax==", "jax==0.0.1\n#", "constraints.txt pins 0.0.1"),
        (lock.CONSTRAINTS, "keras==", "keras>=", "not an exact pin"),
        (lock.SEED, "pip==", "pip==1.0\n#", "requirements/seed.in pins 1.0"),
        (lock.PYPROJECT, '"setuptools==', '"setuptools>=', "not an exact pin"),
        (lock.PYPROJECT, '"setuptools==', '"setuptools==1.0", "x==', "lacks it"),
        (lock.LOCK, "torch==2.13.0+cpu", "torch==2.13.0", "torch==2.13.0 is not the +cpu build"),
        (lock.LOCK, "numpy==", "numpy==1.0+local\n#", "numpy==1.0+local is a local build"),
        # a version set: its pins, its torch, a pin of no framework, a stray difference
        (f"{JAX_SET}.in", "optax==0.2.6", "optax==0.2.5", "jax-0.8.3.in pins 0.2.5"),
        (f"{JAX_SET}.in", "optax==", "numpy==1.0\n#", "numpy is not pinned in constraints.txt"),
        (f"{JAX_SET}.txt", "torch==2.13.0+cpu", "torch==2.13.0", "is not the +cpu build"),
        (f"{JAX_SET}.txt", "\npyyaml==", "\npyyaml==1.0\n#", "pyyaml==1.0 differs from"),
        (f"{JAX_SET}.txt", "\npyyaml==", "\n#", "lacks pyyaml=="),
        # the GPU lock: its CUDA builds, and the gpu.in it is resolved from
        (lock.GPU_LOCK, "torch==2.13.0\n", "torch==2.13.0+cpu\n", "not PyPI's own (CUDA) wheel"),
        (lock.GPU_LOCK, "\nonnxruntime-gpu==", "\nonnxruntime==", "GPU build onnxruntime-gpu"),
        (lock.GPU_LOCK, "\njax-cuda12-plugin==", "\n#", "differs from"),
        (lock.GPU_IN, "torch===", "torch==", "requirements/gpu.in:1: not what constraints.txt"),
        (lock.CONSTRAINTS, "tensorflow==", "tensorflow==2.20.0\n#", "gpu.in:1: not what"),
    ],
)
def test_a_disagreeing_input_is_named(tree: Path, file: str, old: str, new: str, named: str):
    _edit(tree / file, old, new)
    problems = lock.consistency_problems(tree)
    assert any(named in p for p in problems), problems


def test_a_missing_lock_is_named_with_its_refresh(tree: Path) -> None:
    (tree / f"{JAX_SET}.txt").unlink()
    assert lock.consistency_problems(tree) == [
        f"{JAX_SET}.txt:1: missing (run `{lock.REFRESH} --only jax-0.8.3`)"
    ]


def test_a_version_set_of_another_torch_build_names_its_label(tree: Path) -> None:
    """docs/versions.md: `torch==2.13.0+cu126` in a set asks for that build, not +cpu."""
    name = "torch-2.13.0-cu126"
    (tree / lock.VERSIONS / f"{name}.in").write_text("torch==2.13.0+cu126\n")
    (tree / lock.VERSIONS / f"{name}.txt").write_text((tree / lock.LOCK).read_text())
    sets = {s.name: s for s in lock.lock_sets(tree)}
    assert dict(sets[name].labels) == {"torch": "cu126"}
    assert dict(sets["jax-0.8.3"].labels) == {"torch": "cpu"}
    problems = lock.lock_problems(sets[name], tree)
    assert len(problems) == 1, problems
    assert "torch==2.13.0+cpu is not the +cu126 build (PyTorch's index" in problems[0]
    _edit(tree / lock.VERSIONS / f"{name}.txt", "torch==2.13.0+cpu", "torch==2.13.0+cu126")
    assert lock.lock_problems(sets[name], tree) == []


def test_a_new_version_set_file_is_a_lock_set(tree: Path) -> None:
    (tree / lock.VERSIONS / "onnxruntime-1.29.0.in").write_text("onnxruntime==1.29.0\n")
    sets = {s.name: s for s in lock.lock_sets(tree)}
    assert sets["onnxruntime-1.29.0"].lock == f"{lock.VERSIONS}/onnxruntime-1.29.0.txt"
    assert sets["onnxruntime-1.29.0"].overrides == f"{lock.VERSIONS}/onnxruntime-1.29.0.in"
    assert lock.consistency_problems(tree) == [
        f"{lock.VERSIONS}/onnxruntime-1.29.0.txt:1: missing "
        f"(run `{lock.REFRESH} --only onnxruntime-1.29.0`)"
    ]


def test_a_missing_constraint_pin_is_named(tree: Path) -> None:
    line = _pin_line(tree / lock.LOCK, "onnx")
    _edit(tree / lock.LOCK, line + "\n", "")
    problems = lock.consistency_problems(tree)
    assert any("constraints.txt pins onnx==" in p and "lacks it" in p for p in problems)


class _Dist(importlib.metadata.Distribution):
    """An installed distribution as importlib.metadata reads it, from its METADATA text."""

    def __init__(self, name: str, version: str) -> None:
        self._text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"

    def read_text(self, filename: str) -> str | None:
        return self._text if filename == "METADATA" else None

    def locate_file(self, path: str | Path) -> Path:
        return Path(path)


def test_the_environment_is_checked_against_the_lock_it_installs_from() -> None:
    problems = lock.check(ROOT, "requirements/tox.txt")
    assert problems == [
        "requirements/tox.txt:1: not a lock that tools/lock.py writes (one of "
        + ", ".join(s.lock for s in lock.lock_sets(ROOT))
        + ")"
    ]
    pins = lock.read_pins(ROOT / lock.GPU_LOCK)
    torch = str(pins["torch"].version)
    offenders = lock.installed_offenders(
        pins, [_Dist("torch", f"{torch}+cpu")], "xentcheck", lock.GPU_LOCK
    )
    assert offenders == [
        f"{lock.GPU_LOCK}:{pins['torch'].line}: torch {torch}+cpu is installed, the lock pins "
        f"{torch} (recreate the environment: tox -r -e NAME)"
    ]


def test_each_offending_distribution_is_named() -> None:
    pins = lock.read_pins(ROOT / lock.LOCK)
    numpy = str(pins["numpy"].version)
    installed = [
        _Dist("numpy", numpy),  # as locked
        _Dist("PyYAML", "0.1"),  # another version
        _Dist("torch", "2.13.0"),  # the CUDA build of the locked release
        _Dist("not-in-any-lock", "1.0"),  # not locked at all
        _Dist("XentCheck", "0.1.0"),  # the project: exempt
    ]
    offenders = lock.installed_offenders(pins, installed, "xentcheck")
    assert len(offenders) == 3, offenders
    text = "\n".join(offenders)
    assert f"pyyaml 0.1 is installed, the lock pins {pins['pyyaml'].version}" in text
    assert "torch 2.13.0 is installed, the lock pins 2.13.0+cpu" in text
    assert "not-in-any-lock 1.0 is installed but not locked" in text
