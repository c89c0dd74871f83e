"""Citrix Monitor Service OData v4 under ``/monitorodata/``, one tenant per customer.

Authentication, faults (429/500/delay) and request recording are done by the app middleware;
this module answers ``GET /monitorodata/<EntitySet>?<query>`` from the authenticated
customer's :class:`~exporter.simulator.monitor.MonitorData` with the query engine of
:mod:`exporter.simulator.odata`:

* body ``{"@odata.context", ["@odata.count",] "value", ["@odata.nextLink"]}``, Content-Type
  ``application/json; odata.metadata=minimal; charset=utf-8``, gzip when accepted;
* server-driven paging: at most ``faults.odata_page_size`` rows per page. The first request
  of a query computes the whole result once and caches it (small LRU); the nextLink carries
  ``$skiptoken=<query id>.<offset>``, so paging 100,000 rows is linear. A token whose entry
  was evicted is recomputed from the query options the link repeats;
* ``faults.next_link_mode``: ``absolute``, ``relative`` (path and query only), ``foreign``
  (absolute, host ``evil.example.com``) or ``loop`` (always a link to the page just served,
  even on the last page);
* ``faults.reject_apply`` 400 or 501: every ``$apply`` request gets that status;
* ``<Set>/$count``, ``<Set>(key)`` and unknown sets: 404, as the real gateway answers.

A tenant with a :class:`~exporter.simulator.monitor.MonitorLife` is ticked to
``state.now()`` before each request, so demo data moves between scrapes.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from . import odata
from .monitor import MODEL
from .state import CUSTOMER_KEY, STATE_KEY

PREFIX = "/monitorodata"
CONTENT_TYPE = "application/json; odata.metadata=minimal; charset=utf-8"
FOREIGN_HOST = "evil.example.com"
NEXT_LINK_MODES = ("absolute", "relative", "foreign", "loop")
REJECT_APPLY_STATUSES = (0, 400, 501)
CACHE_SIZE = 16

_SKIPTOKEN_RE = re.compile(r"^(\d+)\.(\d+)$")


@dataclass
class _Entry:
    customer_id: str
    entity_set: str
    signature: tuple[tuple[str, str], ...]
    result: odata.QueryResult


class QueryCache:
    """Results of recent queries by query id (LRU), so later pages are only slices."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_id = 1
        self.computed = 0
        """How many results were computed (a test can check paging did not recompute)."""

    def get(
        self,
        query_id: int,
        customer_id: str,
        entity_set: str,
        signature: tuple[tuple[str, str], ...],
    ) -> odata.QueryResult | None:
        entry = self._entries.get(query_id)
        if entry is None or (entry.customer_id, entry.entity_set, entry.signature) != (
            customer_id,
            entity_set,
            signature,
        ):
            return None
        self._entries.move_to_end(query_id)
        return entry.result

    def put(
        self,
        customer_id: str,
        entity_set: str,
        signature: tuple[tuple[str, str], ...],
        result: odata.QueryResult,
        query_id: int | None = None,
    ) -> int:
        self.computed += 1
        if query_id is None:
            query_id = self._next_id
            self._next_id += 1
        self._entries[query_id] = _Entry(customer_id, entity_set, signature, result)
        self._entries.move_to_end(query_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return query_id

    def clear(self) -> None:
        self._entries.clear()


CACHE_KEY: web.AppKey[QueryCache] = web.AppKey("monitor_query_cache", QueryCache)


def odata_error(message: str, status: int = 400) -> web.Response:
    """An OData error document ``{"error":{"code":"","message":...}}``."""
    return _json_response(odata.ODataError(message, status).body(), status)


def _json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    text = json.dumps(body, default=odata.json_default, separators=(",", ":"), ensure_ascii=False)
    response = web.Response(body=text.encode(), status=status)
    response.headers["Content-Type"] = CONTENT_TYPE
    response.headers["OData-Version"] = "4.0"
    return response


def _not_found(request: web.Request) -> web.Response:
    return odata_error(
        f"No HTTP resource was found that matches the request URI '{request.url}'.", 404
    )


def _link(request: web.Request, entity_set: str, params: list[tuple[str, str]], mode: str) -> str:
    query = urlencode(params, quote_via=quote, safe="$'(),/:")
    path = f"{PREFIX}/{entity_set}?{query}"
    if mode == "relative":
        return path
    if mode == "foreign":
        return f"{request.url.scheme}://{FOREIGN_HOST}{path}"
    return f"{request.url.origin()}{path}"


async def service_document(request: web.Request) -> web.Response:
    """``GET /monitorodata/``: the entity sets served."""
    return _json_response(
        {
            "@odata.context": f"{request.url.origin()}{PREFIX}/$metadata",
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in MODEL],
        }
    )


async def entity_set_handler(request: web.Request) -> web.Response:
    """``GET /monitorodata/{tail}``: an entity set query, or 404 for anything else."""
    tail = request.match_info["tail"]
    if tail == "":
        return await service_document(request)
    if tail not in MODEL:  # unknown set, Set(key), Set/$count, $metadata...
        return _not_found(request)
    state = request.app[STATE_KEY]
    customer = request[CUSTOMER_KEY]
    faults = state.faults
    monitor = customer.monitor
    if not monitor.entitled:
        return _not_found(request)
    monitor.tick(state.now())

    params = list(request.query.items())
    first: dict[str, str] = {}
    for name, value in params:
        first.setdefault(name, value)
    if faults.reject_apply and "$apply" in first:
        message = (
            "The query specified in the URI is not valid. Query option 'Apply' is not allowed."
            if faults.reject_apply == 400
            else "The query option '$apply' is not implemented by this service."
        )
        return odata_error(message, faults.reject_apply)

    kept = [(name, value) for name, value in params if name != "$skiptoken"]
    signature = tuple(sorted(kept))
    cache = request.app[CACHE_KEY]
    offset = 0
    query_id: int | None = None
    result: odata.QueryResult | None = None
    token = first.get("$skiptoken")
    try:
        options = odata.parse_options(first)
        if token is not None:
            match = _SKIPTOKEN_RE.match(token)
            if match is None:
                raise odata.ODataError(f"The skip token value '{token}' is invalid.")
            query_id, offset = int(match[1]), int(match[2])
            result = cache.get(query_id, customer.customer_id, tail, signature)
        if result is None:
            result = odata.execute(MODEL, monitor, tail, options)
            query_id = cache.put(customer.customer_id, tail, signature, result, query_id)
    except odata.ODataError as exc:
        return odata_error(exc.message, exc.status)
    assert query_id is not None

    page_size = max(1, faults.odata_page_size)
    page = result.rows[offset : offset + page_size]
    origin = str(request.url.origin())
    body: dict[str, Any] = {
        "@odata.context": f"{origin}{PREFIX}/$metadata#{tail}{result.context_suffix}"
    }
    if options.count:
        body["@odata.count"] = result.count
    project = result.project
    body["value"] = [project(row) for row in page]
    mode = faults.next_link_mode
    if mode == "loop":
        body["@odata.nextLink"] = _link(
            request, tail, [*kept, ("$skiptoken", f"{query_id}.{offset}")], "absolute"
        )
    elif offset + page_size < len(result.rows):
        body["@odata.nextLink"] = _link(
            request, tail, [*kept, ("$skiptoken", f"{query_id}.{offset + page_size}")], mode
        )
    response = _json_response(body)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression()
    return response


def setup_routes(app: web.Application) -> None:
    """Register ``/monitorodata/...`` (authenticated by the app middleware)."""
    app[CACHE_KEY] = QueryCache()
    app.router.add_get(PREFIX + "/{tail:.*}", entity_set_handler, allow_head=False)
