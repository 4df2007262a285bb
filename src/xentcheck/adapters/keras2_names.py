"""Keras 3 API names in Keras 2's namespaces (framework ``tf-keras``), without importing
either Keras: the adapter names its rows with it and ``known/tf_keras.py`` its entries'
API patterns, so the two cannot drift apart."""

from __future__ import annotations

import re

__all__ = ["NAMESPACES", "keras2_name"]

#: Keras 3 namespace -> its Keras 2 home (Keras 2 has no ``keras.ops``: its backend
#: functions take the same arguments)
NAMESPACES: dict[str, str] = {
    "losses": "tf_keras.losses.",
    "activations": "tf_keras.activations.",
    "ops": "tf_keras.backend.",
}

_KERAS3 = re.compile(r"(?<![\w.])keras\.(losses|activations|ops)\.")


def keras2_name(name: str) -> str:
    """A Keras 3 API name (or pattern) in Keras 2's namespaces: ``keras.losses.X`` ->
    ``tf_keras.losses.X``, ``keras.ops.X`` -> ``tf_keras.backend.X``."""
    return _KERAS3.sub(lambda m: NAMESPACES[m.group(1)], name)
