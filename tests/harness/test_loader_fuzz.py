"""Fuzzing the case loader: thousands of malformed documents, never a traceback.

Hypothesis mutates the shipped case files (byte flips, truncation, deleted and duplicated
lines, values swapped for other types, random keys, random unicode and invalid UTF-8,
huge numbers) and builds hostile documents (deep nesting, alias bombs, huge shapes and
sweeps). Each one is written to a file and given to the loader and to ``xentcheck cases``
in-process. The only acceptable outcomes are a successful load (exit 0) or exactly one
stderr line ``xentcheck: error: <path>...`` with exit 2; anything else (another exception,
a traceback, a second line) fails the test. The outcomes are counted and printed at the
end of the module (``pytest -s`` or the terminal summary).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xentcheck.cli import main
from xentcheck.harness.cases import load_file
from xentcheck.harness.errors import CaseError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "cases").rglob("*.yaml"))
TEXTS = [p.read_bytes() for p in SHIPPED]
OUTCOMES: Counter[str] = Counter()
_DIR = Path(tempfile.mkdtemp(prefix="xentcheck-fuzz-"))


def fuzz(examples: int) -> settings:
    """Settings for one fuzz test: ``examples`` documents (times $XENTCHECK_FUZZ_SCALE, 1 by
    default; 10 for a longer hunt), no deadline, no example database."""
    scale = float(os.environ.get("XENTCHECK_FUZZ_SCALE", "1"))
    return settings(
        max_examples=max(1, int(examples * scale)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    tried = sum(OUTCOMES.values())
    line = (
        f"loader fuzz: {tried} documents: {OUTCOMES['loaded']} loaded, "
        f"{OUTCOMES['error']} one-line errors, {OUTCOMES['other']} other"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{line}", file=sys.stderr)
    assert OUTCOMES["other"] == 0


def check_document(data: bytes, name: str = "fuzz.yaml", direct: bool = False) -> str:
    """Give ``data`` (as a file) to ``xentcheck cases``, and with ``direct`` to the loader
    itself too; return the outcome, ``loaded`` or ``error``.

    The CLI catches CaseError only, so any other exception from the loader escapes
    ``main`` and fails the test: the CLI run alone checks the loader's contract.
    """
    path = _DIR / name
    path.write_bytes(data)
    expected = None
    if direct:
        try:
            load_file(path, _DIR)
            expected = "loaded"
        except CaseError as exc:
            expected = "error"
            assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)
        except BaseException:
            OUTCOMES["other"] += 1
            raise
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["cases", "--cases", str(path)])
    except BaseException:
        OUTCOMES["other"] += 1
        raise
    lines = err.getvalue().splitlines()
    if rc == 0 and not err.getvalue():
        outcome = "loaded"
    elif rc == 2 and len(lines) == 1 and lines[0].startswith(f"xentcheck: error: {path}"):
        outcome = "error"
    else:
        outcome = "other"
    if expected is not None and outcome != expected:
        outcome = "other"
    OUTCOMES[outcome] += 1
    assert outcome != "other", (expected, rc, err.getvalue()[:2000])
    return outcome


# ----------------------------------------------------------------------- mutations

SCALARS = [
    "null", "~", "true", "no", "-1", "0", "1.5", "-1.5e300", "1e999999", ".nan", "-.inf",
    "'x'", '"\\u00e9\\t\\n"', "[]", "{}", "[[1, 2], [3]]", "[1, [2]]", "[a, b]", "{a: 1}",
    "9" * 40, "9" * 5000, "-" + "9" * 25, "0x7fffffffffffffffff", "2001-12-14", "!!binary aGk=",
    "!!python/object:os.system [ls]", "!!set {a, b}", "!custom 1", "*nowhere", "&a [*a]",
    "{random: normal, shape: [100000000000, 100000]}", "{random: normal, shape: [-1]}",
    "{random: labels, shape: [3], classes: 0}", "{random: labels, shape: [3], classes: 1.5}",
    "{random: probabilities, shape: [2, 3], axis: 7}", "{random: uniform, shape: [2], high: .inf}",
    "{random: nope, shape: [2]}", "{fill: .nan, shape: [2, 2]}", "{fill: x, shape: [2]}",
    "[none, sum, mean, bogus]", "[" + ", ".join(["0.5"] * 300) + "]", "'" + "z" * 3000 + "'",
    "[float64, float8]", "[" * 80 + "]" * 80, "|\n  text", ">-\n  folded",
]  # fmt: skip
KEYS = [
    "id", "loss", "inputs", "params", "dtypes", "tags", "expected", "tolerance",
    "expect_error", "defaults", "cases", "colour", "logits", "target", "weight", "x",
    "reduction", "axis", "ignore_index", "label_smoothing", "random", "shape", "seed",
    "rtol", "float16", "<<", "? complex", "1", "null", "'quoted key'", "\u00e9\u00e8",
]  # fmt: skip
JUNK = [
    b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\t", b"\r", b"\r\n", b"\x85",
    "\u2028".encode(), "\ufeff".encode(), "\U0001f600".encode(), b"\x1b[31m", b"%YAML 1.1\n",
    b"---\n", b"...\n", b"&anchor ", b"*anchor", b"!!str ", b"? ", b": ", b"- ", b"#", b"'", b'"',
    b"{", b"}", b"[", b"]", b",", b"|", b">", b"@", b"`",
]  # fmt: skip

position = st.floats(0, 1, exclude_max=True)
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.integers(0, 255)),
    st.tuples(st.just("truncate"), position),
    st.tuples(st.just("delete_line"), position),
    st.tuples(st.just("dup_line"), position),
    st.tuples(st.just("swap_value"), position, st.sampled_from(SCALARS)),
    st.tuples(
        st.just("swap_value"), position, st.text(max_size=30).map(lambda t: t.replace("\n", " "))
    ),
    st.tuples(st.just("insert_key"), position, st.sampled_from(KEYS), st.sampled_from(SCALARS)),
    st.tuples(st.just("insert"), position, st.sampled_from(JUNK)),
    st.tuples(st.just("insert"), position, st.text(max_size=20).map(lambda t: t.encode())),
    st.tuples(st.just("insert"), position, st.binary(max_size=8)),
)


def _at(n: int, frac: float) -> int:
    return min(int(frac * n), max(n - 1, 0))


def mutate(data: bytes, op: tuple) -> bytes:
    kind, frac = op[0], op[1]
    lines = data.split(b"\n")
    if kind == "flip" and data:
        i = _at(len(data), frac)
        return data[:i] + bytes([op[2]]) + data[i + 1 :]
    if kind == "truncate":
        return data[: _at(len(data), frac)]
    if kind == "delete_line":
        del lines[_at(len(lines), frac)]
        return b"\n".join(lines)
    if kind == "dup_line":
        i = _at(len(lines), frac)
        lines.insert(i, lines[i])
        return b"\n".join(lines)
    if kind == "swap_value":
        # replace the value of the nearest line holding 'key: value' at or after frac
        start = _at(len(lines), frac)
        for i in [*range(start, len(lines)), *range(start)]:
            head, sep, _ = lines[i].partition(b": ")
            if sep and not head.lstrip().startswith(b"#"):
                lines[i] = head + sep + op[2].encode("utf-8", "surrogatepass")
                return b"\n".join(lines)
        return data
    if kind == "insert_key":
        i = _at(len(lines), frac)
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip(b" -"))].replace(b"-", b" ")
        lines.insert(i, indent + op[2].encode() + b": " + op[3].encode())
        return b"\n".join(lines)
    if kind == "insert":
        i = _at(len(data) + 1, frac)
        return data[:i] + op[2] + data[i:]
    return data


@fuzz(1200)
@given(base=st.sampled_from(TEXTS), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_shipped_files_load_or_fail_in_one_line(base, ops):
    data = base
    for op in ops:
        data = mutate(data, op)
    check_document(data)


@fuzz(400)
@given(
    base=st.sampled_from(TEXTS),
    swaps=st.lists(st.tuples(position, st.sampled_from(SCALARS)), min_size=1, max_size=6),
)
def test_type_swapped_values_load_or_fail_in_one_line(base, swaps):
    data = base
    for frac, value in swaps:
        data = mutate(data, ("swap_value", frac, value))
    check_document(data)


# ------------------------------------------------------------------ hostile documents

CASE = "cases:\n  - id: x\n    loss: sigmoid\n    inputs:\n      x: {value}\n"


def _nest(depth: int, open_: str, close: str, leaf: str) -> str:
    return open_ * depth + leaf + close * depth


hostile = st.one_of(
    st.builds(lambda d: _nest(d, "[", "]", "1.0"), st.integers(0, 3000)),
    st.builds(lambda d: _nest(d, "{a: ", "}", "1"), st.integers(0, 2000)),
    st.builds(lambda d: "[" * d, st.integers(1, 5000)),  # unclosed
    st.builds(
        lambda dims: "{random: normal, shape: [" + ", ".join(map(str, dims)) + "]}",
        st.lists(st.integers(-(2**70), 2**70), max_size=40),
    ),
    st.builds(
        lambda n, v: "[" + ", ".join([v] * n) + "]",
        st.integers(0, 3000),
        st.sampled_from(["1e308", "1e309", "-0.0", ".nan", "9" * 19, "9" * 20, "1", "x"]),
    ),
    st.builds(
        lambda digits: "[" + "9" * digits + "]", st.integers(1, 6000)
    ),  # beyond int64, beyond Python's int() digit limit
    st.text(max_size=200).map(repr),
)


@fuzz(500)
@given(value=hostile)
def test_hostile_values_load_or_fail_in_one_line(value):
    check_document(CASE.format(value=value).encode("utf-8", "surrogatepass"), direct=True)


@fuzz(150)
@given(
    width=st.integers(1, 12),
    depth=st.integers(1, 12),
    sweeps=st.lists(st.integers(1, 40), max_size=3),
)
def test_alias_and_sweep_bombs_load_or_fail_in_one_line(width, depth, sweeps):
    lines = ["a0: &a0 [1.0, 2.0]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
    params = {"reduction": "none", "ignore_index": "-1", "label_smoothing": "0.1"}
    sweep = ", ".join(
        f"{name}: [" + ", ".join([value] * n) + "]"
        for (name, value), n in zip(params.items(), sweeps, strict=False)
    )
    lines += [
        "cases:",
        "  - id: bomb",
        "    loss: softmax_cross_entropy",
        f"    inputs: {{logits: *a{depth - 1}, target: [0]}}",
        f"    params: {{{sweep}}}",
    ]
    check_document("\n".join(lines).encode(), direct=True)


@fuzz(250)
@given(data=st.binary(max_size=400))
def test_random_bytes_load_or_fail_in_one_line(data):
    check_document(data, direct=True)


def test_every_shipped_file_still_loads():
    for p in SHIPPED:
        assert check_document(p.read_bytes(), name=p.name, direct=True) == "loaded", p
