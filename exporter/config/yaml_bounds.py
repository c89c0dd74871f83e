"""YAML loading with bounds: nesting depth, node count and alias expansion.

PyYAML's ``SafeLoader`` cannot run code, but it does not bound cost. Unbounded, a config file
could

* nest 5,000 levels deep (``[[[[...``) and overflow the stack of the recursive composer or of
  any later recursive stage (a ``RecursionError`` traceback);
* hold an alias bomb ("billion laughs"): each line repeats the anchor of the line before nine
  times, so a few hundred bytes stand for 9^9 values, which every later stage would walk;
* hold a scalar that fails to construct outside PyYAML's own error types (``2024-13-01`` is a
  timestamp with month 13, an integer of 5,000 digits exceeds Python's conversion limit).

:class:`BoundedLoader` refuses the first while composing and turns the last into a marked YAML
error; :func:`check_expansion` measures the node graph once, counting each shared node's size
once (memoised), so the alias bomb is refused in time linear in the file, before anything
expands it. :func:`describe_yaml_error` puts any YAML error on one line with its line number.

Limits are generous for real configs: a customer with every option spelled out is ~100 nodes
and 6 levels deep, a typical one ~25 nodes.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from yaml.constructor import ConstructorError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "BoundedLoader",
    "YamlLimitError",
    "check_expansion",
    "describe_yaml_error",
]

# Levels of nesting below the top-level mapping; a real config needs about 6.
MAX_DEPTH = 50
# Nodes after expanding aliases: 2,500 customers with every option spelled out, ~10,000 typical
# ones (measured with yaml.compose on a dumped CustomerConfig). Parsing that many takes seconds.
MAX_NODES = 250_000


class YamlLimitError(yaml.MarkedYAMLError):
    """The document exceeds a bound; ``problem`` says which (completing "YAML document ..."),
    ``problem_mark`` where."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


def _too_deep(mark: yaml.Mark | None) -> YamlLimitError:
    return YamlLimitError(f"is nested too deeply (more than {MAX_DEPTH} levels)", mark)


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that bounds nesting and node count while composing, and reports values
    that fail to construct (with any exception) as marked YAML errors."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # ancestors of the node being composed
        self._nodes = 0  # nodes composed so far (an alias adds none)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if self._depth > MAX_DEPTH:
            raise _too_deep(event.start_mark)
        if not isinstance(event, yaml.AliasEvent):
            self._nodes += 1
            if self._nodes > MAX_NODES:
                message = f"is too large (more than {MAX_NODES:,} values)"
                raise YamlLimitError(message, event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> object:
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception:  # any failure of a constructor is about this node's value
            # An explicit tag reaches every constructor with any text: `!!int ""` raised
            # IndexError, `!!bool x` KeyError, `!!timestamp x` AttributeError.
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise ConstructorError(None, None, f"invalid {kind} value", node.start_mark) from None


def check_expansion(root: yaml.Node) -> None:
    """Raise :class:`YamlLimitError` if expanding aliases makes ``root`` too big or too deep.

    Sizes are memoised per node object, and an alias *is* the anchored node object, so each
    distinct node is measured once. An anchor used inside itself is reported as recursive.
    """
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        known = measured.get(key)
        if known is None:
            if key in open_nodes:
                message = "has a recursive alias (an anchor used inside itself)"
                raise YamlLimitError(message, node.start_mark)
            if depth > MAX_DEPTH:
                raise _too_deep(node.start_mark)
            open_nodes.add(key)
            count, height = 1, 0
            for child in _children(node):
                child_count, child_height = measure(child, depth + 1)
                count += child_count
                height = max(height, child_height + 1)
                if count > MAX_NODES:
                    message = f"expands through aliases to more than {MAX_NODES:,} values"
                    raise YamlLimitError(message, node.start_mark)
            open_nodes.discard(key)
            known = measured[key] = (count, height)
        if depth + known[1] > MAX_DEPTH:
            raise YamlLimitError(
                f"is nested too deeply through aliases (more than {MAX_DEPTH} levels)",
                node.start_mark,
            )
        return known

    measure(root, 0)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    """Keys and values of a mapping, items of a sequence, nothing for a scalar."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """One line naming the YAML line for any YAML error (PyYAML's own text spans lines)."""
    if isinstance(exc, YamlLimitError):
        line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        return f"YAML document {exc.problem}{line}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"YAML syntax error{where}: {exc.problem or exc.context or 'invalid YAML'}"
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        line_number = text.count("\n", 0, exc.position) + 1
        problem = f"character #x{exc.character:04x} is not allowed in YAML"
        return f"YAML syntax error at line {line_number}: {problem}"
    first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"YAML syntax error: {first_line}"
