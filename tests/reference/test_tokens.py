"""Token cross-entropy and perplexity against mpmath, at their edges, and at scale.

Accuracy targets: the value and every gradient element within 4 ULP of the exact value
(the mean token loss has only non-negative terms, so nothing cancels; the perplexity is
judged against the exact ``exp`` of the exact mean). The chunked token cross-entropy is
held to the same bounds with each of its kernels (the Numba one, which has its own
``exp``, skips where Numba is not installed), also at vocabularies wide enough for the
Numba kernel's interleaved lanes. Near underflow an absolute
allowance of a few multiples of 2**-1074 applies; the perplexity's gradient also allows
for its double-double exponent where token losses reach 1e15 and beyond.
"""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.oracle import mpf
from tests.reference.strategies import (
    check,
    exact_row,
    float_arrays,
    logits_and_labels,
    underflow_slack,
)
from tests.reference.test_tokens_chunked import KERNEL_PARAMS
from xentcheck.reference import evaluate
from xentcheck.reference.tokens import (
    perplexity,
    token_cross_entropy,
    token_cross_entropy_chunked,
)


def exact_tokens(z, t, mask, ignore_index):
    """Exact ``(token_ce, grad, perplexity, grad)``; None values when nothing is kept."""
    vocab = z.shape[-1]
    zr = z.reshape(-1, vocab)
    tr = t.ravel()
    kept = np.ones(tr.shape, dtype=bool) if mask is None else mask.ravel().copy()
    if ignore_index is not None:
        kept &= tr != ignore_index
    n = int(kept.sum())
    if n == 0:
        return None
    losses, rows = [], []
    for row, ti, k in zip(zr, tr, kept, strict=True):
        if not k:
            rows.append([mpf(0)] * vocab)
            continue
        ex = exact_row(row)
        losses.append(ex.neg_log_p[ti])
        rows.append([-ex.q[c] if c == ti else p for c, p in enumerate(ex.p)])
    with mpmath.workprec(400):
        mean = mpmath.fsum(losses) / n
        ppl = mpmath.exp(mean)
        grad = [g / n for r in rows for g in r]
        grad_ppl = [ppl * g for g in grad]
    return mean, grad, ppl, grad_ppl


@st.composite
def token_inputs(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    z, t = draw(logits_and_labels(shape, axis=2))
    mask = draw(
        st.one_of(st.none(), float_arrays(shape[:2], st.booleans()).map(lambda a: a.astype(bool)))
    )
    ignore_index = draw(st.one_of(st.none(), st.just(-100), st.integers(0, shape[2] - 1)))
    if ignore_index == -100:
        hide = draw(float_arrays(shape[:2], st.booleans()).map(lambda a: a.astype(bool)))
        t = np.where(hide, -100, t)
    return z, t, mask, ignore_index


@settings(max_examples=120, deadline=None)
@given(inputs=token_inputs())
def test_token_cross_entropy_and_perplexity(inputs):
    z, t, mask, ignore_index = inputs
    value, grads = token_cross_entropy(z, t, mask, ignore_index=ignore_index)
    pvalue, pgrads = perplexity(z, t, mask, ignore_index=ignore_index)
    assert value.shape == () and pvalue.shape == ()
    assert grads["logits"].shape == z.shape and pgrads["logits"].shape == z.shape
    exact = exact_tokens(z, t, mask, ignore_index)
    if exact is None:
        assert math.isnan(value) and math.isnan(pvalue)
        assert not grads["logits"].any() and not pgrads["logits"].any()
        return
    mean, grad, ppl, grad_ppl = exact
    vocab = z.shape[-1]
    check("token_ce value", value, [mean], slack=underflow_slack(1))
    check("token_ce grad:logits", grads["logits"], grad, slack=underflow_slack(2))
    check("perplexity value", pvalue, [ppl])
    # exp(x - (-log p)) carries the double-double x: for |x| ~ 1e17 (logits of that size)
    # its 106 bits leave an absolute error ~|x| 2**-104 in the exponent
    slack = [underflow_slack(vocab + 1, 2) + abs(g) * abs(mean) * 2.0**-104 for g in grad_ppl]
    check("perplexity grad:logits", pgrads["logits"], grad_ppl, slack=slack)


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
@settings(max_examples=120, deadline=None)
@given(inputs=token_inputs())
def test_chunked_token_cross_entropy(kernel, inputs):
    z, t, mask, ignore_index = inputs
    value, grad = token_cross_entropy_chunked(
        z, t, mask, ignore_index=ignore_index, grad_dtype=np.float64, kernel=kernel
    )
    exact = exact_tokens(z, t, mask, ignore_index)
    if exact is None:
        assert math.isnan(value) and not grad.any()
        return
    mean, exact_grad, _, _ = exact
    check(f"chunked {kernel} value", value, [mean], slack=underflow_slack(1))
    check(f"chunked {kernel} grad:logits", grad, exact_grad, slack=underflow_slack(2))


def wide_rows(vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[7, vocab]`` of every kind: ordinary, a dominant target (losses near 1e-20
    and 1e-300), terms down to the subnormal range, huge logits, ties at the maximum."""
    rng = np.random.default_rng(vocab)
    z = rng.normal(size=(7, vocab)) * 4
    t = rng.integers(0, vocab, 7)
    z[1, t[1]] = z[1].max() + 50  # loss ~ e**-50
    z[2, t[2]] = z[2].max() + 700  # loss ~ e**-700, subnormal gradient entries
    z[3] = -rng.random(vocab) * 760  # exp(z - m) from 1 down to 0 through the subnormals
    z[4] *= 1e30
    z[5, :] = 2.5  # every class the maximum: log V
    z[6, ::3] = z[6].max()  # ties at the maximum, the first one counts
    return z, t


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_token_cross_entropy_over_a_wide_vocabulary(kernel, dtype):
    z, t = wide_rows(700)  # 2 x 256 lanes and a tail
    z = z.astype(dtype)
    value, grad = token_cross_entropy_chunked(z, t, grad_dtype=np.float64, kernel=kernel)
    mean, exact_grad, _, _ = exact_tokens(z.astype(np.float64), t, None, None)
    check(f"wide {kernel} value", value, [mean], slack=underflow_slack(1))
    check(f"wide {kernel} grad:logits", grad, exact_grad, slack=underflow_slack(2))


@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_chunked_sum_of_exponentials_is_compensated(kernel):
    """256 terms of 1, then 19 x 256 terms of 0.75 ULP(1) each: summed in float64 (in any
    order that meets the 1s first) each of those rounds up, ``S`` drifts ~10 ULP and so
    does every ``p = exp(z - m) / S`` in the gradient."""
    vocab = 20 * 256
    z = np.full((2, vocab), math.log(0.75 * 2.0**-52))
    z[:, :256] = 0.0
    t = np.array([0, 300])
    value, grad = token_cross_entropy_chunked(z, t, grad_dtype=np.float64, kernel=kernel)
    mean, exact_grad, _, _ = exact_tokens(z, t, None, None)
    check(f"compensated {kernel} value", value, [mean])
    check(f"compensated {kernel} grad:logits", grad, exact_grad)


def test_perplexity_of_a_uniform_vocabulary_is_the_vocabulary_size():
    """exp(log 32000) = 32000: the mean enters exp as a double-double, not rounded first.

    Rounding log(32000) ~ 10.37 to float64 moves exp of it by up to ~8 ULP of 32000.
    """
    z = np.zeros((2, 3, 32000))
    t = np.array([[0, 5, 31999], [7, 8, 9]])
    value, grads = perplexity(z, t)
    assert abs(float(value) - 32000.0) <= math.ulp(32000.0)
    expected = np.full(z.shape, 32000.0 / 32000 / 6)
    expected[0, 0, 0] = expected[0, 1, 5] = expected[0, 2, 31999] = (1 / 32000 - 1) * 32000 / 6
    expected[1, 0, 7] = expected[1, 1, 8] = expected[1, 2, 9] = expected[0, 0, 0]
    assert np.allclose(grads["logits"], expected, rtol=4e-16, atol=0)


def test_nothing_kept_is_nan_with_zero_gradients():
    z = np.zeros((1, 2, 3))
    for mask, ignore in [(np.zeros((1, 2), bool), None), (None, -1)]:
        t = np.array([[-1, -1]]) if ignore is not None else np.array([[0, 1]])
        for fn in (token_cross_entropy, perplexity):
            value, grads = fn(z, t, mask, ignore_index=ignore)
            assert math.isnan(value) and not grads["logits"].any()


def test_labels_are_checked_only_where_kept():
    z = np.zeros((1, 3, 4))
    with pytest.raises(ValueError, match=r"label 4 .*C=4"):
        token_cross_entropy(z, np.array([[0, 4, 1]]))
    with pytest.raises(ValueError, match=r"label -2 .*C=4"):
        perplexity(z, np.array([[0, -2, 1]]), ignore_index=-100)
    mask = np.array([[True, False, True]])
    value, _ = token_cross_entropy(z, np.array([[0, 99, 1]]), mask)  # masked out: fine
    assert value == pytest.approx(math.log(4), rel=1e-16)
    value, _ = token_cross_entropy(z, np.array([[0, -100, 1]]), ignore_index=-100)
    assert value == pytest.approx(math.log(4), rel=1e-16)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="target shape"):
        token_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="mask shape"):
        token_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=np.int64), np.ones((3, 2)))


def test_infinite_and_nan_logits():
    z = np.zeros((1, 3, 3))
    z[0, 0, 1] = -math.inf  # the target of token 0 has probability 0
    z[0, 2, :] = math.nan  # token 2 is masked out: its NaN does not matter
    t = np.array([[1, 0, 0]])
    mask = np.array([[True, True, False]])
    value, grads = token_cross_entropy(z, t, mask)
    assert value == math.inf
    assert np.all(np.isfinite(grads["logits"]))
    assert np.array_equal(grads["logits"][0, 0], [0.25, -0.5, 0.25])
    assert not grads["logits"][0, 2].any()
    value, grads = perplexity(z, t, mask)
    assert value == math.inf
    assert grads["logits"][0, 0, 1] == -math.inf and grads["logits"][0, 0, 0] == math.inf
    assert not grads["logits"][0, 2].any()  # a masked row stays 0, never inf * 0
    value, grads = token_cross_entropy(z, t)  # now the NaN row is kept
    assert math.isnan(value) and np.all(np.isnan(grads["logits"][0, 2]))


def test_evaluate_with_mask_and_ignore_index():
    golden = evaluate(
        "token_cross_entropy",
        {"logits": np.zeros((1, 3, 5)), "target": [[0, 1, 2]], "mask": [[1, 0, 1]]},
        {"ignore_index": 2},
    )
    assert float(golden.value) == pytest.approx(math.log(5), rel=1e-16)
    assert golden.grads["logits"][0, 1].tolist() == [0.0] * 5
    assert golden.grads["logits"][0, 2].tolist() == [0.0] * 5
    golden = evaluate("perplexity", {"logits": [[[0.0, math.log(3.0)]]], "target": [[1]]})
    assert float(golden.value) == pytest.approx(4 / 3, rel=4e-16)


def test_large_vocabulary_is_fast_and_consistent():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 128, 32000)) * 6.0
    t = rng.integers(0, 32000, (8, 128))
    mask = rng.random((8, 128)) < 0.9
    start = time.perf_counter()
    value, grads = token_cross_entropy(z, t, mask)
    elapsed = time.perf_counter() - start
    assert elapsed < 30.0, f"8 x 128 x 32000 took {elapsed:.1f} s"
    zk, tk = z[mask], t[mask]
    m = zk.max(axis=1)
    naive = m + np.log(np.exp(zk - m[:, None]).sum(axis=1)) - zk[np.arange(len(tk)), tk]
    assert float(value) == pytest.approx(naive.mean(), rel=1e-13)
    g = grads["logits"]
    assert not g[~mask].any()
    assert np.allclose(g[mask].sum(axis=1), 0.0, atol=1e-15)
    assert np.allclose(
        g[mask][np.arange(len(tk)), tk] * mask.sum(), -1 + np.exp(-naive), atol=1e-12
    )
