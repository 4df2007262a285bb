"""Rules every test here follows: a framework that is absent skips, and no run rests on luck.

Frameworks. A test that needs a framework carries its marker (``@pytest.mark.torch``, or
``pytestmark = [pytest.mark.torch, pytest.mark.jax]`` for a module); where its packages
(:data:`xentcheck.adapters.REQUIRES`) are not installed, it is skipped with the reason
``torch is not installed (needs torch)``, before any fixture runs. The markers are the
built-in framework names; ``pytest -m torch`` selects the tests of one framework.
A module that imports a framework at import time uses ``pytest.importorskip`` instead.

Seeds. Hypothesis runs derandomized (examples derived from each test, no example
database), so two runs of the suite test the same inputs; ``--hypothesis-profile
explore`` searches afresh. Tests that need a seed take the ``seed`` fixture: a fixed
number derived from the test's id, never from the clock.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import settings

from xentcheck.adapters import REQUIRES, _importable

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None)
settings.load_profile("deterministic")


def missing(framework: str) -> str | None:
    """Why ``framework`` (a built-in name) cannot run here, or None when it can."""
    absent = [m for m in REQUIRES[framework] if not _importable(m)]
    if not absent:
        return None
    return f"{framework} is not installed (needs {', '.join(absent)})"


def pytest_configure(config: pytest.Config) -> None:
    for name, modules in REQUIRES.items():
        config.addinivalue_line("markers", f"{name}: needs {' and '.join(modules)}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, with the reason, every test marked with a framework that is not installed."""
    reasons = {name: missing(name) for name in REQUIRES}
    for item in items:
        why = [
            reasons[n] for n in dict.fromkeys(m.name for m in item.iter_markers()) if reasons.get(n)
        ]
        if why:
            item.add_marker(pytest.mark.skip(reason="; ".join(why)))


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """A seed fixed by the test's id (the same on every run and machine), never the clock."""
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture(autouse=True)
def _own_result_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Each test's runs keep their result cache in a folder of their own, never the cwd's."""
    monkeypatch.setenv("XENTCHECK_CACHE_DIR", str(tmp_path_factory.mktemp("xentcheck-cache")))
