"""Documented differences of ``torch.compile`` rows (framework ``torch-compile``): those of
eager torch, whose functional APIs the compiled rows wrap (see :mod:`xentcheck.known.modes`)."""

from __future__ import annotations

from xentcheck.known import torch as eager
from xentcheck.known.modes import derive

ENTRIES = derive(eager.ENTRIES, "torch-compile", lambda api: f"torch.compile({api})")
