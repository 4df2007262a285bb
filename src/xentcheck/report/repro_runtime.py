"""The helpers every reproduction script carries: NumPy only, no xentcheck import.

:mod:`xentcheck.report.repro` copies this module's source, as it is, into each script
(after the script's ``from __future__`` line and :mod:`xentcheck.floats`, whose source is
embedded before it in place of its import), so everything here must run with nothing
but NumPy installed. The functions mirror :mod:`xentcheck.harness.compare` (tests check
they agree bit for bit), and their names
start with ``repro_`` so the adapter code copied after them cannot shadow them.
"""

import math
import sys

import numpy as np

from xentcheck.floats import FLOAT_FORMATS, float_round, float_saturate, float_ulp  # embedded

inf = math.inf  # embedded literals write .inf / .nan this way
nan = math.nan

REPRO_SAMPLES = 4  # elements around the worst one that a results row keeps


def repro_quantize(x, dtype):
    """``x`` rounded to ``dtype`` (round to nearest even), held as float64."""
    return float_round(x, dtype)


def repro_labels(a):
    """Class indices as the worker passes them: int64 (a non-integer array as it is)."""
    a = np.asarray(a)
    return a.astype(np.int64) if a.dtype.kind in "iub" else a


def repro_cotangent(shape):
    """``g[k] = 1 + (k mod 8) / 8`` over the output's flat C-order index (scalar: 1)."""
    n = int(np.prod(shape, dtype=np.int64))
    return (1.0 + (np.arange(n) % 8) / 8.0).reshape(shape)


def repro_errors(expected, actual, dtype, rtol, atol):
    """(max_abs_err, max_rel_err, max_ulp, elements beyond tolerance, NaN/Inf pattern differs)
    over the elements finite in both, as xentcheck's comparison measures them."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64).reshape(e.shape)
    both = np.isfinite(e) & np.isfinite(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        abs_err = np.where(both, np.abs(a - e), 0.0)
        rel_err = np.where(both, abs_err / np.abs(e), 0.0)
        rel_err = np.where(both & (abs_err == 0), 0.0, rel_err)
        ulp_err = np.where(both, abs_err / float_ulp(np.where(both, e, 1.0), dtype), 0.0)
    pattern = not (
        np.array_equal(np.isnan(e), np.isnan(a))
        and np.array_equal(e == np.inf, a == np.inf)
        and np.array_equal(e == -np.inf, a == -np.inf)
    )
    beyond = int(np.sum(abs_err > atol + rtol * np.abs(np.where(both, e, 0.0))))

    def top(v):
        m = float(v.max()) if v.size else 0.0
        return m if math.isfinite(m) else None

    return top(abs_err), top(rel_err), top(ulp_err), beyond, pattern


def repro_find_api(framework, name, call):
    """The framework's API of that name for the call's loss (the one that applies)."""
    found = [a for a in framework.apis if a.name == name and a.loss == call.loss]
    for api in found:
        if api.applies(call):
            return api
    if found:
        return found[0]
    raise SystemExit(f"this version of the adapter code has no API {name!r} for {call.loss}")


def repro_index_text(flat, shape):
    if not shape:
        return ""
    return ", ".join(str(int(i)) for i in np.unravel_index(flat, shape))


def repro_show(api, call, quantity, index, expected, reported):
    """Run the API on the call and print actual next to expected for ``quantity``.

    ``expected``: the golden (float64, as the reference computed it) when it was small
    enough to embed, else None and the report's samples are shown. ``reported``: the
    numbers of the report's row. Returns 0 (reproduced), 1 (the numbers differ).
    """
    print(f"{api.name} | {call.loss} | {call.dtype} | {call.device} | {quantity}")
    try:
        out = api.run(call)
    except Exception as exc:
        msg = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {msg[:400] + '...' if len(msg) > 400 else msg}"
        print(f"raised: {text}")
        print(f"reported: {reported.get('message', '')}")
        return repro_verdict(reported.get("message", "") == text)
    actual = out.value if quantity == "value" else out.grads.get(quantity[len("grad:") :])
    if actual is None:
        print(f"no {quantity} returned ({out.note or 'the API does not differentiate it'})")
        return 1
    actual = np.asarray(actual, dtype=np.float64)
    print(f"output dtype: {out.out_dtype}   shape: {list(actual.shape)}")
    shape = tuple(reported.get("shape") or actual.shape)
    if reported.get("rejected"):  # the reference rejects the input: no golden
        print(f"expected: an error ({reported['rejected']})")
        flat_actual = actual.ravel()
        shown = range(min(REPRO_SAMPLES, flat_actual.size))
        for k in shown:
            print(f"actual[{repro_index_text(k, actual.shape)}] = {float(flat_actual[k])!r}")
        got = [float(flat_actual[k]) for k in shown]
        want = reported.get("actual", [])
        return repro_verdict(len(got) == len(want) and all(map(repro_same, got, want)))
    if index is None or actual.size != int(np.prod(shape, dtype=np.int64)):
        lo, shape = 0, actual.shape
    else:
        flat = int(np.ravel_multi_index(tuple(index), shape)) if shape else 0
        lo = max(0, flat - 1)
    a = actual.reshape(shape) if actual.size == int(np.prod(shape, dtype=np.int64)) else actual
    flat_a = a.ravel()
    shown = range(lo, min(lo + REPRO_SAMPLES, flat_a.size))
    out_dtype = out.out_dtype if out.out_dtype in FLOAT_FORMATS else call.dtype
    if expected is not None:
        expected = float_saturate(np.asarray(expected, dtype=np.float64), out_dtype)
        flat_e = expected.ravel()
        e_samples = [float(flat_e[k]) for k in shown]
    else:
        e_samples = [float(x) for x in reported.get("expected", [])]
    print(f"samples from flat position {lo} (worst element at index {list(index or [])}):")
    for j, k in enumerate(shown):
        idx = repro_index_text(k, shape)
        print(f"actual[{idx}] = {float(flat_a[k])!r}")
        if j < len(e_samples):
            print(f"expected[{idx}] = {e_samples[j]!r}")
    rtol, atol = reported.get("rtol"), reported.get("atol")
    if expected is not None and rtol is not None and expected.size == a.size:
        mabs, mrel, mulp, beyond, pattern = repro_errors(expected, a, call.dtype, rtol, atol)
        print(f"max_abs_err={mabs!r} max_rel_err={mrel!r} max_ulp={mulp!r}")
        print(
            f"{beyond} of {a.size} elements beyond atol + rtol*|expected| "
            f"(rtol={rtol!r}, atol={atol!r}); NaN/Inf pattern "
            f"{'differs' if pattern else 'matches'}"
        )
    print(
        f"reported: status={reported.get('status')} max_abs_err={reported.get('max_abs_err')!r} "
        f"max_ulp={reported.get('max_ulp')!r} actual={reported.get('actual')}"
    )
    got = [float(flat_a[k]) for k in shown]
    want = reported.get("actual", [])
    return repro_verdict(len(got) == len(want) and all(map(repro_same, got, want)))


def repro_verdict(same):
    """Print whether the report's numbers (or error) came out again; the exit status."""
    print("reproduced: yes" if same else "reproduced: NO (the report says otherwise)")
    return 0 if same else 1


def repro_same(x, reported):
    """``x`` equals a reported sample (a float, or the strings 'nan', 'inf', '-inf')."""
    r = float(reported)
    return (math.isnan(x) and math.isnan(r)) or x == r


def repro_exit(code):
    sys.stdout.flush()
    sys.exit(code)


def repro_module(name, given, source):
    """Run ``source`` as a module of its own (``given``: the names it imports from
    xentcheck, taken from this script) and return it: another xentcheck adapter module
    the row's adapter builds on, embedded whole so its names stay apart."""
    import types

    module = types.ModuleType(name)
    module.__dict__.update(given)
    sys.modules[name] = module  # dataclasses look their module up there
    exec(compile(source, f"<xentcheck {name}>", "exec"), module.__dict__)
    return module
