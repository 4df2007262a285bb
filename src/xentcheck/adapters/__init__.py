"""Framework adapters, one module per framework, found through one registry.

Modules are imported lazily by name, so the torch worker never imports TensorFlow.
Each module exposes ``FRAMEWORK``, a :class:`xentcheck.adapters.base.Framework`.
"""

from __future__ import annotations

import importlib

from xentcheck.adapters.base import Api, Call, Framework, Output, Unsupported

__all__ = ["FRAMEWORKS", "Api", "Call", "Framework", "Output", "Unsupported", "load_framework"]

#: framework name -> module that defines ``FRAMEWORK``
FRAMEWORKS: dict[str, str] = {
    "torch": "xentcheck.adapters.torch_adapter",
    "tensorflow": "xentcheck.adapters.tensorflow_adapter",
    "jax": "xentcheck.adapters.jax_adapter",
}


def load_framework(name: str) -> Framework:
    """Return the Framework of a registered ``name``, or of an ``"module:attribute"`` spec.

    A spec names any importable module and the attribute holding a Framework (a user's
    own kernel, say: ``my_package.losses:adapter``).
    """
    if ":" in name:
        module, _, attr = name.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not isinstance(obj, Framework):
            raise ValueError(f"{name}: {type(obj).__name__} is not a xentcheck Framework")
        return obj
    try:
        module = FRAMEWORKS[name]
    except KeyError:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(FRAMEWORKS)}") from None
    return importlib.import_module(module).FRAMEWORK
