"""The exporter's HTTP endpoints: /metrics, /healthz, /readyz and a landing page.

Every text the landing page shows passes through the redactor (`log.shown_error`): a job's last
error can quote an upstream answer, and an upstream answer can quote our secret or token.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from aiohttp import hdrs, web
from prometheus_client.aiohttp import make_aiohttp_handler

from . import __version__
from .config.web import RELOAD_PATH, check_telemetry_path
from .durations import format_duration
from .exposition.scrape import MetricsBody, negotiate, wants_gzip
from .log import shown_error
from .poller import Poller
from .reloader import Reloader
from .runtime import Exporter
from .web_guard import WebGuard


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def landing_page(poller: Poller, telemetry_path: str) -> str:
    """Version, links and each job's last poll: what an operator checks first. No secrets."""
    rows = []
    for job in poller.jobs:
        status = job.status
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(shown_error(str(cell)))}</td>"
                for cell in (
                    job.customer_id,
                    job.name,
                    format_duration(job.interval),
                    status.result,
                    _when(status.last_attempt_at),
                    _when(status.last_success_at),
                    status.last_error or status.not_entitled or "",
                )
            )
            + "</tr>"
        )
    path = html.escape(telemetry_path)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Citrix Cloud Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>Citrix Cloud Exporter</h1>
<p>Version {html.escape(__version__)}</p>
<p><a href="{path}">Metrics</a> · <a href="/healthz">Health</a> ·
<a href="/readyz">Readiness</a></p>
<h2>Collectors</h2>
<table><tr><th>Customer</th><th>Collector</th><th>Every</th><th>Last result</th>
<th>Last attempt</th><th>Last success</th><th>Error</th></tr>
{"".join(rows)}
</table></body></html>
"""


def reload_handler(reloader: Reloader) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /-/reload`: 200 and what changed, or 500 and the `--check-config` message."""

    async def reload(_: web.Request) -> web.Response:
        outcome = await reloader.reload()
        return web.Response(status=200 if outcome.ok else 500, text=outcome.text)

    return reload


WRITE_CHUNK = 256 * 1024  # bytes handed to the transport at a time


async def write_parts(response: web.StreamResponse, parts: Iterable[bytes]) -> None:
    """Write `parts` a chunk at a time, waiting for the transport to drain in between: one
    write of a 10 MB part copied what the socket did not take at once into the transport's
    buffer, megabytes in one event-loop step, and held it all until sent."""
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), WRITE_CHUNK):
            await response.write(view[start : start + WRITE_CHUNK])


def create_web_app(
    exporter: Exporter,
    telemetry_path: str = "/metrics",
    guard: WebGuard | None = None,
    reloader: Reloader | None = None,
) -> web.Application:
    """The aiohttp application; /metrics serves the snapshot and never calls upstream. With a
    `guard` (--web.config.file), every route is behind its basic auth and gets its headers;
    with a `reloader`, `POST /-/reload` reloads (other methods: 405).

    ValueError if `telemetry_path` breaks the rules of `config.web.check_telemetry_path`
    (the config and the flag were checked by the same function; this guards other callers).
    """
    check_telemetry_path(telemetry_path)
    body = MetricsBody(exporter.store, exporter.whole_registry, exporter.per_customer)
    # prometheus_client filters by the names collectors describe: only the own metrics do.
    by_name = make_aiohttp_handler(exporter.own_registry)
    poller = exporter.poller

    async def metrics(request: web.Request) -> web.StreamResponse:
        """The pre-rendered document; `?name[]=` filters go to prometheus_client as before."""
        if "name[]" in request.query:
            return await by_name(request)
        fmt, content_type = negotiate(",".join(request.headers.getall(hdrs.ACCEPT, [])))
        gzip = wants_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        headers = {hdrs.CONTENT_TYPE: content_type}
        if gzip:
            headers[hdrs.CONTENT_ENCODING] = "gzip"
        # Sent part after part: one bytes object of the whole document was megabytes copied
        # into fresh memory at every scrape (exposition.scrape.Published.finish).
        parts = await body.parts(fmt, gzip)
        response = web.StreamResponse(headers=headers)
        response.content_length = sum(map(len, parts))
        await response.prepare(request)
        if request.method != hdrs.METH_HEAD:  # a HEAD answer has the headers only
            await write_parts(response, parts)
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if poller.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="waiting for the first poll of every collector\n")

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=landing_page(poller, telemetry_path), content_type="text/html")

    app = web.Application()
    app.router.add_get(telemetry_path, metrics)  # a plain path: no '{' allowed
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    if reloader is not None:
        app.router.add_post(RELOAD_PATH, reload_handler(reloader))
    if guard is not None:
        guard.install(app)
    return app
