"""Scripts run with xentcheck hidden; their exit status is the verdict."""

from __future__ import annotations

from xentcheck.findings.verify import run_script, verify


def test_xentcheck_cannot_be_imported_by_a_script():
    code, out = run_script("import numpy\nimport xentcheck.reference\n")
    assert code == 1 and "ModuleNotFoundError: No module named 'xentcheck.reference'" in out, out


def test_exit_status_is_the_verdict():
    found = [
        {"id": "a", "repro": "raise SystemExit(0)\n"},
        {"id": "b", "repro": "raise SystemExit(1)\n"},
        {"id": "c", "repro": None, "repro_note": "a custom adapter"},
    ]
    assert [v.reproduced for v in verify(found)] == [True, False, None]
