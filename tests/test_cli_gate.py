"""``run --known`` and ``--fail-on new --baseline`` on real torch runs of a case whose
torch result is an ``error`` no built-in entry explains, and ``findings --known``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_cli import _xentcheck
from xentcheck.cli import main

pytestmark = pytest.mark.torch  # skipped, with the reason, where torch is not installed

SCALAR_AXIS = """\
cases:
  - id: scalar-axis
    description: logsumexp over axis 0 of a 0-d input.
    loss: logsumexp
    inputs: {x: 1.5}
    params: {axis: 0}
    dtypes: [float64]
    expect_error: true
    tags: [gate]
"""

#: a user's entry that explains it
MY_KNOWN = """\
- id: my-torch-lse-scalar-axis
  framework: torch
  apis: [torch.logsumexp]
  explanation: We accept axis 0 of a 0-d tensor, as torch does.
  link: https://example.org/our-kernel#lse
  statuses: [error]
  when: {expect_error: true, params: {axis: 0}}
"""


def _run(tmp, name: str, *argv: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp / f"{name}.jsonl"
    proc = _xentcheck("run", "--framework", "torch", "--cases", str(tmp / "cases.yaml"),
                      "--no-cache", "--quiet", "--out", str(out), *argv)  # fmt: skip
    return proc, out


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """A folder with the case file, the user's known file, a run of the case without the
    known file (``plain``) and a run that selected nothing (``empty``: no findings)."""
    tmp = tmp_path_factory.mktemp("gate")
    (tmp / "cases.yaml").write_text(SCALAR_AXIS)
    (tmp / "mine.yaml").write_text(MY_KNOWN)
    plain, _ = _run(tmp, "plain")
    empty, _ = _run(tmp, "empty", "--skip-tag", "gate")
    assert empty.returncode == 0, empty.stderr
    return tmp, plain


def _torch_rows(path: Path) -> list[dict]:
    from xentcheck.harness.results import read_results

    return [r for r in read_results(path)[1] if r["framework"] == "torch"]


def test_a_users_known_entry_explains_a_real_torch_row(gate):
    tmp, plain = gate
    assert plain.returncode == 1, plain.stderr  # unexplained without the user's file
    (row,) = _torch_rows(tmp / "plain.jsonl")
    assert row["status"] == "error" and "known_id" not in row
    # with it: known, under the user's id, like a built-in entry; and a finding that is new
    # against the baseline but explained does not fail --fail-on new
    proc, out = _run(tmp, "known", "--known", str(tmp / "mine.yaml"),
                     "--fail-on", "new", "--baseline", str(tmp / "empty.jsonl"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = _torch_rows(out)
    assert row["status"] == "known" and row["unexplained_status"] == "error"
    assert row["known_id"] == "my-torch-lse-scalar-axis"
    assert row["link"] == "https://example.org/our-kernel#lse"
    assert row["explanation"] == "We accept axis 0 of a 0-d tensor, as torch does."


def test_fail_on_new_fails_only_on_findings_the_baseline_lacks(gate):
    tmp, _ = gate
    same, _ = _run(tmp, "same", "--fail-on", "new", "--baseline", str(tmp / "plain.jsonl"))
    assert same.returncode == 0, same.stderr  # the baseline has the same finding
    assert "0 new and unexplained" in same.stderr and "1 unchanged" in same.stderr, same.stderr
    new, _ = _run(tmp, "new", "--fail-on", "new", "--baseline", str(tmp / "empty.jsonl"))
    assert new.returncode == 1, new.stderr  # the baseline found nothing
    assert "1 new and unexplained" in new.stderr, new.stderr
    assert "xentcheck: new: " in new.stderr, new.stderr


def test_findings_reads_a_users_known_file(gate, capsys):
    """``findings --known FILE``: the same checks, and the entries explain the rows."""
    import json

    from tests.known.test_user import BAD, bad_file

    tmp, _ = gate
    _, name, text, line, words = BAD[0]
    bad = bad_file(tmp, name, text)
    assert main(["findings", str(tmp / "plain.jsonl"), "--known", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xentcheck: error: {bad}:{line}: ") and err.count("\n") == 1, err
    assert words in err
    assert main(["findings", str(tmp / "plain.jsonl"), "--format", "json"]) == 0
    (unexplained,) = json.loads(capsys.readouterr().out)
    assert unexplained["known"] is None
    argv = [
        "findings",
        str(tmp / "plain.jsonl"),
        "--format",
        "json",
        "--known",
        str(tmp / "mine.yaml"),
    ]
    assert main(argv) == 0
    (explained,) = json.loads(capsys.readouterr().out)
    assert explained["known"] == "my-torch-lse-scalar-axis"
