"""Documented differences of ``torch.compile`` rows (framework ``torch-compile``): those of
eager torch, whose functional APIs the compiled rows wrap (see :mod:`xentcheck.known.modes`)."""

from __future__ import annotations

import re

from xentcheck.known import torch as eager
from xentcheck.known.modes import derive

#: ``torch.nn.CrossEntropyLoss`` ...: a module form calls its functional twin's kernels,
#: so the compiled mode runs the functional form only
_MODULE_FORM = re.compile(r"torch\.nn\.[A-Z]")

ENTRIES = derive(
    eager.ENTRIES,
    "torch-compile",
    lambda api: f"torch.compile({api})",
    runs=lambda api: _MODULE_FORM.match(api) is None,
)
