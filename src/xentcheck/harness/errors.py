"""The one error type for bad input: it carries file, line and a fix, never a traceback."""

from __future__ import annotations

import re

# Everything str.splitlines() treats as a line boundary, plus other control characters:
# a message is printed as exactly one line whatever the case file held.
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """``text`` on one printable line: breaks and control characters become one space,
    unencodable code points (lone surrogates from YAML escapes) become escapes."""
    text = _BREAKS.sub(" ", text).strip()
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def show(value: object, limit: int = 60) -> str:
    """A short ``repr`` of a value from a case file, for messages (long ones are cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CaseError(Exception):
    """A case file that breaks the schema: ``path:line: message`` on one line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = one_line(str(path))
        self.line = line
        self.message = one_line(message)
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {self.message}")
