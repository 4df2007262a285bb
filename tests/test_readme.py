"""The README's quick start, run as written, so it cannot drift from what xentcheck does.

The README marks its parts with HTML comments, each followed by one fenced block:
``<!-- quickstart -->`` the case file (``my_cases.yaml``), ``<!-- quickstart-commands -->``
the commands (one per line, each starting with ``xentcheck``), ``<!-- quickstart-output -->``
what they print. The test writes the case file in a fresh folder, runs each command there
with this environment's ``xentcheck``, and checks that every command exits 0, that the
report file it names exists, and that every line the README shows was printed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CASE_FILE = "my_cases.yaml"


def marked_block(text: str, marker: str) -> str:
    """The body of the fenced block right after ``<!-- marker -->`` (blank lines allowed)."""
    m = re.search(rf"^<!-- {re.escape(marker)} -->\s*\n```[^\n]*\n(.*?)^```\s*$", text, re.M | re.S)
    if m is None:
        raise AssertionError(f"README.md: no fenced block after <!-- {marker} -->")
    return m.group(1)


def quick_start(text: str) -> tuple[str, list[list[str]], list[str]]:
    """(case file text, commands as argument lists, output lines) of the README's quick start."""
    case_yaml = marked_block(text, "quickstart")
    commands = [
        shlex.split(line)
        for line in marked_block(text, "quickstart-commands").splitlines()
        if line.strip()
    ]
    output = [line for line in marked_block(text, "quickstart-output").splitlines() if line]
    return case_yaml, commands, output


def xentcheck_command() -> list[str]:
    """This environment's ``xentcheck`` script, or its entry point run by this interpreter."""
    script = Path(sys.executable).with_name("xentcheck")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from xentcheck.cli import main; sys.exit(main())"]


def test_quick_start_parts_are_found() -> None:
    case_yaml, commands, output = quick_start(README.read_text(encoding="utf-8"))
    assert case_yaml.lstrip().startswith("cases:")
    assert [c[:2] for c in commands] == [["xentcheck", "run"], ["xentcheck", "report"]]
    assert CASE_FILE in commands[0]
    assert output


def test_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="the README's quick start runs PyTorch")
    monkeypatch.delenv("XENTCHECK_CACHE_DIR", raising=False)  # the default cache, as a user has
    case_yaml, commands, shown = quick_start(README.read_text(encoding="utf-8"))
    (tmp_path / CASE_FILE).write_text(case_yaml, encoding="utf-8")
    printed = []
    for argv in commands:
        done = subprocess.run(
            [*xentcheck_command(), *argv[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr}"
        printed += (done.stdout + done.stderr).splitlines()
    report = commands[-1][commands[-1].index("-o") + 1]
    assert (tmp_path / report).is_file(), f"{report} was not written"
    missing = [line for line in shown if line not in printed]
    assert not missing, f"README shows lines the quick start did not print: {missing}\n{printed}"
