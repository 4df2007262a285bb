"""xentcheck: cross-entropy conformance across PyTorch, TensorFlow/Keras and JAX/optax.

See ``DESIGN.md`` (shared) for the words used throughout: loss, case, instance, golden,
adapter, result.
"""

__version__ = "0.1.0"
