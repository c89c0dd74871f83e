"""Command line: flags in the Prometheus exporter style, exit codes 0 ok, 1 failure, 2 usage.

`--check-config` validates and exits, `--once` polls once and prints the exposition (the "do my
credentials work" command), `--demo` runs against the embedded simulator, otherwise serve.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence

from prometheus_client import generate_latest

from . import __version__
from .config import Config, ConfigError, WebConfig, load_config
from .config.tls_server import TLSProblem
from .config.web_file import load_web_config
from .log import SecretScrubber, get_logger, setup_logging
from .redact import scrub
from .reloader import Outcome, Reloader, Settings
from .runtime import Exporter
from .server import connection_cap, raise_fd_limit, start_server
from .sharding import ENV_SHARD, Shard, ShardError, resolve_shard
from .web import create_web_app
from .web_guard import WebGuard

log = get_logger()

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
SHUTDOWN_GRACE_SECONDS = 4.0


def add_config_and_log_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by serving and `backfill`."""
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=os.environ.get("CITRIX_EXPORTER_CONFIG", "citrix-cloud-exporter.yml"),
        help="YAML config file (env CITRIX_EXPORTER_CONFIG; default %(default)s)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info",
        choices=["debug", "info", "warn", "warning", "error"],
    )  # fmt: skip
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citrix-cloud-exporter",
        description="Prometheus exporter for Citrix Cloud licensing and DaaS (Monitor) data.",
        epilog="Also: `citrix-cloud-exporter backfill --help` writes 12 months of licence "
        "history for promtool.",
    )
    add_config_and_log_flags(parser)
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        help="HOST:PORT to serve on (overrides web.listen_address; default :9876)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        help="path of the metrics endpoint (default /metrics)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        help="web configuration file (exporter-toolkit format): TLS, basic auth, headers",
    )
    mode = parser.add_mutually_exclusive_group()
    for group, switch, help_text in (
        (mode, "--check-config",
         "validate the config (and that secret files are readable), then exit 0 or 2"),
        (parser, "--once",
         "poll every enabled collector once, print the metrics, exit 0 if all succeeded"),
        (mode, "--demo",
         "run against the embedded Citrix Cloud simulator; no config or account needed"),
    ):  # fmt: skip
        group.add_argument(switch, action="store_true", help=help_text)
    parser.add_argument(
        "--shard", metavar="INDEX/COUNT",
        help=f"poll only replica INDEX's share (0-based) of the customers (env {ENV_SHARD})",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


async def poll_once(config: Config) -> tuple[bool, bytes]:
    """Poll every collector once; the exposition as printed, scrubbed like every outward text."""
    async with Exporter(config, process_metrics=False) as exporter:
        ok = await exporter.poller.run_all_once()
        if not exporter.poller.jobs and config.customers:  # an empty shard has nothing to do
            ok = False
            log.error("no collector is enabled")
        return ok, scrub(generate_latest(exporter.registry).decode()).encode()


def reload_on_sighup(reloader: Reloader) -> None:
    """SIGHUP reloads (as `POST /-/reload` does) instead of ending the process."""
    pending: set[asyncio.Task[Outcome]] = set()  # a task needs a reference until it ends

    def reload() -> None:
        task = asyncio.create_task(reloader.reload(), name="reload:SIGHUP")
        pending.add(task)
        task.add_done_callback(pending.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


async def serve(
    config: Config,
    web_config: WebConfig,
    guard: WebGuard | None = None,
    read: Callable[[], Settings] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; polling runs in the background from the start; `guard`
    (from --web.config.file) adds TLS, basic auth and headers; SIGHUP and `POST /-/reload`
    apply what `read` returns (without `read`, the same config again)."""
    host, port = web_config.bind_address
    listen_address, telemetry_path = web_config.listen_address, web_config.telemetry_path
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    max_connections = connection_cap(raise_fd_limit())
    async with Exporter(config) as exporter:
        reloader = Reloader(
            exporter, read or (lambda: Settings(config, web_config)), web_config, guard
        )
        reload_on_sighup(reloader)
        # the path is valid: WebConfig checked it
        app = create_web_app(exporter, telemetry_path, guard, reloader)
        ssl_context = guard.ssl_context if guard else None
        try:
            runner = await start_server(
                app,
                host,
                port,
                max_connections=max_connections,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS / 2,
                ssl_context=ssl_context,
            )
        except OSError as err:
            log.error("cannot listen", extra={"address": listen_address, "error": str(err)})
            return EXIT_FAILURE
        scheme = "http" if ssl_context is None else "https"
        log.info(
            "serving metrics",
            extra={
                "address": listen_address,
                "url": f"{scheme}://{host or 'localhost'}:{port}{telemetry_path}",
                "basic_auth": bool(guard and guard.config.basic_auth_users),
                "customers": len(config.customers),
                "max_connections": max_connections,
                "version": __version__,
            },
        )
        # What is alive now (modules, classes, config, sessions) lives as long as the process:
        # frozen out of the garbage collector's sight, a full collection walks only what polls
        # create, not ~50,000 objects more on the event loop (the gc module's advice).
        gc.collect()
        gc.freeze()
        exporter.poller.start()
        await stop.wait()
        log.info("shutting down")
        await exporter.poller.stop()
        await runner.cleanup()
        if guard is not None:
            guard.passwords.close()
    return EXIT_OK


def apply_shard(config: Config, shard: Shard | None) -> Config:
    """Keep only the customers of this replica's shard (all replicas share one config)."""
    if shard is None:
        return config
    customers = shard.select(config.customers)
    log.info(
        "sharding" if customers else "sharding: no customer in this shard",
        extra={"shard": str(shard), "customers": len(customers), "total": len(config.customers)},
    )
    return config.model_copy(update={"customers": customers})


# Flags that override a `web:` key; validated by WebConfig, like the key itself.
WEB_FLAGS = {"listen_address": "--web.listen-address", "telemetry_path": "--web.telemetry-path"}


def web_settings(args: argparse.Namespace, config: Config) -> WebConfig:
    """The config's `web:` section with the `--web.*` flags applied; ConfigError naming the
    flag if a flag's value is invalid (same rules and messages as the config keys)."""
    values = {key: getattr(args, key) for key in WEB_FLAGS if getattr(args, key) is not None}
    return config.web.with_flags(values, WEB_FLAGS)


def read_settings(args: argparse.Namespace, load: Callable[[], Config]) -> Settings:
    """The config from `load`, the `--web.*` flags applied to its `web:` section, and the
    --web.config.file: what --check-config checks and a reload applies; ConfigError if any
    of them is unusable."""
    config = load()
    web = web_settings(args, config)
    path = args.web_config_file
    return Settings(config, web, None if path is None else load_web_config(path))


def web_guard(path: str | None) -> WebGuard | None:
    """The guard of the --web.config.file at `path` (None without the flag); ConfigError naming
    the key or file when it is unusable."""
    if path is None:
        return None
    config = load_web_config(path)
    try:
        return WebGuard(config)
    except TLSProblem as exc:  # a file changed since it was checked a moment ago
        raise ConfigError(f"{path}: tls_server_config.{exc}") from None


async def once_or_serve(
    args: argparse.Namespace, config: Config, load: Callable[[], Config] | None = None
) -> int:
    """`--once`: poll, print, exit 0/1; otherwise serve until a signal, reloading from `load`
    (the config file again; without it, the same `config`)."""
    try:
        settings = web_settings(args, config)
        guard = None if args.once else web_guard(args.web_config_file)
    except ConfigError as err:
        print(err.report(), file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        ok, text = await poll_once(config)
        sys.stdout.write(text.decode())
        return EXIT_OK if ok else EXIT_FAILURE
    source = load or (lambda: config)
    return await serve(config, settings, guard, lambda: read_settings(args, source))


def load_or_report(path: str, scrubber: SecretScrubber) -> Config | None:
    """The config, its secrets registered for scrubbing; None (reported) when invalid."""
    try:
        config = load_config(path)
    except ConfigError as err:
        print(err.report(), file=sys.stderr)
        return None
    scrubber.add(config.secrets())
    return config


async def run_demo(args: argparse.Namespace, shard: Shard | None = None) -> int:
    from .demo import demo_config, start_simulator  # the simulator is only needed here
    from .simulator.scenarios import demo_state

    state = demo_state()
    sim_runner, base_url = await start_simulator(state)
    log.info("demo: simulated Citrix Cloud started", extra={"url": base_url})
    try:
        config = apply_shard(demo_config(base_url, state), shard)
        return await once_or_serve(args, config)
    finally:
        await sim_runner.cleanup()


def build_backfill_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citrix-cloud-exporter backfill",
        description="Write up to 12 months of licence history as OpenMetrics with timestamps, "
        "for `promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`.",
    )
    add_config_and_log_flags(parser)
    parser.add_argument("--months", type=int, default=12, choices=range(1, 13), metavar="1-12")
    parser.add_argument(
        "--step", default="1d", help="one sample per series every STEP (default 1d, at 00:00 UTC)"
    )
    parser.add_argument("--output", required=True, help="OpenMetrics file to write")
    return parser


def backfill_main(argv: Sequence[str]) -> int:
    from .backfill import run_backfill
    from .durations import parse_duration

    args = build_backfill_parser().parse_args(argv)
    scrubber = setup_logging(args.log_level, args.log_format)
    try:
        step = parse_duration(args.step)
    except ValueError as err:
        print(f"error: --step: {err}", file=sys.stderr)
        return EXIT_USAGE
    config = load_or_report(args.config_file, scrubber)
    if config is None:
        return EXIT_USAGE
    return run_backfill(config, args.output, args.months, step)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["backfill"]:
        return backfill_main(argv[1:])
    args = build_parser().parse_args(argv)
    scrubber: SecretScrubber = setup_logging(args.log_level, args.log_format)
    try:
        shard = resolve_shard(args.shard, os.environ)
    except ShardError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.demo:
        return asyncio.run(run_demo(args, shard))
    config = load_or_report(args.config_file, scrubber)
    if config is None:
        return EXIT_USAGE
    total = len(config.customers)
    config = apply_shard(config, shard)
    if args.check_config:
        try:
            read_settings(args, lambda: config)  # flags given with --check-config are checked too
        except ConfigError as err:
            print(err.report(), file=sys.stderr)
            return EXIT_USAGE
        in_shard = f", {len(config.customers)} in shard {shard}" if shard else ""
        print(f"{args.config_file}: valid, {total} customer(s){in_shard}")
        if args.web_config_file is not None:
            print(f"{args.web_config_file}: valid")
        return EXIT_OK
    return asyncio.run(
        once_or_serve(args, config, lambda: apply_shard(load_config(args.config_file), shard))
    )
