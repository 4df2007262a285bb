"""The pieces of a finding's script that need no framework: the NumPy rounding a script
regenerates large inputs with, the regeneration itself, and the crash check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from xentcheck.adapters.declare import array_literal
from xentcheck.dtypes import quantize
from xentcheck.findings.instances import rebuild
from xentcheck.findings.repro import ROUNDING, SMALL, script, shorten
from xentcheck.findings.verify import run_script
from xentcheck.harness.calls import make_call
from xentcheck.harness.cases import expand, load_cases


@pytest.mark.parametrize("dtype", sorted(ROUNDING))
def test_a_scripts_rounding_is_xentchecks_bit_for_bit(dtype):
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            rng.standard_normal(20000) * 10.0 ** rng.integers(-45, 40, 20000),
            [
                0.0,
                -0.0,
                np.inf,
                -np.inf,
                1e-40,
                -1e-45,
                3.4e38,
                3.3961e38,
                65520.0,
                6e-8,
                1 + 2**-8,
            ],
            (1 + (2 * np.arange(64) + 1) * 2.0**-9) * 2.0 ** rng.integers(-130, 127, 64),  # ties
        ]
    )
    ns: dict = {"np": np}
    exec(ROUNDING[dtype], ns)
    with np.errstate(all="ignore"):
        got, want = ns["to_dtype"](x), quantize(x, dtype)
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()


def _instance(case_key: str):
    case = next(c for c in load_cases() if c.key == case_key)
    return next(expand(case))


@dataclass
class FakeFramework:
    """Writes the snippet a framework would, without a framework: only the inputs'
    literals and a line that does what ``body`` says."""

    body: str

    def snippet(self, api, call):
        inputs = "\n".join(f"{k} = {array_literal(v)}" for k, v in call.inputs.items())
        return f"# fake | {api}\n\nimport numpy as np\n\n{inputs}\n\n{self.body}\n"


def _row(instance, dtype: str, **extra) -> dict:
    return {
        "case": instance.case.key, "instance": instance.name, "api": "fake.loss",
        "dtype": dtype, "device": "cpu", "quantity": "value",
        "source": {"file": instance.case.source.file}, **extra,
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_large_inputs_are_regenerated_bit_for_bit(dtype):
    from xentcheck.findings.instances import CaseSources

    instance = _instance("log_softmax/large_vocab/log-softmax-131072")
    rebuilt = rebuild(CaseSources([{}]), _row(instance, dtype))
    assert not isinstance(rebuilt, str), rebuilt
    call = make_call(rebuilt.instance, rebuilt.inputs, dtype, "cpu", rebuilt.golden)
    assert max(np.size(v) for v in call.inputs.values()) > SMALL
    text = shorten(FakeFramework("").snippet("fake.loss", call), rebuilt, call)
    assert len(text) < 2000 and "np.random.default_rng(" in text
    ns: dict = {}
    exec(text, ns)
    for name, want in call.inputs.items():
        assert ns[name].tobytes() == want.tobytes(), name


@pytest.mark.parametrize(("body", "reproduced"), [("import os; os.abort()", True), ("pass", False)])
def test_a_crash_script_runs_the_call_in_a_child_and_survives_it(body, reproduced):
    from xentcheck.findings.instances import CaseSources

    instance = _instance("softmax_cross_entropy/basic/literal-small")
    row = _row(instance, "float64", status="crash", message="worker killed by SIGABRT")
    rebuilt = rebuild(CaseSources([{}]), row)
    assert not isinstance(rebuilt, str), rebuilt
    text = script(FakeFramework(body), row, rebuilt, "a crash", timeout=60)
    code, out = run_script(text)
    assert code == (0 if reproduced else 1), out
    assert ("not reproduced" not in out) == reproduced
