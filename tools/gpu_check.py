"""The GPU check: a few minutes of the suite on every framework, CPU and GPU side by side.

    python tools/gpu_check.py [--out reports/gpu-check.jsonl] [--framework NAME]...
                              [--cases DIR] [--tag gpu-smoke] [--jobs N] [--require-gpu]
                              [--json FILE]

Runs the cases tagged ``gpu-smoke`` (one representative of each behaviour where a GPU
kernel can differ from the CPU's: fused reductions, overflow, masking, half precision,
error behaviour, a large vocabulary) on every framework of the main job (tox.ini's
``[frameworks] all``) with ``--device all``, writes the results file, and prints where a
framework's GPU row disagrees with its CPU twin (same framework, API, instance, dtype and
quantity):

* ``status``: the two rows have different statuses (one passes, the other is a mismatch,
  an error, non-finite, a crash);
* ``values``: both computed the quantity, and some element differs between the devices by
  more than the row's allowance in ULPs of the output dtype (or is NaN/inf on one device
  only). Each row is also judged against the float64 reference; this compares the devices
  with each other.

Prints which device each framework ran on. Where no framework saw a GPU, it says so in one
line and why (each framework's own reason) and exits 0 (1 with ``--require-gpu``); the CPU
rows are still written. Disagreements are findings, not failures: exit 0 with or without
them. ``tox -e gpu-check`` runs it in the GPU environment (docs/ci.md).
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import subprocess
import sys
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from xentcheck.floats import float_ulp_one

ROOT = Path(__file__).resolve().parents[1]
TAG = "gpu-smoke"
PAIR_KEY = ("framework", "api", "instance", "dtype", "quantity")

Row = dict[str, Any]


class Disagreement(NamedTuple):
    """One GPU row that disagrees with its CPU twin."""

    key: tuple[Any, ...]
    kind: str  # "status" or "values"
    cpu: Row
    gpu: Row
    detail: str

    def line(self) -> str:
        framework, api, instance, dtype, quantity = self.key
        return (
            f"{framework} {api} {instance} {dtype} {quantity}: {self.kind}: "
            f"cpu {self.cpu['status']}, gpu {self.gpu['status']}; {self.detail}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            **dict(zip(PAIR_KEY, self.key, strict=True)),
            "kind": self.kind,
            "cpu_status": self.cpu["status"],
            "gpu_status": self.gpu["status"],
            "cpu_max_ulp": self.cpu.get("max_ulp"),
            "gpu_max_ulp": self.gpu.get("max_ulp"),
            "detail": self.detail,
        }


def main_job_frameworks(tox_ini: Path = ROOT / "tox.ini") -> list[str]:
    """The frameworks of the main job: the ``--framework`` values of ``[frameworks] all``."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(tox_ini)
    words = config.get("frameworks", "all").split()
    names = [b for a, b in pairwise(words) if a == "--framework"]
    if not names:
        raise SystemExit(f"gpu-check: {tox_ini}: [frameworks] all names no --framework")
    return names


def devices_seen(headers: Iterable[Row]) -> dict[str, tuple[str | None, str | None]]:
    """Per framework: (the GPU it ran on or None, why not when None), from the run headers."""
    seen: dict[str, tuple[str | None, str | None]] = {}
    for header in headers:
        for name, info in (header.get("frameworks") or {}).items():
            gpu = (info.get("devices") or {}).get("gpu")
            why = (info.get("skipped") or {}).get("gpu")
            seen[name] = (gpu, None if gpu else (why or "no GPU row"))
    return seen


def pairs(rows: Iterable[Row]) -> list[tuple[tuple[Any, ...], Row, Row]]:
    """(key, cpu row, gpu row) for every framework row that ran on both devices."""
    by_device: dict[str, dict[tuple[Any, ...], Row]] = {"cpu": {}, "gpu": {}}
    for row in rows:
        if row.get("framework") == "reference" or row.get("device") not in by_device:
            continue
        by_device[row["device"]][tuple(row.get(k) for k in PAIR_KEY)] = row
    cpu, gpu = by_device["cpu"], by_device["gpu"]
    return [(key, cpu[key], gpu[key]) for key in sorted(cpu.keys() & gpu.keys(), key=str)]


def disagreement(key: tuple[Any, ...], cpu: Row, gpu: Row) -> Disagreement | None:
    """How ``gpu`` disagrees with ``cpu``, or None when the two devices agree."""
    if cpu["status"] != gpu["status"]:
        detail = gpu.get("message") or cpu.get("message") or ""
        return Disagreement(key, "status", cpu, gpu, _short(detail))
    a, b = cpu.get("actual"), gpu.get("actual")
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b) or not a:
        return None
    dtype = gpu.get("out_dtype") or gpu["dtype"]
    allowed = max(float(cpu.get("allowed_ulp") or 0.0), float(gpu.get("allowed_ulp") or 0.0), 1.0)
    worst, where = 0.0, None
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        d = ulp_distance(float(x), float(y), dtype)
        if d > worst:
            worst, where = d, i
    if worst <= allowed:
        return None
    shown = "one device only non-finite" if math.isinf(worst) else f"{worst:.3g} ULP apart"
    detail = f"element {where}: cpu {a[where]}, gpu {b[where]}: {shown} (allowed {allowed:.3g})"
    return Disagreement(key, "values", cpu, gpu, detail)


def ulp_distance(x: float, y: float, dtype: str) -> float:
    """|x - y| in ULPs of ``dtype`` at the larger magnitude; inf when only one is finite
    or only one is NaN, 0 when both are the same non-finite value."""
    if math.isnan(x) or math.isnan(y):
        return 0.0 if math.isnan(x) and math.isnan(y) else math.inf
    if math.isinf(x) or math.isinf(y):
        return 0.0 if x == y else math.inf
    return abs(x - y) / float_ulp_one(max(abs(x), abs(y)), dtype)


def disagreements(rows: Iterable[Row]) -> list[Disagreement]:
    """Every CPU-vs-GPU disagreement of a run's rows."""
    found = (disagreement(key, cpu, gpu) for key, cpu, gpu in pairs(rows))
    return [d for d in found if d is not None]


def run_command(args: argparse.Namespace, frameworks: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "xentcheck", "run", "--cases", str(args.cases)]
    for tag in args.tag:
        cmd += ["--tag", tag]
    for name in frameworks:
        cmd += ["--framework", name]
    return [*cmd, "--device", "all", "--fail-on", "never", "--jobs", str(args.jobs), "--quiet",
            "--out", str(args.out)]  # fmt: skip


def read_jsonl(path: Path) -> tuple[list[Row], list[Row]]:
    headers: list[Row] = []
    rows: list[Row] = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        (headers if obj.get("kind") == "run" else rows).append(obj)
    return headers, rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n\n")[1])
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu-check.jsonl")
    p.add_argument("--framework", action="append", help="default: the main job's frameworks")
    p.add_argument("--cases", type=Path, default=ROOT / "cases")
    p.add_argument("--tag", action="append", help=f"cases to run (default: {TAG})")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--require-gpu", action="store_true", help="exit 1 when no GPU was seen")
    p.add_argument("--json", type=Path, help="also write the disagreements as JSON")
    args = p.parse_args(argv)
    args.tag = args.tag or [TAG]
    frameworks = args.framework or main_job_frameworks()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(run_command(args, frameworks), check=False)
    if run.returncode != 0 or not args.out.is_file():
        print(f"gpu-check: xentcheck run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode or 1
    headers, rows = read_jsonl(args.out)
    seen = devices_seen(headers)
    found = disagreements(rows)
    if args.json:
        args.json.write_text(json.dumps([d.as_json() for d in found], indent=1) + "\n")
    on_gpu = {name: gpu for name, (gpu, _) in seen.items() if gpu}
    if not on_gpu:
        why = "; ".join(f"{name}: {why}" for name, (_, why) in sorted(seen.items()))
        print(f"gpu-check: no GPU: {why}. CPU rows only, in {args.out}")
        return 1 if args.require_gpu else 0
    for name, (gpu, why) in sorted(seen.items()):
        print(f"gpu-check: {name}: " + (f"GPU {gpu}" if gpu else f"CPU only ({why})"))
    compared = len(pairs(rows))
    print(f"gpu-check: {compared} GPU rows beside their CPU twins, {len(found)} disagree"
          f" (results in {args.out})")  # fmt: skip
    for d in found:
        print(f"  {d.line()}")
    return 0


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
