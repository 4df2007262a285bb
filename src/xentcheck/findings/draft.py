"""An upstream issue draft per finding, in Markdown.

Title (the summary), versions, where it shows, the reproduction script, expected vs
actual, why the expected value is right (the loss's definition from the reference's own
docstring, and how the reference is checked against mpmath), and the known entry's
explanation and link or a note that none explains it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from xentcheck.findings.group import nonfinite_pattern
from xentcheck.reference import LOSSES

REFERENCE_NOTE = (
    "The expected numbers come from a float64 NumPy reference implementation of the "
    "definition above (double-double row kernels, correctly rounded sums); its values and "
    "gradients are tested against mpmath at high precision to within a few float64 ULP, "
    "far below the error reported here. The expected number is that value rounded to the "
    "output dtype, and the inputs are exactly the ones the script passes (already "
    "representable in the dtype under test), so a correct implementation in that dtype "
    "can reach it."
)


def definition(loss: str) -> str:
    """The loss's definition: its reference function's docstring up to ``Args:``."""
    spec = LOSSES.get(loss)
    if spec is None:
        return f"(no reference definition for {loss!r})"
    doc = inspect.cleandoc(spec.fn.__doc__ or "")
    return doc.split("\nArgs:")[0].strip()


def _versions(
    headers: Sequence[Mapping[str, Any]], framework: str, finding: Mapping[str, Any]
) -> str:
    if finding.get("versions"):  # the finding's own run's (one of several version sets)
        return ", ".join(f"{k} {v}" for k, v in finding["versions"].items())
    for h in headers:
        info = (h.get("frameworks") or {}).get(framework)
        if info and info.get("versions"):
            return ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return "(not recorded in the results header)"


def _sample(values: Any) -> str:
    return ", ".join(str(v) for v in (values or [])) or "(none)"


def draft(finding: Mapping[str, Any], headers: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown issue draft of ``finding`` (a dict of :func:`xentcheck.findings.build`)."""
    w = finding["worst"]
    lines = [
        f"### {finding['summary']}",
        "",
        f"- **Versions:** {_versions(headers, finding['framework'], finding)}",
        f"- **APIs:** {', '.join(f'`{a}`' for a in finding['apis'])}",
        f"- **Loss:** `{finding['loss']}`; quantity {finding['quantity'] or 'value'}; "
        f"dtypes {', '.join(finding['dtypes'])}; devices {', '.join(finding['devices'])}",
        f"- **Seen in:** {finding['rows']} results over {len(finding['cases'])} case(s): "
        + ", ".join(f"`{c}`" for c in finding["cases"][:6])
        + (" ..." if len(finding["cases"]) > 6 else ""),
        f"- **xentcheck finding:** `{finding['id']}` ({finding['kind']})",
        "",
        "#### Reproduction",
        "",
    ]
    if finding.get("repro"):
        lines += ["```python", finding["repro"].rstrip("\n"), "```", ""]
    else:
        lines += [f"No standalone script: {finding.get('repro_note', '')}", ""]
    lines += ["#### Expected vs actual", ""]
    if w.get("max_ulp") is not None or w.get("index") is not None:
        lines += [
            f"Worst case: `{w.get('instance')}`, {w.get('dtype')} on {w.get('device')}, "
            f"{w.get('quantity')} at element {w.get('index')}:",
            "",
            f"- expected (around it): {_sample(w.get('expected'))}",
            f"- actual (around it): {_sample(w.get('actual'))}",
            f"- error: {w.get('max_ulp')} ULP, relative {w.get('max_rel_err')}, "
            f"absolute {w.get('max_abs_err')}"
            if (w.get("unexplained_status") or w.get("status")) != "nonfinite"
            else f"- the NaN/Inf pattern differs there ({nonfinite_pattern(w)})",
        ]
    else:
        lines.append(
            f"`{w.get('instance')}` ({w.get('dtype')}, {w.get('device')}): {w.get('message', '')}"
        )
    lines += [
        "",
        "#### Why the expected value is right",
        "",
        "```text",
        definition(finding["loss"]),
        "```",
        "",
    ]
    lines += [REFERENCE_NOTE, "", "#### Known entries and related issues", ""]
    if finding.get("known"):
        lines.append(
            f"Documented difference `{finding['known']}`: {finding.get('explanation', '')}"
        )
        if finding.get("link"):
            lines.append(f"See {finding['link']}.")
    else:
        lines.append("No known entry explains this difference (unexplained).")
    return "\n".join(lines) + "\n"
