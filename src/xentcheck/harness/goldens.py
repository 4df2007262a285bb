"""A golden cache shared by every worker of a run and, in the result cache's folder (or
``--golden-cache DIR``), by later runs.

A golden depends only on the loss, its parameters and the dtype-rounded inputs, so it is
computed once per instance and dtype and reused by every framework, API, device and
shard. Entries are keyed by a SHA-256 digest of (loss, parameters, every input's name,
dtype, shape and bytes, and a digest of the reference package's source files), so
editing the reference invalidates them. Writes go to a temporary file renamed into place
(``os.replace``), so workers racing on one entry never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from xentcheck.harness.cache import atomic_write, reference_digest
from xentcheck.reference import Golden

__all__ = ["GoldenCache", "golden_key", "reference_digest"]


def golden_key(loss: str, params: dict[str, Any], inputs: dict[str, np.ndarray]) -> str:
    """The cache key of the golden of ``loss`` at ``params`` on these (rounded) inputs."""
    h = hashlib.sha256()
    h.update(json.dumps([loss, params, reference_digest()], sort_keys=True, default=repr).encode())
    for name in sorted(inputs):
        a = np.asarray(inputs[name])  # its own shape: ascontiguousarray makes 0-d arrays 1-d
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class GoldenCache:
    """Goldens (or the reference's rejection message) stored as ``.npz`` files in ``root``.

    ``hits``/``misses`` count lookups; a damaged entry counts as a miss and is rewritten.
    ``write=False`` only reads: :meth:`put` stores nothing (the report looks up the run's
    goldens without filling a cache with the ones it had to compute).
    """

    def __init__(self, root: str | Path, write: bool = True) -> None:
        self.root = Path(root)
        self.write = write
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[Golden | None, str | None] | None:
        """(golden, None), (None, rejection message), or None when not cached."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "error" in z.files:
                    found: tuple[Golden | None, str | None] = (None, str(z["error"]))
                else:
                    grads = {k[5:]: z[k] for k in z.files if k.startswith("grad:")}
                    found = (Golden(value=z["value"], grads=grads), None)
        except (OSError, ValueError, KeyError):
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put(self, key: str, golden: Golden | None, error: str | None) -> None:
        """Store an entry atomically (temporary file, then ``os.replace``)."""
        if not self.write:
            return
        arrays: dict[str, np.ndarray] = {}
        if golden is None:
            arrays["error"] = np.asarray(error or "")
        else:
            arrays["value"] = np.asarray(golden.value)
            arrays.update({f"grad:{k}": np.asarray(v) for k, v in golden.grads.items()})
        atomic_write(self._path(key), lambda f: np.savez(f, **arrays))
