"""Configuration errors: the one exception type, and pydantic's errors translated into
``source: key.path: message (line N)`` lines that never repeat a value."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """The configuration is unusable; ``str(err)`` is the complete message for the operator.

    ``messages`` holds the individual problems (one per line of ``str(err)``). No message ever
    contains a credential value.
    """

    def __init__(self, messages: str | Sequence[str]) -> None:
        self.messages: tuple[str, ...] = (
            (messages,) if isinstance(messages, str) else tuple(messages)
        )
        super().__init__("\n".join(self.messages))

    def report(self) -> str:
        """What ``--check-config`` prints, and a failed reload logs and answers."""
        return f"error: {self}"


class NestedError(ValueError):
    """Raised by validators to report problems on keys *below* the validated value.

    Pydantic attaches a validator's error to the validated object itself; carrying relative key
    paths lets the error translation point at the exact key (e.g. the duplicate ``customer_id``).
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(message for _, message in self.problems))


@dataclass(frozen=True)
class Problem:
    """One error before formatting; ``line`` is looked up from ``loc`` unless given."""

    loc: Loc
    message: str
    line: int | None = None


_SIMPLE_MESSAGES: dict[str, str] = {
    "missing": "field required",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string; put the value in quotes",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}

_CTX_MESSAGES: dict[str, str] = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_long": "must have at most {max_length} entries",
}


def field_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(key path, message)`` for each error of validating one model directly.

    The command line validates its ``--web.*`` flags with :class:`WebConfig` and names the flag
    for the key path, with the same messages as the config file.
    """
    return [(format_loc(problem.loc), problem.message) for problem in translate(exc)]


def translate(exc: ValidationError) -> Iterator[Problem]:
    """Turn pydantic errors into problems; input values are never copied into messages."""
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        nested = (error.get("ctx") or {}).get("error")
        if isinstance(nested, NestedError):
            for sub_loc, message in nested.problems:
                yield Problem((*loc, *sub_loc), message)
        else:
            yield Problem(loc, _message_for(error))


def _message_for(error: ErrorDetails) -> str:
    """A short, value-free message for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":  # the validators' own messages
        return str(ctx["error"])
    if kind == "too_short":
        count = ctx["min_length"]
        return "must not be empty" if count == 1 else f"must have at least {count} entries"
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind]
    if kind in _CTX_MESSAGES:
        return _CTX_MESSAGES[kind].format(**ctx)
    return error["msg"]


def format_problems(problems: Sequence[Problem], root: yaml.Node, source: str) -> list[str]:
    """One ``source: key.path: message (line N)`` line per problem, ordered by line."""
    lines: list[tuple[int, str]] = []
    for problem in problems:
        line = problem.line if problem.line is not None else _line_of(root, problem.loc)
        path = format_loc(problem.loc)
        prefix = f"{source}: {path}: " if path else f"{source}: "
        lines.append((line, f"{prefix}{problem.message} (line {line})"))
    lines.sort(key=lambda item: item[0])
    return list(dict.fromkeys(text for _, text in lines))


_MAX_KEY_CHARS = 64
_MAX_PATH_CHARS = 256


def quoted(path: str) -> str:
    """A file path for a message: ``'/run/secrets/x'``; escaped if it holds control characters
    (one problem stays one line) and cut if absurdly long."""
    if len(path) > _MAX_PATH_CHARS:
        path = path[:_MAX_PATH_CHARS] + "..."
    return f"'{path}'" if path.isprintable() else repr(path)


def format_loc(loc: Loc) -> str:
    """``('customers', 0, 'client_id')`` -> ``customers[0].client_id``.

    An unknown key is shown as written only if it is short and printable; otherwise quoted and
    escaped (``web['\\r']``), so that one problem stays one line of output.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isprintable() and 0 < len(part) <= _MAX_KEY_CHARS:
            text += f".{part}" if text else part
        else:
            shown = repr(
                part if len(str(part)) <= _MAX_KEY_CHARS else f"{part!s:.{_MAX_KEY_CHARS}}..."
            )
            text += f"[{shown}]"
    return text


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """1-based line of the key at ``loc``, or of its closest existing ancestor."""
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        line, node = child
    return line


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    """(line, value node) of mapping key or sequence index ``part`` under ``node``, if any."""
    if isinstance(node, yaml.MappingNode):
        found: tuple[int, yaml.Node] | None = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = (key.start_mark.line + 1, value)  # last one wins, as in PyYAML
        return found
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item: yaml.Node = node.value[part]
        return item.start_mark.line + 1, item
    return None
