"""The worker: runs every instance through one framework's APIs and writes result rows.

It runs in a process of its own (``python -m xentcheck.harness.worker``), started by
:mod:`xentcheck.harness.runner`, so a crash in one framework never takes the others, or
the rows already written, with it.

For each instance and dtype the golden is computed once from the dtype-rounded inputs
and shared by every API and device; each API's output is compared quantity by quantity
(``value``, ``grad:<input>``); a non-passing comparison the known-difference registry
explains becomes ``known``.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from xentcheck.adapters import Api, Call, Framework, Output, Unsupported, load_framework
from xentcheck.dtypes import FLOAT_DTYPES, quantize, saturate
from xentcheck.harness.cases import Instance, expand, load_cases
from xentcheck.harness.compare import compare, sample, tolerance_for
from xentcheck.harness.results import ResultWriter, run_header
from xentcheck.known import Finding, explain
from xentcheck.reference import (
    LOSSES,
    Golden,
    cotangent,
    differentiable_inputs,
    evaluate,
    is_probability_target,
)

Row = dict[str, Any]


def rounded_inputs(
    instance: Instance, raw: dict[str, np.ndarray], dtype: str
) -> dict[str, np.ndarray]:
    """The instance's inputs as a framework receives them at ``dtype``.

    Floating inputs (incl. weights and probability targets) are rounded to ``dtype`` and
    held as float64; class indices stay int64; masks become bool.
    """
    spec = LOSSES[instance.loss]
    out = {}
    for name, a in raw.items():
        kind = spec.input(name).kind
        if kind == "mask":
            out[name] = np.asarray(a) != 0
        elif kind == "labels" or (kind == "target" and not is_probability_target(spec, raw)):
            out[name] = (
                np.asarray(a).astype(np.int64)
                if np.asarray(a).dtype.kind in "iub"
                else np.asarray(a)
            )
        else:
            out[name] = quantize(a, dtype)
    return out


def golden_for(
    instance: Instance, inputs: dict[str, np.ndarray]
) -> tuple[Golden | None, str | None]:
    """(golden, None) or (None, reason) when the reference rejects the input."""
    try:
        return evaluate(instance.loss, inputs, instance.params), None
    except ValueError as exc:
        return None, str(exc)


def base_row(instance: Instance, fw: str, api: str, device: str, dtype: str) -> Row:
    case = instance.case
    spec = LOSSES[case.loss]
    return {
        "case": case.key,
        "instance": instance.name,
        "loss": case.loss,
        "params": {**spec.params, **instance.params},
        "framework": fw,
        "api": api,
        "device": device,
        "dtype": dtype,
        "description": case.description,
        "tags": list(case.tags),
        "source": {"file": case.source.file, "line": case.source.line},
        "expect_error": case.expect_error,
    }


def no_comparison(status: str, message: str) -> Row:
    """The result fields of a row with nothing to compare (raised, unsupported, crashed)."""
    return {
        "status": status, "max_abs_err": None, "max_rel_err": None, "max_ulp": None,
        "expected": [], "actual": [], "message": message,
    }  # fmt: skip


def _describe_exception(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 400:
        text = text[:400] + "..."
    return f"{type(exc).__name__}: {text}"


def run_api(
    fw: Framework, api: Api, instance: Instance, inputs: dict[str, np.ndarray], dtype: str, device: str,
    golden: Golden | None, reference_error: str | None,
) -> list[Row]:  # fmt: skip
    """Run one API on one instance, dtype and device; return its result rows."""
    grad_inputs = differentiable_inputs(instance.loss, inputs) if golden is not None else ()
    cot = np.asarray(1.0)
    if golden is not None:
        cot = cotangent(golden.value.shape)
    call = Call(
        loss=instance.loss,
        inputs=inputs,
        params={**LOSSES[instance.loss].params, **instance.params},
        explicit=frozenset(instance.params),
        dtype=dtype,
        device=device,
        grad_inputs=grad_inputs,
        cotangent=cot,
    )
    if not api.applies(call):
        return []
    base = base_row(instance, fw.name, api.name, device, dtype)
    t0 = time.perf_counter()
    try:
        out: Output | None = api.run(call)
        exc_text = None
    except Unsupported as exc:
        return [{**base, "quantity": "value", **no_comparison("unsupported", str(exc))}]
    except Exception as exc:  # a framework raising is a result, not a failure of the run
        reason = fw.unsupported_reason(exc)
        if reason:
            return [{**base, "quantity": "value", **no_comparison("unsupported", reason)}]
        out, exc_text = None, _describe_exception(exc)
    elapsed = time.perf_counter() - t0
    base["elapsed_s"] = round(elapsed, 6)

    def finish(row: Row, expected, actual) -> Row:
        if row["status"] in ("mismatch", "nonfinite", "error"):
            f = Finding(fw.name, api.name, instance.loss, row["params"], inputs, dtype, device,
                        row["quantity"], row["status"], expected, actual, exc_text, instance.case.expect_error)  # fmt: skip
            k = explain(f)
            if k is not None:
                row.update(status="known", known_id=k.id, explanation=k.explanation, link=k.link,
                           unexplained_status=row["status"])  # fmt: skip
        return row

    if golden is None:  # the reference rejects the input: a conforming API raises too
        if out is None:
            row = {
                **base,
                "quantity": "value",
                **no_comparison("pass", f"raised as expected: {exc_text}"),
            }
            return [row]
        value = np.asarray(out.value, dtype=np.float64)
        msg = f"returned a value where the reference rejects the input ({reference_error})"
        row = {
            **base,
            "quantity": "value",
            **no_comparison("error", msg),
            "actual": sample(value.ravel()[:4]),
        }
        row["out_dtype"] = out.out_dtype
        row["behaviour"] = _behaviour(value)
        return [finish(row, None, value)]
    if out is None:
        row = {**base, "quantity": "value", **no_comparison("error", exc_text)}
        return [finish(row, golden.value, None)]
    rows = []
    rtol, atol = tolerance_for(dtype, instance.case.tolerance)
    quantities = [("value", golden.value, out.value)]
    quantities += [(f"grad:{k}", g, out.grads.get(k)) for k, g in golden.grads.items()]
    for quantity, expected, actual in quantities:
        row = {**base, "quantity": quantity, "out_dtype": out.out_dtype, "rtol": rtol, "atol": atol}
        if actual is None:
            why = out.note or f"{api.name} does not differentiate {quantity[5:]!r}"
            row.update(no_comparison("unsupported", why))
            rows.append(row)
            continue
        out_dtype = out.out_dtype if out.out_dtype in FLOAT_DTYPES else dtype
        c = compare(
            saturate(expected, out_dtype), np.asarray(actual, dtype=np.float64), dtype, rtol, atol
        )
        row.update(status=c.status, max_abs_err=c.max_abs_err, max_rel_err=c.max_rel_err, max_ulp=c.max_ulp,
                   index=c.index, expected=c.expected, actual=c.actual, shape=list(np.shape(expected)))  # fmt: skip
        if c.note or out.note:
            row["message"] = "; ".join(x for x in (c.note, out.note) if x)
        rows.append(finish(row, expected, np.asarray(actual, dtype=np.float64)))
    return rows


def _behaviour(value: np.ndarray) -> str:
    """What an API did instead of raising: NaN, Inf, or a finite number."""
    if value.size and np.all(np.isnan(value)):
        return "returned NaN"
    if value.size and not np.all(np.isfinite(value)):
        return "returned non-finite values"
    return "returned a finite value"


def run_framework(
    fw: Framework,
    instances: Iterable[Instance],
    dtypes: Iterable[str] | None,
    devices: Iterable[str],
    emit: Callable[[Row], None],
    progress: Callable[[int, Instance], None] | None = None,
) -> None:
    """Run every instance through every API of ``fw``; ``emit`` each row as it is made."""
    wanted = set(dtypes) if dtypes else None
    for n, instance in enumerate(instances):
        if progress:
            progress(n, instance)
        apis = fw.apis_for(instance.loss)
        if not apis:
            continue
        raw = instance.inputs()
        for dtype in instance.case.dtypes:
            if wanted is not None and dtype not in wanted:
                continue
            inputs = rounded_inputs(instance, raw, dtype)
            golden, ref_error = golden_for(instance, inputs)
            for device in devices:
                for api in apis:
                    for row in run_api(fw, api, instance, inputs, dtype, device, golden, ref_error):
                        emit(row)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xentcheck.harness.worker")
    p.add_argument("--framework", required=True)
    p.add_argument("--cases", action="append", required=True)
    p.add_argument("--dtype", action="append")
    p.add_argument("--device", default="all", choices=["cpu", "gpu", "all"])
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    instances = [i for c in load_cases(args.cases) for i in expand(c)]
    fw = load_framework(args.framework)
    fw.setup()
    devices_info = fw.devices()
    devices = ["cpu"]
    skipped = {}
    if args.device in ("gpu", "all"):
        if devices_info.get("gpu"):
            devices.append("gpu")
        else:
            skipped["gpu"] = fw.gpu_missing_reason() or "no GPU present"
    if args.device == "gpu":
        devices.remove("cpu")
    header = run_header(
        framework=fw.name,
        frameworks={
            fw.name: {
                "versions": fw.versions(),
                "devices": devices_info,
                "skipped": skipped,
                "apis": list(dict.fromkeys(a.name for a in fw.apis)),
            }
        },
    )
    start = time.monotonic()
    last = [start]

    def progress(n: int, instance: Instance) -> None:
        now = time.monotonic()
        if not args.quiet and now - last[0] > 15:
            last[0] = now
            print(
                f"xentcheck: {fw.name}: {n}/{len(instances)} instances, {now - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    with ResultWriter(args.out) as w:
        w.write(header)
        run_framework(fw, instances, args.dtype, devices, w.write, progress)
    if not args.quiet:
        print(
            f"xentcheck: {fw.name}: {len(instances)} instances done in {time.monotonic() - start:.0f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # reported by the runner as a crash row, with this text
        traceback.print_exc()
        sys.exit(3)
