"""Time helpers: microseconds since the epoch (the store's unit) <-> ISO-8601 / epoch seconds.

>>> iso(0)
'1970-01-01T00:00:00.000000Z'
>>> parse_time("1970-01-01T00:00:01Z", "start")
1000000
"""

from __future__ import annotations

from datetime import UTC, datetime

from hubcore.durations import DurationError, relative_seconds


class BadTimeError(ValueError):
    pass


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None, name: str) -> int | None:
    """ISO-8601 (naive = UTC), epoch seconds, ``now`` or a time relative to now (``-24h``, ``-7d``,
    ``-90m``, as the anomaly and forecast endpoints take) → µs; ``BadTimeError`` naming ``name`` otherwise."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        rel = relative_seconds(text)
    except DurationError:
        raise BadTimeError(f"{name} must be ISO-8601, epoch seconds, now or -24h, got {value!r}") from None
    if rel is not None:
        return int(rel * 1e6)
    value = text
    try:
        if value.lstrip("-").replace(".", "", 1).isdigit():
            return int(float(value) * 1e6)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadTimeError(f"{name} must be ISO-8601, epoch seconds, now or -24h, got {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1e6)
