"""Times in query parameters: one grammar for every endpoint (events, correlations, anomalies, series);
and times in answers: one form, :func:`iso_s`.

>>> parse_time_s("now", "end", now=100.0)
100.0
>>> iso_s(parse_time_s("2026-11-27T09:00:00Z", "start") or 0.0)
'2026-11-27T09:00:00Z'
"""

from __future__ import annotations

from datetime import UTC, datetime

from hubcore.durations import DurationError, relative_seconds
from hubcore.errors import InvalidParameter


class BadTimeError(InvalidParameter, ValueError):
    """A time parameter that does not parse or lies outside 1970..2100; the message names it. It is an
    :class:`~hubcore.errors.InvalidParameter` with reason ``bad_time``, so an endpoint that lets it
    propagate answers 422 ``bad_time`` without a wrapper of its own."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="bad_time")


MIN_TIME_S, MAX_TIME_S = 0.0, 4_102_444_800.0  # 1970-01-01 .. 2100-01-01


def parse_time_s(value: str | None, name: str, *, now: float | None = None) -> float | None:
    """The one grammar for times in query parameters: ISO-8601 (naive = UTC), epoch seconds, ``now`` or a
    time relative to now (``-24h``, ``-7d``, ``-90m``) → epoch seconds, between 1970 and 2100; ``None``
    for a missing or empty value; ``BadTimeError`` naming ``name`` otherwise.

    >>> parse_time_s("2026-01-01T00:00:00Z", "start")
    1767225600.0
    >>> parse_time_s("-1h", "start", now=7200.0)
    3600.0
    >>> parse_time_s("yesterday", "start")
    Traceback (most recent call last):
    ...
    hubcore.times.BadTimeError: start must be ISO-8601, epoch seconds, now or -24h, got 'yesterday'
    >>> parse_time_s("\u0661\u0662\u0663", "start")  # Arabic-Indic digits: not read as epoch 123
    Traceback (most recent call last):
    ...
    hubcore.times.BadTimeError: start must be ISO-8601, epoch seconds, now or -24h, got '١٢٣'
    """
    if value is None or value == "":
        return None
    text = value.strip()
    bad = BadTimeError(f"{name} must be ISO-8601, epoch seconds, now or -24h, got {value!r}")
    if not text.isascii():  # float() and fromisoformat() read other scripts' digits: '١٢٣' would be epoch 123
        raise bad
    try:
        seconds = relative_seconds(text, now=now)
    except DurationError:
        raise bad from None
    if seconds is None:
        try:
            if text.lstrip("-").replace(".", "", 1).isdigit():
                seconds = float(text)
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
                seconds = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            raise bad from None
    if not MIN_TIME_S <= seconds <= MAX_TIME_S:
        raise BadTimeError(f"{name} must be between 1970-01-01 and 2100-01-01, got {value!r}")
    return seconds


def iso_s(seconds: float) -> str:
    """Epoch seconds as the API answers times: ISO-8601 UTC with ``Z``, whole seconds bare and otherwise
    with microseconds (``datetime.isoformat``), as events, query rows and the analytics answers give them.
    :func:`parse_time_s` reads it back to the same instant (to the microsecond).

    >>> iso_s(1764234000.0)
    '2025-11-27T09:00:00Z'
    >>> iso_s(1764234000.25)
    '2025-11-27T09:00:00.250000Z'
    """
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
