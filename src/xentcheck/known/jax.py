"""Documented differences of jax (see :mod:`xentcheck.known`)."""

from __future__ import annotations

from xentcheck.known import Known

ENTRIES: list[Known] = []
