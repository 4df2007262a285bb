"""The worker: runs instances through one framework's APIs and writes result rows.

It runs in a process of its own (``python -m xentcheck.harness.worker``), started and
watched by :mod:`xentcheck.harness.supervisor`, so a crash, a hang or a poisoned GPU
context in one framework never takes the others, or the rows already written, with it.
It tells the supervisor which instance and API call it is on (see :func:`main`) and
writes each instance's rows together, closed by a ``done`` marker, so a killed run
resumes exactly where it stopped.

For each instance and dtype the golden is computed once from the dtype-rounded inputs
(or taken from the run's shared golden cache) and shared by every API and device; each
API's output is compared quantity by quantity (``value``, ``grad:<input>``); a
non-passing comparison the known-difference registry explains becomes ``known``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xentcheck import accuracy
from xentcheck.adapters import Api, Framework, Output, Unsupported, load_framework
from xentcheck.dtypes import FLOAT_DTYPES, quantize, saturate
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import Case, Instance, load_cases
from xentcheck.harness.compare import Comparison, compare, sample, tolerance_for
from xentcheck.harness.goldens import GoldenCache, golden_key
from xentcheck.harness.plan import instances_of, runs_case, select_cases
from xentcheck.harness.results import ResultWriter, run_header
from xentcheck.harness.sensitivity import floating_inputs, sensitivity
from xentcheck.known import Finding, PredicateError, explain, warn_predicate_errors
from xentcheck.reference import LOSSES, Golden, evaluate, is_probability_target

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


#: the goldens of the instance this thread runs (:func:`instance_goldens`)
_RUNNING = threading.local()


class InstanceGoldens:
    """What :func:`golden_for` answered for one instance's own inputs, at each dtype.

    Looked up by the inputs themselves (names, dtypes, shapes and bytes: what a golden
    cache key hashes), compared in place: a few sampled elements first, which tells
    apart the perturbed inputs of the sensitivity without reading them whole.
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.entries: list[tuple[dict[str, np.ndarray], tuple[Golden | None, str | None]]] = []

    def find(
        self, instance: Instance, inputs: dict[str, np.ndarray]
    ) -> tuple[Golden | None, str | None] | None:
        """The answer kept for these inputs of this instance, or None."""
        if instance is not self.instance:
            return None
        return next((a for known, a in self.entries if same_inputs(known, inputs)), None)

    def add(self, inputs: dict[str, np.ndarray], answer: tuple[Golden | None, str | None]) -> None:
        self.entries.append((inputs, answer))


def same_inputs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Whether two sets of inputs hold the same names, dtypes, shapes and bytes."""
    if a.keys() != b.keys():
        return False
    pairs = [(np.asarray(a[k]), np.asarray(b[k])) for k in a]
    pairs = [(x, y) for x, y in pairs if x is not y]
    if any(x.dtype != y.dtype or x.shape != y.shape for x, y in pairs):
        return False
    for x, y in pairs:  # a sample of each first: most differing arrays differ there
        step = max(1, x.size // 32)
        if x.reshape(-1)[::step].tobytes() != y.reshape(-1)[::step].tobytes():
            return False
    return all(x.tobytes() == y.tobytes() for x, y in pairs)


@contextlib.contextmanager
def instance_goldens(instance: Instance) -> Iterator[InstanceGoldens]:
    """While ``instance`` runs, :func:`golden_for` in this thread answers from its goldens.

    :func:`run_instance` keeps there what :func:`golden_for` returned for the instance's
    inputs at each dtype (the run's own evaluations, not the sensitivity's perturbed
    ones). Two dtypes whose rounded inputs are the same (integers, halves, fills) then
    share one evaluation, as they share one entry of a golden cache, and a sensitivity
    perturbation that moves no input (a 0/1 target, whose steps are 0) reads the golden it
    leaves unchanged. The reference is deterministic: the answers are those it would
    compute again. They are dropped when the block ends.
    """
    _RUNNING.goldens = goldens = InstanceGoldens(instance)
    try:
        yield goldens
    finally:
        del _RUNNING.goldens


def golden_for(
    instance: Instance, inputs: dict[str, np.ndarray], cache: GoldenCache | None = None
) -> tuple[Golden | None, str | None]:
    """(golden, None) or (None, reason) when the reference rejects the input.

    With a ``cache`` the golden is looked up first and stored after computing it, so every
    framework and shard of a run shares one evaluation per instance and dtype. Inside
    :func:`instance_goldens` the running instance's goldens are looked up first.
    """
    return _golden(instance, inputs, cache, remember=False)[0]


def _golden(
    instance: Instance, inputs: dict[str, np.ndarray], cache: GoldenCache | None, *,
    remember: bool,
) -> tuple[tuple[Golden | None, str | None], bool]:  # fmt: skip
    """(:func:`golden_for`'s answer, whether it was found rather than computed);
    ``remember`` keeps it among the running instance's goldens."""
    goldens: InstanceGoldens | None = getattr(_RUNNING, "goldens", None)
    answer = goldens.find(instance, inputs) if goldens is not None else None
    if answer is not None:
        return answer, True
    key = golden_key(instance.loss, instance.params, inputs) if cache is not None else ""
    found = cache.get(key) if cache is not None else None
    answer = found if found is not None else _evaluate(instance, inputs, cache, key)
    if remember and goldens is not None:
        goldens.add(inputs, answer)
    return answer, found is not None


class Prefetched(GoldenCache):
    """The goldens the supervisor computed, in this worker's order, while it started
    (``--prefetched``): read, never written, and given up at the first one missing, where
    the supervisor stopped (a lookup costs hashing the inputs)."""

    holding = True

    def get(self, key: str) -> tuple[Golden | None, str | None] | None:
        found = super().get(key)
        self.holding = found is not None
        return found

    def put(self, key: str, golden: Golden | None, error: str | None) -> None:
        """Nothing: this worker's goldens are its own."""


def _evaluate(
    instance: Instance, inputs: dict[str, np.ndarray], cache: GoldenCache | None, key: str
) -> tuple[Golden | None, str | None]:
    """The reference's answer on ``inputs``, stored in ``cache`` under ``key``."""
    try:
        result: tuple[Golden | None, str | None] = (
            evaluate(instance.loss, inputs, instance.params), None,
        )  # fmt: skip
    except ValueError as exc:
        result = (None, str(exc))
    if cache is not None:
        cache.put(key, *result)
    return result


def expected_tolerance(case: Case) -> dict[str, float]:
    """The tolerance of the check of the reference against the case's ``expected``.

    ``expected.tolerance`` when the case gives one (``{ulp: N}``, or ``{rtol, atol}`` with
    the float64 defaults for a missing one), else the case's float64 ``{rtol, atol}``.
    """
    own = (case.expected or {}).get("tolerance")
    if own is not None and "ulp" in own:
        return {"ulp": own["ulp"]}
    rtol, atol = tolerance_for("float64", {"*": own} if own is not None else case.tolerance)
    return {"rtol": rtol, "atol": atol}


def compare_expected(expected: Any, actual: Any, tolerance: dict[str, float]) -> Comparison:
    """The reference's float64 ``actual`` against a case's ``expected`` at ``tolerance``.

    One expected number applies to every element. ``{ulp: N}`` passes where each element
    lies within N units in the last place (float64) of its expected value, ``{rtol,
    atol}`` as a framework row does. A shape mismatch names the case's shape and the
    reference's.
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.ndim == 0:
        expected = np.broadcast_to(expected, actual.shape)
    if expected.shape != actual.shape:
        note = (f"the case's expected value has shape {list(expected.shape)} where the "
                f"reference computes shape {list(actual.shape)}")  # fmt: skip
        return Comparison("mismatch", note=note, expected=sample(expected.ravel()[:4]),
                          actual=sample(actual.ravel()[:4]))  # fmt: skip
    if "ulp" not in tolerance:
        return compare(expected, actual, "float64", tolerance["rtol"], tolerance["atol"])
    c = compare(expected, actual, "float64", 0.0, 0.0)  # every differing element counts
    if c.status == "mismatch" and c.max_ulp is not None and c.max_ulp <= tolerance["ulp"]:
        c.status = "pass"
    return c


def case_sets_tolerance(dtype: str, tolerance: dict[str, dict[str, float]]) -> bool:
    """Whether the case states a tolerance for ``dtype`` (or for every dtype, ``*``): its
    own criterion there, which replaces the ULP criterion (tighter or looser)."""
    return bool(tolerance.get("*") or tolerance.get(dtype))


def judge(
    instance: Instance, inputs: dict[str, np.ndarray], dtype: str, quantity: str,
    expected: np.ndarray, actual: np.ndarray, criterion: str, shared: dict[Any, Any],
    golden: Golden, golden_cache: GoldenCache | None = None,
) -> tuple[Comparison, dict[str, Any]]:  # fmt: skip
    """Compare one quantity under ``criterion``; (the comparison, the row's criterion fields).

    ``expected`` is the golden as compared (saturated to the output dtype). ``tolerance``:
    the case's tolerance over torch.testing's table, as always; a case that states a
    tolerance for the dtype (or ``*``) is judged by it under ``ulp`` too (criterion
    ``case``). ``ulp``: the allowance of
    :mod:`xentcheck.accuracy`, first the cheap rounding bound and, only where an element
    exceeds it, with the sensitivity D (computed once per instance and dtype, kept in
    ``shared``). A mismatch is classified ``precision`` when it lies within the allowance
    of the next lower precision (:data:`~xentcheck.accuracy.LOWER_PRECISION`), else
    ``wrong``, with the decimal digits lost beyond the allowance.
    """
    case = instance.case
    terms = _terms(instance, inputs, expected, shared)

    def d() -> np.ndarray:
        if "sensitivity" not in shared:
            t0 = time.perf_counter()
            shared["sensitivity"] = sensitivity(instance, inputs, dtype, golden, golden_cache)
            shared["sensitivity_s"] = shared.get("sensitivity_s", 0.0) + time.perf_counter() - t0
        return shared["sensitivity"][quantity]

    same_size = np.size(expected) == np.size(actual)
    rtol, atol = tolerance_for(dtype, case.tolerance)
    if criterion == "ulp" and case_sets_tolerance(dtype, case.tolerance):
        criterion = "case"  # the case's own tolerance judges this dtype
    bounds = (rtol, atol) if criterion in ("tolerance", "case") else (0.0, 0.0)
    if criterion in ("tolerance", "case"):
        c = compare(expected, actual, dtype, *bounds)
    else:
        cheap = _kept(shared, "rounding_allowance", quantity, expected,
                      lambda: accuracy.rounding_allowance(expected, dtype, terms))  # fmt: skip
        c = compare(expected, actual, dtype, *bounds, allowance=cheap)
        if c.status == "mismatch" and same_size:
            full = _kept(shared, "allowance", quantity, expected, lambda: accuracy.allowance(
                expected, dtype, d().reshape(np.shape(expected)), terms))  # fmt: skip
            c = compare(expected, actual, dtype, *bounds, allowance=full)
    fields: dict[str, Any] = {
        "criterion": criterion,
        "allowed_ulp": c.allowed_ulp,
        "excess": c.excess,
    }
    if c.status == "mismatch":
        lower, bits = accuracy.LOWER_PRECISION[dtype]
        kind = "wrong"
        if same_size:
            bound = _kept(shared, "lower_allowance", quantity, expected, lambda: (
                accuracy.lower_allowance(expected, dtype, bits, d().reshape(np.shape(expected)),
                                         terms)))  # fmt: skip
            if compare(expected, actual, dtype, *bounds, allowance=bound).status == "pass":
                kind = "precision"
        fields.update(accuracy=kind, digits_lost=accuracy.digits_lost(c.excess))
        if kind == "precision":
            fields["precision_of"] = lower
    return c, fields


def _kept(shared: dict, what: str, quantity: str, expected: np.ndarray, make: Callable[[], Any]):
    """``make()``, kept in ``shared`` for the next API or device judging the same quantity
    against the same saturated golden ``expected`` (the same object: each output dtype
    has its own, see :func:`run_api`)."""
    kept = shared.get((what, quantity))
    if kept is None or kept[0] is not expected:
        kept = shared[(what, quantity)] = expected, make()
    return kept[1]


def _terms(
    instance: Instance, inputs: dict[str, np.ndarray], expected: np.ndarray, shared: dict
) -> int:
    """:func:`~xentcheck.accuracy.reduction_terms` of a quantity of ``expected``'s size
    (the floating inputs' sizes read once per instance and dtype, kept in ``shared``)."""
    if "floating_sizes" not in shared:
        names = floating_inputs(instance.loss, inputs)
        biggest = max(names, key=lambda n: np.size(inputs[n]), default=None)
        last = (
            np.shape(inputs[biggest])[-1] if biggest is not None and np.ndim(inputs[biggest]) else 1
        )
        shared["floating_sizes"] = [np.size(inputs[n]) for n in names], last
    sizes, last = shared["floating_sizes"]
    return accuracy.reduction_terms(sizes, last, int(np.size(expected)))


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
    golden: Golden | None, reference_error: str | None, shared: dict[Any, Any] | None = None,
    *, criterion: str = "ulp", golden_cache: GoldenCache | None = None, known: Iterable[Any] = (),
) -> list[Row]:  # fmt: skip
    """Run one API on one instance, dtype and device; return its result rows.

    ``criterion`` (``ulp`` or ``tolerance``) judges each quantity (:func:`judge`);
    ``golden_cache`` keeps the ULP criterion's sensitivity D for every framework of a run;
    ``known`` are user entries consulted after the built-in ones.

    The API receives :func:`~xentcheck.harness.calls.make_call`'s Call. ``shared``, one
    dict per instance and dtype given to each of its calls, keeps what depends on the
    golden alone (the cotangent and differentiated inputs, each quantity saturated to an
    output dtype) from one API and device to the next; the rows are the same with or
    without it.
    """
    shared = {} if shared is None else shared
    call = make_call(instance, inputs, dtype, device, golden, shared)
    if not api.applies(call):
        return []
    base = base_row(instance, fw.name, api.name, device, dtype)
    if golden is None and not instance.case.expect_error:
        # Loading a case rejects this; should one get here anyway, no framework's
        # behaviour can pass a case whose input is broken.
        msg = (f"the reference rejects the input ({reference_error}) but the case does not "
               "set expect_error: true; correct the input or set expect_error: true")  # fmt: skip
        return [{**base, "quantity": "value", **no_comparison("error", msg)}]
    raised = ""
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
        raised = type(exc).__name__
    elapsed = time.perf_counter() - t0
    base["elapsed_s"] = round(elapsed, 6)
    compile_s = getattr(out, "compile_s", None)  # optional: an adapter may report it
    if compile_s is not None:
        base["compile_s"] = round(float(compile_s), 6)
    if golden is None or instance.case.expect_error:
        # the reference rejects the input, or the case says it must be rejected
        base["behaviour"] = f"raised {raised}" if out is None else behaviour(out.value)

    def finish(row: Row, expected, actual) -> Row:
        if row["status"] in ("mismatch", "nonfinite", "error"):
            f = Finding(fw.name, api.name, instance.loss, row["params"], inputs, dtype, device,
                        row["quantity"], row["status"], expected, actual, exc_text, instance.case.expect_error)  # fmt: skip
            errors: list[PredicateError] = []
            k = explain(f, errors, extra=known)
            if errors:  # a broken entry: the row says so, and the run warns once per entry
                row["known_errors"] = [e.as_row() for e in errors]
                row["message"] = "; ".join(x for x in (row.get("message"), *map(str, errors)) if x)
                warn_predicate_errors(errors, fw.name)
            if k is not None:
                row.update(status="known", known_id=k.id, explanation=k.explanation, link=k.link,
                           unexplained_status=row["status"])  # fmt: skip
        return row

    if golden is None:  # the case expects the rejection: a conforming API raises too
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
        return [finish(row, None, value)]
    if out is None:
        row = {**base, "quantity": "value", **no_comparison("error", exc_text)}
        return [finish(row, golden.value, None)]
    rows = []
    rtol, atol = tolerance_for(dtype, instance.case.tolerance)  # today's table, on every row
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
        key = ("saturated", quantity, out_dtype)  # the golden as the comparison takes it
        if key not in shared:
            shared[key] = saturate(expected, out_dtype)
        actual = np.asarray(actual, dtype=np.float64)
        c, fields = judge(instance, inputs, dtype, quantity, shared[key], actual, criterion,
                          shared, golden, golden_cache)  # fmt: skip
        row.update(fields)
        row.update(status=c.status, max_abs_err=c.max_abs_err, max_rel_err=c.max_rel_err, max_ulp=c.max_ulp,
                   index=c.index, expected=c.expected, actual=c.actual, shape=list(np.shape(expected)))  # fmt: skip
        if c.note or out.note:
            row["message"] = "; ".join(x for x in (c.note, out.note) if x)
        rows.append(finish(row, expected, actual))
    return rows


def behaviour(value: Any) -> str:
    """What an API returned, in words: ``returned NaN``, ``returned Inf`` or a finite value."""
    v = np.asarray(value, dtype=np.float64)
    if np.isnan(v).any():
        return "returned NaN"
    if np.isinf(v).any():
        return "returned Inf"
    return "returned a finite value"


#: exception text meaning the GPU context is unusable for the rest of the process
POISON_MARKERS = (
    "device-side assert", "illegal memory access", "CUDA error", "CUDA_ERROR_",
    "cudaErrorIllegalAddress", "CUBLAS_STATUS_EXECUTION_FAILED", "unspecified launch failure",
)  # fmt: skip


def poisoned(rows: Iterable[Row]) -> bool:
    """Whether a row's message says the GPU context is poisoned (the worker must be replaced).

    Any status counts: an out-of-range label that trips a device-side assert is a ``pass``
    (rejected as expected), yet nothing after it can run on that device.
    """
    return any(any(m in (r.get("message") or "") for m in POISON_MARKERS) for r in rows)


@dataclass
class Stats:
    """Where a worker's time went (summed over instances) and how the golden cache did."""

    api_s: float = 0.0
    reference_s: float = 0.0
    sensitivity_s: float = 0.0
    compile_s: float = 0.0
    golden_hits: int = 0
    golden_misses: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def run_instance(
    fw: Framework, instance: Instance, dtypes: Iterable[str] | None, devices: Iterable[str],
    golden_cache: GoldenCache | None = None, stats: Stats | None = None,
    on_call: Callable[[str, str, str], None] | None = None,
    *, criterion: str = "ulp", known: Iterable[Any] = (), prefetched: Prefetched | None = None,
) -> list[Row]:  # fmt: skip
    """Every row of one instance: each wanted dtype x device x API of ``fw``.

    ``on_call(dtype, device, api)`` is told before each API call (the supervisor names the
    call in a crash row); ``stats`` accumulates API, reference and compile time (the
    sensitivity's reference time in ``sensitivity_s`` too). ``criterion`` and ``known``
    as :func:`run_api` takes them. Without a ``golden_cache``, the goldens are looked up
    in ``prefetched`` first, while it holds them.
    """
    apis = fw.apis_for(instance.loss)
    if not apis:
        return []
    wanted = set(dtypes) if dtypes else None
    rows: list[Row] = []
    raw = instance.inputs()
    with instance_goldens(instance):  # dtypes with the same rounded inputs share one golden
        for dtype in instance.case.dtypes:
            if wanted is not None and dtype not in wanted:
                continue
            inputs = rounded_inputs(instance, raw, dtype)
            shared: dict[Any, Any] = {}  # run_api's golden-side work, for every API and device
            t0 = time.perf_counter()
            source = golden_cache
            if source is None and prefetched is not None and prefetched.holding:
                source = prefetched
            (golden, ref_error), hit = _golden(instance, inputs, source, remember=True)
            if stats is not None:
                stats.reference_s += time.perf_counter() - t0
                if source is not None:
                    stats.golden_hits += hit
                    stats.golden_misses += not hit
            for device in devices:
                for api in apis:
                    if on_call:
                        on_call(dtype, device, api.name)
                    new = run_api(fw, api, instance, inputs, dtype, device, golden, ref_error,
                                  shared, criterion=criterion, golden_cache=golden_cache,
                                  known=known)  # fmt: skip
                    if stats is not None and new:
                        stats.api_s += new[0].get("elapsed_s", 0.0)
                        stats.compile_s += new[0].get("compile_s", 0.0)
                    rows.extend(new)
            if stats is not None:
                stats.sensitivity_s += shared.get("sensitivity_s", 0.0)
    return rows


def run_framework(
    fw: Framework,
    instances: Iterable[Instance],
    dtypes: Iterable[str] | None,
    devices: Iterable[str],
    emit: Callable[[Row], None],
    progress: Callable[[int, Instance], None] | None = None,
    golden_cache: GoldenCache | None = None,
    *,
    criterion: str = "ulp",
    known: Iterable[Any] = (),
) -> None:
    """Run every instance through every API of ``fw``; ``emit`` each row as it is made.

    In-process and unsupervised (the pytest plugin's path); the runner's workers use
    :func:`run_instance` one instance at a time. ``criterion`` and ``known`` as
    :func:`run_api` takes them.
    """
    for n, instance in enumerate(instances):
        if progress:
            progress(n, instance)
        if not runs_case(fw.case_tags, instance.case):
            continue
        for row in run_instance(fw, instance, dtypes, devices, golden_cache,
                                criterion=criterion, known=known):  # fmt: skip
            emit(row)


def set_memory_limit(spec: str | None) -> None:
    """Cap the worker's address space (``XENTCHECK_WORKER_MEMORY_LIMIT``: bytes, or 512M, 2G).

    Allocations beyond it fail with MemoryError (an ``error`` row) instead of waking the
    kernel's OOM killer; meant for tests and for shared machines.
    """
    if not spec:
        return
    import resource

    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    spec = spec.strip().upper().removesuffix("B")
    scale = units.get(spec[-1:], 1)
    limit = int(float(spec.rstrip("KMG")) * scale)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the runner dies (a killed run leaves no orphans)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_instances(saved: str | None, cases: list[str], skip_tags: Iterable[str]) -> list[Instance]:
    """The run's instance list, whose indices ``--indices`` names: the one the supervisor
    saved (:func:`~xentcheck.harness.supervisor.save_instances`) when ``saved`` names its
    file, else loaded again from ``cases`` without ``skip_tags`` (the same list: the
    runner validated these files before starting this worker)."""
    if saved:
        with open(saved, "rb") as f:
            return pickle.load(f)
    return instances_of(select_cases(load_cases(cases, checked=True), skip_tags))


class Control:
    """The worker's side of the protocol: one line per event on the runner's pipe."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def say(self, *words: object) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (" ".join(map(str, words)) + "\n").encode())
        except OSError:  # the runner is gone: stop rather than run unobserved
            os._exit(4)


#: a worker exits with this status after recording an instance that poisoned the GPU
POISONED_EXIT = 75


def main(argv: list[str] | None = None) -> int:
    """Run the given instances (indices into the run's instance list) of one framework.

    Protocol on ``--control-fd``: ``ready NAME``, then per instance ``start I``,
    ``at I DTYPE DEVICE API`` before each API call, ``done I`` once its rows (and a
    ``{"kind": "done"}`` marker closing them) are flushed to ``--out``.
    """
    p = argparse.ArgumentParser(prog="python -m xentcheck.harness.worker")
    p.add_argument("--framework", required=True)
    p.add_argument("--cases", action="append", required=True)
    p.add_argument("--dtype", action="append")
    p.add_argument("--device", default="all", choices=["cpu", "gpu", "all"])
    p.add_argument("--skip-tag", action="append", default=[])
    p.add_argument("--indices", help="comma-separated instance indices (default all)")
    p.add_argument("--golden-cache", help="folder of the shared golden cache")
    p.add_argument("--criterion", default="ulp", choices=accuracy.CRITERIA)
    p.add_argument("--known", action="append", default=[], help="a user known-differences file")
    p.add_argument("--api", action="append", help="run only these APIs of the framework")
    p.add_argument("--instances", help="the run's instances, as the supervisor saved them")
    p.add_argument("--prefetched", help="goldens the supervisor computed while this started")
    p.add_argument("--control-fd", type=int)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    _die_with_parent()
    set_memory_limit(os.environ.get("XENTCHECK_WORKER_MEMORY_LIMIT"))
    control = Control(args.control_fd)
    instances = run_instances(args.instances, args.cases, args.skip_tag)
    indices = (
        [int(i) for i in args.indices.split(",") if i] if args.indices is not None
        else range(len(instances))
    )  # fmt: skip
    known: list[Any] = []
    if args.known:  # helper D's loader; imported only when a file is given
        from xentcheck.known.user import load_known

        known = load_known(args.known)
    fw = load_framework(args.framework)
    if args.api:  # fuzz shrinks one API's finding without running the framework's others
        fw = dataclasses.replace(fw, apis=[a for a in fw.apis if a.name in set(args.api)])
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
        framework_spec=args.framework,
        frameworks={
            fw.name: {
                "versions": fw.versions(),
                "devices": devices_info,
                "skipped": skipped,
                "apis": list(dict.fromkeys(a.name for a in fw.apis)),
                "case_tags": sorted(fw.case_tags) if fw.case_tags is not None else None,
            }
        },
    )
    cache = GoldenCache(args.golden_cache) if args.golden_cache else None
    prefetched = Prefetched(args.prefetched) if args.prefetched and cache is None else None
    with ResultWriter(args.out, mode="a") as w:
        w.write(header)
        control.say("ready", fw.name)
        for index in indices:
            instance = instances[index]
            control.say("start", index)
            stats = Stats()
            rows: list[Row] = []
            if runs_case(fw.case_tags, instance.case):
                rows = run_instance(fw, instance, args.dtype, devices, cache, stats,
                                    lambda d, dev, api, i=index: control.say("at", i, d, dev, api),
                                    criterion=args.criterion, known=known,
                                    prefetched=prefetched)  # fmt: skip
            w.write_all([*rows, {"kind": "done", "framework": args.framework, "index": index,
                                 "instance": instance.name, "stats": stats.as_dict()}])  # fmt: skip
            control.say("done", index)
            if poisoned(rows):
                print(f"xentcheck: {fw.name}: the GPU context is poisoned after {instance.name}; "
                      "a fresh worker takes over", file=sys.stderr, flush=True)  # fmt: skip
                return POISONED_EXIT
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # reported by the runner as a crash row, with this text
        traceback.print_exc()
        sys.exit(3)
