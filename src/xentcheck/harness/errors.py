"""The one error type for bad input: it carries file, line and a fix, never a traceback."""

from __future__ import annotations


class CaseError(Exception):
    """A case file that breaks the schema: ``path:line: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
