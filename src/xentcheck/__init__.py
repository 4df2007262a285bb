"""xentcheck: cross-entropy conformance across PyTorch, TensorFlow/Keras and JAX/optax.

``docs/design.md`` defines the words used throughout (loss, case, instance, golden,
adapter, result, known difference) and describes the data flow, the case and results
formats, the command line and the Python API.
"""

__version__ = "0.1.0"
