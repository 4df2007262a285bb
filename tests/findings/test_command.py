"""``xentcheck findings``: formats, baseline, bad input (one line, exit 2)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xentcheck.findings import command

HEADER = {
    "kind": "run",
    "xentcheck_version": "0",
    "frameworks": {"myfw": {"versions": {"myfw": "1.0"}}},
}


def _row(api: str, case: str, status: str = "mismatch", **extra) -> dict:
    return {
        "case": case, "instance": case, "loss": "softmax_cross_entropy", "params": {},
        "framework": "myfw", "api": api, "device": "cpu", "dtype": "float32",
        "quantity": "value", "status": status, "max_abs_err": 1.0, "max_rel_err": 0.5,
        "max_ulp": 3e6, "expected": [2.0], "actual": [3.0], "index": [], "shape": [],
        **extra,
    }  # fmt: skip


def _results(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(x) for x in [HEADER, *rows]) + "\n")
    return str(path)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    code = command.run(parser.parse_args(["findings", *argv]))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_text_opens_on_counts_then_findings_by_framework_most_severe_first(tmp_path, capsys):
    rows = [
        _row("myfw.a", "c/1"),
        _row("myfw.b", "c/1", status="known", known_id="k", explanation="Ours.", link="L"),
    ]
    code, out, _ = _run(capsys, _results(tmp_path / "r.jsonl", rows))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("2 findings (1 unexplained, covering 2 rows): wrong 1, semantic 1")
    assert lines[2] == "== myfw: 2 findings"
    assert lines[3].startswith("[1] wrong myfw:wrong:") and lines[8].startswith("[6] semantic")
    assert "myfw.a: the value is wrong by up to 3e6 ULP (relative error 0.5) in float32" in out
    assert "no script: the myfw adapter does not load here" in out  # no such framework


def test_json_and_md(tmp_path, capsys):
    results = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1")])
    code, out, _ = _run(capsys, results, "--format", "json")
    (f,) = json.loads(out)
    assert code == 0 and f["kind"] == "wrong" and f["status"] == "new" and f["repro"] is None
    assert {
        "id",
        "severity",
        "summary",
        "apis",
        "dtypes",
        "devices",
        "cases",
        "rows",
        "known",
        "draft",
    } <= set(f)
    code, out, _ = _run(capsys, results, "--format", "md")
    assert code == 0 and out.startswith("# xentcheck findings")
    assert "### myfw.a: the value is wrong" in out and "- **Versions:** myfw 1.0" in out
    assert "Softmax cross-entropy between logits" in out  # why the reference is right
    assert "No known entry explains this difference (unexplained)." in out


def test_baseline(tmp_path, capsys):
    old = _results(tmp_path / "old.jsonl", [_row("myfw.a", "c/1"), _row("myfw.b", "c/2")])
    new = _results(
        tmp_path / "new.jsonl", [_row("myfw.a", "c/1"), _row("myfw.b", "c/2", status="pass")]
    )
    code, out, _ = _run(capsys, new, "--baseline", old, "--format", "json")
    assert code == 0
    assert sorted(f["status"] for f in json.loads(out)) == ["fixed", "unchanged"]


def test_bad_results_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "run", "xentcheck_version": "0"}\n{"case": 1}\n')
    code, out, err = _run(capsys, str(bad))
    assert code == 2 and out == ""
    assert err.startswith(f"xentcheck: error: {bad}:2: ") and err.count("\n") == 1, err
    code, _, err = _run(capsys, str(tmp_path / "missing.jsonl"))
    assert code == 2 and "no such results file" in err and err.count("\n") == 1
    good = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1")])
    code, _, err = _run(capsys, good, "--baseline", str(bad))
    assert code == 2 and err.startswith(f"xentcheck: error: {bad}:2: ")


def test_output_writes_the_file_stdout_would_hold(tmp_path, capsys):
    results = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1")])
    _, shown, _ = _run(capsys, results, "--format", "md")
    code, out, err = _run(capsys, results, "--format", "md", "-o", str(tmp_path / "f" / "x.md"))
    assert code == 0 and out == "" and "1 findings written to" in err
    assert (tmp_path / "f" / "x.md").read_text() == shown


def test_several_outputs_from_one_grouping_each_in_its_suffix_format(tmp_path, capsys):
    results = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1"), _row("myfw.b", "c/2")])
    shown = {fmt: _run(capsys, results, "--format", fmt)[1] for fmt in ("text", "md", "json")}
    names = ("f.json", "f.md", "f.txt", "f.log", "F.JSON")
    code, out, err = _run(capsys, results, *(a for n in names for a in ("-o", str(tmp_path / n))))
    assert code == 0 and out == "" and err.count("findings written to") == len(names)
    by_file = {n: (tmp_path / n).read_text() for n in names}
    assert by_file == {"f.json": shown["json"], "f.md": shown["md"], "f.txt": shown["text"],
                       "f.log": shown["text"], "F.JSON": shown["json"]}  # fmt: skip
    # --format, where given, is every output's format, whatever its suffix
    code, _, _ = _run(capsys, results, "--format", "md", "-o", str(tmp_path / "g.json"))
    assert code == 0 and (tmp_path / "g.json").read_text() == shown["md"]
    # a bad output anywhere in the list writes none of them
    (tmp_path / "h.md").unlink(missing_ok=True)
    code, _, err = _run(capsys, results, "-o", str(tmp_path / "h.md"), "-o", str(tmp_path))
    assert code == 2 and "names a folder" in err and not (tmp_path / "h.md").exists()


def test_output_naming_a_folder_is_one_line_and_exit_2(tmp_path, capsys):
    results = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1")])
    code, out, err = _run(capsys, results, "-o", str(tmp_path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "names a folder" in err


def test_report_findings_are_the_bytes_findings_writes(tmp_path, capsys, monkeypatch):
    """``xentcheck report --findings FILE`` writes what ``findings -o FILE`` writes, and a
    failure to compute them is exit 1 with the page written and no findings file."""
    from xentcheck import findings
    from xentcheck.cli import main

    results = _results(tmp_path / "r.jsonl", [_row("myfw.a", "c/1"), _row("myfw.b", "c/2")])
    shown = {fmt: _run(capsys, results, "--format", fmt)[1] for fmt in ("md", "json", "text")}
    page, outs = tmp_path / "page.html", [tmp_path / n for n in ("f.json", "f.md", "f.txt")]
    code = main(
        ["report", results, "-o", str(page), *(a for o in outs for a in ("--findings", str(o)))]
    )
    assert code == 0 and page.is_file()
    assert [o.read_text() for o in outs] == [shown["json"], shown["md"], shown["text"]]
    capsys.readouterr()
    # a folder among the outputs: one line, exit 2, nothing written
    for o in outs:
        o.unlink()
    page.unlink()
    assert (
        main(
            [
                "report",
                results,
                "-o",
                str(page),
                "--findings",
                str(outs[0]),
                "--findings",
                str(tmp_path),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--findings names a folder" in err
    assert not page.exists() and not outs[0].exists()

    def broken(*args, **kwargs):
        raise RuntimeError("grouping broke")

    monkeypatch.setattr(findings, "build", broken)
    code = main(["report", results, "-o", str(page), "--findings", str(outs[0])])
    err = capsys.readouterr().err
    assert code == 1 and page.is_file() and not outs[0].exists()
    assert err.splitlines()[-1].startswith("xentcheck: error: the findings could not be computed")
    assert "grouping broke" in err.splitlines()[-1]
