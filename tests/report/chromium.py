"""A headless Chromium for the report's browser tests, or the reason there is none."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from xentcheck.report.browser import BrowserMissing, session


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A :func:`xentcheck.report.browser.session`. Without a browser the test is skipped
    with the reason, or fails under ``XENTCHECK_REQUIRE_BROWSER=1`` (CI must run these)."""
    try:
        ctx = session()
        s = ctx.__enter__()
    except BrowserMissing as exc:
        if os.environ.get("XENTCHECK_REQUIRE_BROWSER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield s
    finally:
        ctx.__exit__(None, None, None)
