"""ONNX Runtime adapter: ONNX operators built with ``onnx.helper``, run by ONNX Runtime.

Rows, one per ONNX operator (or operator chain, named by it):

* ``onnx.SoftmaxCrossEntropyLoss``: class-index targets; ``reduction``, ``ignore_index``
  and class ``weights`` are the operator's own attributes and input. ONNX has no label
  smoothing and no probability targets here: those calls go to the recipe row below or
  are ``unsupported``.
* ``onnx.ReduceSum(-target*LogSoftmax(axis=1))``: probability targets, the graph an
  exporter writes; the mean over the remaining axes is ``ReduceMean``.
* ``onnx.NegativeLogLikelihoodLoss``: the ``nll`` loss, same attributes;
  ``onnx.NegativeLogLikelihoodLoss(Log(probs))`` for ``categorical_cross_entropy`` with
  class indices.
* ``onnx.Softmax``, ``onnx.LogSoftmax``, ``onnx.ReduceLogSumExp``, ``onnx.Sigmoid``.

ONNX's class axis is 1, like the reference's, so inputs go in unchanged. An attribute is
set exactly when the case set the parameter (:meth:`Call.is_set
<xentcheck.adapters.base.Call.is_set>`; ONNX's defaults are the reference's:
``reduction="mean"``, no ``ignore_index``, ``axis=-1``), except the ``axes`` of
``ReduceLogSumExp``, which reduces every axis by default: it is always set.

ONNX Runtime's inference sessions compute values only: every gradient quantity is an
``unsupported`` row saying so. One ``InferenceSession`` is built per (graph, dtype, rank,
device) with symbolic dimensions and reused for every shape. The CPU provider runs on one
thread; ``device="gpu"`` uses the CUDA provider with CPU fallback disabled, so a node the
CUDA provider lacks fails instead of silently running on the CPU.
"""

from __future__ import annotations

import functools
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.dtypes import numpy_dtype
from xentcheck.host import cpu_name

__all__ = ["APIS", "FRAMEWORK", "OPSET"]

#: the opset the graphs declare: SoftmaxCrossEntropyLoss-13 / NegativeLogLikelihoodLoss-13
#: (bfloat16-capable definitions), Softmax-13, ReduceLogSumExp with an ``axes`` attribute
OPSET = 17
#: IR version of the models (ONNX Runtime reads IR <= its own; 8 is opset 17's)
IR_VERSION = 8

_ELEM: dict[str, int] = {
    "float64": TensorProto.DOUBLE,
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
}

_NO_GRADS = (
    "onnxruntime inference sessions compute no gradients "
    "(training needs onnxruntime-training, a separate build)"
)


# --------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class Graph:
    """What one ONNX model computes: its nodes and the inputs they read.

    nodes:   (op_type, inputs, outputs, attributes as sorted items) per node; the graph's
             output is named ``out``.
    inputs:  (name, kind) per graph input: ``float`` (the dtype under test) or ``int64``.
    """

    nodes: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, Any], ...]], ...]
    inputs: tuple[tuple[str, str], ...]


def _node(op: str, inputs: list[str], outputs: list[str], **attrs: Any):
    return (op, tuple(inputs), tuple(outputs), tuple(sorted(attrs.items())))


def _model(graph: Graph, dtype: str, ranks: tuple[int, ...]) -> onnx.ModelProto:
    """The ONNX model of ``graph`` for float inputs of ``dtype``; dims are symbolic."""
    elem = _ELEM[dtype]
    vinfo = []
    for (name, kind), rank in zip(graph.inputs, ranks, strict=True):
        t = elem if kind == "float" else TensorProto.INT64
        vinfo.append(helper.make_tensor_value_info(name, t, [f"{name}_{i}" for i in range(rank)]))
    nodes = [
        helper.make_node(
            op,
            list(ins),
            list(outs),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in attrs},
        )
        for op, ins, outs, attrs in graph.nodes
    ]
    out_elem = elem
    if dtype == "bfloat16":
        # the binding cannot hand a bfloat16 tensor to NumPy: the exact widening Cast to
        # float32 after the last node brings the bfloat16 result out unchanged
        last = nodes[-1]
        last.output[:] = ["out_bf16" if o == "out" else o for o in last.output]
        nodes.append(helper.make_node("Cast", ["out_bf16"], ["out"], to=TensorProto.FLOAT))
        out_elem = TensorProto.FLOAT
    out = helper.make_tensor_value_info("out", out_elem, None)
    g = helper.make_graph(nodes, "xentcheck", vinfo, [out])
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    return model  # ONNX Runtime validates the model against the opset when it loads it


def _providers(device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    reason = _gpu_missing_reason()
    if reason is not None:
        raise Unsupported(reason)
    return ["CUDAExecutionProvider"]


@functools.lru_cache(maxsize=512)
def _session(graph: Graph, dtype: str, ranks: tuple[int, ...], device: str) -> ort.InferenceSession:
    """One session per (graph, dtype, input ranks, device), reused for every shape."""
    providers = _providers(device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # kernel failures are results: no log lines on stderr
    if device == "gpu":
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    model = _model(graph, dtype, ranks)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)


def _feed(arr: np.ndarray, kind: str, dtype: str) -> np.ndarray | ort.OrtValue:
    a = np.asarray(arr)
    if kind == "int64":
        labels = np.ascontiguousarray(a.astype(np.int64))
        # a bfloat16 graph runs through run_with_ort_values: every feed an OrtValue
        return ort.OrtValue.ortvalue_from_numpy(labels) if dtype == "bfloat16" else labels
    # inputs are already rounded to the dtype under test, so this cast is exact
    host = np.ascontiguousarray(np.asarray(a, dtype=np.float64).astype(numpy_dtype(dtype)))
    if dtype == "bfloat16":  # no NumPy bfloat16 in the binding: pass the raw bits
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            host.view(np.uint16), TensorProto.BFLOAT16
        )
    return host


def _fetch(value: Any) -> np.ndarray:
    return np.asarray(value).astype(np.float64)


def _execute(call: Call, graph: Graph, feeds: dict[str, np.ndarray]) -> Output:
    """Run ``graph`` on ``feeds`` (graph input name -> array) and return the value."""
    if call.dtype not in _ELEM:
        raise Unsupported(f"ONNX has no tensor type for dtype {call.dtype!r}")
    kinds = dict(graph.inputs)
    ranks = tuple(np.ndim(feeds[name]) for name, _ in graph.inputs)
    session = _session(graph, call.dtype, ranks, call.device)
    inputs = {n: _feed(feeds[n], kinds[n], call.dtype) for n, _ in graph.inputs}
    if call.dtype == "bfloat16":
        (value,) = session.run_with_ort_values(["out"], inputs)
        host = value.numpy()
    else:
        (host,) = session.run(["out"], inputs)
    return Output(value=_fetch(host), out_dtype=call.dtype, note=_NO_GRADS)


# --------------------------------------------------------------------- parameters


def _loss_attrs(call: Call) -> dict[str, Any]:
    """``reduction`` and ``ignore_index`` attributes, exactly where the case set them."""
    attrs = call.kwargs(("reduction", "ignore_index"))
    if attrs.get("reduction", "mean") not in ("none", "sum", "mean"):
        raise Unsupported(f"ONNX loss operators have no reduction {attrs['reduction']!r}")
    if "ignore_index" in attrs:
        attrs["ignore_index"] = int(attrs["ignore_index"])
    return attrs


def _integer(call: Call) -> bool:
    return call.integer_target


def _probability(call: Call) -> bool:
    return not call.integer_target


# ------------------------------------------------------------------------ builders

Builder = Callable[[Call], tuple[Graph, dict[str, np.ndarray]]]


def _class_index_loss(op: str, x: str, log_first: bool = False) -> Builder:
    """SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss on (x, target[, weight])."""

    def build(call: Call) -> tuple[Graph, dict[str, np.ndarray]]:
        if call.is_set("label_smoothing"):
            raise Unsupported(f"onnx.{op} has no label_smoothing attribute")
        attrs = _loss_attrs(call)
        feeds = {"x": call.inputs[x], "target": call.inputs["target"]}
        inputs = [("x", "float"), ("target", "int64")]
        names = ["x", "target"]
        if call.is_set("weight"):
            feeds["weight"] = call.inputs["weight"]
            inputs.append(("weight", "float"))
            names.append("weight")
        nodes = []
        if log_first:
            nodes.append(_node("Log", ["x"], ["log_x"]))
            names[0] = "log_x"
        nodes.append(_node(op, names, ["out"], **attrs))
        return Graph(tuple(nodes), tuple(inputs)), feeds

    return build


def _soft_target_ce(call: Call) -> tuple[Graph, dict[str, np.ndarray]]:
    """-ReduceSum(target * LogSoftmax(logits, axis=1), axes=[1]), then the reduction."""
    if call.is_set("weight"):
        raise Unsupported("the probability-target ONNX graph has no class weights")
    if call.is_set("label_smoothing"):
        raise Unsupported("the probability-target ONNX graph has no label smoothing")
    if call.is_set("ignore_index"):
        raise Unsupported("ignore_index applies to class-index targets only")
    reduction = call.params.get("reduction", "mean")
    nodes = [
        _node("LogSoftmax", ["x"], ["logp"], axis=1),
        _node("Mul", ["target", "logp"], ["tl"]),
        _node("ReduceSum", ["tl", "axes"], ["s"], keepdims=0),
        _node("Neg", ["s"], ["per" if reduction != "none" else "out"]),
    ]
    if reduction in ("sum", "mean"):
        op = "ReduceSum" if reduction == "sum" else "ReduceMean"
        nodes.append(_node(op, ["per"], ["out"], keepdims=0))
    elif reduction != "none":
        raise Unsupported(f"no reduction {reduction!r} for softmax_cross_entropy")
    graph = Graph(tuple(nodes), (("x", "float"), ("target", "float"), ("axes", "int64")))
    feeds = {"x": call.inputs["logits"], "target": call.inputs["target"], "axes": np.array([1])}
    return graph, feeds


def _activation(op: str, axis: bool = False, axes: bool = False) -> Builder:
    def build(call: Call) -> tuple[Graph, dict[str, np.ndarray]]:
        attrs: dict[str, Any] = {}
        if axis:
            attrs |= {k: int(v) for k, v in call.kwargs(("axis",)).items()}
        if axes:
            attrs["axes"] = (int(call.params["axis"]),)
            attrs["keepdims"] = 0
        return Graph((_node(op, ["x"], ["out"], **attrs),), (("x", "float"),)), {
            "x": call.inputs["x"]
        }

    return build


def _api(name: str, loss: str, build: Builder, applies=None, doc: str = "") -> Api:
    def run(call: Call) -> Output:
        graph, feeds = build(call)
        return _execute(call, graph, feeds)

    run.__name__ = f"run_{name}"
    if applies is None:
        return Api(name=name, loss=loss, run=run, doc=doc)
    return Api(name=name, loss=loss, run=run, applies=applies, doc=doc)


_SCE = "SoftmaxCrossEntropyLoss"
_NLL = "NegativeLogLikelihoodLoss"

APIS: list[Api] = [
    _api(f"onnx.{_SCE}", "softmax_cross_entropy", _class_index_loss(_SCE, "logits"), _integer),
    _api(
        "onnx.ReduceSum(-target*LogSoftmax(axis=1))",
        "softmax_cross_entropy",
        _soft_target_ce,
        _probability,
        doc="probability targets: the graph an exporter writes for soft-label cross-entropy",
    ),
    _api(f"onnx.{_NLL}", "nll", _class_index_loss(_NLL, "log_probs")),
    _api(
        f"onnx.{_NLL}(Log(probs))",
        "categorical_cross_entropy",
        _class_index_loss(_NLL, "probs", log_first=True),
        _integer,
        doc="class indices: NegativeLogLikelihoodLoss of Log(probs)",
    ),
    _api("onnx.Softmax", "softmax", _activation("Softmax", axis=True)),
    _api("onnx.LogSoftmax", "log_softmax", _activation("LogSoftmax", axis=True)),
    _api("onnx.ReduceLogSumExp", "logsumexp", _activation("ReduceLogSumExp", axes=True)),
    _api("onnx.Sigmoid", "sigmoid", _activation("Sigmoid")),
]


# ------------------------------------------------------------------------- framework


def _versions() -> dict[str, str]:
    return {
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "onnx_opset": str(OPSET),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _gpu_missing_reason() -> str | None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return None
    return (
        f"onnxruntime {ort.__version__} has no CUDAExecutionProvider "
        "(install the onnxruntime-gpu wheel for CUDA)"
    )


def _devices() -> dict[str, str | None]:
    gpu = "CUDAExecutionProvider" if _gpu_missing_reason() is None else None
    return {"cpu": f"{cpu_name()} (onnxruntime CPUExecutionProvider, 1 thread)", "gpu": gpu}


_NO_KERNEL = re.compile(
    r"(NOT_IMPLEMENTED|Could not find an implementation for"
    r"|Type Error: Type 'tensor\((bfloat16|float16|double|float)\)' of input parameter)"
)


def _unsupported_reason(exc: BaseException) -> str | None:
    """An operator with no kernel for the dtype (``Could not find an implementation for
    SoftmaxCrossEntropyLoss(13) node``) or a type the opset does not allow."""
    msg = " ".join(str(exc).split())
    if _NO_KERNEL.search(msg):
        return f"onnxruntime has no kernel for this dtype/device: {msg[:300]}"
    return None


FRAMEWORK = Framework(
    name="onnxruntime",
    apis=APIS,
    versions=_versions,
    devices=_devices,
    gpu_missing_reason=_gpu_missing_reason,
    unsupported_reason=_unsupported_reason,
)
