"""Safe YAML loading that remembers where every mapping and sequence came from.

``load_located(text, path)`` returns plain Python values in which mappings are
:class:`Map` (a dict with ``line`` and ``key_lines``) and sequences are :class:`Seq`
(a list with ``line`` and ``item_lines``), so validation errors can name the line.

Hostile input is refused before it takes memory or time:

* only the YAML core schema is accepted (``yaml.SafeLoader``: no Python object tags, no
  other tags on lists and mappings); scalars must be numbers, text, booleans or null;
* nesting deeper than :data:`MAX_DEPTH` and documents of more than :data:`MAX_NODES`
  nodes are refused while the document is composed (before any Python values exist),
  and aliases may not expand the document past :data:`MAX_NODES` values either;
* mapping keys must be text and unique.

Every refusal is a :class:`CaseError` with the file, the line and the fix.
"""

from __future__ import annotations

import datetime
import re

import yaml

from xentcheck.harness.errors import CaseError, show

MAX_DEPTH = 64
MAX_NODES = 500_000  # YAML nodes composed, and values after aliases are expanded


class _Limit(Exception):
    """Raised inside the composer when the document is too deep or too large."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Resolver(yaml.resolver.Resolver):
    """The core schema's resolver that also reads YAML 1.2 floats: ``1e30`` and ``1.0e30``.

    PyYAML follows YAML 1.1, where those (no exponent sign) are strings; people writing
    cases by hand expect numbers.
    """


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _Guard:
    """Composer mixin that counts nodes and nesting while the document is composed.

    A nesting bomb or a huge document is refused before its Python values are built
    (and before the composer's recursion could hit Python's limit).
    """

    _depth = 0
    _nodes = 0

    def compose_node(self, parent, index):
        self._nodes += 1
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                line = self.peek_event().start_mark.line + 1
                if self._depth > MAX_DEPTH:
                    raise _Limit(line, f"nesting deeper than {MAX_DEPTH} levels; flatten the data")
                raise _Limit(
                    line,
                    f"document has more than {MAX_NODES} values; use a generator "
                    "({random: ..., shape: [...]}) for large inputs",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _PyLoader(
    _Guard,
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    """PyYAML's pure-Python safe loader with the guards and YAML 1.2 floats."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


if yaml.__with_libyaml__:

    class _CLoader(
        _Guard,
        yaml.composer.Composer,  # before CParser: compose in Python, with the guards
        yaml._yaml.CParser,
        yaml.constructor.SafeConstructor,
        _Resolver,
    ):
        """libyaml's scanner and parser (about 5x faster) feeding the guarded composer."""

        def __init__(self, stream: str) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            _Resolver.__init__(self)

    _Loader: type = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PyLoader


class Map(dict):
    """A YAML mapping with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class Seq(list):
    """A YAML sequence with the 1-based line where it starts and of each item."""

    line: int = 0
    item_lines: list

    def line_at(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


def load_located(text: str, path: str):
    """Parse ``text`` (one YAML document) into located Python values.

    Raises :class:`CaseError` for invalid YAML, tags other than the core schema's, a
    nesting bomb, a document larger than :data:`MAX_NODES` values (aliases included),
    non-text or duplicate mapping keys, and scalars that are not plain data.
    """
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except _Limit as exc:
        raise CaseError(path, exc.line, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CaseError(
            path,
            line,
            f"invalid YAML: {exc.problem or exc.context} (check the indentation and brackets)",
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise CaseError(
            path, line, f"invalid YAML: character {exc.character!r} is not allowed in a YAML file"
        ) from None
    except yaml.YAMLError as exc:
        raise CaseError(path, None, f"invalid YAML: {exc}") from None
    except RecursionError:  # defensive: the composer's depth limit comes first
        raise CaseError(path, None, f"nesting deeper than {MAX_DEPTH} levels") from None
    if node is None:
        return None
    _measure(node, path, {}, set(), 0)
    return _convert(node, path, yaml.SafeLoader(""), depth=0, budget=[MAX_NODES])


def _measure(node, path: str, memo: dict, active: set, level: int) -> tuple[int, int]:
    """(values, nesting) of ``node`` once its aliases are expanded, from the node graph.

    Shared (aliased) nodes are measured once, so an alias bomb (``&a [*b, *b, ...]``
    nested ten deep) is refused in microseconds, before any value is built; a recursive
    alias (``&a [*a]``) is infinitely deep.
    """
    key = id(node)
    if key in memo:
        return memo[key]
    line = node.start_mark.line + 1
    if key in active:
        raise CaseError(path, line, "a recursive alias (&a [*a]) nests without end; remove it")
    if level > MAX_DEPTH:  # a chain of aliases nests without nesting in the text
        raise CaseError(path, line, f"nesting deeper than {MAX_DEPTH} levels; flatten the data")
    if isinstance(node, yaml.ScalarNode):
        return 1, 0
    active.add(key)
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [n for pair in node.value for n in pair]
    )
    count, depth = 1, 0
    for child in children:
        c, d = _measure(child, path, memo, active, level + 1)
        count, depth = count + c, max(depth, d + 1)
        if count > MAX_NODES:
            raise CaseError(
                path, line, f"document expands to more than {MAX_NODES} values (through aliases?)"
            )
        if depth > MAX_DEPTH:
            raise CaseError(path, line, f"nesting deeper than {MAX_DEPTH} levels; flatten the data")
    active.discard(key)
    memo[key] = (count, depth)
    return count, depth


_PLAIN_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_DATA = (int, float, str, bool, type(None))


def _scalar(node, path: str, constructor):
    line = node.start_mark.line + 1
    if node.tag == "tag:yaml.org,2002:merge":
        raise CaseError(path, line, "merge keys (<<) are not supported; write the fields out")
    if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.startswith(
        "tag:yaml.org,2002:python/"
    ):
        raise CaseError(
            path, line, f"tag {show(node.tag)} is not allowed; write plain numbers and text"
        )
    try:
        value = constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(
            path, line, f"bad value: {problem} (write plain numbers and text)"
        ) from None
    except (ValueError, OverflowError, TypeError) as exc:  # int() digit limit, bad dates
        reason = str(exc).split(";")[0]
        raise CaseError(
            path, line, f"bad value {show(node.value)}: {reason} (write a float, or quote text)"
        ) from None
    if isinstance(value, datetime.date | bytes) or not isinstance(value, _DATA):
        raise CaseError(
            path,
            line,
            f"{show(node.value)} reads as a {type(value).__name__}; "
            "only numbers, text, true/false and null are allowed (quote it to make it text)",
        )
    return value


def _convert(node, path: str, constructor, depth: int, budget: list[int]):
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:  # a recursive alias (&a [*a]) composes without nesting in text
        raise CaseError(path, line, f"nesting deeper than {MAX_DEPTH} levels; flatten the data")
    budget[0] -= 1
    if budget[0] < 0:
        raise CaseError(
            path, line, f"document expands to more than {MAX_NODES} values (through aliases?)"
        )
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, path, constructor)
    if node.tag not in _PLAIN_TAGS:
        raise CaseError(
            path, line, f"tag {show(node.tag)} is not allowed; write plain YAML lists and mappings"
        )
    if isinstance(node, yaml.SequenceNode):
        out = Seq(_convert(n, path, constructor, depth + 1, budget) for n in node.value)
        out.line = line
        out.item_lines = [n.start_mark.line + 1 for n in node.value]
        return out
    out = Map()
    out.line = line
    out.key_lines = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise CaseError(
                path, key_line, "mapping keys must be plain names, not lists or mappings"
            )
        key = _scalar(key_node, path, constructor)
        if not isinstance(key, str):
            raise CaseError(
                path, key_line, f"mapping key {show(key)} is not a name; write a name (quote it)"
            )
        if key in out:
            raise CaseError(
                path, key_line, f"duplicate key {show(key)} (first at line {out.key_lines[key]})"
            )
        out.key_lines[key] = key_line
        out[key] = _convert(value_node, path, constructor, depth + 1, budget)
    return out
