"""A headless Chromium for looking at a report (the screenshot, the browser tests).

Uses an installed Chromium (``XENTCHECK_CHROMIUM``, else ``chromium``/``chromium-browser``/
``google-chrome`` on PATH) through the ``playwright`` package; it never downloads a
browser. Every request that is not ``file:`` or ``data:`` is refused and recorded, so a
report that reaches for another host shows up in :attr:`Session.blocked`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class BrowserMissing(RuntimeError):
    """No Chromium or no playwright package: the caller decides to skip or to fail."""


def chromium_path() -> str:
    """The Chromium executable to drive, or raise :class:`BrowserMissing`."""
    env = os.environ.get("XENTCHECK_CHROMIUM")
    if env:
        if not os.path.isfile(env):
            raise BrowserMissing(f"XENTCHECK_CHROMIUM={env} is not a file")
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing("no Chromium found (apt-get install chromium, or set XENTCHECK_CHROMIUM)")


@dataclass
class Session:
    """A page plus what it did: console errors, page errors, refused requests."""

    page: Any
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextmanager
def session(width: int = 1440, height: int = 900, dark: bool = False) -> Iterator[Session]:
    """A fresh headless page; raises :class:`BrowserMissing` when it cannot start one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserMissing(
            "the playwright package is not installed (pip install playwright)"
        ) from exc
    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            ctx = browser.new_context(
                viewport={"width": width, "height": height},
                color_scheme="dark" if dark else "light",
            )
            page = ctx.new_page()
            s = Session(page)

            def route(r):
                url = r.request.url
                if url.startswith(("file:", "data:", "about:")):
                    r.continue_()
                else:
                    s.blocked.append(url)
                    r.abort()

            ctx.route("**/*", route)
            page.on("console", lambda m: s.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: s.errors.append(str(e)))
            yield s
        finally:
            browser.close()
