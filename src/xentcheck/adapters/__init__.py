"""Framework adapters, one module per framework, found through one registry.

Modules are imported lazily by name, so the torch worker never imports TensorFlow.
Each module exposes ``FRAMEWORK``, a :class:`xentcheck.adapters.base.Framework`.

Besides the built-in registry (:data:`FRAMEWORKS`), installed packages can contribute
adapters through the ``xentcheck.adapters`` entry-point group (name -> ``module:attr``
holding a Framework), and any ``"module:attr"`` spec names an adapter directly; see
``docs/plugins.md``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported

__all__ = [
    "ENTRY_POINT_GROUP",
    "FRAMEWORKS",
    "OWN_PROCESS",
    "REQUIRES",
    "Api",
    "Call",
    "Framework",
    "Output",
    "Unsupported",
    "available_frameworks",
    "entry_point_adapters",
    "load_framework",
]

#: framework name -> module that defines ``FRAMEWORK``
FRAMEWORKS: dict[str, str] = {
    "torch": "xentcheck.adapters.torch_adapter",
    "tensorflow": "xentcheck.adapters.tensorflow_adapter",
    "jax": "xentcheck.adapters.jax_adapter",
    "onnxruntime": "xentcheck.adapters.onnxruntime_adapter",
    "keras-jax": "xentcheck.adapters.keras_jax_adapter",
    "keras-torch": "xentcheck.adapters.keras_torch_adapter",
    "torch-compile": "xentcheck.adapters.torch_compile_adapter",
    "tensorflow-xla": "xentcheck.adapters.tensorflow_xla_adapter",
    "jax-eager": "xentcheck.adapters.jax_eager_adapter",
    "tf-compat-v1": "xentcheck.adapters.tf_compat_v1_adapter",
    "tf-keras": "xentcheck.adapters.tf_keras_adapter",
}

#: built-in framework name -> top-level modules it needs (checked without importing them);
#: a built-in missing here needs the module named like the framework
REQUIRES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "keras"),
    "jax": ("jax", "optax"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "keras-jax": ("keras", "jax"),
    "keras-torch": ("keras", "torch"),
    "torch-compile": ("torch",),
    "tensorflow-xla": ("tensorflow",),
    "jax-eager": ("jax", "optax"),
    "tf-compat-v1": ("tensorflow",),
    "tf-keras": ("tensorflow", "tf_keras"),
}

#: built-ins that cannot share a Python process with the others (Keras picks its backend
#: once per process, at import): the runner gives every framework its own worker anyway;
#: in-process users (the pytest plugin) run these only when asked for by name
OWN_PROCESS: frozenset[str] = frozenset({"keras-jax", "keras-torch"})

#: the entry-point group through which installed packages register adapters
ENTRY_POINT_GROUP = "xentcheck.adapters"


def entry_point_adapters() -> dict[str, str]:
    """Adapters registered by installed packages: name -> ``"module:attr"`` spec.

    A built-in name wins over an entry point of the same name (the entry point stays
    reachable through its spec).
    """
    out: dict[str, str] = {}
    for ep in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name
    ):
        if ep.name not in FRAMEWORKS and ep.name not in out:
            out[ep.name] = ep.value
    return out


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_frameworks(one_process: bool = False) -> list[str]:
    """Names of the adapters usable here, without importing any framework.

    Built-ins whose packages are installed (in registry order), then the entry-point
    adapters of installed packages (by name). ``one_process``: only those that can all be
    loaded into one Python process (leaves out :data:`OWN_PROCESS`).
    """
    names = [n for n in FRAMEWORKS if all(map(_importable, REQUIRES.get(n, (n,))))]
    if one_process:
        names = [n for n in names if n not in OWN_PROCESS]
    return names + list(entry_point_adapters())


def load_framework(name: str) -> Framework:
    """Return the Framework of a registered ``name``, or of an ``"module:attribute"`` spec.

    A spec names any importable module and the attribute holding a Framework (a user's
    own kernel, say: ``my_package.losses:adapter``). Names are looked up in the built-in
    registry, then among the ``xentcheck.adapters`` entry points of installed packages.
    """
    if ":" in name:
        module, _, attr = name.partition(":")
        if not module or not attr:
            raise ValueError(f"{name}: an adapter spec is 'module:attribute'")
        try:
            obj = importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"{name}: cannot import {module!r} ({exc})") from exc
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ValueError(f"{name}: {module!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not isinstance(obj, Framework):
            raise ValueError(f"{name}: {type(obj).__name__} is not a xentcheck Framework")
        return obj
    if name in FRAMEWORKS:
        return importlib.import_module(FRAMEWORKS[name]).FRAMEWORK
    plugins = entry_point_adapters()
    if name in plugins:
        return load_framework(plugins[name])
    known = ", ".join([*FRAMEWORKS, *plugins])
    raise ValueError(
        f"unknown framework {name!r}; known: {known} (or pass an adapter as 'module:attribute')"
    )
