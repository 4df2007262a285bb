"""The bare side of the overhead ratio: the harness's API calls, made in a plain loop.

``python -m bench.bare --framework NAME --cases PATH...`` builds exactly the calls the
harness's worker makes (same instances, dtypes, dtype-rounded inputs, parameters,
devices, differentiated inputs and cotangents, through the harness's own expansion,
rounding and call-building functions) and times, in one process:

* ``api_s``: the sum of ``api.run(call)`` wall times over every call, each call timed
  alone (a call that raises is timed too: the harness makes it as well);
* ``reference_s``: the sum of ``xentcheck.reference.evaluate`` wall times, once per
  instance and dtype the framework runs (what a golden cache shared by the frameworks
  costs at most; a framework alone needs each one once);
* ``sensitivity_s``: the sum of the wall times of the sensitivity D
  (:func:`xentcheck.harness.sensitivity.sensitivity`: perturbed goldens, the reference
  again) for the instances and dtypes whose verdict needs it under the ULP criterion,
  found by judging each output with the harness's own :func:`~xentcheck.harness.worker.judge`
  outside the timers, which then times D's computation alone (the harness computes D at
  the same places, with the same goldens at hand). Not part of ``overhead_ratio``'s
  denominator (defined before the criterion needed D); ``overhead_ratio_with_sensitivity``
  adds it.

Everything else (loading cases, generating and rounding inputs, building calls,
judging, importing the framework) is outside the timers. It also counts compiles (see
:mod:`bench.compiles`) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

from bench.compiles import install
from bench.measure import emit
from xentcheck.adapters import load_framework
from xentcheck.dtypes import FLOAT_DTYPES, saturate
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import expand, load_cases
from xentcheck.harness.worker import instance_goldens, judge, rounded_inputs
from xentcheck.reference import evaluate


def devices_of(fw, wanted: str) -> tuple[list[str], str]:
    """The devices the worker would use for ``--device wanted``, and what the GPU is
    (its description, or why there is none)."""
    info = fw.devices()
    gpu = info.get("gpu")
    devices = ["cpu"]
    if wanted in ("gpu", "all") and gpu:
        devices.append("gpu")
    if wanted == "gpu":
        devices.remove("cpu")
    return devices, gpu or f"no GPU: {fw.gpu_missing_reason() or 'none present'}"


def bare_run(
    framework: str,
    case_paths: list[str],
    dtypes: list[str] | None = None,
    device: str = "all",
    skip_tags: tuple[str, ...] = (),
) -> dict:
    """Make the harness's calls for ``framework`` bare; return the timings (see module doc)."""
    t_start = time.perf_counter()
    cases = [c for c in load_cases(case_paths) if not set(skip_tags) & set(c.tags)]
    fw = load_framework(framework)
    fw.setup()
    counter = install(framework)
    devices, gpu = devices_of(fw, device)
    wanted = set(dtypes) if dtypes else None
    api_s = reference_s = sensitivity_s = 0.0
    calls = goldens = instances = sensitivities = 0
    for case in cases:
        if fw.case_tags is not None and not fw.case_tags & set(case.tags):
            continue
        for inst in expand(case):
            apis = fw.apis_for(inst.loss)
            if not apis:
                continue
            instances += 1
            raw = inst.inputs()
            # the goldens the worker has at hand when it computes D (see judged below)
            with instance_goldens(inst) as known_goldens:
                for dtype in case.dtypes:
                    if wanted is not None and dtype not in wanted:
                        continue
                    inputs = rounded_inputs(inst, raw, dtype)
                    t0 = time.perf_counter()
                    try:
                        golden = evaluate(inst.loss, inputs, inst.params)
                    except ValueError as exc:
                        golden, rejected = None, str(exc)
                    reference_s += time.perf_counter() - t0
                    goldens += 1
                    known_goldens.add(
                        inputs, (golden, None) if golden is not None else (None, rejected)
                    )
                    shared: dict = {}  # the golden side, computed once as the worker does
                    for dev in devices:
                        for api in apis:
                            call = make_call(inst, inputs, dtype, dev, golden, shared)
                            if not api.applies(call):
                                continue
                            t0 = time.perf_counter()
                            # a raised exception is a result the harness records: timed too
                            out = None
                            with contextlib.suppress(Exception):
                                out = api.run(call)
                            api_s += time.perf_counter() - t0
                            calls += 1
                            if out is not None and golden is not None:
                                judged(inst, inputs, dtype, golden, out, shared)
                    if "sensitivity_s" in shared:
                        sensitivity_s += shared["sensitivity_s"]
                        sensitivities += 1
    return {
        "framework": framework,
        "devices": devices,
        "gpu": gpu,
        "instances": instances,
        "goldens": goldens,
        "calls": calls,
        "api_s": round(api_s, 4),
        "reference_s": round(reference_s, 4),
        "sensitivity_s": round(sensitivity_s, 4),
        "sensitivities": sensitivities,
        "process_s": round(time.perf_counter() - t_start, 4),
        "compile": counter.finish(),
    }


def judged(inst, inputs: dict, dtype: str, golden, out, shared: dict) -> None:
    """Judge each quantity of ``out`` as the worker's ``run_api`` does (ULP criterion), so
    that the sensitivity D is computed, and timed in ``shared["sensitivity_s"]``, exactly
    where the harness computes it; the verdicts themselves are dropped."""
    quantities = [("value", golden.value, out.value)]
    quantities += [(f"grad:{k}", g, out.grads.get(k)) for k, g in golden.grads.items()]
    for quantity, expected, actual in quantities:
        if actual is None:
            continue
        out_dtype = out.out_dtype if out.out_dtype in FLOAT_DTYPES else dtype
        key = ("saturated", quantity, out_dtype)
        if key not in shared:
            shared[key] = saturate(expected, out_dtype)
        actual = np.asarray(actual, dtype=np.float64)
        judge(inst, inputs, dtype, quantity, shared[key], actual, "ulp", shared, golden)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n")[0])
    p.add_argument("--framework", required=True)
    p.add_argument("--cases", action="append", required=True)
    p.add_argument("--dtype", action="append")
    p.add_argument("--device", default="all", choices=["cpu", "gpu", "all"])
    p.add_argument("--skip-tag", action="append", default=[])
    a = p.parse_args(argv)
    emit(bare_run(a.framework, a.cases, a.dtype, a.device, tuple(a.skip_tag)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
