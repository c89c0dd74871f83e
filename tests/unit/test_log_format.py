"""The exact lines the exporter's log handler writes, logfmt and JSON.

Log lines are an interface: people grep them and pipelines parse them. Every test here reads
what the real handler from `setup_logging` writes (`tests/support/logcapture.py`), with the
records' clock fixed so that whole lines can be compared: field order, logfmt quoting, level
names, the timestamp, `extra=` fields, exception text, and where Python's own stderr writers
(uncaught exceptions in the main thread and in threads, warnings) end up.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from exporter.log import (
    LOGGER_NAME,
    MAX_ERROR_CHARS,
    JsonFormatter,
    LogOnce,
    get_logger,
    setup_logging,
    shown_error,
)
from exporter.redact import REDACTED, REDACTOR
from tests.support.logcapture import real_log_output

CREATED = 1709876543.042  # 2024-03-08T05:42:23.042Z: month, minute and second all differ
TS = "ts=2024-03-08T05:42:23.042Z"
SECRET = "log-format-secret-9f3Kq"


@contextmanager
def fixed_clock(created: float = CREATED) -> Iterator[None]:
    """Every record made inside is stamped `created` (the clock injected into the records)."""
    make = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.created, record.msecs = created, (created - int(created)) * 1000
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(make)


@contextmanager
def logged(fmt: str, level: str = "debug") -> Iterator[io.StringIO]:
    """The real handler's output with a fixed clock and a secret registered."""
    with real_log_output(fmt, level) as (stream, scrubber), fixed_clock():
        scrubber.add([SECRET])
        yield stream


def traceback_text(exc: BaseException) -> str:
    """An exception's traceback as `logging` formats it (no trailing newline)."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")


def raised(exc: BaseException) -> BaseException:
    """`exc` with a traceback, as a handler sees it."""
    try:
        raise exc
    except BaseException as caught:  # KeyboardInterrupt included on purpose
        return caught


def test_logfmt_field_order_and_quoting():
    with logged("logfmt") as stream:
        get_logger("poll").warning(
            "poll failed",
            extra={
                "customer_id": "acme-1",
                "upper": "XYZ",
                "space": "a b",
                "equals": "k=v",
                "quote": 'say "hi"',
                "newline": "one\ntwo",
                "tab": "a\tb",
                "empty": "",
                "count": 3,
                "ratio": 0.5,
                "flag": True,
                "nothing": None,
                "secret": f"echo {SECRET}",
                "_private": "never written",
            },
        )
    assert stream.getvalue() == (
        f"{TS} level=warning logger=citrix_exporter.poll"
        ' msg="poll failed" customer_id=acme-1 upper=XYZ space="a b" equals="k=v"'
        ' quote="say \\"hi\\"" newline="one\\ntwo" tab="a\\tb" empty=""'
        ' count=3 ratio=0.5 flag=True nothing=None secret="echo <redacted>"\n'
    )


def test_logfmt_plain_message_is_not_quoted():
    with logged("logfmt") as stream:
        get_logger().info("started")
    assert stream.getvalue() == f"{TS} level=info logger=citrix_exporter msg=started\n"


def test_json_fields_types_and_order():
    with logged("json") as stream:
        get_logger("web").error(
            "scrape %s of %d",
            "slow",
            2,
            extra={
                "path": "/metrics",
                "count": 3,
                "flag": False,
                "nothing": None,
                "headers": {"Authorization": f"Bearer {SECRET}"},
                "_private": "never written",
            },
        )
    line = stream.getvalue()
    assert line == (
        '{"ts": "2024-03-08T05:42:23.042Z", "level": "error", "logger": "citrix_exporter.web",'
        ' "msg": "scrape slow of 2", "path": "/metrics", "count": 3, "flag": false,'
        ' "nothing": null, "headers": "{\'Authorization\': \'Bearer <redacted>\'}"}\n'
    )
    assert list(json.loads(line)) == [
        "ts", "level", "logger", "msg", "path", "count", "flag", "nothing", "headers",
    ]  # fmt: skip


def test_json_formatter_writes_any_other_value_as_its_text():
    """Without the filter's help (a value it left as it was) the line is still valid JSON."""
    record = logging.makeLogRecord(
        {"name": "x", "msg": "m", "levelname": "INFO", "created": CREATED, "msecs": 42.0}
    )
    record.when = datetime(2024, 3, 8, tzinfo=UTC)
    assert json.loads(JsonFormatter().format(record))["when"] == "2024-03-08 00:00:00+00:00"


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_level_names_and_the_logger_levels_setup_sets(fmt):
    with logged(fmt, level="info") as stream:
        log = get_logger("levels")
        log.debug("hidden: below the configured level")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        library = logging.getLogger("aiohttp.access")
        library.info("hidden: a library logs warnings and above only")
        library.warning("lib")
    lines = stream.getvalue().splitlines()
    if fmt == "json":
        seen = [(r["level"], r["logger"], r["msg"]) for r in map(json.loads, lines)]
    else:
        seen = [tuple(part.split("=")[1] for part in line.split(" ")[1:]) for line in lines]
    assert seen == [
        ("info", "citrix_exporter.levels", "i"),
        ("warning", "citrix_exporter.levels", "w"),
        ("error", "citrix_exporter.levels", "e"),
        ("critical", "citrix_exporter.levels", "c"),
        ("warning", "aiohttp.access", "lib"),
    ]
    assert logging.getLogger().level == logging.WARNING


def test_debug_level_shows_debug_records():
    with logged("logfmt", level="debug") as stream:
        get_logger("x").debug("d")
    assert stream.getvalue() == f"{TS} level=debug logger=citrix_exporter.x msg=d\n"


def test_setup_logging_replaces_the_handlers_and_sets_the_level():
    with real_log_output("json"), fixed_clock():
        setup_logging("info", "logfmt")
        handlers = logging.getLogger().handlers
        assert len(handlers) == 1
        stream = io.StringIO()
        assert isinstance(handlers[0], logging.StreamHandler)
        handlers[0].setStream(stream)
        get_logger().debug("hidden")
        get_logger().info("shown")
    assert stream.getvalue() == f"{TS} level=info logger=citrix_exporter msg=shown\n"


def test_setup_logging_writes_to_stderr():
    with real_log_output("logfmt"):
        setup_logging("info", "logfmt")
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        assert handler.stream is sys.stderr


def test_logger_names():
    assert get_logger().name == LOGGER_NAME == "citrix_exporter"
    assert get_logger("").name == "citrix_exporter"
    assert get_logger("upstream.odata").name == "citrix_exporter.upstream.odata"
    assert get_logger("upstream.odata").parent is get_logger("upstream")


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_exception_text_is_written_scrubbed(fmt):
    exc = raised(RuntimeError(f"upstream said {SECRET}"))
    with logged(fmt) as stream:
        get_logger("x").error("failed", exc_info=exc)
    expected = traceback_text(exc).replace(SECRET, REDACTED)
    assert "RuntimeError: upstream said <redacted>" in expected
    head = f"{TS} level=error logger=citrix_exporter.x msg=failed"
    if fmt == "json":
        assert json.loads(stream.getvalue())["exc"] == expected
    else:
        assert stream.getvalue() == f"{head} exc={json.dumps(expected)}\n"


def test_exception_text_without_exc_info_is_scrubbed_too():
    """A record rebuilt elsewhere (a QueueHandler, another process) carries only the text."""
    record = logging.makeLogRecord(
        {
            "name": "citrix_exporter.x",
            "msg": "relayed",
            "levelname": "ERROR",
            "levelno": logging.ERROR,
            "created": CREATED,
            "msecs": 42.0,
            "exc_text": f"Traceback: ValueError: {SECRET}",
        }
    )
    with logged("json") as stream:
        get_logger("x").handle(record)
    assert json.loads(stream.getvalue())["exc"] == "Traceback: ValueError: <redacted>"


def test_arguments_that_do_not_fit_the_format_are_kept():
    with logged("logfmt") as stream:
        get_logger("x").warning("does not fit: %s", "one", SECRET)
    assert stream.getvalue() == (
        f"{TS} level=warning logger=citrix_exporter.x"
        " msg=\"does not fit: %s ('one', '<redacted>')\"\n"
    )


def test_uncaught_exception_goes_through_the_handler():
    exc = raised(RuntimeError(f"crash with {SECRET}"))
    with logged("logfmt") as stream:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    expected = traceback_text(exc).replace(SECRET, REDACTED)
    assert stream.getvalue() == (
        f'{TS} level=critical logger=citrix_exporter msg="uncaught exception"'
        f" exc={json.dumps(expected)}\n"
    )


def test_keyboard_interrupt_keeps_pythons_own_report(capsys):
    exc = raised(KeyboardInterrupt("stopped by hand"))
    with logged("logfmt") as stream:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    assert stream.getvalue() == ""
    assert capsys.readouterr().err == "".join(traceback.format_exception(exc))


def test_uncaught_exception_in_a_thread_goes_through_the_handler():
    def fail() -> None:
        raise ValueError(f"thread saw {SECRET}")

    with logged("json") as stream:
        thread = threading.Thread(target=fail, name="poller-7")
        thread.start()
        thread.join()
    record = json.loads(stream.getvalue())
    exc = record.pop("exc")
    assert record == {
        "ts": "2024-03-08T05:42:23.042Z",
        "level": "critical",
        "logger": "citrix_exporter",
        "msg": "uncaught exception in a thread",
        "in_thread": "poller-7",
    }
    assert exc.startswith("Traceback (most recent call last):\n")
    assert exc.endswith("\nValueError: thread saw <redacted>")


def test_uncaught_exception_reported_without_a_thread():
    exc = raised(ValueError("no thread"))
    args = threading.ExceptHookArgs([type(exc), exc, exc.__traceback__, None])
    with logged("json") as stream:
        threading.excepthook(args)
    record = json.loads(stream.getvalue())
    assert (record["msg"], record["in_thread"]) == ("uncaught exception in a thread", "")
    assert record["exc"] == traceback_text(exc)


def test_warnings_go_through_the_handler():
    with logged("logfmt") as stream, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated, see {SECRET}", UserWarning, stacklevel=1)
    line = stream.getvalue()
    assert line.startswith(f"{TS} level=warning logger=py.warnings msg=")
    assert "UserWarning: deprecated, see <redacted>" in line
    assert SECRET not in line


def test_shown_error_cuts_at_the_limit():
    exact = "e" * MAX_ERROR_CHARS
    assert MAX_ERROR_CHARS == 300
    assert shown_error(exact) == exact
    assert shown_error(exact + "f") == "e" * 299 + "…"
    assert shown_error("abcdefgh", limit=5) == "abcd…"
    assert shown_error("abcde", limit=5) == "abcde"


def test_shown_error_scrubs_before_cutting():
    """A secret cut in half by the limit would no longer be recognised: scrub first."""
    REDACTOR.add_secrets([SECRET])
    text = f"error: {SECRET} and more"
    assert shown_error(text, limit=12) == "error: <red…"
    assert shown_error(text) == "error: <redacted> and more"


def test_log_once_is_true_once_per_key_until_cleared():
    once: LogOnce[str] = LogOnce()
    assert [once.first("a"), once.first("a"), once.first("b")] == [True, False, True]
    once.clear("a")
    once.clear("never seen")  # clearing what was never logged is harmless
    assert [once.first("a"), once.first("a"), once.first("b")] == [True, False, False]
