"""A hand-written float32 softmax cross-entropy with a classic mistake, as a xentcheck adapter.

``cross_entropy`` takes ``log`` of ``softmax`` computed as ``exp(z) / sum(exp(z))``
without first subtracting the row maximum. It agrees with the reference on ordinary
logits, but ``exp`` overflows float32 above 88.7 (inf / inf = NaN) and the probability
of a class far below the maximum underflows to 0 (log 0 = -inf), so large logits give
NaN or inf where the loss is finite. xentcheck's ``huge_logits`` cases catch it::

    xentcheck run --adapter naive_numpy_xent:adapter --cases examples/naive_numpy/cases \\
        --dtype float32 --out naive.jsonl

Installed (``pip install ./examples/naive_numpy``) it is also found by name through the
``xentcheck.adapters`` entry point: ``xentcheck run --framework naive_numpy``.
"""

from __future__ import annotations

import numpy as np

from xentcheck.adapters import Api, Call, Framework, Output, Unsupported

__all__ = ["adapter", "cross_entropy"]
__version__ = "0.1.0"


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """Mean softmax cross-entropy of float32 ``logits`` [N, C] at class indices ``target``
    [N], and its gradient with respect to the logits. The mistake: no max shift."""
    logits = np.asarray(logits, dtype=np.float32)
    n = logits.shape[0]
    e = np.exp(logits)  # overflows to inf above 88.7 in float32
    p = e / e.sum(axis=1, keepdims=True)  # inf / inf = NaN; tiny ratios underflow to 0
    loss = -np.log(p[np.arange(n), target]).mean(dtype=np.float32)  # log(0) = -inf
    grad = p.copy()
    grad[np.arange(n), target] -= 1
    return loss, grad / np.float32(n)


def _run(call: Call) -> Output:
    """The adapter: xentcheck hands over one instance at one dtype and device."""
    logits = call.inputs["logits"]
    if call.dtype != "float32" or not call.integer_target or logits.ndim != 2:
        raise Unsupported("float32 logits [N, C] with class-index targets only")
    if set(call.inputs) != {"logits", "target"} or call.explicit - {"reduction"}:
        raise Unsupported("no weight, ignore_index or label_smoothing")
    if call.params["reduction"] != "mean":
        raise Unsupported("reduction='mean' only")
    value, grad = cross_entropy(logits, call.inputs["target"])
    # xentcheck asks for the vector-Jacobian product with call.cotangent (a scalar here)
    g = grad * np.float32(call.cotangent)
    return Output(
        value=np.float64(value), grads={"logits": g.astype(np.float64)}, out_dtype="float32"
    )


adapter = Framework(
    name="naive_numpy",
    apis=[Api("naive_numpy_xent.cross_entropy", "softmax_cross_entropy", _run)],
    versions=lambda: {"naive_numpy_xent": __version__, "numpy": np.__version__},
    devices=lambda: {"cpu": "NumPy on the CPU", "gpu": None},
    gpu_missing_reason=lambda: "NumPy runs on the CPU only",
)
