"""The reference at language-model scale: token cross-entropy over float32 [rows, vocab].

``python -m bench.llm value|grad --rows 8192 --vocab 131072`` runs in a fresh process (so
its peak resident memory is its own) and prints one JSON object:

* The input: float32 logits (normal, scale 4) written block by block into one array, so
  making it never needs more than the array itself; labels uniform over the vocabulary.
* ``value``: :func:`xentcheck.reference.tokens.token_cross_entropy_chunked`, value only,
  with its default kernel (``numba`` where the ``fast`` extra is installed, else
  ``numpy``; ``--kernel`` picks one, and the output's ``kernel`` says which ran),
  timed; peak resident memory (VmHWM, the whole process: interpreter, NumPy and the
  input included) read right after it. Then, in the same process, the exp baseline:
  the same number of elements, converted to float64 block by block (the same block
  size) and each block passed through ``np.exp`` in place; only the ``np.exp`` calls are
  timed (the conversion is not: the ratio is the stricter for it).
* ``grad``: the same with the gradient returned as float32 (the input's dtype), a second
  array of the input's size; peak read right after.
* ``bitwise``: the chunked path's ``numpy`` kernel against :func:`token_cross_entropy`
  (unchunked: one float64 copy of the logits) on shapes small enough for both, values
  and float64 gradients compared bit for bit, with a mask, ignore_index and non-finite
  rows. Where Numba is installed, also the largest distance of the ``numba`` kernel's
  value and gradient from the ``numpy`` kernel's, in ULP (``numba_max_ulp_vs_numpy``;
  their ``exp`` differ, so they need not agree bit for bit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.measure import GIB, emit, peak_rss_bytes, proc_status_bytes
from xentcheck.reference.tokens import (
    CHUNK_ELEMENTS,
    KERNELS,
    default_kernel,
    token_cross_entropy,
    token_cross_entropy_chunked,
)


def make_logits(rows: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 logits ``[rows, vocab]`` (normal, scale 4) made in place, and int64 labels."""
    rng = np.random.default_rng(seed)
    z = np.empty((rows, vocab), dtype=np.float32)
    step = max(1, CHUNK_ELEMENTS // vocab)
    for a in range(0, rows, step):
        block = z[a : a + step]
        rng.standard_normal(size=block.shape, dtype=np.float32, out=block)
        block *= 4.0
    return z, rng.integers(0, vocab, rows)


def exp_pass_seconds(z: np.ndarray, block_elements: int = CHUNK_ELEMENTS) -> float:
    """Seconds of ``np.exp`` over every element of ``z`` in float64 blocks (exp timed only)."""
    step = max(1, block_elements // z.shape[1])
    buf = np.empty((step, z.shape[1]), dtype=np.float64)
    total = 0.0
    for a in range(0, z.shape[0], step):
        b = buf[: min(step, z.shape[0] - a)]
        b[...] = z[a : a + step]
        t0 = time.perf_counter()
        np.exp(b, out=b)
        total += time.perf_counter() - t0
    return total


def measure(kind: str, rows: int, vocab: int, kernel: str | None = None) -> dict:
    """Peak memory and wall time of the chunked value (``value``) or value and float32
    gradient (``grad``) with ``kernel`` (default: the default kernel); see the module doc.

    The ``numba`` kernel is compiled (or loaded from Numba's cache) on a one-row input
    first, untimed: the figure is the computation's.
    """
    kernel = kernel or default_kernel()
    base = proc_status_bytes("VmRSS") or 0
    z, t = make_logits(rows, vocab)
    input_bytes = z.nbytes
    grad_dtype = None if kind == "value" else z.dtype
    warm_s = time.perf_counter()
    token_cross_entropy_chunked(z[:1], t[:1], grad_dtype=grad_dtype, kernel=kernel)
    warm_s = time.perf_counter() - warm_s
    t0 = time.perf_counter()
    value, grad = token_cross_entropy_chunked(z, t, grad_dtype=grad_dtype, kernel=kernel)
    assert kind == "value" or (grad is not None and grad.dtype == np.float32)
    seconds = time.perf_counter() - t0
    peak = peak_rss_bytes()
    out = {
        "kind": kind,
        "kernel": kernel,
        "warmup_seconds": warm_s,
        "shape": [rows, vocab],
        "input_gib": input_bytes / GIB,
        "baseline_rss_gib": base / GIB,
        "peak_rss_gib": peak / GIB,
        "seconds": seconds,
        "value": float(value),
    }
    if kind == "value":
        out["exp_pass_seconds"] = exp_pass_seconds(z)
    return out


def bitwise_check(shapes: list[tuple[int, int]]) -> dict:
    """Chunked (``numpy`` kernel) vs unchunked, value and float64 gradient, compared bit
    for bit; and the ``numba`` kernel's largest ULP distance from them, where installed."""
    results = []
    numba_ulp = None if default_kernel() != "numba" else 0.0
    for k, (rows, vocab) in enumerate(shapes):
        z, t = make_logits(rows, vocab, seed=10 + k)
        if rows >= 4 and vocab >= 3:
            z[0, 1] = np.inf
            z[1, :] = -np.inf
            z[2, 0] = np.nan
        mask = np.random.default_rng(k).random(rows) < 0.9
        ignore = int(t[3]) if rows > 3 else None
        ref_v, ref_g = token_cross_entropy(z.astype(np.float64), t, mask, ignore_index=ignore)
        for block in (vocab, 7 * vocab + 3, None):
            v, g = token_cross_entropy_chunked(
                z,
                t,
                mask,
                ignore_index=ignore,
                grad_dtype=np.float64,
                block_elements=block,
                kernel="numpy",
            )
            same = _same_bits(v, ref_v) and _same_bits(g, ref_g["logits"])
            results.append({"shape": [rows, vocab], "block_elements": block, "equal": same})
        if numba_ulp is not None:
            v, g = token_cross_entropy_chunked(
                z, t, mask, ignore_index=ignore, grad_dtype=np.float64, kernel="numba"
            )
            numba_ulp = max(numba_ulp, _ulps(v, ref_v), _ulps(g, ref_g["logits"]))
    return {
        "cases": results,
        "equal": all(r["equal"] for r in results),
        "numba_max_ulp_vs_numpy": numba_ulp,
    }


def _ulps(a, b) -> float:
    """The largest ``|a - b|`` in ULP of ``b``, over entries where ``b`` is finite and
    nonzero; inf where NaN, infinities or zeros differ."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    finite = np.isfinite(b) & (b != 0)
    if not _same_bits(a[~finite], b[~finite]):
        return float("inf")
    if not finite.any():
        return 0.0
    return float(np.max(np.abs(a[finite] - b[finite]) / np.spacing(np.abs(b[finite]))))


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nan = np.isnan(a)
    return bool(
        a.shape == b.shape
        and np.array_equal(nan, np.isnan(b))
        and np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["value", "grad", "bitwise"])
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--vocab", type=int, default=131072)
    p.add_argument("--kernel", choices=KERNELS, help="default: numba where installed")
    a = p.parse_args(argv)
    if a.kind == "bitwise":
        shapes = [(64, 4096), (16, min(a.vocab, 131072)), (5, 3), (1, 1)]
        emit(bitwise_check(shapes))
    else:
        emit(measure(a.kind, a.rows, a.vocab, a.kernel))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
