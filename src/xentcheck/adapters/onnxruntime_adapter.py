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
from collections.abc import Callable, Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported
from xentcheck.adapters.declare import Declaration, Graph, Node, apis, array_literal, snippets
from xentcheck.dtypes import numpy_dtype
from xentcheck.host import cpu_name

__all__ = ["APIS", "DECLARATIONS", "FRAME", "FRAMEWORK", "OPSET"]

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

Tensors = Mapping[str, np.ndarray]
Nodes = tuple[list[onnx.NodeProto], dict[str, np.ndarray]]


# --------------------------------------------------------------------------- plumbing


def _model(nodes: list[onnx.NodeProto], feeds: Tensors, dtype: str) -> onnx.ModelProto:
    """The ONNX model of ``nodes`` over ``feeds`` (float inputs of ``dtype``, int64 ones);
    dims are symbolic, so one model serves every shape of the same ranks."""
    elem = _ELEM[dtype]
    vinfo = [
        helper.make_tensor_value_info(
            name,
            TensorProto.INT64 if a.dtype.kind in "iu" else elem,
            [f"{name}_{i}" for i in range(a.ndim)],
        )
        for name, a in feeds.items()
    ]
    out_elem = elem
    if dtype == "bfloat16":
        # the binding cannot hand a bfloat16 tensor to NumPy: the exact widening Cast to
        # float32 after the last node brings the bfloat16 result out unchanged
        nodes[-1].output[:] = ["out_bf16"]
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
def _session(model: bytes, device: str) -> ort.InferenceSession:
    """One session per (serialized model, device): per graph, dtype and input ranks,
    reused for every shape."""
    providers = _providers(device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # kernel failures are results: no log lines on stderr
    if device == "gpu":
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return ort.InferenceSession(model, opts, providers=providers)


def _feed(a: np.ndarray, dtype: str) -> np.ndarray | ort.OrtValue:
    if a.dtype.kind in "iu":
        labels = np.ascontiguousarray(a)
        # a bfloat16 graph runs through run_with_ort_values: every feed an OrtValue
        return ort.OrtValue.ortvalue_from_numpy(labels) if dtype == "bfloat16" else labels
    # inputs are already rounded to the dtype under test, so this cast is exact
    host = np.ascontiguousarray(np.asarray(a, dtype=np.float64).astype(numpy_dtype(dtype)))
    if dtype == "bfloat16":  # no NumPy bfloat16 in the binding: pass the raw bits
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            host.view(np.uint16), TensorProto.BFLOAT16
        )
    return host


def _execute(call: Call, fn: Callable[[Tensors], Nodes]) -> Output:
    """Make the nodes and feeds of ``call`` (``fn``, a bound :class:`Graph`), build the
    model, run it on the session of its kind and return the value."""
    nodes, feeds = fn(call.inputs)
    if call.dtype not in _ELEM:
        raise Unsupported(f"ONNX has no tensor type for dtype {call.dtype!r}")
    session = _session(_model(nodes, feeds, call.dtype).SerializeToString(), call.device)
    inputs = {n: _feed(a, call.dtype) for n, a in feeds.items()}
    if call.dtype == "bfloat16":
        (value,) = session.run_with_ort_values(["out"], inputs)
        host = value.numpy()
    else:
        (host,) = session.run(["out"], inputs)
    return Output(value=np.asarray(host).astype(np.float64), out_dtype=call.dtype, note=_NO_GRADS)


class OnnxFrame:
    """Snippets that build the model and run it as :func:`_execute` does: NumPy inputs of
    the dtype under test, symbolic dims, the CPU provider on one thread."""

    imports = "import ml_dtypes\nimport numpy as np\nimport onnxruntime as ort\nfrom onnx import TensorProto, helper"

    def input(self, name: str, array: np.ndarray, call: Call) -> str:
        a = np.asarray(array)
        if a.dtype.kind in "biu":
            return f"{name} = {array_literal(a)}"
        dtype = "ml_dtypes.bfloat16" if call.dtype == "bfloat16" else f"np.{call.dtype}"
        return f"{name} = {array_literal(a)}.astype({dtype})"

    def program(self, expression: str, call: Call) -> str:
        elem = "TensorProto." + TensorProto.DataType.Name(_ELEM[call.dtype])
        bf16 = call.dtype == "bfloat16"
        lines = [f"nodes, feeds = {expression}"]
        if bf16:  # NumPy cannot take a bfloat16 result: a Cast to float32 brings it out
            lines += [
                'nodes[-1].output[:] = ["out_bf16"]',
                'nodes.append(helper.make_node("Cast", ["out_bf16"], ["out"], to=TensorProto.FLOAT))',
            ]
        lines += [
            "inputs = [",
            f"    helper.make_tensor_value_info(k, TensorProto.INT64 if v.dtype == np.int64 else {elem}, "
            '[f"{k}_{i}" for i in range(v.ndim)])',
            "    for k, v in feeds.items()",
            "]",
            f'output = helper.make_tensor_value_info("out", {"TensorProto.FLOAT" if bf16 else elem}, None)',
            'graph = helper.make_graph(nodes, "xentcheck", inputs, [output])',
            f'model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", {OPSET})], '
            f"ir_version={IR_VERSION})",
            "options = ort.SessionOptions()",
            "options.intra_op_num_threads = 1",
            "options.inter_op_num_threads = 1",
        ]
        provider = "CPUExecutionProvider"
        if call.device == "gpu":
            lines.append('options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")')
            provider = "CUDAExecutionProvider"
        lines.append(
            f'session = ort.InferenceSession(model.SerializeToString(), options, providers=["{provider}"])'
        )
        if bf16:  # the binding takes bfloat16 as its raw bits, in OrtValues
            lines += [
                "feeds = {",
                "    k: ort.OrtValue.ortvalue_from_numpy_with_onnx_type(v.view(np.uint16), TensorProto.BFLOAT16)",
                "    if v.dtype == ml_dtypes.bfloat16 else ort.OrtValue.ortvalue_from_numpy(v)",
                "    for k, v in feeds.items()",
                "}",
                '(out,) = session.run_with_ort_values(["out"], feeds)',
                "value = out.numpy().astype(np.float64)",
            ]
        else:
            lines += [
                '(out,) = session.run(["out"], feeds)',
                "value = np.asarray(out).astype(np.float64)",
            ]
        lines += [
            "grads = {}  # an ONNX Runtime inference session computes no gradients",
            'print("value", value)',
        ]
        return "\n".join(lines)


FRAME = OnnxFrame()


# ------------------------------------------------------------------------------ table

_SCE = "SoftmaxCrossEntropyLoss"
_NLL = "NegativeLogLikelihoodLoss"
_REDUCTIONS = ("none", "sum", "mean")
#: the loss operators' attributes, passed when the case sets them (ONNX's defaults are
#: the reference's: reduction "mean", no ignore_index)
_LOSS_ATTRS = {"reduction": "reduction", "ignore_index": "ignore_index"}


def _refuse(reasons: Mapping[str, str], reduction: str) -> Callable[[Call, Tensors], None]:
    """A guard: Unsupported with ``reasons[p]`` for the first parameter ``p`` the case
    sets, or with ``reduction`` (formatted with it) for a reduction ONNX lacks."""

    def guard(call: Call, tensors: Tensors) -> None:
        for name, reason in reasons.items():
            if call.is_set(name):
                raise Unsupported(reason)
        r = call.params.get("reduction", "mean")
        if r not in _REDUCTIONS:
            raise Unsupported(reduction.format(r))

    return guard


def _class_index_guard(op: str) -> Callable[[Call, Tensors], None]:
    no_smoothing = {"label_smoothing": f"onnx.{op} has no label_smoothing attribute"}
    refuse = _refuse(no_smoothing, "ONNX loss operators have no reduction {!r}")

    def guard(call: Call, tensors: Tensors) -> None:
        refuse(call, tensors)
        first = next(iter(call.inputs.values()))
        if np.ndim(first) < 2:  # the operator's input is (N, C) or (N, C, d1, ...)
            raise Unsupported(f"onnx.{op} takes a batch axis: one unbatched sample [C] has none")

    return guard


_SOFT_TARGET_GUARD = _refuse(
    {
        "weight": "the probability-target ONNX graph has no class weights",
        "label_smoothing": "the probability-target ONNX graph has no label smoothing",
        "ignore_index": "ignore_index applies to class-index targets only",
    },
    "no reduction {!r} for softmax_cross_entropy",
)


def _soft_target_nodes(call: Call) -> tuple[Node, ...]:
    """-ReduceSum(target * LogSoftmax(x, axis=1), axes=[1]), then ReduceSum / ReduceMean
    over what remains (none: the per-sample losses)."""
    reduce = {"sum": "ReduceSum", "mean": "ReduceMean"}.get(call.params.get("reduction", "mean"))
    nodes = (
        Node("LogSoftmax", ("x",), "logp", attributes={"axis": 1}),
        Node("Mul", ("target", "logp"), "tl"),
        Node("ReduceSum", ("tl", "axes"), "s", attributes={"keepdims": 0}),
        Node("Neg", ("s",), "out" if reduce is None else "per"),
    )
    return nodes if reduce is None else (*nodes, Node(reduce, ("per",), attributes={"keepdims": 0}))


def _all_axes_of(call: Call) -> list[int]:
    """ReduceLogSumExp's ``axes``: the case's axis (its default reduces every axis)."""
    return [call.params["axis"]]


def _integer_target(call: Call) -> bool:
    return call.integer_target


def _probability_target(call: Call) -> bool:
    return not call.integer_target


#: the node constructor, as a snippet imports it (``from onnx import helper``)
G = functools.partial(Graph, "helper.make_node")
D = Declaration
DECLARATIONS: list[Declaration] = [
    D(f"onnx.{_SCE}", "softmax_cross_entropy",
      G({"x": "logits", "target": "target", "weight": "weight"},
        (Node(_SCE, ("x", "target", "weight"), keywords=_LOSS_ATTRS),), integer=("target",)),
      applies=_integer_target, guard=_class_index_guard(_SCE)),
    D("onnx.ReduceSum(-target*LogSoftmax(axis=1))", "softmax_cross_entropy",
      G({"x": "logits", "target": "target"}, _soft_target_nodes, constants={"axes": (1,)}),
      applies=_probability_target, guard=_SOFT_TARGET_GUARD,
      doc="probability targets: the graph an exporter writes for soft-label cross-entropy"),
    D(f"onnx.{_NLL}", "nll",
      G({"x": "log_probs", "target": "target", "weight": "weight"},
        (Node(_NLL, ("x", "target", "weight"), keywords=_LOSS_ATTRS),), integer=("target",)),
      guard=_class_index_guard(_NLL)),
    D(f"onnx.{_NLL}(Log(probs))", "categorical_cross_entropy",
      G({"x": "probs", "target": "target", "weight": "weight"},
        (Node("Log", ("x",), "log_x"), Node(_NLL, ("log_x", "target", "weight"), keywords=_LOSS_ATTRS)),
        integer=("target",)),
      applies=_integer_target, guard=_class_index_guard(_NLL),
      doc="class indices: NegativeLogLikelihoodLoss of Log(probs)"),
    D("onnx.Softmax", "softmax", G({"x": "x"}, (Node("Softmax", ("x",), keywords={"axis": "axis"}),))),
    D("onnx.LogSoftmax", "log_softmax",
      G({"x": "x"}, (Node("LogSoftmax", ("x",), keywords={"axis": "axis"}),))),
    D("onnx.ReduceLogSumExp", "logsumexp",
      G({"x": "x"}, (Node("ReduceLogSumExp", ("x",), always={"axes": _all_axes_of},
                          attributes={"keepdims": 0}),))),
    D("onnx.Sigmoid", "sigmoid", G({"x": "x"}, (Node("Sigmoid", ("x",)),))),
]  # fmt: skip

#: dotted-path heads as a snippet imports them
ALIASES: dict[str, str] = {"helper": "onnx.helper"}

APIS: list[Api] = apis(DECLARATIONS, _execute, ALIASES)


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
    snippet=snippets(DECLARATIONS, FRAME, _versions),
)
