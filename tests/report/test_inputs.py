"""``xentcheck report`` checks its input first: a file that is not a results file, or an
output path that cannot be written, is one line ``file[:line]: reason (fix)`` and exit 2,
with no traceback and no report written."""

import json
import os
from pathlib import Path

import pytest

from tests.report import synthetic as syn
from xentcheck.cli import main
from xentcheck.harness.results import ResultsError, read_results

HEADER = json.dumps(syn.header()) + "\n"
ROW = json.dumps(syn.row("a/one", "torch")) + "\n"
DROP = object()


def _row(**changes) -> str:
    """A results file: the header, then one row with ``changes`` (``DROP`` deletes a key)."""
    row = {**syn.row("a/b", "torch"), **changes}
    return HEADER + json.dumps({k: v for k, v in row.items() if v is not DROP}) + "\n"


#: name -> (file text, line the error names or None, words the reason holds)
BAD_RESULTS = {
    "empty": ("", None, "empty results file"),
    "blank lines only": ("\n  \n", None, "empty results file"),
    "truncated row": (HEADER + ROW + ROW[:40], 3, "truncated"),
    "truncated header": (HEADER[:30], 1, "truncated"),
    "not JSON": ("hello, world\n", 1, "not JSON"),
    "not JSON after rows": (HEADER + ROW + "{oops\n" + ROW, 3, "not JSON"),
    "not UTF-8": (HEADER.encode() + b"\xff\xfe\n", 2, "not UTF-8"),
    "no header": (ROW, 1, "not a run header"),
    "foreign first line": ('{"name": "x", "value": 1}\n', 1, "not a run header"),
    "header with a wrong kind": (
        '{"kind": "run", "xentcheck_version": 1}\n',
        1,
        "xentcheck_version is 1, not a string",
    ),
    "foreign row": (HEADER + ROW + '{"name": "x", "value": 1}\n', 3, "no case, instance, loss"),
    "row missing a key": (_row(status=DROP), 2, "not a xentcheck result: no status ("),
    "row with a null status": (_row(status=None), 2, "status is None, not a string"),
    "row with a wrong kind": (_row(max_ulp="big"), 2, "max_ulp is 'big', not a number or null"),
    "row with a boolean number": (_row(max_ulp=True), 2, "max_ulp is True, not a number"),
    "unknown status": (_row(status="fine"), 2, "unknown status 'fine'"),
    "a list, not an object": (HEADER + "[1, 2]\n", 2, "not a JSON object"),
    "two runs in one file": (HEADER + ROW + HEADER + ROW, 3, "a second run header"),
}


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def good(tmp_path) -> Path:
    return _write(tmp_path / "good.jsonl", HEADER + ROW)


@pytest.mark.parametrize("name", BAD_RESULTS)
@pytest.mark.parametrize("role", ["results", "baseline"])
def test_a_bad_results_file_is_one_line_naming_file_and_line(name, role, tmp_path, good, capsys):
    text, line, words = BAD_RESULTS[name]
    bad = _write(tmp_path / "bad.jsonl", text)
    out = tmp_path / "report" / "index.html"
    argv = ["report", str(bad), "-o", str(out)]
    if role == "baseline":
        argv = ["report", str(good), "-o", str(out), "--baseline", str(bad)]
    assert main(argv) == 2
    where = f"{bad}:{line}" if line else str(bad)
    err = _one_error(capsys)
    assert err.startswith(f"xentcheck: error: {where}: "), err
    assert words in err and err.endswith(")"), err  # the reason, then the fix
    assert not out.parent.exists()  # no report, not even its folder


@pytest.mark.parametrize("name", BAD_RESULTS)
def test_read_results_raises_results_error_with_file_and_line(name, tmp_path):
    text, line, words = BAD_RESULTS[name]
    bad = _write(tmp_path / "bad.jsonl", text)
    with pytest.raises(ResultsError) as info:
        read_results(bad)
    assert (info.value.path, info.value.line) == (str(bad), line)
    assert words in info.value.message


def test_a_folder_or_a_missing_file_is_not_a_results_file(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    for path, words in [(tmp_path / "runs", "a folder, not a results file"),
                        (tmp_path / "nope.jsonl", "no such results file")]:  # fmt: skip
        assert main(["report", str(path), "-o", str(tmp_path / "r" / "i.html")]) == 2
        assert _one_error(capsys).startswith(f"xentcheck: error: {path}: {words} (")
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads and writes whatever the permissions say")  # fmt: skip
def test_an_unreadable_results_file_and_an_unwritable_folder(tmp_path, good, capsys):
    locked = _write(tmp_path / "locked.jsonl", HEADER + ROW)
    locked.chmod(0)
    assert main(["report", str(locked), "-o", str(tmp_path / "i.html")]) == 2
    assert _one_error(capsys).startswith(f"xentcheck: error: {locked}: cannot read it: ")
    shut = tmp_path / "shut"
    shut.mkdir(mode=0o555)
    assert main(["report", str(good), "-o", str(shut / "i.html")]) == 2
    assert _one_error(capsys).startswith(f"xentcheck: error: {shut / 'i.html'}: -o: cannot write")
    assert list(shut.iterdir()) == []


def test_a_header_without_rows_is_a_results_file(tmp_path):
    """A run that selected no instance writes only its header: that is a report, not an error."""
    only = _write(tmp_path / "only.jsonl", HEADER)
    assert read_results(only) == ([syn.header()], [])
    assert main(["report", str(only), "-o", str(tmp_path / "i.html")]) == 0
    assert (tmp_path / "i.html").read_text(encoding="utf-8").startswith("<!")


def test_a_complete_last_line_without_newline_is_not_truncated(tmp_path):
    whole = _write(tmp_path / "whole.jsonl", HEADER + ROW.rstrip("\n"))
    assert read_results(whole) == ([syn.header()], [syn.row("a/one", "torch")])


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("afile/index.html", "-o: {tmp}/afile is a file, not a folder (choose another path)"),
        (
            "afile/deeper/index.html",
            "-o: {tmp}/afile is a file, not a folder (choose another path)",
        ),
        ("adir", "-o names a folder (name a file in it)"),
    ],
)
def test_a_bad_output_path_is_one_line_and_nothing_is_written(
    output, words, tmp_path, good, capsys
):
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "adir").mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert main(["report", str(good), "-o", str(tmp_path / output)]) == 2
    expected = f"xentcheck: error: {tmp_path / output}: " + words.format(tmp=tmp_path)
    assert _one_error(capsys) == expected
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "afile").read_text() == "keep me\n"


def test_a_bad_markdown_path_is_checked_before_the_report_is_written(tmp_path, good, capsys):
    (tmp_path / "afile").write_text("")
    page = tmp_path / "index.html"
    md = tmp_path / "afile" / "table.md"
    assert main(["report", str(good), "-o", str(page), "--markdown", str(md)]) == 2
    assert _one_error(capsys).startswith(f"xentcheck: error: {md}: --markdown: ")
    assert not page.exists()


def test_a_missing_readme_is_checked_before_the_report_is_written(tmp_path, good, capsys):
    page = tmp_path / "index.html"
    readme = tmp_path / "README.md"
    assert main(["report", str(good), "-o", str(page), "--readme", str(readme)]) == 2
    assert _one_error(capsys).startswith(f"xentcheck: error: {readme}: --readme names no file (")
    assert not page.exists()


def test_a_readme_without_the_generated_block_is_refused_before_writing(tmp_path, good, capsys):
    page = tmp_path / "index.html"
    readme = tmp_path / "README.md"
    readme.write_text("# a project\n\nno markers here\n")
    assert main(["report", str(good), "-o", str(page), "--readme", str(readme)]) == 2
    assert _one_error(capsys).startswith(f"xentcheck: error: {readme}: no generated block (")
    assert not page.exists()
    assert readme.read_text() == "# a project\n\nno markers here\n"
