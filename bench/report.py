"""The benchmark's goals, its printed table and the JSON document (``reports/bench.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: figure -> (comparison, bound, what the issue asks)
GOALS: dict[str, tuple[str, float, str]] = {
    "overhead_ratio": ("<=", 1.5, "harness wall / (bare API calls + reference), per framework"),
    "compile_share": ("<=", 0.5, "compile time / the framework's harness run: must not dominate"),
    "value_peak_rss_minus_input_gib": ("<=", 1.0, "peak RSS of the chunked value - input, GiB"),
    "grad_peak_rss_minus_2x_input_gib": (
        "<=",
        1.0,
        "peak RSS with float32 gradient - 2 x input, GiB",
    ),
    "warm_rerun_ratio": ("<=", 0.15, "rerun with nothing changed / cold run (run + report)"),
    "one_case_rerun_ratio": ("<=", 0.3, "rerun after adding one case file / cold run"),
    "value_time_ratio_vs_exp_pass": ("<=", 3.0, "chunked value time / float64 np.exp pass time"),
    "bitwise_equal_to_unchunked": (
        "==",
        1.0,
        "chunked == unchunked, value and gradient, bit for bit",
    ),
}


def met(name: str, value: Any) -> bool | None:
    """Whether ``value`` meets the goal of figure ``name`` (None: no goal or no value)."""
    if name not in GOALS or value is None:
        return None
    op, bound, _ = GOALS[name]
    v = float(value)
    return v <= bound if op == "<=" else v == bound


def goal_rows(doc: dict[str, Any]) -> list[tuple[str, Any, str, bool | None]]:
    """(figure, value, goal text, met) for every figure of ``doc`` that has a goal."""
    rows = []
    for group in ("overhead_ratio", "compile_share"):
        for fw, v in doc.get(group, {}).items():
            op, bound, _ = GOALS[group]
            rows.append((f"{group}[{fw}]", v, f"{op} {bound:g}", met(group, v)))
    for name in ("warm_rerun_ratio", "one_case_rerun_ratio"):
        if name in doc:
            op, bound, _ = GOALS[name]
            rows.append((name, doc[name], f"{op} {bound:g}", met(name, doc[name])))
    llm = doc.get("llm_reference") or {}
    for name in (
        "value_peak_rss_minus_input_gib",
        "grad_peak_rss_minus_2x_input_gib",
        "value_time_ratio_vs_exp_pass",
        "bitwise_equal_to_unchunked",
    ):
        if name in llm:
            op, bound, _ = GOALS[name]
            goal = "true" if op == "==" else f"{op} {bound:g}"
            rows.append((f"llm_reference.{name}", llm[name], goal, met(name, llm[name])))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return "-" if v is None else str(v)


def table(doc: dict[str, Any]) -> str:
    """The figures as a plain-text table: goals first, then the suite wall times."""
    lines = [f"{'figure':48s} {'value':>10s}  {'goal':8s} met"]
    for name, v, goal, ok in goal_rows(doc):
        flag = "-" if ok is None else ("yes" if ok else "NO")
        lines.append(f"{name:48s} {_fmt(v):>10s}  {goal:8s} {flag}")
    for k in ("cold_main_job_s", "warm_rerun_s", "one_case_rerun_s"):
        if k in doc:
            lines.append(f"{k:48s} {_fmt(doc[k]):>10s}")
    suite = doc.get("suite_wall_s") or {}
    for k in ("sequential", "parallel", "speedup"):
        if k in suite:
            lines.append(f"{'suite_wall_s.' + k:48s} {_fmt(suite[k]):>10s}")
    for group in ("overhead_ratio_excl_startup", "overhead_ratio_with_sensitivity"):
        for fw, v in (doc.get(group) or {}).items():
            lines.append(f"{group + '[' + fw + ']':48s} {_fmt(v):>10s}")
    for fw, v in (doc.get("compile_share_of_calls") or {}).items():
        lines.append(f"{'compile_share_of_calls[' + fw + ']':48s} {_fmt(v):>10s}")
    for fw, c in (doc.get("compile") or {}).items():
        lines.append(
            f"{'compile[' + fw + ']':48s} {c['count']:>10d}  ({c['kind']}, {c['seconds']:.1f} s)"
        )
    lines.append(f"GPU: {doc.get('gpu', {}).get('summary', 'not checked')}")
    lines.append(
        f"mode: {doc.get('mode')}; load average at start/end: {doc.get('machine', {}).get('loadavg')}"
    )
    return "\n".join(lines)


def write(doc: dict[str, Any], path: Path) -> None:
    """Write ``doc`` as indented JSON to ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
