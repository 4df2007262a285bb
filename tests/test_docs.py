"""The documentation stays inside the repository, short where it must be, and linked right.

- No file of the repository cites a document that is not in it (the old design notes,
  findings and worked-example files of the team, or a path into a shared folder next to
  the checkout).
- README.md is short and holds no generated tables: those live in docs/differences.md,
  where ``xentcheck report --readme`` still finds its markers.
- Every relative link of README.md and docs/*.md points to a file that exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.synthetic import header, row
from xentcheck.cli import main
from xentcheck.report import README_BEGIN, README_END

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DIFFERENCES = ROOT / "docs" / "differences.md"
README_MAX_LINES = 250

#: text that cites a document outside the repository (split so this file does not match)
OUTSIDE_CITATIONS = (
    "DESIGN" + ".md",
    "../" + "shared",
    "FINDINGS" + "-EXAMPLE",
    "WORKED" + "-EXAMPLES",
)

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def repository_files() -> list[Path]:
    """Every file git tracks or would add (tracked and untracked, ignored ones excluded)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the repository's file list comes from git")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (NUL bytes, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_citations(files: list[Path]) -> list[str]:
    """``file:line: text`` for every line citing a document outside the repository."""
    found = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for cited in OUTSIDE_CITATIONS:
                if cited in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: cites {cited}")
    return found


def broken_links(path: Path) -> list[str]:
    """``file:line: target`` for each relative link of a Markdown file whose target is missing.

    Links inside code (fenced blocks, inline code) are not links; web addresses and
    anchors within the same page are not checked.
    """
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
    broken = []
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            file = target.split("#", 1)[0]
            if not (path.parent / file).exists():
                broken.append(f"{path.relative_to(ROOT)}:{number}: {target}")
    return broken


def test_no_file_cites_documents_outside_the_repository() -> None:
    found = outside_citations(repository_files())
    assert not found, "documents outside the repository are cited:\n" + "\n".join(found)


def test_readme_is_short_and_holds_no_generated_tables() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"
    assert README_BEGIN not in text and README_END not in text, (
        "README.md holds a generated block: it belongs in docs/differences.md"
    )


def test_relative_links_point_to_existing_files() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = [b for page in pages for b in broken_links(page)]
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_differences_page_is_regenerated_by_report_readme(tmp_path: Path) -> None:
    """``xentcheck report --readme`` rewrites only the block between the markers."""
    page = DIFFERENCES.read_text(encoding="utf-8")
    before, block_and_after = page.split(README_BEGIN)
    _, after = block_and_after.split(README_END)
    results = tmp_path / "results.jsonl"
    rows = [header(), row("demo/mismatching", "torch", status="mismatch", dtype="float16")]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = tmp_path / "differences.md"
    target.write_text(page, encoding="utf-8")

    status = main(["report", str(results), "-o", str(tmp_path / "index.html"),
                   "--readme", str(target)])  # fmt: skip

    assert status == 0
    rewritten = target.read_text(encoding="utf-8")
    assert rewritten.startswith(before + README_BEGIN)
    assert rewritten.endswith(README_END + after)
    block = rewritten[len(before) : len(rewritten) - len(after)]
    assert "| torch | softmax_cross_entropy | mismatch | 1 | 1 | 1 |" in block
    assert "Totals: mismatch 1." in block


def test_design_lists_every_loss_of_the_registry_as_generated():
    """docs/design.md's losses table is `xentcheck schema --losses`: a new loss (or a
    changed default) shows up there without a hand edit, or this fails."""
    from xentcheck.harness.schema import LOSSES_BEGIN, LOSSES_END, losses_markdown

    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert LOSSES_BEGIN in text and LOSSES_END in text, "docs/design.md lost its losses markers"
    section = text.split(LOSSES_BEGIN, 1)[1].split(LOSSES_END, 1)[0].strip()
    assert section == losses_markdown().strip(), (
        "docs/design.md's losses table is stale: replace it with `xentcheck schema --losses`"
    )
