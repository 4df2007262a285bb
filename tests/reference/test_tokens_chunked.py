"""The chunked token cross-entropy is the unchunked reference in less memory.

With the ``"numpy"`` kernel, ``token_cross_entropy_chunked`` must give exactly the value
(and float64 gradient) of ``token_cross_entropy`` on every input both can hold, whatever
the block size: these tests compare the two with ``==`` on the float64 bit patterns, on
random and hand-made rows (NaN, infinities, masks, ignore_index, nothing kept), in
float32, bfloat16 and float64, from arrays and memory maps. The ``"numba"`` kernel (the
``fast`` extra; skipped without Numba) has its own ``exp``: it is checked against mpmath
in ``test_tokens.py``, here for the same special values, the same bits whatever the
block size, dtype path or callback, and the same behaviour otherwise. The memory bound
itself is measured by ``bench/``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentcheck.dtypes import numpy_dtype
from xentcheck.reference import tokens
from xentcheck.reference.tokens import token_cross_entropy, token_cross_entropy_chunked

needs_numba = pytest.mark.skipif(
    tokens.default_kernel() != "numba", reason="numba is not installed (the fast extra)"
)
#: both kernels; the Numba one skips where Numba cannot be imported
KERNEL_PARAMS = ["numpy", pytest.param("numba", marks=needs_numba)]


def same_bits(a, b) -> bool:
    """Equal float64 bit patterns (NaN payloads aside: every NaN matches every NaN)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64)))  # fmt: skip


def make(shape, vocab, dtype, seed, scale=4.0):
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(*shape, vocab)) * scale).astype(numpy_dtype(dtype))
    t = rng.integers(0, vocab, shape)
    return z, t


BLOCKS = [1, 7, 64, 1 << 12, None]  # elements per block: one row, a few rows, the default


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64", "float16"])
@pytest.mark.parametrize("block", BLOCKS)
def test_value_and_gradient_are_bit_identical(dtype, block):
    z, t = make((3, 5), 37, dtype, seed=len(dtype) * 7)
    rng = np.random.default_rng(2)
    mask = rng.random((3, 5)) < 0.7
    ref_value, ref_grads = token_cross_entropy(z.astype(np.float64), t, mask)
    value, grad = token_cross_entropy_chunked(
        z, t, mask, grad_dtype=np.float64, block_elements=block, kernel="numpy"
    )
    assert same_bits(value, ref_value)
    assert same_bits(grad, ref_grads["logits"])
    value32, grad32 = token_cross_entropy_chunked(z, t, mask, grad_dtype=z.dtype, block_elements=block, kernel="numpy")  # fmt: skip
    assert same_bits(value32, ref_value)
    assert grad32.dtype == z.dtype
    assert same_bits(grad32, ref_grads["logits"].astype(z.dtype))


def edge_rows():
    """Logits ``[2, 6, 6]`` with every special row, labels and a mask."""
    vocab = 6
    z = np.random.default_rng(3).normal(size=(2, 6, vocab)) * 3
    z[0, 0, 2] = np.nan  # a NaN row: NaN loss
    z[0, 1, :] = -np.inf  # all -inf: undefined
    z[0, 2, 1] = np.inf  # one +inf: the limit
    z[0, 3, [1, 4]] = np.inf  # two +inf: undefined
    z[0, 4, 0] = -np.inf  # a -inf target logit: +inf loss
    z[1, 0] = [1e30, -1e30, 0, 5e29, 1, 2]  # huge logits
    t = np.array([[2, 0, 1, 0, 0, 3], [0, 1, 2, 3, 4, 5]])
    mask = np.ones((2, 6), bool)
    mask[0, 5] = False
    return z, t, mask


def test_edges_are_bit_identical():
    z, t, mask = edge_rows()
    for keep in (mask, None):
        ref_value, ref_grads = token_cross_entropy(z, t, keep)
        for block in BLOCKS:
            value, grad = token_cross_entropy_chunked(z, t, keep, grad_dtype=np.float64, block_elements=block, kernel="numpy")  # fmt: skip
            assert same_bits(value, ref_value)
            assert same_bits(grad, ref_grads["logits"])
    # finite rows only: a finite value too
    finite = z[1:]
    ref_value, ref_grads = token_cross_entropy(finite, t[1:], ignore_index=3)
    value, grad = token_cross_entropy_chunked(finite, t[1:], ignore_index=3, grad_dtype=np.float64, kernel="numpy")  # fmt: skip
    assert np.isfinite(value) and same_bits(value, ref_value)
    assert same_bits(grad, ref_grads["logits"])


@needs_numba
def test_numba_kernel_special_rows_are_the_reference_limits():
    """NaN, infinite and huge logits: the NumPy kernel's NaN and infinities in the same
    places, its exact values (the limits of a single +inf row, the 0 and 1/n entries)
    bit for bit, and within 4 ULP of it elsewhere."""
    z, t, mask = edge_rows()
    for keep, n in ((mask, 11), (None, 12)):
        for dtype in (np.float64, np.float32):
            zz = z.astype(dtype)
            ref_value, ref = token_cross_entropy(zz.astype(np.float64), t, keep)
            ref = ref["logits"]
            value, grad = token_cross_entropy_chunked(zz, t, keep, grad_dtype=np.float64, kernel="numba")  # fmt: skip
            assert same_bits(value, ref_value)  # NaN (a kept NaN row) or inf (the -inf target)
            exact = np.isnan(ref) | (ref == 0) | (np.abs(ref) == 1 / n)
            assert exact[0, 2].all()  # the single +inf row: its limit, -1/n and 0 (-0.0)
            assert same_bits(grad[exact], ref[exact])
            assert np.all(np.abs(grad - ref)[~exact] <= 4 * np.spacing(np.abs(ref[~exact])))
    finite = z[1:]
    ref_value, _ = token_cross_entropy(finite, t[1:], ignore_index=3)
    value, _ = token_cross_entropy_chunked(finite, t[1:], ignore_index=3, kernel="numba")
    assert np.isfinite(value) and abs(value - ref_value) <= 4 * np.spacing(ref_value)


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_nothing_kept_is_nan_with_zero_gradient(kernel):
    z, t = make((2, 3), 5, "float32", seed=4)
    value, grad = token_cross_entropy_chunked(z, t, np.zeros((2, 3)), grad_dtype=np.float32, kernel=kernel)  # fmt: skip
    assert np.isnan(value)
    assert not grad.any()


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_gradient_blocks_reach_the_callback_in_float64(kernel):
    z, t = make((4, 9), 50, "float32", seed=5)
    mask = np.ones((4, 9), bool)
    mask[1, 3] = mask[3, 0] = False
    _, ref_grads = token_cross_entropy_chunked(z, t, mask, grad_dtype=np.float64, kernel=kernel)
    rebuilt = np.zeros((36, 50))
    seen = []

    def on_grad(positions, rows):
        assert rows.dtype == np.float64 and rows.shape == (len(positions), 50)
        seen.extend(positions.tolist())
        rebuilt[positions] = rows

    _, grad = token_cross_entropy_chunked(z, t, mask, on_grad=on_grad, block_elements=120, kernel=kernel)  # fmt: skip
    assert grad is None
    assert sorted(seen) == np.flatnonzero(mask.ravel()).tolist()  # kept tokens, each once
    assert same_bits(rebuilt.reshape(4, 9, 50), ref_grads)
    if kernel == "numpy":
        _, ref_grads = token_cross_entropy(z.astype(np.float64), t, mask)
        assert same_bits(rebuilt.reshape(4, 9, 50), ref_grads["logits"])


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_memory_mapped_input(tmp_path, kernel):
    z, t = make((16,), 300, "float32", seed=6)
    mm = np.memmap(tmp_path / "logits.f32", dtype=np.float32, mode="w+", shape=z.shape)
    mm[:] = z
    mm.flush()
    ro = np.memmap(tmp_path / "logits.f32", dtype=np.float32, mode="r", shape=z.shape)
    ref_value, _ = token_cross_entropy_chunked(z, t, kernel=kernel)
    value, _ = token_cross_entropy_chunked(ro, t, block_elements=1000, kernel=kernel)
    assert same_bits(value, ref_value)
    if kernel == "numpy":
        assert same_bits(value, token_cross_entropy(z.astype(np.float64), t)[0])


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_bad_input_raises_like_the_unchunked_reference(kernel):
    z, t = make((2, 3), 5, "float32", seed=7)
    t[1, 2] = 5
    with pytest.raises(ValueError, match="5"):
        token_cross_entropy(z, t)
    with pytest.raises(ValueError, match="5"):
        token_cross_entropy_chunked(z, t, kernel=kernel)
    with pytest.raises(ValueError, match="target shape"):
        token_cross_entropy_chunked(z, t[:1], kernel=kernel)
    with pytest.raises(ValueError, match="real array"):
        token_cross_entropy_chunked(np.array([["a", "b"]]), np.array([0]), kernel=kernel)


def test_kernel_choice(monkeypatch):
    z, t = make((2,), 5, "float32", seed=8)
    with pytest.raises(ValueError, match="kernel 'fortran': use one of numba, numpy"):
        token_cross_entropy_chunked(z, t, kernel="fortran")
    monkeypatch.setattr(tokens, "_numba_kernel", lambda: None)  # as where Numba is absent
    assert tokens.default_kernel() == "numpy"
    with pytest.raises(ValueError, match=r"xentcheck\[fast\]"):
        token_cross_entropy_chunked(z, t, kernel="numba")
    value, _ = token_cross_entropy_chunked(z, t)  # the NumPy kernel: the reference's bits
    assert same_bits(value, token_cross_entropy(z.astype(np.float64), t)[0])


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 12),
    vocab=st.integers(1, 40),
    block=st.integers(1, 200),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_block_size_is_bit_identical(rows, vocab, block, scale, seed):
    z, t = make((rows,), vocab, "float32", seed=seed, scale=scale)
    mask = np.random.default_rng(seed).random(rows) < 0.8
    ref_value, ref_grads = token_cross_entropy(z.astype(np.float64), t, mask)
    value, grad = token_cross_entropy_chunked(z, t, mask, grad_dtype=np.float64, block_elements=block, kernel="numpy")  # fmt: skip
    assert same_bits(value, ref_value)
    assert same_bits(grad, ref_grads["logits"])


@needs_numba
@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 9),
    vocab=st.sampled_from([1, 2, 37, 255, 256, 600]),
    block=st.integers(1, 2000),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_numba_kernel_gives_the_same_bits_on_every_path(rows, vocab, block, scale, seed):
    """Each row is computed on its own: in-place float32 or float64 input and output, a
    float64 block buffer (bfloat16 output), an integer input converted a block at a time,
    a callback: the same bits, whatever the block size."""
    z, t = make((rows,), vocab, "float32", seed=seed, scale=scale)
    mask = np.random.default_rng(seed).random(rows) < 0.8
    value, grad = token_cross_entropy_chunked(z, t, mask, grad_dtype=np.float64, kernel="numba")
    z64 = z.astype(np.float64)
    for zz, dtype in ((z, np.float32), (z64, np.float64), (z, "bfloat16")):
        v, g = token_cross_entropy_chunked(zz, t, mask, grad_dtype=dtype, block_elements=block, kernel="numba")  # fmt: skip
        assert same_bits(v, value)
        assert same_bits(g, grad.astype(g.dtype))
    rebuilt = np.zeros(z.shape)

    def on_grad(positions, gb):
        rebuilt[positions] = gb

    token_cross_entropy_chunked(z, t, mask, on_grad=on_grad, block_elements=block, kernel="numba")
    assert same_bits(rebuilt, grad)
    zi = np.rint(z).astype(np.int32)  # converted block by block
    v, g = token_cross_entropy_chunked(zi, t, mask, grad_dtype=np.float64, block_elements=block, kernel="numba")  # fmt: skip
    v64, g64 = token_cross_entropy_chunked(zi.astype(np.float64), t, mask, grad_dtype=np.float64, kernel="numba")  # fmt: skip
    assert same_bits(v, v64) and same_bits(g, g64)
