"""The search space: random cases drawn from what the registry describes.

:func:`draw_case` builds one fuzz case dict (the form a case file holds, one dtype) for a
loss: a layout (:data:`LAYOUTS`: where the batch, class and vocabulary axes are) and a
shape from it, every input filled by its role (:data:`ROLES`: logits, probabilities,
labels, weights, masks ...), edge values injected into small inputs (:func:`edges`: 0
and 1, +-inf and NaN, the dtype's max, smallest normal and subnormals, huge logits, ties,
``-inf`` masks, rows that do not sum to 1, labels at and beyond the boundaries) and
parameters drawn from their allowed ranges. Vocabularies run from 1 to 2**18; inputs of
more than :data:`LITERAL_LIMIT` elements are written as generators. An input the
reference rejects makes the case ``expect_error: true`` (error behaviour is searched too).

Every choice goes through a :class:`Chooser`, which weighs the options by what found
findings so far (the driver raises a feature's weight when a case carrying it shows a new
finding) and records the features of the case: the search is biased toward regions that
produced findings, not toward code coverage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xentcheck.dtypes import quantize
from xentcheck.floats import FLOAT_FORMATS
from xentcheck.harness.generators import generate
from xentcheck.reference import LOSSES, check

#: loss -> where its axes are: ``classes1`` logits [N, C, d...] (or [C]), targets without
#: axis 1; ``vocab_last`` logits [..., V], labels without the last axis; ``elementwise``
#: every input one shape (pos_weight along the last axis); ``axis`` one input and an axis
LAYOUTS: dict[str, str] = {
    "softmax_cross_entropy": "classes1",
    "categorical_cross_entropy": "classes1",
    "nll": "classes1",
    "token_cross_entropy": "vocab_last",
    "perplexity": "vocab_last",
    "binary_cross_entropy": "elementwise",
    "binary_cross_entropy_with_logits": "elementwise",
    "smoothed_binary_cross_entropy": "elementwise",
    "sigmoid_focal_loss": "elementwise",
    "kl_divergence": "elementwise",
    "sigmoid": "elementwise",
    "log_sigmoid": "elementwise",
    "softmax": "axis",
    "log_softmax": "axis",
    "logsumexp": "axis",
}

#: loss -> input -> the role its values are drawn for
ROLES: dict[str, dict[str, str]] = {
    "softmax_cross_entropy": {"logits": "logits", "target": "class_target", "weight": "class_weight"},
    "categorical_cross_entropy": {"probs": "distribution", "target": "class_target"},
    "nll": {"log_probs": "log_probs", "target": "labels", "weight": "class_weight"},
    "binary_cross_entropy": {"probs": "unit", "target": "unit", "weight": "weight"},
    "binary_cross_entropy_with_logits": {
        "logits": "logits", "target": "unit", "weight": "weight", "pos_weight": "pos_weight",
    },
    "smoothed_binary_cross_entropy": {"logits": "logits", "target": "unit"},
    "sigmoid_focal_loss": {"logits": "logits", "target": "unit"},
    "kl_divergence": {"input": "log_probs", "target": "kl_target"},
    "token_cross_entropy": {"logits": "logits", "target": "labels", "mask": "mask"},
    "perplexity": {"logits": "logits", "target": "labels", "mask": "mask"},
    "softmax": {"x": "logits"},
    "log_softmax": {"x": "logits"},
    "logsumexp": {"x": "logits"},
    "sigmoid": {"x": "logits"},
    "log_sigmoid": {"x": "logits"},
}  # fmt: skip

#: inputs up to this many elements are literals (edge values go in); larger: generators
LITERAL_LIMIT = 256
SMALL_CLASSES = (1, 2, 3, 5, 8)
LARGE_CLASSES = (1000, 4096, 32768, 2**18)
#: parameter -> the values drawn for it (``None`` entries mean the registry default too)
PARAM_VALUES: dict[str, tuple[Any, ...]] = {
    "label_smoothing": (0.0, 0.1, 0.5, 1.0, 0.25),
    "log_target": (False, True),
    "alpha": (None, 0.25, 0.0, 1.0, 0.75),
    "gamma": (0.0, 0.5, 1.0, 2.0, 5.0),
}


class Chooser:
    """Seeded random choices, weighted by feature, that remember the features chosen.

    ``pick(name, options)`` chooses one option with probability proportional to
    ``weights.get(f"{name}={option}", 1)`` and records that feature.
    """

    def __init__(self, rng: np.random.Generator, weights: Mapping[str, float] | None = None):
        self.rng = rng
        self.weights = weights or {}
        self.features: list[str] = []

    def pick(self, name: str, options: Sequence[Any]) -> Any:
        w = np.array([self.weights.get(f"{name}={o}", 1.0) for o in options], dtype=float)
        k = int(self.rng.choice(len(options), p=w / w.sum()))
        self.features.append(f"{name}={options[k]}")
        return options[k]

    def chance(self, name: str, p: float) -> bool:
        """True with probability ``p`` (weighted like a two-option pick)."""
        w_yes = self.weights.get(f"{name}=True", 1.0) * p
        w_no = self.weights.get(f"{name}=False", 1.0) * (1 - p)
        yes = bool(self.rng.random() < w_yes / (w_yes + w_no))
        self.features.append(f"{name}={yes}")
        return yes


def edges(dtype: str) -> dict[str, float]:
    """The edge values of a float input in ``dtype`` (named, for the features)."""
    mant, emin, big = FLOAT_FORMATS[dtype]
    tiny = math.ldexp(1.0, emin)
    return {
        "zero": 0.0, "negzero": -0.0, "one": 1.0, "minus-one": -1.0,
        "inf": math.inf, "-inf": -math.inf, "nan": math.nan,
        "max": big, "-max": -big, "half-max": big / 2, "tiny": tiny, "-tiny": -tiny,
        "subnormal": math.ldexp(1.0, emin - mant), "subnormal-mid": math.ldexp(1.0, emin - mant // 2),
        "exp-overflow": 88.8, "-exp-overflow": -104.0, "float64-exp": 710.0, "-float64-exp": -746.0,
        "huge": 1e4, "-huge": -1e4, "margin": 20.0, "-margin": -20.0,
    }  # fmt: skip


def _shape(ch: Chooser, layout: str) -> tuple[tuple[int, ...], int | None]:
    """(the first input's shape, its class/vocabulary count or None)."""
    if layout in ("classes1", "vocab_last"):
        c = ch.pick("classes", (*SMALL_CLASSES, "large"))
        if c == "large":
            c = ch.pick("vocabulary", LARGE_CLASSES)
        n = ch.pick("rows", (1, 2, 3, 4)) if c <= 8 else ch.pick("rows-large", (1, 2))
        form = ch.pick("form", ("batch", "single", "kdim", "empty"))
        if layout == "classes1":
            shapes = {"batch": (n, c), "single": (c,), "kdim": (n, c, 2) if c <= 8 else (1, c, 1),
                      "empty": (0, c)}  # fmt: skip
        else:
            shapes = {"batch": (n, 2, c), "single": (n, c), "kdim": (2, n, 2, c) if c <= 8 else (1, 1, c),
                      "empty": (0, 2, c)}  # fmt: skip
        return shapes[form], c
    form = ch.pick("form", ("vector", "matrix", "cube", "scalar", "empty", "long"))
    n, k = int(ch.rng.integers(1, 5)), int(ch.rng.integers(1, 5))
    shapes = {"vector": (n,), "matrix": (n, k), "cube": (n, k, 2), "scalar": (),
              "empty": (0,) if layout == "elementwise" else (0, k), "long": (1, 4096)}  # fmt: skip
    return shapes[form], None


def _base(ch: Chooser, role: str, shape: tuple[int, ...], axis: int) -> np.ndarray:
    rng = ch.rng
    if role in ("logits", "log_probs"):
        scale = ch.pick("scale", (1.0, 3.0, 10.0, 30.0, 100.0, 1e3, 1e4))
        loc = ch.pick("loc", (0.0, 0.0, 50.0, -80.0, 1e3))
        z = rng.normal(loc, scale, shape)
        if role == "log_probs" and z.ndim and shape[axis] > 0 and ch.chance("normalised", 0.7):
            z = z - np.log(np.sum(np.exp(z - z.max(axis=axis, keepdims=True)), axis=axis,
                                  keepdims=True)) - z.max(axis=axis, keepdims=True)  # fmt: skip
        return z
    if role == "distribution":
        if not shape or shape[axis] == 0:
            return rng.random(shape)
        z = rng.normal(0, ch.pick("peak", (1.0, 5.0, 30.0)), shape)
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    if role == "unit":
        kind = ch.pick("unit", ("uniform", "binary", "near-edges"))
        if kind == "binary":
            return (rng.random(shape) < 0.5).astype(float)
        if kind == "near-edges":
            return rng.choice([0.0, 1e-7, 0.5, 1 - 1e-7, 1.0], size=shape)
        return rng.random(shape)
    if role in ("class_weight", "weight", "pos_weight"):
        return rng.uniform(0, ch.pick("weight-scale", (1.0, 2.0, 1e-3, 1e4)), shape)
    raise ValueError(f"unknown role {role!r}")


def _inject(ch: Chooser, x: np.ndarray, dtype: str, role: str, axis: int) -> np.ndarray:
    """Put edge values, ties or -inf masks into a small float array."""
    x = np.array(x, dtype=np.float64)  # a copy, and an array even for a 0-d draw
    if x.size == 0:
        return x
    flat = x.reshape(-1)
    kinds = ("none", "edge", "edges", "tie", "fill")
    if role in ("logits", "log_probs"):
        kinds += ("mask-row",)  # -inf where a model masks a logit out
    what = ch.pick(f"inject-{role}", kinds)
    if what in ("edge", "edges"):
        table = edges(dtype) if role in ("logits", "log_probs") else {
            "zero": 0.0, "one": 1.0, "tiny": math.ldexp(1.0, FLOAT_FORMATS[dtype][1]),
            "nan": math.nan, "inf": math.inf, "negative": -0.5, "above-one": 1.5,
        }  # fmt: skip
        for _ in range(1 if what == "edge" else int(ch.rng.integers(2, 5))):
            name = ch.pick(f"edge-{role}", tuple(table))
            flat[int(ch.rng.integers(flat.size))] = table[name]
    elif what == "tie" and flat.size > 1:
        i, j = ch.rng.choice(flat.size, 2, replace=False)
        flat[i] = flat[j]
    elif what == "mask-row" and x.ndim:
        rows = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])  # a copy: moved axes
        r = int(ch.rng.integers(rows.shape[0]))
        keep = ch.pick("masked", ("all-but-one", "half", "all"))
        cut = {"all-but-one": rows.shape[1] - 1, "half": rows.shape[1] // 2, "all": rows.shape[1]}[
            keep
        ]
        rows[r, :cut] = -math.inf
        moved = list(np.moveaxis(x, axis, -1).shape)
        x = np.moveaxis(rows.reshape(moved), -1, axis)
    elif what == "fill":
        x[...] = flat[0]
    return x


def _labels(ch: Chooser, shape: tuple[int, ...], classes: int, ignore: int | None) -> np.ndarray:
    t = ch.rng.integers(0, classes, shape)
    flat = t.reshape(-1)
    if flat.size:
        what = ch.pick("labels", ("random", "boundary", "out-of-range", "ignored", "all-ignored"))
        k = int(ch.rng.integers(flat.size))
        if what == "boundary":
            flat[k] = ch.pick("label-boundary", (0, classes - 1))
        elif what == "out-of-range":
            flat[k] = ch.pick("bad-label", (classes, -1, classes + 7, -100))
        elif what == "ignored" and ignore is not None:
            flat[k] = ignore
        elif what == "all-ignored" and ignore is not None:
            flat[:] = ignore
    return t


def _params(ch: Chooser, loss: str, ndim: int, classes: int | None) -> dict[str, Any]:
    spec, out = LOSSES[loss], {}
    for name in spec.params:
        if not ch.chance(f"set-{name}", 0.7):
            continue
        if name in spec.choices:
            out[name] = ch.pick(name, spec.choices[name])
        elif name == "ignore_index":
            out[name] = ch.pick(name, (None, -100, 0, -1) + ((classes - 1,) if classes else ()))
        elif name == "axis":
            out[name] = ch.pick("axis", tuple(range(-max(ndim, 1), max(ndim, 1))))
        else:
            out[name] = ch.pick(name, PARAM_VALUES[name])
    return out


def _as_input(x: np.ndarray, role: str, dtype: str) -> Any:
    if role in ("labels", "mask"):
        return x.astype(np.int64).tolist()
    return quantize(np.asarray(x, dtype=np.float64), dtype).tolist()


def _generator(ch: Chooser, role: str, shape: tuple[int, ...], classes: int | None, axis: int,
               seed: int) -> dict[str, Any]:  # fmt: skip
    g: dict[str, Any] = {"shape": list(shape), "seed": seed}
    if role in ("labels", "class_target_labels"):
        return {"random": "labels", **g, "classes": classes}
    if role == "mask":
        return {"random": "mask", **g, "keep": ch.pick("keep", (1.0, 0.5))}
    if role in ("distribution", "class_target", "kl_target"):
        return {
            "random": "probabilities",
            **g,
            "axis": axis,
            "scale": ch.pick("peak", (1.0, 5.0, 30.0)),
        }
    if role == "unit":
        return {"random": "uniform", **g}
    if role in ("class_weight", "weight", "pos_weight"):
        return {"random": "uniform", **g, "low": 0.0, "high": 2.0}
    return {"random": "normal", **g, "scale": ch.pick("scale", (1.0, 10.0, 100.0)),
            "loc": ch.pick("loc", (0.0, 0.0, 50.0, -80.0))}  # fmt: skip


def draw_case(ch: Chooser, loss: str, dtypes: Sequence[str], case_id: str) -> dict[str, Any]:
    """One fuzz case dict for ``loss`` in one of ``dtypes`` (module docstring)."""
    spec, layout, roles = LOSSES[loss], LAYOUTS[loss], ROLES[loss]
    dtype = ch.pick("dtype", tuple(dtypes))
    shape, classes = _shape(ch, layout)
    params = _params(ch, loss, len(shape), classes)
    axis = {"classes1": 1 if len(shape) >= 2 else 0, "vocab_last": -1}.get(layout, -1)
    if layout == "axis" and shape:
        axis = int(params.get("axis", -1)) % len(shape)
    label_shape = {"classes1": (shape[0], *shape[2:]) if len(shape) >= 2 else (),
                   "vocab_last": shape[:-1]}.get(layout, shape)  # fmt: skip
    ignore = params.get("ignore_index")
    inputs: dict[str, Any] = {}
    seed = int(ch.rng.integers(2**31))
    for k, i in enumerate(spec.inputs):
        role = roles[i.name]
        if not i.required and not ch.chance(f"with-{i.name}", 0.5):
            continue
        if role == "class_target":
            role = ch.pick("target-form", ("labels", "distribution"))
        if role == "kl_target":
            role = "log_probs" if params.get("log_target") else "distribution"
        if role in ("labels", "mask"):
            in_shape = label_shape
        elif role == "class_weight":
            in_shape = (classes,)
        elif role == "pos_weight":
            in_shape = shape[-1:]
        else:
            in_shape = shape
        if math.prod(in_shape) > LITERAL_LIMIT:
            inputs[i.name] = _generator(ch, role, in_shape, classes, axis, seed + k)
            continue
        if role == "labels":
            x = _labels(ch, in_shape, classes or 1, ignore)
        elif role == "mask":
            x = (ch.rng.random(in_shape) < ch.pick("keep", (1.0, 0.5, 0.0))).astype(np.int64)
        else:
            x = _inject(
                ch, _base(ch, role, in_shape, axis), dtype, role, axis if in_shape == shape else -1
            )
            if role == "distribution" and x.ndim and ch.chance("unnormalised", 0.15):
                x = x * ch.pick("row-sum", (0.5, 1.5))
        inputs[i.name] = _as_input(x, role, dtype)
    case: dict[str, Any] = {
        "id": case_id, "loss": loss,
        "description": f"Drawn by xentcheck fuzz ({', '.join(ch.features[:6])}, ...).",
        "inputs": inputs, "params": params, "dtypes": [dtype], "tags": ["found-by-fuzz"],
    }  # fmt: skip
    if rejected(case):
        case["expect_error"] = True
    return case


def materialised(case: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The case's inputs as arrays (generators run), floats as float64."""
    out = {}
    for name, v in case["inputs"].items():
        if isinstance(v, dict) and "random" in v:
            opts = {k: x for k, x in v.items() if k not in ("random", "shape", "seed")}
            out[name] = generate(v["random"], tuple(v["shape"]), v.get("seed", 0), opts)
        elif isinstance(v, dict):
            out[name] = np.full(tuple(v["shape"]), float(v["fill"]))
        else:
            out[name] = np.asarray(v)
    return out


def tested_inputs(case: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inputs the reference sees: materialised, floats rounded to the case's dtype."""
    dtype = case["dtypes"][0]
    return {k: quantize(v.astype(np.float64), dtype) if v.dtype.kind == "f" else v
            for k, v in materialised(case).items()}  # fmt: skip


def rejected(case: Mapping[str, Any]) -> bool:
    """Whether the reference rejects the case's inputs (it then expects an error)."""
    try:
        check(case["loss"], tested_inputs(case), case.get("params") or {})
    except ValueError:
        return True
    return False
