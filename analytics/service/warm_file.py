"""The forecasts kept warm, on disk: ``<data_dir>/analytics/forecast_warm.json``, so that a restart keeps them.

:class:`WarmFile` writes what :meth:`analytics.service.warm.WarmForecasts.snapshot` holds (the forecasts
asked for through the API recently: key, step, when last asked) atomically
(:func:`hubcore.files.write_atomic`: the old file or the new one, never a mix), and reads it back at the
scheduler's start. A file that cannot be used (not JSON, another shape, too large) is logged and ignored;
an entry that is not a forecast key is skipped (counted in the log line). The file is bounded: the entries
are bounded (``forecast_warm.max_entries``, at most 1,000), and a file over :data:`MAX_BYTES` is not read.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from analytics.service.warm import ForecastKey
    >>> f = WarmFile(Path(tempfile.mkdtemp()) / "analytics" / "forecast_warm.json")
    >>> f.load()
    []
    >>> f.save([(ForecastKey("acme", "requests_rate", "7d", 95.0), 300, 1764000000.0)])
    >>> f.load()
    [(ForecastKey(tenant='acme', query='requests_rate', horizon='7d', level=95.0, history=None, threshold=None, window_start=None, window_end=None, step=None), 300, 1764000000.0)]
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from analytics.service.warm import ForecastKey
from hubcore.files import discard_tmp, write_atomic
from hubcore.tenants import is_tenant

__all__ = ["MAX_BYTES", "WarmFile", "parse_key"]

log = logging.getLogger("hub.analytics")

#: The file's format version (a file of another version is ignored, logged)
VERSION = 1
#: A larger file is not read (1,000 entries of ordinary keys take about 200 kB)
MAX_BYTES = 8 << 20
_OPTIONAL_TEXT = ("history", "window_start", "window_end", "step")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_key(raw: Any) -> ForecastKey | None:
    """A :class:`ForecastKey` from its JSON list, or None when ``raw`` is not one (wrong length or types).

    >>> parse_key(["acme", "q", "7d", 95, None, None, None, None, "1h"]).step
    '1h'
    >>> parse_key(["a b", "q", "7d", 95, None, None, None, None, None]) is None   # not a tenant
    True
    """
    if not isinstance(raw, list) or len(raw) != len(ForecastKey._fields):
        return None
    key = ForecastKey(*raw)
    if not (is_tenant(key.tenant) and isinstance(key.query, str) and isinstance(key.horizon, str)
            and _number(key.level) and (key.threshold is None or _number(key.threshold))):  # fmt: skip
        return None
    if any(getattr(key, f) is not None and not isinstance(getattr(key, f), str) for f in _OPTIONAL_TEXT):
        return None
    threshold = None if key.threshold is None else float(key.threshold)
    return key._replace(level=float(key.level), threshold=threshold)


class WarmFile:
    """The file of the forecasts kept warm (see the module docstring). Written by one thread at a time
    (the scheduler's, then ``shutdown``'s, after it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> WarmFile:
        """The file of the data directory ``data_dir``: ``analytics/forecast_warm.json`` in it."""
        return cls(Path(data_dir) / "analytics" / "forecast_warm.json")

    def load(self) -> list[tuple[ForecastKey, int, float]]:
        """``(key, step_s, asked)`` of every usable entry; ``[]`` (logged) when the file is missing or
        unusable. Removes a temporary file a crash left beside it."""
        discard_tmp(self.path)
        try:
            size = self.path.stat().st_size
            if size > MAX_BYTES:
                raise ValueError(f"{size:,} bytes, more than {MAX_BYTES:,}")
            data = json.loads(self.path.read_bytes())
            if (
                not isinstance(data, dict)
                or data.get("version") != VERSION
                or not isinstance(data.get("entries"), list)
            ):
                raise ValueError(f"not a version {VERSION} file of forecast_warm entries")
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:  # (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
            log.warning("forecast warm file ignored", extra={"path": str(self.path), "error": str(exc)})
            return []
        out: list[tuple[ForecastKey, int, float]] = []
        skipped = 0
        for item in data["entries"]:
            key = parse_key(item.get("key")) if isinstance(item, dict) else None
            step_s, asked = (item.get("step_s"), item.get("asked")) if isinstance(item, dict) else (None, None)
            if key is None or not (isinstance(step_s, int) and not isinstance(step_s, bool) and step_s > 0
                                   and _number(asked)):  # fmt: skip
                skipped += 1
                continue
            out.append((key, step_s, float(asked)))  # type: ignore[arg-type]  # (checked by _number)
        if skipped:
            log.warning("forecast warm file: entries ignored", extra={"path": str(self.path), "ignored": skipped})
        return out

    def save(self, entries: Sequence[tuple[tuple[Hashable, ...], int, float]]) -> None:
        """Replace the file with ``entries`` (``(key, step_s, asked)``), atomically and synced."""
        body = {"version": VERSION,
                "entries": [{"key": list(key), "step_s": step_s, "asked": asked} for key, step_s, asked in entries]}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(body, separators=(",", ":")).encode(), fsync=True)
