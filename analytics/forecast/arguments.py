"""What can be checked of a forecast's arguments without the data, pandas or statsforecast.

``hub forecast`` checks ``--level`` and ``--horizon`` here before it imports the forecasting engine (about
two seconds), so that a typo is reported at once; :func:`analytics.forecast.frequency.parse_horizon` uses
the same parsing once the series' frequency is known.

    >>> split_horizon("48"), split_horizon(" 7d "), split_horizon("90min")
    ((48, None), (7, '1D'), (90, '1min'))
    >>> split_horizon("soon")
    Traceback (most recent call last):
    ...
    analytics.forecast.arguments.ForecastInputError: horizon 'soon' is neither a number of steps nor a duration such as 7d or 168h
"""

from __future__ import annotations

import re

__all__ = ["ForecastInputError", "split_horizon"]


class ForecastInputError(ValueError):
    """Bad input to the forecasting library (permanent: retrying cannot help)."""


_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|w|m|min|s)\s*$", re.IGNORECASE)
#: A duration's unit -> its pandas offset.
UNITS = {"w": "7D", "d": "1D", "h": "1h", "m": "1min", "min": "1min", "s": "1s"}


def split_horizon(text: str) -> tuple[int, str | None]:
    """A horizon as ``(steps, None)`` (``"48"``) or ``(count, pandas unit)`` (``"7d"`` → ``(7, "1D")``).

    Raises :class:`ForecastInputError` for text that is neither, and for a horizon of zero. Whether a
    duration is a whole number of steps depends on the series' frequency: ``parse_horizon`` checks that.
    """
    if text.strip().isdigit():
        count, unit = int(text.strip()), None
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ForecastInputError(f"horizon {text!r} is neither a number of steps nor a duration such as 7d or 168h")
        count, unit = int(match.group(1)), UNITS[match.group(2).lower()]
    if count < 1:
        raise ForecastInputError(f"horizon must be at least one step, got {text!r}")
    return count, unit
