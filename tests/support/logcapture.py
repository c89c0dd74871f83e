"""The exporter's real log handler, writing to a string instead of stderr.

pytest's `caplog` sits beside the handler and so skips its scrubbing filter: a test that looks
for leaked secrets must read what the handler `exporter.log.setup_logging` installs writes.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.log import LOGGER_NAME, SecretScrubber, setup_logging


@contextmanager
def real_log_output(fmt: str, level: str = "debug") -> Iterator[tuple[io.StringIO, SecretScrubber]]:
    """Install the exporter's logging (`fmt`: logfmt or json) with its stream swapped for a
    StringIO; restores the previous logging setup and hooks afterwards."""
    root = logging.getLogger()
    ours = logging.getLogger(LOGGER_NAME)
    saved = (
        list(root.handlers),
        root.level,
        ours.level,
        sys.excepthook,
        threading.excepthook,
        warnings.showwarning,
    )
    scrubber = setup_logging(level, fmt)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream, scrubber
    finally:
        logging.captureWarnings(False)
        handlers, root_level, our_level, sys.excepthook, threading.excepthook, showwarning = saved
        warnings.showwarning = showwarning
        for current in list(root.handlers):
            root.removeHandler(current)
        for old in handlers:
            root.addHandler(old)
        root.setLevel(root_level)
        ours.setLevel(our_level)
