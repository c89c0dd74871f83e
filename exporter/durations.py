"""Human-friendly durations ("30s", "5m", "1h30m") for the configuration file and the logs.

Operators think in minutes and hours, not in seconds, so the config accepts both and the exporter
prints durations back in the same compact notation.
"""

from __future__ import annotations

import math
import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_COMPOUND = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+")
_PLAIN = re.compile(_NUMBER)
_HINT = "expected seconds or a duration such as '500ms', '30s', '5m', '1h30m' or '1d'"


class DurationError(ValueError):
    """A value that is not a usable duration.

    ``summary`` is the short form used inside config error messages (which add the key and line
    themselves); ``str()`` adds a hint about the accepted syntax for stand-alone use.
    """

    def __init__(self, value: object, reason: str | None = None) -> None:
        self.value = value
        self.reason = reason
        super().__init__(self.summary if reason else f"{self.summary}; {_HINT}")

    @property
    def summary(self) -> str:
        """The message without the syntax hint, e.g. ``invalid duration '5 minutes'``."""
        text = f"invalid duration {self.value!r}"
        return f"{text}: {self.reason}" if self.reason else text


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds; numbers are seconds, strings may carry units.

    Zero and negative durations are rejected because every duration in the config is an interval,
    timeout or delay where zero would mean "spin" or "never".
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(value, "must be a number of seconds or a string such as '5m'")
    seconds = _parse_text(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise DurationError(value, "must be finite")
    if seconds <= 0:
        raise DurationError(value, "must be greater than zero")
    return seconds


def _parse_text(value: str) -> float:
    """Parse "90", "1.5", "500ms" or compound forms like "1h30m" into seconds.

    A single leading "-" is understood so that "-5m" is reported as non-positive, not as garbage.
    """
    text = value.strip().lower()
    if text.startswith("-"):
        return -_parse_unsigned(text[1:], value)
    return _parse_unsigned(text, value)


def _parse_unsigned(text: str, value: str) -> float:
    """Parse an already normalised, unsigned duration string; ``value`` is for the error."""
    if _PLAIN.fullmatch(text):
        return float(text)
    if not _COMPOUND.fullmatch(text):
        raise DurationError(value)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Render seconds compactly ("5m", "1h30m", "1.5s", "250ms") for logs and the landing page."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    seconds = round(seconds, 3)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    return _format_units(seconds)


def _format_units(seconds: float) -> str:
    """Split whole seconds into d/h/m/s, keeping any fraction on the seconds part."""
    whole = int(seconds)
    fraction = round(seconds - whole, 3)
    parts: list[str] = []
    for unit in ("d", "h", "m"):
        count, whole = divmod(whole, int(_UNIT_SECONDS[unit]))
        if count:
            parts.append(f"{count}{unit}")
    if whole or fraction:
        parts.append(f"{_trim(whole + fraction)}s")
    return "".join(parts)


def _trim(number: float) -> str:
    """Format with at most three decimals and no trailing zeros ("1.5", "30", "0.25")."""
    return f"{number:.3f}".rstrip("0").rstrip(".")
