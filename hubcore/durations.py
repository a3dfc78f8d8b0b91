"""Durations and relative times, one grammar for the whole hub (config files, query parameters, CLIs).

A duration is a non-negative number and a unit — ``500ms``, ``30s``, ``5m``, ``12h``, ``7d``, ``2w``,
``1y`` (365 days) — or, where the caller allows it, a plain number of seconds. A relative time is
``now`` or a duration after a minus sign (``-24h``: a day ago). Callers turn :class:`DurationError`
(a ``ValueError``) into their own error type, naming the field.

>>> parse_duration("90m")
5400.0
>>> parse_duration(30)
30.0
>>> parse_duration("0s", allow_zero=True)
0.0
>>> relative_seconds("-1h", now=10_000.0)
6400.0
>>> relative_seconds("2026-01-01") is None   # not relative: the caller parses absolute times itself
True
"""

from __future__ import annotations

import math
import re
import time

__all__ = ["UNITS", "DurationError", "parse_duration", "relative_seconds"]

#: Seconds per unit.
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0, "y": 365 * 86_400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|[smhdwy])?\s*$", re.IGNORECASE)
EXAMPLES = "30s, 5m, 1h, 7d"


class DurationError(ValueError):
    """A text that is not a duration (or a number out of the allowed range)."""


def parse_duration(
    value: str | int | float,
    *,
    allow_zero: bool = False,
    allow_number: bool = True,
    maximum: float | None = None,
) -> float:
    """Seconds in ``value``: a duration such as ``"5m"``, or (``allow_number``) a number of seconds.

    Raises :class:`DurationError` for anything else, for a negative, NaN or infinite value, for zero
    unless ``allow_zero``, and above ``maximum`` seconds.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(f"must be a duration such as {EXAMPLES}, got {value!r}")
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise DurationError(f"must be a duration such as {EXAMPLES}, got {value!r}")
        if m.group(2) is None and not allow_number:
            raise DurationError(f"must be a duration with a unit, such as {EXAMPLES}, got {value!r}")
        seconds = float(m.group(1)) * UNITS[(m.group(2) or "s").lower()]
    else:
        if not allow_number:
            raise DurationError(f"must be a duration with a unit, such as {EXAMPLES}, got {value!r}")
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise DurationError(f"must be {'>= 0' if allow_zero else 'positive'}, got {value!r}")
    if math.isinf(seconds) or (maximum is not None and seconds > maximum):
        raise DurationError(f"must be at most {_human(maximum)}, got {value!r}")
    return seconds


def relative_seconds(text: str, *, now: float | None = None) -> float | None:
    """Epoch seconds of ``now`` or ``-<duration>`` (``-24h``); None when ``text`` is neither, so the
    caller goes on to parse an absolute time. Raises :class:`DurationError` for ``-`` followed by
    something that is not a duration with a unit."""
    t = text.strip()
    current = time.time() if now is None else now
    if t.lower() == "now":
        return current
    if not t.startswith("-") or t[1:].replace(".", "", 1).isdigit():
        return None  # not relative (a negative plain number is an epoch time, checked by the caller)
    return current - parse_duration(t[1:], allow_number=False)


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "a finite duration"
    for unit in ("y", "d", "h", "m", "s"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{seconds / UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"
