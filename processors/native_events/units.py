"""Unit normalisation: durations to milliseconds, sizes to bytes, rates to per-second.

>>> to_canonical(2.5, "s")
(2500.0, 'ms')
>>> to_canonical(3, "KiB")
(3072.0, 'By')
>>> to_canonical(120, "1/min")
(2.0, '1/s')
>>> to_canonical(7, "{token}")
(7.0, '{token}')
"""

from __future__ import annotations

from typing import Final

_FACTORS: Final[dict[str, tuple[float, str]]] = {
    # durations -> ms
    "ns": (1e-6, "ms"),
    "us": (1e-3, "ms"),
    "µs": (1e-3, "ms"),
    "ms": (1.0, "ms"),
    "s": (1000.0, "ms"),
    "sec": (1000.0, "ms"),
    "seconds": (1000.0, "ms"),
    "min": (60_000.0, "ms"),
    "h": (3_600_000.0, "ms"),
    "milliseconds": (1.0, "ms"),
    # sizes -> bytes
    "By": (1.0, "By"),
    "B": (1.0, "By"),
    "bytes": (1.0, "By"),
    "KB": (1e3, "By"),
    "kB": (1e3, "By"),
    "MB": (1e6, "By"),
    "GB": (1e9, "By"),
    "KiB": (1024.0, "By"),
    "MiB": (1024.0**2, "By"),
    "GiB": (1024.0**3, "By"),
    # rates -> per second
    "1/s": (1.0, "1/s"),
    "/s": (1.0, "1/s"),
    "rps": (1.0, "1/s"),
    "1/min": (1 / 60, "1/s"),
    "/min": (1 / 60, "1/s"),
    "rpm": (1 / 60, "1/s"),
    "1/h": (1 / 3600, "1/s"),
    "/h": (1 / 3600, "1/s"),
    "tokens/s": (1.0, "{token}/s"),
    "tokens/min": (1 / 60, "{token}/s"),
    # dimensionless
    "%": (1.0, "%"),
    "percent": (1.0, "%"),
    "tokens": (1.0, "{token}"),
    "token": (1.0, "{token}"),
    "{token}": (1.0, "{token}"),
    "count": (1.0, "1"),
    "1": (1.0, "1"),
    "": (1.0, ""),
}


def to_canonical(value: float, unit: str) -> tuple[float, str]:
    """Return ``(value, unit)`` in the canonical unit; unknown units pass through unchanged."""
    factor_unit = _FACTORS.get(unit)
    if factor_unit is None:
        return float(value), unit
    factor, canonical = factor_unit
    return (float(value) * factor if factor != 1.0 else float(value)), canonical


def duration_to_ms(value: float, unit: str) -> float | None:
    """Milliseconds for a duration unit, else None."""
    v, u = to_canonical(value, unit)
    return v if u == "ms" else None
