"""Loading a configuration file: the exporter runs unattended, so a bad configuration must fail
at start-up with one message per problem that names the key path and the YAML line, and it must
never echo a credential into a log. Loading therefore happens in stages, each of which can report
precise key paths:

1. parse the YAML into a node tree (for line numbers) and plain Python data;
2. expand ``${VAR}`` in string values from the environment;
3. replace ``client_id_file`` / ``client_secret_file`` by the content of those files;
4. validate the result with the models (:mod:`exporter.config.models`) and translate their
   errors (:mod:`exporter.config.errors`).

The YAML bounds (depth, size, aliases) live in :mod:`exporter.config.yaml_bounds`, the bounded
reads of the files a config names in :mod:`exporter.config.files`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.config.errors import ConfigError, Loc, Problem, format_problems, quoted, translate
from exporter.config.files import (
    CONFIG_FILE_MAX_BYTES,
    SECRET_FILE_MAX_BYTES,
    FileProblem,
    read_bounded,
)
from exporter.config.models import Config
from exporter.config.yaml_bounds import BoundedLoader, check_expansion, describe_yaml_error

_ENV_REF_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_FILE_FIELDS = ("client_id", "client_secret")


class _Unresolved:
    """Placeholder for a value whose ``${VAR}`` could not be expanded (already reported)."""


_UNRESOLVED = _Unresolved()


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration file at ``path``; raise :class:`ConfigError`."""
    source = os.fspath(path)
    try:
        text = read_bounded(source, CONFIG_FILE_MAX_BYTES, regular_only=False).decode()
    except FileProblem as exc:
        raise ConfigError(f"{source}: cannot read configuration file: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: configuration file is not valid UTF-8") from None
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate configuration ``text``; ``source`` prefixes every error message.

    ``environ`` defaults to ``os.environ`` and is used for ``${VAR}`` expansion.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    try:
        return _parse(text, source, env)
    except RecursionError:
        # yaml_bounds bounds nesting, so this is a last line of defence for every later stage.
        raise ConfigError(f"{source}: configuration is nested too deeply") from None


def _parse(text: str, source: str, env: Mapping[str, str]) -> Config:
    """The stages of :func:`parse_config` (module docstring)."""
    root, data, problems = load_yaml(text, source)
    if root is None or data is None:
        raise ConfigError(f"{source}: configuration is empty")
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        raise ConfigError(f"{source}: top level must be a mapping of keys (line {line})")
    suppressed: set[Loc] = set()
    data = _expand(data, (), env, problems, suppressed)
    _resolve_secret_files(data, problems, suppressed)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in translate(exc) if not _is_suppressed(p.loc, suppressed))
    else:
        if not problems:
            return config
    raise ConfigError(format_problems(problems, root, source))


def load_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any, list[Problem]]:
    """Return the node tree (for line numbers), the plain data of a single YAML document and
    its duplicate keys.

    The node graph is measured before it is constructed, so an alias bomb never expands, and
    searched for duplicate keys before constructing merges ``<<: *x`` into it (an override of
    a merged key is not a duplicate).
    """
    try:
        loader = BoundedLoader(text)  # the reader rejects control characters right away
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None, []
            check_expansion(node)
            duplicates = _duplicate_keys(node, (), set())
            return node, loader.construct_document(node), duplicates
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {describe_yaml_error(exc, text)}") from None


def _duplicate_keys(node: yaml.Node, loc: Loc, seen_nodes: set[int]) -> list[Problem]:
    """Report keys given twice in one mapping; PyYAML would silently keep the last one."""
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        # A list or mapping as a key fails construction ("found unhashable key") anyway.
        scalar_keyed = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        for key, value in scalar_keyed:
            name: str = key.value
            if name in keys and name != "<<":  # several merge keys are fine
                problems.append(Problem((*loc, name), "duplicate key", key.start_mark.line + 1))
            keys.add(name)
            problems += _duplicate_keys(value, (*loc, name or "?"), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, index), seen_nodes)
    return problems


def _expand(
    value: Any, loc: Loc, env: Mapping[str, str], problems: list[Problem], suppressed: set[Loc]
) -> Any:
    """Return a copy of ``value`` with ``${VAR}`` expanded in every string (not in keys)."""
    if isinstance(value, str):
        return _expand_string(value, loc, env, problems, suppressed)
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), env, problems, suppressed) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), env, problems, suppressed) for i, v in enumerate(value)]
    return value


def _expand_string(
    text: str, loc: Loc, env: Mapping[str, str], problems: list[Problem], suppressed: set[Loc]
) -> str | _Unresolved:
    """Expand one string; ``$${X}`` stays a literal ``${X}``. Unset variables are reported."""
    references = _ENV_REF_RE.findall(text)  # (escape, name) pairs
    missing = dict.fromkeys(name for escape, name in references if not escape and name not in env)
    if missing:
        for name in missing:
            problems.append(Problem(loc, f"environment variable {name} is not set"))
        suppressed.add(loc)
        return _UNRESOLVED
    return _ENV_REF_RE.sub(lambda m: "${" + m[2] + "}" if m[1] else env[m[2]], text)


def _resolve_secret_files(
    data: dict[Any, Any], problems: list[Problem], suppressed: set[Loc]
) -> None:
    """Replace ``client_*_file`` keys of every customer by the file's content, in place."""
    customers = data.get("customers")
    if not isinstance(customers, list):
        return
    for index, customer in enumerate(customers):
        if isinstance(customer, dict):
            for field in _SECRET_FILE_FIELDS:
                _resolve_secret_file(customer, ("customers", index), field, problems, suppressed)


def _resolve_secret_file(
    customer: dict[Any, Any],
    loc: Loc,
    field: str,
    problems: list[Problem],
    suppressed: set[Loc],
) -> None:
    """Resolve ``<field>_file`` for one customer; on failure report it on the ``_file`` key."""
    file_key = f"{field}_file"
    if file_key not in customer:
        return
    path = customer.pop(file_key)
    file_loc = (*loc, file_key)
    if field in customer:
        if path is not _UNRESOLVED:
            message = f"{field} and {file_key} are mutually exclusive; set only one of them"
            problems.append(Problem(file_loc, message))
        return
    content: str | None = None
    if path is _UNRESOLVED:
        pass  # the missing variable is reported already
    elif not isinstance(path, str) or not path.strip():
        problems.append(Problem(file_loc, "must be a file path"))
    else:
        content = _read_secret_file(path, file_loc, problems)
    if content is None:
        suppressed.add((*loc, field))  # "field required" would only repeat the file's problem
    else:
        customer[field] = content


def _read_secret_file(path: str, loc: Loc, problems: list[Problem]) -> str | None:
    """Return the file's content without trailing whitespace, or report why it is unusable.

    The file must be a regular file of at most ``SECRET_FILE_MAX_BYTES`` (config.files).
    """
    try:
        content = read_bounded(path, SECRET_FILE_MAX_BYTES).decode().rstrip()
    except FileProblem as exc:
        problems.append(Problem(loc, f"cannot read file {quoted(path)}: {exc}"))
        return None
    except UnicodeDecodeError:
        problems.append(Problem(loc, f"file {quoted(path)} is not valid UTF-8 text"))
        return None
    if not content:
        problems.append(Problem(loc, f"file {quoted(path)} is empty"))
        return None
    return content


def _is_suppressed(loc: Loc, suppressed: set[Loc]) -> bool:
    """True if ``loc`` is at or below a value whose problem was already reported."""
    return any(loc[: len(prefix)] == prefix for prefix in suppressed)
