"""Every declared API's snippet, run on its own, gives what its adapter gave, bit for bit.

For each framework whose adapter writes snippets (``Framework.snippet``) and each of its
APIs, a few calls are taken from the shipped suite (small instances, the dtypes their
cases list, built by the harness's own path). The adapter runs each; the snippets run in
a separate Python process that imports nothing of xentcheck, each in a fresh namespace.
Values and gradients must be equal bit for bit (NaN where NaN, same signed zeros, same
shapes); where the adapter's API raised, the snippet must raise the same exception type.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from xentcheck.adapters import REQUIRES, Call, Unsupported, available_frameworks, load_framework
from xentcheck.adapters.declare import Missing
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import Instance, expand, load_cases
from xentcheck.harness.worker import golden_for, rounded_inputs

#: calls per API, at most elements per input
CALLS, MAX_ELEMENTS = 3, 64

#: run by a separate interpreter: exec each snippet alone and keep value, grads or error
RUNNER = r"""
import json, sys, contextlib, io
import numpy as np
jobs = json.load(open(sys.argv[1]))
out = {}
for key, code in jobs.items():
    ns = {"__name__": "__main__"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"<snippet {key}>", "exec"), ns)
    except Exception as exc:
        out[key] = {"error": type(exc).__name__ + ": " + str(exc)[:200]}
        continue
    np.savez(f"{sys.argv[2]}/{len(out)}.npz", value=ns["value"],
             **{"grad:" + k: v for k, v in ns["grads"].items()})
    out[key] = {"file": f"{sys.argv[2]}/{len(out)}.npz"}
json.dump(out, open(sys.argv[3], "w"))
"""


def _small(instance: Instance) -> bool:
    for d in instance.case.inputs.values():
        size = d.literal.size if d.literal is not None else int(np.prod(d.shape))
        if size > MAX_ELEMENTS:
            return False
    return True


def _instances(tags: frozenset[str] | None = None) -> list[Instance]:
    """Small instances of the shipped suite (of the cases carrying one of ``tags``, an
    execution mode's), those with a golden (the value and gradient paths) before those
    whose input must be rejected (the error path)."""
    cases = [c for c in load_cases() if tags is None or tags & set(c.tags)]
    found = [i for case in cases for i in expand(case) if _small(i)]
    return sorted(found, key=lambda i: i.case.expect_error)


def _calls(api, instances: list[Instance]) -> Iterator[tuple[str, Call]]:
    """The calls of the shipped suite the API applies to, one per parameter set (and
    rejected or not), dtypes in turn."""
    seen: set[str] = set()
    for n, instance in enumerate(i for i in instances if i.loss == api.loss):
        dtype = instance.case.dtypes[n % len(instance.case.dtypes)]
        inputs = rounded_inputs(instance, instance.inputs(), dtype)
        golden, _ = golden_for(instance, inputs)
        call = make_call(instance, inputs, dtype, "cpu", golden)
        signature = json.dumps(sorted(instance.params.items()), default=str) + str(golden is None)
        if signature in seen or not api.applies(call):
            continue
        seen.add(signature)
        yield f"{instance.case.key}[{instance.name}]@{dtype}", call


def _writing_frameworks() -> list[str]:
    return [n for n in available_frameworks(one_process=True) if n in REQUIRES]


@pytest.mark.parametrize("name", _writing_frameworks())
def test_snippets_equal_adapter_bit_for_bit(name: str, tmp_path: Path) -> None:
    fw = load_framework(name)
    if fw.snippet is None:
        pytest.skip(f"the {name} adapter writes no snippets")
    fw.setup()
    instances = _instances(fw.case_tags)
    jobs: dict[str, str] = {}
    expected: dict[str, object] = {}
    unsupported_only = 0
    for api in fw.apis:
        if isinstance(api.run, Missing):  # an API the framework lacks: no call to write
            continue
        taken = applied = 0
        for label, call in _calls(api, instances):
            if taken == CALLS:
                break
            applied += 1
            key = f"{api.name} | {label}"
            try:
                out = api.run(call)
            except Unsupported:  # a row that says what the API lacks: nothing to write
                continue
            except Exception as exc:  # the snippet must raise the same
                if fw.unsupported_reason(exc):
                    continue
                expected[key] = type(exc).__name__
            else:
                expected[key] = out
            jobs[key] = fw.snippet(api.name, call)
            taken += 1
        if not applied and fw.case_tags is not None:
            continue  # an execution mode runs only its tagged cases, and none reaches this API
        assert applied, f"{api.name}: no call of the shipped suite reaches it (small instances)"
        unsupported_only += taken == 0
    # rows whose every call is unsupported exist to say what an API lacks; the rest run
    assert unsupported_only < len(fw.apis) / 4, f"{unsupported_only} APIs never ran"
    assert len(jobs) >= 3, f"only {len(jobs)} snippets to check"
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "runner.py").write_text(RUNNER)
    done = subprocess.run(
        [sys.executable, tmp_path / "runner.py", tmp_path / "jobs.json", tmp_path, tmp_path / "out.json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "out.json").read_text())
    failures = []
    for key, want in expected.items():
        got = results[key]
        if isinstance(want, str):
            if not got.get("error", "").startswith(want + ":"):
                failures.append(f"{key}: the adapter raised {want}, the snippet gave {got}")
            continue
        if "error" in got:
            failures.append(f"{key}: the snippet raised {got['error']}\n{jobs[key]}")
            continue
        arrays = np.load(got["file"])
        pairs = {"value": want.value, **{f"grad:{k}": v for k, v in want.grads.items()}}
        if set(arrays.files) != set(pairs):
            failures.append(f"{key}: snippet quantities {sorted(arrays.files)} != {sorted(pairs)}")
        for q, a in pairs.items():
            if q in arrays.files and not _same_bits(a, arrays[q]):
                failures.append(f"{key}: {q} differs: adapter {a!r} snippet {arrays[q]!r}")
    assert not failures, "\n".join(failures[:10])


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()
