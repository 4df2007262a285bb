"""Every documented difference explains a real row, and only where its mechanism acts.

The examples of :mod:`tests.known.table` run through their framework's API the worker's
way (:mod:`tests.known.collect`: one process per framework, started once per session);
the tests then judge the recorded findings again here, calling the predicates so that an
exception propagates and fails the test. The same process reports the APIs the adapter
declares, which every API name and pattern of the framework's entries must name.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.known.table import EXAMPLES, Example
from xentcheck.adapters import REQUIRES
from xentcheck.known import SHARED_MODULES as NOT_FRAMEWORKS
from xentcheck.known import Finding, Known, entries, explain

ROOT = Path(__file__).resolve().parents[2]
KNOWN_DIR = ROOT / "src" / "xentcheck" / "known"

#: the modules of known/ that hold no framework's entries
SHARED_MODULES = ("__init__", *NOT_FRAMEWORKS)

#: the frameworks the examples run on (each marked by its name: tests/conftest.py skips a
#: framework's tests, with the reason, when the modules adapters.REQUIRES names are absent)
FRAMEWORKS = list(dict.fromkeys(ex.framework for ex in EXAMPLES))


def _all_entries() -> dict[str, list[Known]]:
    """framework -> its entries, for every ``known/<framework>.py``."""
    names = sorted(p.stem for p in KNOWN_DIR.glob("*.py") if p.stem not in SHARED_MODULES)
    return {n.replace("_", "-"): entries(n.replace("_", "-")) for n in names}


def _entry(ex: Example) -> Known:
    return next(k for k in entries(ex.framework) if k.id == ex.id)


def _case_file(ex: Example, folder: Path) -> None:
    case = yaml.safe_load(textwrap.dedent(ex.case))
    case.setdefault("dtypes", ["float64"])
    case.setdefault("description", f"{ex.id}: the mechanism acts")
    change = yaml.safe_load(ex.perturbed)
    perturbed = {**case, "description": f"{ex.id}: the mechanism taken away"}
    for key, value in change.items():
        merge = key in ("inputs", "params") and isinstance(value, dict)
        perturbed[key] = {**case.get(key, {}), **value} if merge else value
    folder.mkdir(parents=True)
    text = yaml.safe_dump({"cases": [{"id": "case", **case}, {"id": "perturbed", **perturbed}]})
    (folder / "cases.yaml").write_text(text)


class Runs:
    """The collected rows of each framework's examples, run on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, dict] = {}
        self.failed: dict[str, str] = {}  # a collection that failed fails every test after it
        self.stderr: dict[str, str] = {}

    def rows(self, framework: str) -> list[dict]:
        return self._collected(framework)["rows"]

    def apis(self, framework: str) -> list[str]:
        """The names of the APIs the framework's adapter declares."""
        return self._collected(framework)["apis"]

    def _collected(self, framework: str) -> dict:
        missing = [m for m in REQUIRES[framework] if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"{framework} needs {', '.join(missing)}, not installed")
        if framework in self.failed:
            pytest.fail(f"collecting {framework}'s examples failed:\n{self.failed[framework]}")
        if framework not in self.done:
            try:
                self.done[framework] = self._run(framework)
            except AssertionError as e:
                self.failed[framework] = str(e)
                raise
        return self.done[framework]

    def _run(self, framework: str) -> dict:
        base = self.root / framework
        base.mkdir(parents=True)
        plan = []
        for n, ex in enumerate(e for e in EXAMPLES if e.framework == framework):
            _case_file(ex, base / f"{n:02d}")
            plan.append({"key": ex.id, "api": ex.api, "cases": str(base / f"{n:02d}")})
        (base / "plan.json").write_text(json.dumps(plan))
        cmd = [sys.executable, "-m", "tests.known.collect", framework,
               str(base / "plan.json"), str(base / "rows.pickle")]  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        self.stderr[framework] = done.stderr
        return pickle.loads((base / "rows.pickle").read_bytes())


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("known-examples"))


def _params(examples: list[Example]) -> list:
    return [
        pytest.param(ex, id=ex.id, marks=[getattr(pytest.mark, ex.framework)])
        for ex in examples
    ]  # fmt: skip


def _rows(runs: Runs, ex: Example, variant: str) -> list[dict]:
    """The rows of the example's ``quantity`` for ``variant`` (``case`` / ``perturbed``)."""
    found = [
        r for r in runs.rows(ex.framework)
        if r["key"] == ex.id and r["row"]["case"].rsplit("/", 1)[-1] == variant
        and r["row"]["quantity"] == ex.quantity
    ]  # fmt: skip
    assert found, f"{ex.api} gave no {ex.quantity} row for the {variant} case"
    return found


def test_every_entry_has_an_example() -> None:
    """A documented difference without an example in the table fails here."""
    ids = {k.id for found in _all_entries().values() for k in found}
    examples = [ex.id for ex in EXAMPLES]
    assert len(examples) == len(set(examples)), "one example per entry id"
    assert ids - set(examples) == set(), "entries without an example in tests/known/table.py"
    assert set(examples) - ids == set(), "examples of entries that do not exist"
    for ex in EXAMPLES:  # the example runs where the entry is registered, on an API it covers
        assert _entry(ex).covers_api(ex.api), (ex.id, ex.api)


@pytest.mark.parametrize("ex", _params(EXAMPLES))
def test_the_entry_explains_a_real_row(runs: Runs, ex: Example) -> None:
    for r in _rows(runs, ex, "case"):
        row, f = r["row"], r["finding"]
        assert "known_errors" not in row, row["known_errors"]
        assert row.get("known_id") == ex.id, (row["status"], row.get("known_id"), row["message"])
        # judged again here: a predicate that raises fails this test
        assert isinstance(f, Finding)
        assert _entry(ex).when(f) is True
        assert explain(f).id == ex.id


@pytest.mark.parametrize("ex", _params(EXAMPLES))
def test_the_entry_does_not_explain_the_perturbed_row(runs: Runs, ex: Example) -> None:
    for r in _rows(runs, ex, "perturbed"):
        row, f = r["row"], r["finding"]
        assert "known_errors" not in row, row["known_errors"]
        assert row.get("known_id") != ex.id, row
        if f is not None:  # the row did not pass: it stays a discrepancy of its own
            assert _entry(ex).when(f) is False
            k = explain(f)
            assert k is None or k.id != ex.id


@pytest.mark.parametrize("ex", _params([ex for ex in EXAMPLES if ex.alter is not None]))
def test_the_entry_does_not_explain_other_numbers(runs: Runs, ex: Example) -> None:
    """The real finding, its numbers changed by what the mechanism does not produce."""
    for r in _rows(runs, ex, "case"):
        altered = ex.alter(r["finding"])
        assert _entry(ex).when(altered) is False
        k = explain(altered)
        assert k is None or k.id != ex.id


def _unmatched(framework: str, declared: list[str]) -> list[tuple[str, str]]:
    """(entry id, pattern) of every API name or pattern of the framework's entries that
    covers none of the ``declared`` API names (by the rule ``explain`` applies)."""
    return [
        (k.id, p) for k in entries(framework) for p in k.apis
        if not any(dataclasses.replace(k, apis=(p,)).covers_api(n) for n in declared)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "framework",
    [pytest.param(fw, marks=[getattr(pytest.mark, fw)]) for fw in _all_entries() if entries(fw)],
)
def test_every_api_pattern_names_a_declared_api(runs: Runs, framework: str) -> None:
    """An entry's API names come from the adapter's declarations: a renamed API (or a
    pattern that no longer matches) fails here instead of silently explaining nothing."""
    declared = runs.apis(framework)
    assert declared
    assert _unmatched(framework, declared) == []
    # the check sees a rename: an API that is the only one a pattern covers, renamed
    renamed = 0
    for k in entries(framework):
        for p in k.apis:
            one = dataclasses.replace(k, apis=(p,))
            hits = [n for n in declared if one.covers_api(n)]
            if len(hits) == 1:
                after = ["renamed-api" if n == hits[0] else n for n in declared]
                assert (k.id, p) in _unmatched(framework, after), (k.id, p)
                renamed += 1
    assert renamed


@pytest.mark.parametrize(
    "framework", [pytest.param(fw, marks=[getattr(pytest.mark, fw)]) for fw in FRAMEWORKS]
)
def test_no_predicate_raises_on_a_real_row(runs: Runs, framework: str) -> None:
    """Every entry of the framework judges every finding of its runs without raising."""
    judged = 0
    rows = runs.rows(framework)
    assert "its predicate raised" not in runs.stderr[framework]  # the worker's warning
    for r in rows:
        assert "known_errors" not in r["row"], r["row"]["known_errors"]
        if r["finding"] is not None:
            explain(r["finding"])
            for k in entries(framework):  # each predicate, past the API and status filters
                if k.covers_api(r["finding"].api):
                    k.when(r["finding"])
            judged += 1
    assert judged
