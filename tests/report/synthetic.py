"""Results files in the real format, made up for report tests (no framework runs).

The row shape follows what ``xentcheck run`` writes (see a real torch row:
``REQUIRED_KEYS`` plus source, tags, index, shape, rtol/atol, message).
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Any

from xentcheck.harness.results import REQUIRED_KEYS

Row = dict[str, Any]

FRAMEWORKS = {"torch": "2.13.0", "tensorflow": "2.21.0", "jax": "0.10.2"}
DTYPES = ("float16", "bfloat16", "float32", "float64")
LOSSES = (
    "softmax_cross_entropy", "categorical_cross_entropy", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "focal_loss",
)  # fmt: skip


def header(versions: dict[str, str] | None = None, **extra: Any) -> Row:
    """A run header naming each framework's version (what the merge's variants read)."""
    versions = versions if versions is not None else FRAMEWORKS
    return {
        "kind": "run", "xentcheck_version": "0.1.0", "time": "2026-11-22T00:00:00+00:00",
        "cases_digest": "d" * 64,
        "frameworks": {
            fw: {"versions": {fw: v, "numpy": "2.4.6", "python": "3.11.7"},
                 "devices": {"cpu": "test CPU", "gpu": None}}
            for fw, v in versions.items()
        },
        **extra,
    }  # fmt: skip


def row(
    case: str, framework: str, status: str = "pass", dtype: str = "float32", **extra: Any
) -> Row:
    """One result row with every required key; ``extra`` overrides any of them."""
    bad = status != "pass"
    r: Row = {
        "case": case, "instance": f"{case}[reduction=mean]", "loss": "softmax_cross_entropy",
        "params": {"reduction": "mean"}, "framework": framework, "api": f"{framework}.loss",
        "device": "cpu", "dtype": dtype, "description": f"synthetic case {case}",
        "tags": ["synthetic"], "expect_error": False, "quantity": "value",
        "rtol": 1e-5, "atol": 1e-7, "status": status,
        "max_abs_err": 1e-3 if bad else 0.0, "max_rel_err": 1e-3 if bad else 0.0,
        "max_ulp": 12.0 if bad else 0.0, "index": [0], "shape": [1],
        "expected": [2.302585092994046], "actual": [2.3049] if bad else [2.302585092994046],
    }  # fmt: skip
    if bad:
        r["message"] = f"{status}: synthetic"
    r.update(extra)
    assert set(REQUIRED_KEYS) <= set(r)
    return r


def write(path: Path, head: Row | None, rows: list[Row]) -> Path:
    """Write a results file: the header line (if any), then one JSON row per line."""
    lines = ([head] if head is not None else []) + rows
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


#: status mix of a big run: mostly passes, every other status present
MIX = (
    ("pass", 0.90), ("mismatch", 0.04), ("known", 0.03), ("nonfinite", 0.01),
    ("error", 0.01), ("unsupported", 0.01),
)  # fmt: skip


def shipped_suite(cases_dir: Path) -> tuple[Row, list[Row]]:
    """(header fields, instances) of the shipped case files, as a real run records them.

    The header fields embed the case files (``case_files``, ``cases_root``), so the
    report finds each case's source, inputs and reproduction script as for a real run;
    each instance is the identity part of a row (case, instance, loss, params, source...).
    """
    from xentcheck.harness.cases import expand, load_cases
    from xentcheck.harness.runner import case_files

    files, roots = case_files([str(cases_dir)])
    fields = {"cases": [str(cases_dir)], "cases_root": roots[0], "case_files": files}
    instances = []
    for case in load_cases([cases_dir]):
        src = Path(case.source.file)
        src = src if src.is_absolute() else (cases_dir.parent / src)
        for inst in expand(case):
            instances.append({
                "case": case.key, "instance": inst.name, "loss": case.loss,
                "params": inst.params, "description": case.description,
                "tags": list(case.tags), "expect_error": case.expect_error,
                "source": {"file": str(src.resolve()), "line": case.source.line},
            })  # fmt: skip
    return fields, instances


def big_rows(n: int, seed: int = 0, instances: list[Row] | None = None) -> list[Row]:
    """``n`` rows over many cases/instances/APIs, 3 frameworks x 4 dtypes, a realistic mix.

    With ``instances`` (from :func:`shipped_suite`) the rows cycle over those real
    instances; otherwise over made-up cases that no case file defines.
    """
    rnd = random.Random(seed)
    statuses = [s for s, _ in MIX]
    weights = [w for _, w in MIX]
    fws = list(FRAMEWORKS)
    out = []
    for i in range(n):
        fw = fws[i % 3]
        dtype = DTYPES[(i // 3) % 4]
        case_n = i // 96  # 12 (fw x dtype) x 8 APIs per case
        # past the last real instance, start again with other API names (identities stay unique)
        api_n = (i // 12) % 8 + (8 * (case_n // len(instances)) if instances else 0)
        case = f"synth{case_n % 40}/case-{case_n}"
        status = rnd.choices(statuses, weights)[0]
        size = rnd.choice((1, 1, 3, 8))
        expected = [round(rnd.uniform(0, 10), 6) for _ in range(size)]
        if status == "pass":
            actual = expected
            err = {"max_abs_err": 0.0, "max_rel_err": 0.0, "max_ulp": float(rnd.randint(0, 1))}
        elif status == "nonfinite":
            actual = ["nan"] * size
            err = {"max_abs_err": None, "max_rel_err": None, "max_ulp": None}
        elif status in ("error", "unsupported"):
            actual = None
            err = {"max_abs_err": None, "max_rel_err": None, "max_ulp": None}
        else:
            actual = [x * (1 + rnd.uniform(-1e-2, 1e-2)) for x in expected]
            ulp = float(rnd.randint(2, 5000))
            err = {"max_abs_err": 1e-3 * ulp, "max_rel_err": 1e-4 * ulp, "max_ulp": ulp}
        extra: Row = {
            "instance": f"{case}[reduction={('none', 'sum', 'mean')[api_n % 3]}]",
            "loss": LOSSES[case_n % len(LOSSES)],
            "params": {"reduction": ("none", "sum", "mean")[api_n % 3]},
            "api": f"{fw}.api_{api_n}",
            "source": {"file": f"cases/synth{case_n % 40}.yaml", "line": 1 + 10 * (case_n % 50)},
            "expected": expected, "actual": actual, "index": [0], "shape": [size],
            "out_dtype": dtype, **err,
        }  # fmt: skip
        if status != "pass":
            extra["message"] = f"{status} in {fw}.api_{api_n} at element 0 ({dtype})"
        if status == "known":
            extra.update(
                known_id=f"{fw}-known-{case_n % 5}",
                explanation="documented difference (synthetic)",
                link="https://example.org/issue",
                unexplained_status="mismatch",
            )
        if instances:
            extra.update(instances[case_n % len(instances)])
            case = extra.pop("case")
        out.append(row(case, fw, status, dtype, **extra))
    return out


#: a finding's row key: what ``row_keys`` entries name, in order (the framework is the finding's)
ROW_KEY = ("case", "instance", "api", "device", "dtype", "quantity")


def finding(
    rows: list[Row], kind: str = "wrong", severity: int = 1, summary: str = "", **extra: Any
) -> Row:
    """A finding dict with every field of ``xentcheck.findings.build``'s contract, over
    ``rows`` (all of one framework; the first is the worst). A data fixture for drawing
    the page, not a grouping: which rows belong together is the findings package's call.
    """
    first = rows[0]
    f: Row = {
        "id": f"{first['framework']}-{kind}-{zlib.crc32(summary.encode()):08x}",
        "kind": kind, "severity": severity,
        "summary": summary or f"{first['api']} gives a {kind} {first['quantity']}",
        "framework": first["framework"], "apis": sorted({r["api"] for r in rows}),
        "loss": first["loss"], "quantity": first["quantity"],
        "dtypes": sorted({r["dtype"] for r in rows}), "devices": sorted({r["device"] for r in rows}),
        "cases": sorted({r["case"] for r in rows}), "rows": len(rows),
        "known": None, "explanation": None, "link": None,
        "repro": f"import numpy as np\nprint({first['api']!r})\n", "repro_note": None,
        "status": "new", "worst": first,
        "row_keys": [[r[k] for k in ROW_KEY] for r in rows],
        "draft": f"## {summary}\n\n```python\nimport numpy as np\n```\n",
    }  # fmt: skip
    f.update(extra)
    return f
