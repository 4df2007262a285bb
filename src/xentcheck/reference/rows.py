r"""The softmax row kernel of the reference: max-shifted rows in double-double.

For a row :math:`z` of :math:`C` logits with maximum :math:`m = z_a` (first index on ties):

.. math::
    d_c + e_c = z_c - m \ \text{(exactly)}, \qquad
    R = \sum_{c \ne a} e^{d_c + e_c}, \qquad S = 1 + R, \\
    -\log p_c = \log S - d_c - e_c, \qquad \log S = \operatorname{log1p}(R), \qquad
    1 - p_a = R / S.

``R``, ``S`` and ``log S`` are double-doubles (:mod:`xentcheck.reference._dd`), ``R`` a
compensated pairwise sum, so a loss of ``1e-20`` keeps all its digits and a logit of
``1e30`` loses none to the shift. :func:`shifted_rows` makes a :class:`Rows`; its methods
give the softmax, ``-log p`` and the cross-entropy gradients without cancellation.
The softmax family (:mod:`xentcheck.reference.softmax`) and the token losses
(:mod:`xentcheck.reference.tokens`) share it; rows are processed in :func:`blocks` of
about :data:`BLOCK` elements.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from xentcheck.reference import _dd

__all__ = [
    "BLOCK",
    "Rows",
    "blocks",
    "neg_log",
    "rows_along",
    "shifted_rows",
    "sum_dd",
    "two_sum",
]

# ----------------------------------------------------------------- exact arithmetic


def two_sum(a, b) -> tuple[np.ndarray, np.ndarray]:
    """``(s, err)`` with ``s + err = a + b`` exactly (TwoSum); ``err = 0`` where ``s`` is
    not finite (an infinite or NaN sum carries no rounding error)."""
    s, err = _dd.two_sum(a, b)
    return s, np.where(np.isfinite(s), err, 0.0)


def sum_dd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``x`` along its last axis into a double-double ``(hi, lo)``.

    Pairwise summation in which every addition is error-free (TwoSum) and the errors are
    carried along: ``hi + lo`` equals the exact sum to about ``2**-100`` relative to the
    sum of ``|x|``, and ``hi`` is the sum rounded (faithfully) to float64.
    """
    s = np.asarray(x, dtype=np.float64)
    lead = s.shape[:-1]
    if s.shape[-1] == 0:
        return np.zeros(lead), np.zeros(lead)
    e = None
    while s.shape[-1] > 1:
        n = s.shape[-1]
        h = n // 2
        t, err = two_sum(s[..., 0 : 2 * h : 2], s[..., 1 : 2 * h : 2])
        if e is not None:
            err = err + (e[..., 0 : 2 * h : 2] + e[..., 1 : 2 * h : 2])
        if n % 2:
            t = np.concatenate([t, s[..., -1:]], axis=-1)
            tail = e[..., -1:] if e is not None else np.zeros((*lead, 1))
            err = np.concatenate([err, tail], axis=-1)
        s, e = t, err
    if e is None:
        return s[..., 0].copy(), np.zeros(lead)
    return two_sum(s[..., 0], e[..., 0])


def neg_log(logs_hi, logs_lo, d, e) -> tuple[np.ndarray, np.ndarray]:
    """``-log p = log S - (d + e)`` as a double-double, from ``log S = logs_hi + logs_lo``
    and the shifted logit ``d + e = z - m``."""
    hi, lo = two_sum(logs_hi, -d)
    return hi, np.where(np.isfinite(hi), lo + (logs_lo - e), 0.0)


# ------------------------------------------------------------------ the shifted rows


@dataclass
class Rows:
    """The max-shifted softmax of rows ``z [M, C]`` (``C >= 1``) in extra precision.

    ``d + e = z - m`` exactly (``m`` the row maximum, at the first index ``amax``);
    ``E = exp(d + e)`` with ``E[amax] = 0`` (its true value is exactly 1);
    ``R = sum(E)`` and ``S = 1 + R`` as double-doubles; ``log S`` as a double-double.
    Rows with a single ``+inf`` are replaced by their limit (0 there, ``-inf`` elsewhere);
    ``nan_row``, ``multi_inf`` (two or more ``+inf``) and ``all_ninf`` (only ``-inf``)
    flag rows whose softmax is undefined (computed on zeros, to be overwritten).
    """

    m: np.ndarray
    d: np.ndarray
    e: np.ndarray
    E: np.ndarray
    amax: np.ndarray
    r_hi: np.ndarray
    r_lo: np.ndarray
    s_hi: np.ndarray
    s_lo: np.ndarray
    logs_hi: np.ndarray
    logs_lo: np.ndarray
    nan_row: np.ndarray
    any_inf: np.ndarray
    multi_inf: np.ndarray
    all_ninf: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        """Rows whose softmax is undefined (NaN results)."""
        return self.nan_row | self.multi_inf | self.all_ninf

    @property
    def ar(self) -> np.ndarray:
        return np.arange(self.m.shape[0])

    @cached_property
    def p_off(self) -> np.ndarray:
        """Softmax ``E / S`` with 0 in the column of the maximum."""
        p0 = self.E / self.s_hi[:, None]
        return p0 - p0 * (self.s_lo / self.s_hi)[:, None]

    def p_max(self) -> np.ndarray:
        """Softmax at the maximum, ``1 / S``."""
        inv = 1.0 / self.s_hi
        return inv - inv * (self.s_lo / self.s_hi)

    def q_max(self) -> np.ndarray:
        """``1 - p`` at the maximum, ``R / S``, without cancellation."""
        q0 = self.r_hi / self.s_hi
        return q0 + (self.r_lo - q0 * self.s_lo) / self.s_hi

    def softmax(self) -> np.ndarray:
        p = self.p_off.copy()
        p[self.ar, self.amax] = self.p_max()
        return p

    def neg_log_p(self) -> tuple[np.ndarray, np.ndarray]:
        """``-log softmax`` of every entry, as a double-double ``[M, C]``."""
        return neg_log(self.logs_hi[:, None], self.logs_lo[:, None], self.d, self.e)

    def neg_log_p_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``-log softmax`` at class ``t[i]`` of each row, as a double-double ``[M]``."""
        ar = self.ar
        return neg_log(self.logs_hi, self.logs_lo, self.d[ar, t], self.e[ar, t])

    def sparse_grad(self, t: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``f * (p - onehot(t))`` per row, ``[M, C]``, without cancellation."""
        ar = self.ar
        g = self.p_off * f[:, None]
        at_max = t == self.amax
        g[ar, self.amax] = np.where(at_max, -f * self.q_max(), f * self.p_max())
        other = ~at_max
        g[ar[other], t[other]] -= f[other]
        return g

    def dense_grad(self, a: np.ndarray) -> np.ndarray:
        """``W p - a`` per row with ``W = sum_c a_c``, ``[M, C]``.

        At the maximum ``a`` where ``p_a > 1/2``: ``sum_{c != a} a_c - W (1 - p_a)`` with
        ``1 - p_a = R / S``, whose terms are at most twice the larger of ``W p_a, a_a``
        and which, unlike them, do not cancel as ``p_a`` nears 1.
        """
        ar, amax = self.ar, self.amax
        w_hi, w_lo = sum_dd(a)
        w = w_hi + w_lo
        g = w[:, None] * self.p_off - a
        a_max = a[ar, amax]
        rest_hi, rest_lo = two_sum(w_hi, -a_max)  # sum_{c != a} a_c
        q = self.q_max()
        g[ar, amax] = np.where(
            q < 0.5, (rest_hi + (rest_lo + w_lo)) - w * q, w * self.p_max() - a_max
        )
        return g


def shifted_rows(z: np.ndarray) -> Rows:
    """Shift and exponentiate the rows of ``z [M, C]``, ``C >= 1``."""
    z = np.asarray(z, dtype=np.float64)
    nan_row = np.isnan(z).any(axis=-1)
    pinf = z == np.inf
    n_inf = pinf.sum(axis=-1)
    all_ninf = (z == -np.inf).all(axis=-1)
    multi_inf = ~nan_row & (n_inf > 1)
    one_inf = ~nan_row & (n_inf == 1)
    fix = nan_row | multi_inf | one_inf | all_ninf
    if fix.any():
        z = z.copy()
        z[nan_row | multi_inf | all_ninf] = 0.0
        z[one_inf] = np.where(pinf[one_inf], 0.0, -np.inf)
    amax = np.argmax(z, axis=-1)
    ar = np.arange(z.shape[0])
    m = z[ar, amax]
    d, e = two_sum(z, -m[:, None])
    E = np.exp(d)
    E += E * e
    E[ar, amax] = 0.0
    r_hi, r_lo = sum_dd(E)
    s_hi, s_lo = _dd.add_f((r_hi, r_lo), 1.0)
    logs_hi, logs_lo = _dd.log1p((r_hi, r_lo))
    return Rows(
        m=m, d=d, e=e, E=E, amax=amax, r_hi=r_hi, r_lo=r_lo, s_hi=s_hi, s_lo=s_lo,
        logs_hi=logs_hi, logs_lo=logs_lo, nan_row=nan_row, any_inf=one_inf | multi_inf,
        multi_inf=multi_inf, all_ninf=all_ninf,
    )  # fmt: skip


# ---------------------------------------------------------------------- layout, blocks


def rows_along(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` as rows ``[M, C]`` with ``axis`` last, C-order over the other axes."""
    n_rows = int(np.prod(x.shape[:axis] + x.shape[axis + 1 :], dtype=np.int64))
    return np.moveaxis(x, axis, -1).reshape(n_rows, x.shape[axis])


BLOCK = 1 << 17  # elements per block of rows: keeps the temporaries in cache


def blocks(n_rows: int, n_cols: int, elements: int | None = None) -> Iterator[slice]:
    """Slices of consecutive rows, about ``elements`` elements each (default
    :data:`BLOCK`; at least one row).

    The block size never changes a result: every row is computed on its own.
    """
    step = max(1, (BLOCK if elements is None else elements) // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
