"""A small OData v4 query engine over in-memory rows (no aiohttp here: pure and fast).

It implements the part of OData the Citrix Monitor Service is queried with, strictly enough
that a client's mistakes show up as the 400 the real service would answer:

* ``$filter``: ``eq ne gt ge lt le``, ``and or not``, parentheses, ``null``, integers,
  ``true``/``false``, single-quoted strings, *unquoted* ISO datetimes
  (``ModifiedDate ge 2024-06-04T00:00:00Z``) and GUIDs, paths over one navigation
  (``Machine/DesktopGroupId``). No functions: the exporter sends none, so ``contains(...)``
  and the like are a 400 "not supported by the simulator". Operand types are checked like
  ASP.NET OData does (a quoted date or GUID is a 400). Comparisons with null follow OData:
  ``X eq null`` is true when X is null, ordering comparisons involving null are false.
* ``$select``, ``$expand`` (with a nested ``$select``), ``$orderby`` (several
  keys, ``asc``/``desc``, nulls first ascending), ``$top``, ``$skip``, ``$count=true``.
* ``$apply`` (aggregation extension): ``filter(...)``, ``groupby((P,Nav/P))`` and
  ``groupby((...),aggregate($count as A))`` chained with ``/``. Other transformations and
  aggregates (``sum``, ``countdistinct``...) are a 400: the exporter sends only ``$count``.

An expression is parsed and compiled to a Python closure once per query, then run over the
rows (100,000 rows filter in a few tens of milliseconds). Rows are plain mappings; the model
(:class:`EntitySet`) gives property types and navigations, which are resolved through
per-query indexes of the target entity set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

Row = Mapping[str, Any]
Getter = Callable[[Row], Any]

INT32 = "Edm.Int32"
INT64 = "Edm.Int64"
BOOLEAN = "Edm.Boolean"
STRING = "Edm.String"
GUID = "Edm.Guid"
DATETIME = "Edm.DateTimeOffset"
_NUMERIC = frozenset({INT32, INT64})

SUPPORTED_OPTIONS = frozenset(
    {"$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$count", "$apply"}
)
"""System query options the engine evaluates (``$skiptoken`` is the caller's)."""


class ODataError(Exception):
    """A query the service refuses; ``body()`` is the OData JSON error document."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": "", "message": self.message}}


# --- model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Navigation:
    """A single-valued navigation: ``source_key`` on this entity references ``target_key``."""

    name: str
    target: str
    source_key: str
    target_key: str


@dataclass(frozen=True)
class EntitySet:
    """An entity set: its key, its properties (name to Edm type, in output order), navigations."""

    name: str
    type_name: str
    key: str
    properties: Mapping[str, str]
    navigations: Mapping[str, Navigation] = field(default_factory=dict)


Model = Mapping[str, EntitySet]


class DataSource(Protocol):
    """Where the rows come from: one sequence of mappings per entity set."""

    def rows(self, entity_set: str) -> Sequence[Row]: ...


# --- literals and formatting -----------------------------------------------------------------

_DATETIME_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})T(?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})"
)


def parse_datetime(text: str) -> datetime:
    """An OData ``DateTimeOffset`` literal (``2024-06-04T10:00:00.123Z``) as aware UTC.

    Up to 7 fractional digits are accepted; the 7th (100 ns) is dropped.
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise ODataError(f"Unrecognized Edm.DateTimeOffset literal '{text}'.")
    micro = int(((match["f"] or "") + "000000")[:6])
    tz_text = match["tz"]
    tz: timezone = UTC
    if tz_text != "Z":
        sign = -1 if tz_text[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(tz_text[1:3]), minutes=int(tz_text[4:6])))
    try:
        value = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"] or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ODataError(f"Invalid Edm.DateTimeOffset literal '{text}': {exc}.") from None
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """``2024-06-04T10:00:00.123Z``; 7 fractional digits when the value is not whole ms.

    Naive values are taken as UTC.
    """
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond % 1000 == 0:
        return value.isoformat(timespec="milliseconds")[:23] + "Z"
    return value.isoformat(timespec="microseconds")[:26] + "0Z"


def json_default(value: object) -> str:
    """``default=`` for :func:`json.dumps`: datetimes in the OData form."""
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# --- tokens ----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>'(?:[^']|'')*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}
        (?![\w-]))
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[LlMmDdFf]?(?![\w.:-]))
    |(?P<name>\$?[A-Za-z_]\w*)
    |(?P<punct>[(),/])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "'":
                if text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(f"Unbalanced parentheses in '{text}'.")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise ODataError(f"Unterminated string literal in '{text}'.")
    if depth:
        raise ODataError(f"Unbalanced parentheses in '{text}'.")
    parts.append(text[start:])
    return parts


# --- expression AST --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    value: Any
    type: str | None  # None: the null literal


@dataclass(frozen=True)
class _Path:
    segments: tuple[str, ...]


@dataclass(frozen=True)
class _Binary:
    """``left op right``: a comparison (``eq``...) or a logical ``and``/``or``."""

    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Not:
    operand: _Node


_Node = _Literal | _Path | _Binary | _Not

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}


class _Parser:
    """Recursive descent: or < and < not < comparison < primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> _Node:
        if not self.tokens:
            raise ODataError("The expression is empty.")
        node = self._or()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise ODataError(
                f"Syntax error at position {token.pos} in '{self.text}': unexpected '{token.text}'."
            )
        return node

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise ODataError(f"Syntax error: unexpected end of expression '{self.text}'.")
        self.index += 1
        return token

    def _accept_word(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.index += 1
            return True
        return False

    def _expect_punct(self, char: str) -> None:
        if self._peek() is None:
            raise ODataError(f"Syntax error: '{char}' expected at the end of '{self.text}'.")
        token = self._next()
        if token.kind != "punct" or token.text != char:
            raise ODataError(
                f"Syntax error at position {token.pos} in '{self.text}': "
                f"'{char}' expected, found '{token.text}'."
            )

    def _or(self) -> _Node:
        node = self._and()
        while self._accept_word("or"):
            node = _Binary("or", node, self._and())
        return node

    def _and(self) -> _Node:
        node = self._not()
        while self._accept_word("and"):
            node = _Binary("and", node, self._not())
        return node

    def _not(self) -> _Node:
        if self._accept_word("not"):
            return _Not(self._not())
        return self._comparison()

    def _comparison(self) -> _Node:
        left = self._primary()
        token = self._peek()
        if token is not None and token.kind == "name" and token.text in _COMPARISONS:
            self.index += 1
            return _Binary(token.text, left, self._primary())
        return left

    def _primary(self) -> _Node:
        token = self._next()
        kind, text = token.kind, token.text
        if kind == "punct" and text == "(":
            node = self._or()
            self._expect_punct(")")
            return node
        if kind == "string":
            return _Literal(text[1:-1].replace("''", "'"), STRING)
        if kind == "datetime":
            return _Literal(parse_datetime(text), DATETIME)
        if kind == "guid":
            return _Literal(text.lower(), GUID)
        if kind == "number":
            return _number(text)
        if kind == "name":
            if text == "null":
                return _Literal(None, None)
            if text in ("true", "false"):
                return _Literal(text == "true", BOOLEAN)
            following = self._peek()
            if following is not None and following.kind == "punct" and following.text == "(":
                raise ODataError(f"The function '{text}' is not supported by the simulator.")
            if text.startswith("$") or text in _COMPARISONS or text in ("and", "or", "not"):
                raise ODataError(
                    f"Syntax error at position {token.pos} in '{self.text}': unexpected '{text}'."
                )
            segments = [text]
            while True:
                following = self._peek()
                if following is None or following.kind != "punct" or following.text != "/":
                    break
                self.index += 1
                segment = self._next()
                if segment.kind != "name" or segment.text.startswith("$"):
                    raise ODataError(
                        f"Syntax error at position {segment.pos} in '{self.text}': "
                        "property name expected after '/'."
                    )
                segments.append(segment.text)
            return _Path(tuple(segments))
        raise ODataError(
            f"Syntax error at position {token.pos} in '{self.text}': unexpected '{text}'."
        )


def _number(text: str) -> _Literal:
    """An integer literal; decimals and suffixed literals are a 400 (the exporter sends none)."""
    if not text.lstrip("-").isdigit():
        raise ODataError(
            f"The numeric literal '{text}' is not supported by the simulator (integers only)."
        )
    value = int(text)
    return _Literal(value, INT32 if -(2**31) <= value < 2**31 else INT64)


def parse_expression(text: str) -> _Node:
    """Parse a ``$filter`` expression (raises :class:`ODataError`)."""
    return _Parser(text).parse()


# --- scopes: how a path resolves to a getter ------------------------------------------------


class _Context:
    """Per-query state: lazily built key indexes of the entity sets navigated to."""

    def __init__(self, model: Model, source: DataSource) -> None:
        self.model = model
        self.source = source
        self._indexes: dict[tuple[str, str], dict[Any, Row]] = {}

    def index(self, entity_set: str, key: str) -> dict[Any, Row]:
        found = self._indexes.get((entity_set, key))
        if found is None:
            found = {row.get(key): row for row in self.source.rows(entity_set)}
            self._indexes[(entity_set, key)] = found
        return found


class _Scope(Protocol):
    def resolve(self, segments: Sequence[str]) -> tuple[Getter, str]: ...


def _unknown_property(name: str, type_name: str) -> ODataError:
    return ODataError(f"Could not find a property named '{name}' on type '{type_name}'.")


def _property_getter(name: str) -> Getter:
    def get(row: Row) -> Any:
        return row.get(name)

    return get


class _EntityScope:
    """Paths over entities: properties, and navigations resolved through key indexes."""

    def __init__(self, entity: EntitySet, ctx: _Context) -> None:
        self.entity = entity
        self.ctx = ctx

    def resolve(self, segments: Sequence[str]) -> tuple[Getter, str]:
        if len(segments) > 2:
            raise ODataError(
                f"The path '{'/'.join(segments)}' crosses more than one navigation property, "
                "which is not supported by the simulator."
            )
        entity = self.entity
        hops: list[tuple[str, dict[Any, Row]]] = []
        for seg in segments[:-1]:
            nav = entity.navigations.get(seg)
            if nav is None:
                if seg in entity.properties:
                    raise ODataError(
                        f"The property '{seg}' on type '{entity.type_name}' is not a "
                        "navigation property."
                    )
                raise _unknown_property(seg, entity.type_name)
            hops.append((nav.source_key, self.ctx.index(nav.target, nav.target_key)))
            entity = self.ctx.model[nav.target]
        last = segments[-1]
        edm_type = entity.properties.get(last)
        if edm_type is None:
            if last in entity.navigations:
                raise ODataError(
                    f"The navigation property '{last}' cannot be used as a value; "
                    f"use a path such as '{last}/{entity.navigations[last].target_key}'."
                )
            raise _unknown_property(last, entity.type_name)
        if not hops:
            return _property_getter(last), edm_type
        ((fk, index),) = hops

        def get_one(row: Row) -> Any:
            target = index.get(row.get(fk))
            return None if target is None else target.get(last)

        return get_one, edm_type


class _ResultScope:
    """Paths over rows produced by ``$apply`` aggregation (nested dicts for nav paths)."""

    def __init__(self, types: Mapping[tuple[str, ...], str], type_name: str) -> None:
        self.types = dict(types)
        self.type_name = type_name

    def top_level(self) -> list[str]:
        names: list[str] = []
        for path in self.types:
            if path[0] not in names:
                names.append(path[0])
        return names

    def resolve(self, segments: Sequence[str]) -> tuple[Getter, str]:
        path = tuple(segments)
        edm_type = self.types.get(path)
        if edm_type is None:
            raise ODataError(
                f"Could not find a property named '{'/'.join(path)}' on the aggregated "
                f"result of type '{self.type_name}'."
            )
        if len(path) == 1:
            return _property_getter(path[0]), edm_type

        def get_nested(row: Row) -> Any:
            current: Any = row
            for seg in path:
                if not isinstance(current, Mapping):
                    return None
                current = current.get(seg)
            return current

        return get_nested, edm_type


# --- compilation ------------------------------------------------------------------------------


def _group(edm_type: str) -> str:
    return "number" if edm_type in _NUMERIC else edm_type


def _compatible(left: str | None, right: str | None) -> bool:
    return left is None or right is None or _group(left) == _group(right)


def _null_safe(op: str, getter: Getter, const: Any) -> Callable[[Row], bool]:
    """``getter(row) <op> const`` with a literal ``const``, OData null semantics."""
    if op == "eq":
        if const is None:
            return lambda row: getter(row) is None
        return lambda row: getter(row) == const
    if op == "ne":
        if const is None:
            return lambda row: getter(row) is not None
        return lambda row: getter(row) != const
    if const is None:
        return lambda row: False
    if op == "gt":
        return lambda row: (v := getter(row)) is not None and v > const
    if op == "ge":
        return lambda row: (v := getter(row)) is not None and v >= const
    if op == "lt":
        return lambda row: (v := getter(row)) is not None and v < const
    return lambda row: (v := getter(row)) is not None and v <= const


_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


def _compare_values(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)


def _compile(node: _Node, scope: _Scope) -> tuple[Getter, str | None]:
    """A getter computing ``node`` on a row, and its Edm type (None for the null literal)."""
    if isinstance(node, _Literal):
        value = node.value
        return (lambda row: value), node.type
    if isinstance(node, _Path):
        return scope.resolve(node.segments)
    if isinstance(node, _Binary) and node.op in _COMPARISONS:
        return _compile_compare(node, scope), BOOLEAN
    if isinstance(node, _Binary):
        left = _compile_bool(node.left, scope)
        right = _compile_bool(node.right, scope)
        if node.op == "and":
            return (lambda row: left(row) and right(row)), BOOLEAN
        return (lambda row: left(row) or right(row)), BOOLEAN
    operand = _compile_bool(node.operand, scope)
    return (lambda row: not operand(row)), BOOLEAN


def _compile_bool(node: _Node, scope: _Scope) -> Getter:
    getter, edm_type = _compile(node, scope)
    if edm_type not in (BOOLEAN, None):
        raise ODataError(
            f"A boolean expression was expected, found an expression of type '{edm_type}'."
        )
    return getter


def _compile_compare(node: _Binary, scope: _Scope) -> Getter:
    left, left_type = _compile(node.left, scope)
    right, right_type = _compile(node.right, scope)
    if not _compatible(left_type, right_type):
        raise ODataError(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{left_type}' and '{right_type}' for operator kind '{_OPERATOR_KINDS[node.op]}'."
        )
    op = node.op
    if isinstance(node.right, _Literal):
        return _null_safe(op, left, node.right.value)
    if isinstance(node.left, _Literal):
        return _null_safe(_MIRROR[op], right, node.left.value)
    return lambda row: _compare_values(op, left(row), right(row))


def compile_filter(text: str, scope: _Scope) -> Callable[[Row], Any]:
    """The predicate of a ``$filter`` (or ``filter()``) expression; truthy rows match."""
    return _compile_bool(parse_expression(text), scope)


# --- query options --------------------------------------------------------------------------

_IDENT_RE = re.compile(r"[A-Za-z_]\w*")
_PATH_RE = re.compile(r"[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*")
_ORDER_RE = re.compile(r"\s*([A-Za-z_]\w*(?:\s*/\s*[A-Za-z_]\w*)*)(?:\s+(asc|desc))?\s*")
_EXPAND_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", re.DOTALL)


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` item with its nested ``$select`` (the exporter nests nothing else)."""

    navigation: str
    select: tuple[str, ...] | None = None


@dataclass(frozen=True)
class QueryOptions:
    """The parsed system query options of one request."""

    filter: str | None = None
    select: tuple[str, ...] | None = None
    expand: tuple[ExpandItem, ...] = ()
    orderby: tuple[tuple[tuple[str, ...], bool], ...] = ()  # (path, descending)
    top: int | None = None
    skip: int = 0
    count: bool = False
    apply: str | None = None


def _parse_select(text: str) -> tuple[str, ...]:
    items = []
    for raw in _split_top(text, ","):
        item = raw.strip()
        if item == "*" or _IDENT_RE.fullmatch(item):
            items.append(item)
        elif _PATH_RE.fullmatch(item):
            raise ODataError(f"Selecting a navigation path ('{item}') is not supported.")
        else:
            raise ODataError(f"Syntax error in $select: '{item}'.")
    return tuple(items)


def _parse_expand(text: str) -> tuple[ExpandItem, ...]:
    items = []
    for raw in _split_top(text, ","):
        match = _EXPAND_RE.fullmatch(raw)
        if match is None:
            raise ODataError(f"Syntax error in $expand: '{raw.strip()}'.")
        select: tuple[str, ...] | None = None
        if match[2] is not None and match[2].strip():
            for option in _split_top(match[2], ";"):
                name, sep, value = option.strip().partition("=")
                if not sep:
                    raise ODataError(f"Syntax error in $expand options: '{option.strip()}'.")
                if name.strip() != "$select":
                    raise ODataError(
                        f"The query option '{name.strip()}' inside $expand is not supported "
                        "by the simulator."
                    )
                select = _parse_select(value)
        items.append(ExpandItem(match[1], select))
    return tuple(items)


def _parse_orderby(text: str) -> tuple[tuple[tuple[str, ...], bool], ...]:
    keys = []
    for raw in _split_top(text, ","):
        match = _ORDER_RE.fullmatch(raw)
        if match is None:
            raise ODataError(f"Syntax error in $orderby: '{raw.strip()}'.")
        path = tuple(seg.strip() for seg in match[1].split("/"))
        keys.append((path, match[2] == "desc"))
    return tuple(keys)


def _parse_count(text: str, option: str) -> int:
    if not text.isdigit():
        raise ODataError(
            f"Invalid value '{text}' for {option} query option found. The {option} query "
            "option requires a non-negative integer value."
        )
    return int(text)


def parse_options(params: Mapping[str, str]) -> QueryOptions:
    """:class:`QueryOptions` from the URL parameters (``$skiptoken`` ignored)."""
    for name in params:
        if name.startswith("$") and name not in SUPPORTED_OPTIONS | {"$skiptoken"}:
            raise ODataError(f"The query parameter '{name}' is not supported by the simulator.")
    count_text = params.get("$count")
    if count_text not in (None, "true", "false"):
        raise ODataError(f"'{count_text}' is not a valid count option.")
    filter_text = params.get("$filter")
    apply_text = params.get("$apply")
    top = params.get("$top")
    return QueryOptions(
        filter=filter_text if filter_text is None or filter_text.strip() else None,
        select=_parse_select(params["$select"]) if params.get("$select") else None,
        expand=_parse_expand(params["$expand"]) if params.get("$expand") else (),
        orderby=_parse_orderby(params["$orderby"]) if params.get("$orderby") else (),
        top=None if top is None else _parse_count(top, "$top"),
        skip=_parse_count(params["$skip"], "$skip") if "$skip" in params else 0,
        count=count_text == "true",
        apply=apply_text if apply_text is None or apply_text.strip() else None,
    )


# --- $apply -----------------------------------------------------------------------------------

_TRANSFORMATION_RE = re.compile(r"\s*([A-Za-z]+)\s*\((.*)\)\s*", re.DOTALL)
_COUNT_RE = re.compile(r"\s*\$count\s+as\s+([A-Za-z_]\w*)\s*")


def _sort_key(value: Any) -> tuple[bool, Any]:
    """Sort key putting nulls first (ascending), as SQL Server does."""
    return (value is not None, value)


def _row_sort_key(getter: Getter) -> Callable[[Row], tuple[bool, Any]]:
    def key(row: Row) -> tuple[bool, Any]:
        value = getter(row)
        return (value is not None, value)

    return key


def _set_nested(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for seg in path[:-1]:
        child = target.get(seg)
        if not isinstance(child, dict):
            child = {}
            target[seg] = child
        target = child
    target[path[-1]] = value


def _group_paths(text: str) -> list[tuple[str, ...]]:
    """The property paths of ``groupby((P,Nav/P))``, each once."""
    paths: list[tuple[str, ...]] = []
    for raw in _split_top(text, ","):
        item = raw.strip()
        if not _PATH_RE.fullmatch(item.replace(" ", "")):
            raise ODataError(f"Syntax error in groupby property '{item}'.")
        path = tuple(seg.strip() for seg in item.split("/"))
        if path in paths:
            raise ODataError(f"The property '{item}' is grouped more than once.")
        paths.append(path)
    return paths


def _count_alias(text: str) -> str:
    """The alias of ``aggregate($count as A)``, the one aggregate the exporter sends."""
    match = _COUNT_RE.fullmatch(text)
    if match is None:
        raise ODataError(
            f"The aggregate expression '{text.strip()}' is not supported by the simulator "
            "(only '$count as <alias>' is)."
        )
    return match[1]


def _parse_groupby(args: str) -> tuple[list[tuple[str, ...]], str | None]:
    """(paths, alias of the count or None) of ``groupby((paths)[,aggregate($count as A)])``."""
    parts = _split_top(args, ",")
    head = parts[0].strip()
    if not (head.startswith("(") and head.endswith(")")):
        raise ODataError(f"groupby expects a parenthesised list of properties, found '{head}'.")
    paths = _group_paths(head[1:-1])
    if len(parts) > 2:
        raise ODataError("groupby takes a property list and at most one aggregate().")
    if len(parts) == 1:
        return paths, None
    match = _TRANSFORMATION_RE.fullmatch(parts[1])
    if match is None or match[1] != "aggregate":
        raise ODataError(f"Only aggregate() may follow the groupby properties: '{parts[1]}'.")
    return paths, _count_alias(match[2])


def _group_rows(rows: Sequence[Row], getters: Sequence[Getter]) -> dict[tuple[Any, ...], int]:
    """How many rows have each combination of the getters' values."""
    counts: dict[tuple[Any, ...], int] = {}
    if len(getters) == 1:
        (only,) = getters
        for row in rows:
            key = (only(row),)
            counts[key] = counts.get(key, 0) + 1
    else:
        for row in rows:
            key = tuple(g(row) for g in getters)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _groupby(
    args: str, rows: Sequence[Row], scope: _Scope, type_name: str
) -> tuple[list[Row], _ResultScope]:
    paths, alias = _parse_groupby(args)
    resolved = [scope.resolve(path) for path in paths]
    types: dict[tuple[str, ...], str] = {
        path: edm_type for path, (_, edm_type) in zip(paths, resolved, strict=True)
    }
    if alias is not None:
        if any(path[0] == alias for path in types):
            raise ODataError(f"The alias '{alias}' collides with a property.")
        types[(alias,)] = INT64
    groups = _group_rows(rows, [getter for getter, _ in resolved])
    result: list[Row] = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        out: dict[str, Any] = {}
        for path, value in zip(paths, key, strict=True):
            _set_nested(out, path, value)
        if alias is not None:
            out[alias] = groups[key]
        result.append(out)
    return result, _ResultScope(types, type_name)


def _apply(text: str, rows: list[Row], scope: _Scope, type_name: str) -> tuple[list[Row], _Scope]:
    for raw in _split_top(text, "/"):
        match = _TRANSFORMATION_RE.fullmatch(raw)
        if match is None:
            raise ODataError(f"Syntax error in $apply transformation '{raw.strip()}'.")
        name, args = match[1], match[2]
        if name == "filter":
            predicate = compile_filter(args, scope)
            rows = list(filter(predicate, rows))
        elif name == "groupby":
            rows, scope = _groupby(args, rows, scope, type_name)
        else:
            raise ODataError(
                f"The $apply transformation '{name}' is not supported by the simulator."
            )
    return rows, scope


# --- execution --------------------------------------------------------------------------------

Projector = Callable[[Row], dict[str, Any]]


@dataclass
class QueryResult:
    """The full answer of a query: rows after skip/top, total count, and the projection."""

    rows: list[Row]
    count: int
    project: Projector
    context_suffix: str = ""


def _copy_row(row: Row) -> dict[str, Any]:
    return dict(row)


def _entity_projector(
    entity: EntitySet,
    select: tuple[str, ...] | None,
    expand: Iterable[ExpandItem],
    ctx: _Context,
) -> tuple[Projector, list[str]]:
    expanders: list[tuple[str, str, dict[Any, Row], Projector]] = []
    described: list[str] = []
    for item in expand:
        nav = entity.navigations.get(item.navigation)
        if nav is None:
            if item.navigation in entity.properties:
                raise ODataError(
                    f"Property '{item.navigation}' on type '{entity.type_name}' is not a "
                    "navigation property or complex property. Only navigation properties "
                    "can be expanded."
                )
            raise _unknown_property(item.navigation, entity.type_name)
        target = ctx.model[nav.target]
        sub, sub_described = _entity_projector(target, item.select, (), ctx)
        expanders.append((nav.name, nav.source_key, ctx.index(nav.target, nav.target_key), sub))
        described.append(f"{nav.name}({','.join(sub_described)})")
    expanded = {name for name, _, _, _ in expanders}
    if select is None or "*" in select:
        names = list(entity.properties)
    else:
        names = []
        for name in select:
            if name in entity.properties:
                if name not in names:
                    names.append(name)
            elif name in entity.navigations:
                if name not in expanded:
                    raise ODataError(
                        f"Selecting the navigation property '{name}' requires $expand."
                    )
            else:
                raise _unknown_property(name, entity.type_name)
        order = list(entity.properties)
        names.sort(key=order.index)
        described = names + described
    if not expanders:

        def project(row: Row) -> dict[str, Any]:
            return {name: row.get(name) for name in names}

        return project, described

    def project_expanded(row: Row) -> dict[str, Any]:
        out = {name: row.get(name) for name in names}
        for name, fk, index, sub in expanders:
            target = index.get(row.get(fk))
            out[name] = None if target is None else sub(target)
        return out

    return project_expanded, described


def execute(
    model: Model, source: DataSource, entity_set: str, options: QueryOptions
) -> QueryResult:
    """Evaluate ``options`` over ``entity_set``; raises :class:`ODataError` on a bad query.

    Order of evaluation, as in OData: ``$apply``, ``$filter``, ``$count`` (of the matching
    rows), ``$orderby``, ``$skip``, ``$top``; projection (``$select``/``$expand``) is
    returned as a function so a caller can page lazily.
    """
    entity = model.get(entity_set)
    if entity is None:
        raise ODataError(f"Resource not found for the segment '{entity_set}'.", status=404)
    ctx = _Context(model, source)
    scope: _Scope = _EntityScope(entity, ctx)
    rows: list[Row] = list(source.rows(entity_set))
    if options.apply is not None:
        rows, scope = _apply(options.apply, rows, scope, entity.type_name)
    if options.filter is not None:
        predicate = compile_filter(options.filter, scope)
        rows = list(filter(predicate, rows))
    count = len(rows)
    for path, descending in reversed(options.orderby):
        getter, _ = scope.resolve(path)
        rows.sort(key=_row_sort_key(getter), reverse=descending)
    if options.skip:
        rows = rows[options.skip :]
    if options.top is not None:
        rows = rows[: options.top]
    if isinstance(scope, _ResultScope):
        if options.expand:
            raise ODataError("$expand cannot be combined with an aggregating $apply.")
        available = scope.top_level()
        if options.select is None or "*" in options.select:
            return QueryResult(rows, count, _copy_row, f"({','.join(available)})")
        for name in options.select:
            if name not in available:
                raise ODataError(
                    f"Could not find a property named '{name}' on the aggregated result."
                )
        chosen = [name for name in available if name in options.select]

        def project_result(row: Row) -> dict[str, Any]:
            return {name: row.get(name) for name in chosen}

        return QueryResult(rows, count, project_result, f"({','.join(chosen)})")
    project, described = _entity_projector(entity, options.select, options.expand, ctx)
    suffix = f"({','.join(described)})" if described and (options.select or options.expand) else ""
    return QueryResult(rows, count, project, suffix)
