"""YAML documents with line numbers: every mapping, list and value knows where it came from.

``yaml.compose_all`` keeps marks on nodes; this module turns nodes into plain Python values
(``LMap`` / ``LList`` remember the 1-based line of each key and item) so that validation errors
can name ``file:line`` without keeping YAML nodes around.
"""

from __future__ import annotations

from typing import Any

import yaml


class LMap(dict[str, Any]):
    """A mapping that remembers its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    """A list that remembers its own line and the line of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


_loader = yaml.SafeLoader("")
#: libyaml's composer when PyYAML was built with it (nodes and marks are the same; about ten
#: times faster than the pure-Python one on the rule pack, a fixed cost of every command).
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def to_python(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = LMap()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for k, v in node.value:
            key = to_python(k)
            key = str(key)
            out[key] = to_python(v)
            out.key_lines[key] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        lst = LList(to_python(n) for n in node.value)
        lst.line = node.start_mark.line + 1
        lst.item_lines = [n.start_mark.line + 1 for n in node.value]
        return lst
    return _loader.construct_object(node, deep=True)


def load_documents(text: str) -> list[tuple[int, Any]]:
    """(first line, value) of every non-empty document; ``yaml.YAMLError`` on bad syntax."""
    docs: list[tuple[int, Any]] = []
    for node in yaml.compose_all(text, Loader=_COMPOSER):
        if node is None:
            continue
        docs.append((node.start_mark.line + 1, to_python(node)))
    return docs
