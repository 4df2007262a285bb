"""Safe YAML loading that remembers where every mapping and sequence came from.

``load_located(text, path)`` returns plain Python values in which mappings are
:class:`Map` (a dict with ``line`` and ``key_lines``) and sequences are :class:`Seq`
(a list with ``line``), so validation errors can name the line. Only the YAML core schema
is accepted (``yaml.SafeLoader``: no Python object tags); duplicate keys are an error.
"""

from __future__ import annotations

import re

import yaml

from xentcheck.harness.errors import CaseError


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats: ``1e30`` and ``1.0e30`` (no exponent sign).

    PyYAML follows YAML 1.1, where those are strings; people writing cases by hand expect
    numbers.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class Map(dict):
    """A YAML mapping with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class Seq(list):
    """A YAML sequence with the 1-based line where it starts."""

    line: int = 0


def load_located(text: str, path: str):
    """Parse ``text`` (one YAML document) into located Python values."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CaseError(path, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CaseError(path, None, f"invalid YAML: {exc}") from None
    if node is None:
        return None
    return _convert(node, path, yaml.SafeLoader(""), depth=0, budget=[_MAX_NODES])


_MAX_DEPTH = 64
_PLAIN_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_MAX_NODES = 2_000_000  # aliases can make a small file expand exponentially


def _convert(node, path: str, constructor, depth: int, budget: list[int]):
    line = node.start_mark.line + 1
    if depth > _MAX_DEPTH:
        raise CaseError(path, line, f"nesting deeper than {_MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise CaseError(path, line, f"document expands to more than {_MAX_NODES} values")
    if isinstance(node, yaml.ScalarNode):
        try:
            return constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise CaseError(path, line, f"bad scalar: {exc}") from None
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
        raise CaseError(
            path, line, f"tag {node.tag!r} is not allowed; write plain YAML lists and mappings"
        )
    if isinstance(node, yaml.SequenceNode):
        out = Seq(_convert(n, path, constructor, depth + 1, budget) for n in node.value)
        out.line = line
        return out
    if isinstance(node, yaml.MappingNode):
        out = Map()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise CaseError(
                    path, key_node.start_mark.line + 1, "mapping keys must be plain names"
                )
            key = constructor.construct_object(key_node)
            if key in out:
                raise CaseError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            out.key_lines[key] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path, constructor, depth + 1, budget)
        return out
    raise CaseError(path, line, "unsupported YAML node (aliases and tags are not allowed)")
