"""Seeded input generators: the mappings a case file may give instead of a literal.

Each generator is a plain function ``(rng, shape, **options) -> ndarray``; the table
``GENERATORS`` maps the YAML name to it with the options it accepts. A case writes e.g.
``{random: normal, shape: [64, 32000], scale: 8.0, seed: 1}``; ``{fill: 0.5, shape: [2, 3]}``
makes a constant array. Without ``seed`` the seed is derived from the case and input
names, so every generated input is reproducible either way.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_ELEMENTS = 2**28  # 268M elements (2 GiB of float64): larger requests are refused up front


def _normal(rng, shape, scale=1.0, loc=0.0):
    return loc + scale * rng.standard_normal(shape)


def _uniform(rng, shape, low=0.0, high=1.0):
    return rng.uniform(low, high, shape)


def _labels(rng, shape, classes, ignore_index=None, ignore_fraction=0.0):
    out = rng.integers(0, classes, shape, dtype=np.int64)
    if ignore_index is not None and ignore_fraction > 0:
        out[rng.random(shape) < ignore_fraction] = ignore_index
    return out


def _softmax_along(z, axis):
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _probabilities(rng, shape, axis=1, scale=1.0):
    if len(shape) == 0:
        raise ValueError("probabilities need at least one axis")
    return _softmax_along(scale * rng.standard_normal(shape), axis)


def _one_hot(rng, shape, axis=1):
    shape = tuple(shape)
    axis = axis % len(shape)
    out = np.zeros(shape)
    if shape[axis] == 0 or out.size == 0:
        return out
    idx = rng.integers(0, shape[axis], (*shape[:axis], 1, *shape[axis + 1 :]))
    np.put_along_axis(out, idx, 1.0, axis=axis)
    return out


def _binary(rng, shape, p=0.5):
    return (rng.random(shape) < p).astype(np.float64)


def _mask(rng, shape, keep=0.8):
    return rng.random(shape) < keep


@dataclass(frozen=True)
class Generator:
    fn: Callable[..., np.ndarray]
    options: dict[str, type | tuple[type, ...]]
    required: tuple[str, ...] = ()


_NUM = (int, float)
GENERATORS: dict[str, Generator] = {
    "normal": Generator(_normal, {"scale": _NUM, "loc": _NUM}),
    "uniform": Generator(_uniform, {"low": _NUM, "high": _NUM}),
    "labels": Generator(
        _labels, {"classes": int, "ignore_index": int, "ignore_fraction": _NUM}, ("classes",)
    ),
    "probabilities": Generator(_probabilities, {"axis": int, "scale": _NUM}),
    "one_hot": Generator(_one_hot, {"axis": int}),
    "binary": Generator(_binary, {"p": _NUM}),
    "mask": Generator(_mask, {"keep": _NUM}),
}


def derived_seed(*names: str) -> int:
    """A stable seed from names (CRC32), for generators given no ``seed``."""
    return zlib.crc32("/".join(names).encode())


#: bytes of generated arrays kept for reuse (see :func:`generate`)
CACHE_BYTES = 256 * 2**20
_made: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()


def generate(kind: str, shape: tuple[int, ...], seed: int, options: dict) -> np.ndarray:
    """Run generator ``kind`` with a fresh ``numpy.random.default_rng(seed)``.

    The same request gives the same array, so the last few made (up to
    :data:`CACHE_BYTES`) are kept and a repeat gets a copy of one: every instance of a
    parameter sweep, and cases sharing a seeded input, would otherwise draw it again.
    """
    key = (kind, tuple(shape), seed, tuple((k, type(v), v) for k, v in sorted(options.items())))
    made = _made.get(key)
    if made is None:
        made = GENERATORS[kind].fn(np.random.default_rng(seed), tuple(shape), **options)
        if made.nbytes <= CACHE_BYTES:
            _made[key] = made
            while sum(a.nbytes for a in _made.values()) > CACHE_BYTES:
                _made.popitem(last=False)
    else:
        _made.move_to_end(key)
    return made.copy()
