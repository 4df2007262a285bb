"""What the compiled execution modes share: the case tag that selects their cases, and
how a mode names the API it wraps.

Compiling is expensive (``torch.compile`` takes seconds per shape), so the frameworks of
the compiled modes (``torch-compile``, ``tensorflow-xla``, ``jax-eager``) run only the
cases tagged :data:`CASE_TAG` (each loss's ``compiled_modes.yaml``), through
``Framework.case_tags``. Their rows are named ``mode(api)``, so a row of
``torch.compile(torch.nn.functional.cross_entropy)`` lines up with the eager row of
``torch.nn.functional.cross_entropy`` for the same instance.
"""

from __future__ import annotations

__all__ = ["CASE_TAG", "CASE_TAGS", "mode_name"]

#: the tag of the cases the compiled-mode frameworks run
CASE_TAG = "compiled-modes"
CASE_TAGS = frozenset({CASE_TAG})


def mode_name(mode: str, api: str) -> str:
    """The row name of ``api`` run in ``mode``: ``torch.compile(torch.nn.functional.nll_loss)``."""
    return f"{mode}({api})"
