"""``python -m bench``: measure xentcheck's overhead, compile cost, suite wall time and the
reference at language-model scale; print a table, write ``reports/bench.json``.

Every figure is measured side by side in this one run, on this machine, with whatever
else it is running (the load average is recorded). ``--quick`` runs a subset of the
cases and a smaller language-model shape (for trying things and for the smoke test); the
full mode (``tox -e bench``) runs the shipped suite and float32 logits [8192, 131072].
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import ROOT, run_json, run_timed
from bench.report import table, write

QUICK_CASES = [
    "cases/token_cross_entropy/mask.yaml",
    "cases/softmax_cross_entropy/basic.yaml",
    "cases/binary_cross_entropy/weights.yaml",
]
QUICK_LLM = (512, 131072)
FULL_LLM = (8192, 131072)

METHOD = {
    "overhead_ratio": (
        "Per framework: wall time of `xentcheck run --framework X --cases ... --jobs 1 "
        "--fail-on never --quiet` (a subprocess: process start, framework import, case "
        "loading, input generation, goldens, calls, comparison, results file), divided by "
        "api_s + reference_s of `python -m bench.bare` in another process, which makes the "
        "same calls (same instances, dtypes, rounded inputs, parameters, devices, "
        "differentiated inputs and cotangents, built with the harness's own expansion and "
        "rounding functions, outside the timers), times each api.run(call) alone and sums "
        "them, and times reference.evaluate once per instance and dtype alone. Nothing is "
        "subtracted from the harness side: process start and framework import count "
        "against it. overhead_ratio_excl_startup subtracts one measured start-up (a fresh "
        "process that imports the adapter and its framework and calls setup(), versions() "
        "and devices()). The bare loop computes each golden just before its calls (untimed "
        "for the calls), which lets the JAX adapter's background compiles progress "
        "outside the api timer: a bias against the harness. "
        "overhead_ratio_with_sensitivity adds to the denominator the bare run's "
        "sensitivity_s: the sensitivity D of the ULP criterion (perturbed goldens, the "
        "reference evaluated again on inputs moved by a rounding-sized step), timed alone "
        "for the instances and dtypes whose verdict needs it (each output judged with the "
        "harness's own judge() outside the timers, which computes D where the harness "
        "does). The ratio's definition predates the ULP criterion, when the golden was "
        "all the reference a verdict needed; D is reference work of the same kind, shared "
        "by every framework through the golden cache as the golden is."
    ),
    "compile_share": (
        "Compile seconds counted in the bare run (JAX: jax.monitoring trace + lowering + "
        "XLA compile events of every thread, incl. the adapter's background compile thread; "
        "TensorFlow: tf.function traces, by wrapping tracing_compilation._create_concrete_"
        "function; PyTorch: eager, nothing compiled), divided by the wall time of the "
        "framework's harness run (the same calls). compile_share_of_calls divides the "
        "same seconds by the bare run's api_s instead (above 1 where the background "
        "thread compiles while the calls run)."
    ),
    "suite_wall_s": (
        "sequential: the frameworks' harness runs above, one after the other (as the "
        "per-framework tox environments, `tox -e torch`, ..., run them), summed. parallel: "
        "one `xentcheck run` with every framework and --jobs max(frameworks, CPU cores) "
        "(frameworks in parallel worker processes, as `tox`'s main environment runs them "
        "with --jobs 2; with more jobs than frameworks the runner splits instances into "
        "shards). Both from an installed environment (warm tox env: no install time), "
        "with --no-cache."
    ),
    "incremental": (
        "The main job's loop, over the same frameworks and cases copied to a temporary "
        "folder, with one fresh --cache-dir: cold (empty cache), warm (nothing changed) "
        "and one_case (a small case file added to the folder), each one `xentcheck run` "
        "with the frameworks in parallel (--jobs 2, as tox's main job) plus `xentcheck "
        "report` on its results. cold_main_job_s, warm_rerun_s and one_case_rerun_s are "
        "run + report; the ratios divide by the cold figure. The header's reused/computed "
        "row counts are kept. Environment setup (tox installing the lock) is not included: "
        "the closing note measures it from a fresh clone."
    ),
    "llm_reference": (
        "`python -m bench.llm` in a fresh process per figure: float32 logits [rows, vocab] "
        "made in place; token_cross_entropy_chunked timed; peak RSS = VmHWM of the whole "
        "process (interpreter and input included), minus the input's size (value) or twice "
        "it (gradient returned as float32, the input's dtype). Time ratio: the chunked "
        "value's time over the time of np.exp on the same number of float64 elements in "
        "blocks, in the same process right after (only np.exp timed, not the float32 to "
        "float64 conversion). Bitwise: chunked vs unchunked reference, value and float64 "
        "gradient, several shapes and block sizes, NaN/inf rows, a mask, ignore_index."
    ),
}


def xentcheck_cmd(*args: str) -> list[str]:
    """The ``xentcheck`` command line, run by this Python (the same environment)."""
    return [sys.executable, "-c", "import sys; from xentcheck.cli import main; sys.exit(main())", *args]  # fmt: skip


def startup_seconds(framework: str) -> float:
    """Wall time of a fresh process that loads the adapter and its framework."""
    code = (
        "from xentcheck.adapters import load_framework\n"
        f"fw = load_framework({framework!r}); fw.setup(); fw.versions(); fw.devices()\n"
    )
    wall, rc, out = run_timed([sys.executable, "-c", code])
    if rc != 0:
        raise RuntimeError(f"{framework}: start-up failed: {out.strip().splitlines()[-1:]}")
    return wall


def harness_seconds(frameworks: list[str], cases: list[str], common: list[str], out: Path, jobs: int, cache: list[str] | None = None) -> float:  # fmt: skip
    """Wall time of ``xentcheck run`` over ``frameworks`` (raises when it fails).

    ``cache``: the run's cache options (``--cache-dir DIR``); by default ``--no-cache``, so
    every row is computed (and no executable comes from the compile cache).
    """
    args = [a for fw in frameworks for a in ("--framework", fw)]
    args += [a for c in cases for a in ("--cases", c)]
    cmd = xentcheck_cmd("run", *args, *common, "--jobs", str(jobs), "--fail-on", "never", "--quiet", "--out", str(out), *(cache or ["--no-cache"]))  # fmt: skip
    wall, rc, text = run_timed(cmd)
    if rc != 0:
        tail = " | ".join(text.strip().splitlines()[-4:])
        raise RuntimeError(f"xentcheck run {' '.join(frameworks)} exited {rc}: {tail}")
    return wall


#: the frameworks of the main job (tox's envlist): the default
MAIN_JOB = ("torch", "tensorflow", "jax")


def available(every: bool) -> list[str]:
    """The main job's frameworks installed here (``every``: every installed built-in)."""
    from xentcheck.adapters import FRAMEWORKS, available_frameworks

    names = [n for n in available_frameworks() if n in FRAMEWORKS]
    return names if every else [n for n in names if n in MAIN_JOB]


def log(msg: str) -> None:
    print(f"bench: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def run_frameworks(frameworks: list[str], cases: list[str], common: list[str], bare_args: list[str], tmp: Path) -> dict[str, Any]:  # fmt: skip
    """Overhead, compile share, suite wall times (sections 1-3 of the issue)."""
    per: dict[str, dict[str, Any]] = {}
    for fw in frameworks:
        log(f"{fw}: start-up")
        start = startup_seconds(fw)
        log(f"{fw}: harness run")
        wall = harness_seconds([fw], cases, common, tmp / f"{fw}.jsonl", 1)
        log(f"{fw}: bare calls ({wall:.1f} s through the harness)")
        bare = run_json([sys.executable, "-m", "bench.bare", "--framework", fw, *bare_args])
        denom = bare["api_s"] + bare["reference_s"]
        with_d = denom + bare["sensitivity_s"]
        per[fw] = {
            "harness_wall_s": round(wall, 3),
            "startup_s": round(start, 3),
            "bare_api_s": bare["api_s"],
            "bare_reference_s": bare["reference_s"],
            "bare_sensitivity_s": bare["sensitivity_s"],
            "sensitivities": bare["sensitivities"],
            "calls": bare["calls"],
            "goldens": bare["goldens"],
            "instances": bare["instances"],
            "devices": bare["devices"],
            "gpu": bare["gpu"],
            "compile": bare["compile"],
            "ratio": wall / denom if denom else None,
            "ratio_excl_startup": (wall - start) / denom if denom else None,
            "ratio_with_sensitivity": wall / with_d if with_d else None,
        }
    jobs = max(len(frameworks), os.cpu_count() or 1)
    log(f"all frameworks in parallel, --jobs {jobs}")
    parallel = harness_seconds(frameworks, cases, common, tmp / "all.jsonl", jobs)
    sequential = sum(p["harness_wall_s"] for p in per.values())
    gpus = {fw: p["gpu"] for fw, p in per.items()}
    on_gpu = [fw for fw, p in per.items() if "gpu" in p["devices"]]
    return {
        "overhead_ratio": {fw: round(p["ratio"], 3) for fw, p in per.items() if p["ratio"]},
        "overhead_ratio_excl_startup": {
            fw: round(p["ratio_excl_startup"], 3) for fw, p in per.items() if p["ratio"]
        },
        "overhead_ratio_with_sensitivity": {
            fw: round(p["ratio_with_sensitivity"], 3)
            for fw, p in per.items()
            if p["ratio_with_sensitivity"]
        },
        "compile_share": {
            fw: round(p["compile"]["seconds"] / p["harness_wall_s"], 4) for fw, p in per.items()
        },
        "compile_share_of_calls": {
            fw: round(p["compile"]["seconds"] / p["bare_api_s"], 4) if p["bare_api_s"] else None
            for fw, p in per.items()
        },
        "compile": {fw: p["compile"] for fw, p in per.items()},
        "suite_wall_s": {
            "sequential": round(sequential, 2),
            "parallel": round(parallel, 2),
            "speedup": round(sequential / parallel, 3),
            "jobs": jobs,
        },
        "frameworks": per,
        "gpu": {
            "present": bool(on_gpu),
            "frameworks_on_gpu": on_gpu,
            "per_framework": gpus,
            "summary": (
                f"frameworks on GPU: {', '.join(on_gpu)} (reference on CPU)"
                if on_gpu
                else "no GPU present: every framework ran on CPU ("
                + "; ".join(f"{k}: {v}" for k, v in gpus.items())
                + ")"
            ),
        },
    }


ONE_CASE = """\
cases:
  - id: bench-added-case
    loss: softmax_cross_entropy
    description: The case a user adds between two runs (bench one_case_rerun_s).
    inputs:
      logits: {random: normal, shape: [4, 7], seed: 11}
      target: {random: labels, shape: [4], classes: 7, seed: 12}
    params: {reduction: [none, mean]}
"""


def report_seconds(results: Path, page: Path, options: Sequence[str] = ()) -> float:
    """Wall time of ``xentcheck report`` over one results file (raises when it fails)."""
    wall, rc, text = run_timed(xentcheck_cmd("report", str(results), "-o", str(page), *options))
    if rc != 0:
        raise RuntimeError(f"xentcheck report exited {rc}: {text.strip().splitlines()[-1:]}")
    return wall


def cache_counts(results: Path) -> dict[str, int]:
    """The run header's count of rows reused from the cache and computed."""
    with results.open(encoding="utf-8") as f:
        header = json.loads(f.readline())
    cache = header.get("cache") or {}
    return {k: int(cache.get(k, 0)) for k in ("reused_rows", "computed_rows")}


def run_incremental(frameworks: list[str], cases: list[str], common: list[str], tmp: Path, jobs: int) -> dict[str, Any]:  # fmt: skip
    """The main job's loop: a cold run, a rerun with nothing changed, and a rerun after
    adding one small case file, each ``xentcheck run`` (frameworks in parallel, as tox's
    main job runs them) plus ``xentcheck report``, sharing one fresh cache folder."""
    suite = tmp / "suite"
    for i, c in enumerate(cases):  # a copy, so a case file can be added to it
        src = Path(c)
        dst = suite / f"{i}-{src.name}"
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    cache = ["--cache-dir", str(tmp / "cache")]
    out: dict[str, Any] = {"jobs": jobs}
    for step in ("cold", "warm", "one_case"):
        if step == "one_case":
            (suite / "added.yaml").write_text(ONE_CASE, encoding="utf-8")
        log(f"incremental: {step} run, --jobs {jobs}")
        results = tmp / f"{step}.jsonl"
        run_s = harness_seconds(frameworks, [str(suite)], common, results, jobs, cache)
        rep_s = report_seconds(results, tmp / f"{step}.html", cache)
        out[step] = {"run_s": round(run_s, 2), "report_s": round(rep_s, 2), **cache_counts(results)}
    cold = out["cold"]["run_s"] + out["cold"]["report_s"]
    warm = out["warm"]["run_s"] + out["warm"]["report_s"]
    one = out["one_case"]["run_s"] + out["one_case"]["report_s"]
    return {
        "cold_main_job_s": round(cold, 2),
        "warm_rerun_s": round(warm, 2),
        "one_case_rerun_s": round(one, 2),
        "warm_rerun_ratio": round(warm / cold, 4),
        "one_case_rerun_ratio": round(one / cold, 4),
        "incremental": out,
    }


def run_llm(rows: int, vocab: int) -> dict[str, Any]:
    """The reference at language-model scale (section 4 of the issue)."""
    shape = ["--rows", str(rows), "--vocab", str(vocab)]
    log(f"llm reference: value, [{rows}, {vocab}] float32")
    value = run_json([sys.executable, "-m", "bench.llm", "value", *shape])
    log("llm reference: value and gradient")
    grad = run_json([sys.executable, "-m", "bench.llm", "grad", *shape])
    log("llm reference: bit-for-bit check")
    bitwise = run_json([sys.executable, "-m", "bench.llm", "bitwise", "--vocab", str(vocab)])
    inp = value["input_gib"]
    return {
        "shape": [rows, vocab],
        "dtype": "float32",
        "input_gib": round(inp, 4),
        "value_peak_rss_minus_input_gib": round(value["peak_rss_gib"] - inp, 4),
        "grad_peak_rss_minus_2x_input_gib": round(grad["peak_rss_gib"] - 2 * inp, 4),
        "value_time_ratio_vs_exp_pass": round(value["seconds"] / value["exp_pass_seconds"], 2),
        "bitwise_equal_to_unchunked": bitwise["equal"],
        "kernel": value["kernel"],
        "numba_max_ulp_vs_numpy": bitwise.get("numba_max_ulp_vs_numpy"),
        "value_s": round(value["seconds"], 3),
        "grad_s": round(grad["seconds"], 3),
        "exp_pass_s": round(value["exp_pass_seconds"], 4),
        "interpreter_rss_gib": round(value["baseline_rss_gib"], 4),
        "gradient": "returned as a float32 array (the input's dtype); or block by block "
        "in float64 to an on_grad callback",
        "bitwise_cases": bitwise["cases"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a subset of cases, a smaller LLM shape")
    p.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    p.add_argument("--framework", action="append", help="default: torch, tensorflow, jax")
    p.add_argument("--all-frameworks", action="store_true", help="every installed built-in adapter")
    p.add_argument("--cases", action="append", help="default: cases/ (quick: a few files)")
    p.add_argument("--dtype", action="append")
    p.add_argument("--device", default="all", choices=["cpu", "gpu", "all"])
    p.add_argument("--skip-tag", action="append", default=[], help="passed to xentcheck run")
    p.add_argument("--llm-shape", help="ROWS,VOCAB (default 8192,131072; quick 512,131072)")
    p.add_argument("--no-frameworks", action="store_true", help="only the LLM reference")
    p.add_argument("--no-llm", action="store_true", help="skip the LLM reference")
    p.add_argument(
        "--no-incremental", action="store_true", help="skip the cold/warm/one-case reruns"
    )
    a = p.parse_args(argv)

    cases = a.cases or ([str(ROOT / c) for c in QUICK_CASES] if a.quick else [str(ROOT / "cases")])
    rows, vocab = (
        map(int, a.llm_shape.split(",")) if a.llm_shape else (QUICK_LLM if a.quick else FULL_LLM)
    )
    common = ["--device", a.device]
    common += [x for d in a.dtype or [] for x in ("--dtype", d)]
    common += [x for t in a.skip_tag for x in ("--skip-tag", t)]
    bare_args = [x for c in cases for x in ("--cases", c)] + common
    doc: dict[str, Any] = {
        "mode": "quick" if a.quick else "full",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "host": platform.node(),
            "cpu_cores": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": [round(os.getloadavg()[0], 2)],
        },
        "cases": [os.path.relpath(c, ROOT) for c in cases],
        "method": METHOD,
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xentcheck-bench-") as tmp:
        if not a.no_frameworks:
            doc.update(
                run_frameworks(
                    a.framework or available(a.all_frameworks), cases, common, bare_args, Path(tmp)
                )
            )
        if not a.no_incremental:
            doc.update(
                run_incremental(
                    a.framework or available(a.all_frameworks), cases, common, Path(tmp), 2
                )
            )
    if not a.no_llm:
        doc["llm_reference"] = run_llm(rows, vocab)
    doc["machine"]["loadavg"].append(round(os.getloadavg()[0], 2))
    doc["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    write(doc, Path(a.out))
    print(table(doc))
    print(f"written: {a.out}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (RuntimeError, ValueError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
