"""xentcheck's performance benchmarks: ``python -m bench`` (``tox -e bench``).

Every figure is a ratio or a wall time measured side by side in one run; the method of
each is written next to the code that measures it and into ``reports/bench.json``
(``method``). See ``docs/performance.md``.

Modules:
  measure   subprocess timing, peak resident memory (VmHWM), JSON hand-over
  bare      the bare side of the overhead ratio: the framework API calls the harness
            makes, in a loop, plus the reference evaluations they need, timed apart
  compiles  compile counters for JAX (jax.monitoring) and TensorFlow (tf.function traces)
  llm       the reference at language-model scale: peak memory, time vs an exp pass,
            bit-for-bit identity of the chunked and unchunked token cross-entropy
  report    the goals, the printed table and the JSON document
"""
