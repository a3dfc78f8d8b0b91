"""Keep the forecasts asked for through the API warm: refit them when their query's next bucket completes.

A ``GET /api/v1/forecast`` fits its series (seconds for a fine-step query: 18 series of 2,016 five-minute
steps take about 3 s of MSTL) and the service's :class:`~analytics.forecast.cache.ForecastCache` keeps the
result, keyed by the series' values; once the query's next bucket completes the values differ and the next
caller would fit again. :class:`WarmForecasts` remembers what was asked (tenant, query and every parameter
that changes the fit) for ``keep`` seconds, at most ``max_entries`` of them, and says which are due: those
whose query completed a bucket (``settle`` seconds ago, so that the bucket's late events are in) since they
were last computed. The service's scheduler recomputes the due ones between its passes
(:meth:`analytics.service.AnalyticsService.warm_forecasts`), one at a time, so the next call is answered
from the cache.

    warm = WarmForecasts(keep_s=3600, max_entries=16, settle_s=30)
    warm.remember(("acme", "requests_rate", "7d", 95.0, None, None), step_s=300, now=t, compute=fit)
    for entry in warm.due(now):           # oldest first
        entry.compute()                   # fills the forecast cache
        warm.computed(entry.key, now)

Thread-safe: the API's threads remember, the scheduler's thread takes the due entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["WarmEntry", "WarmForecasts"]


@dataclass
class WarmEntry:
    """One remembered forecast: ``key`` (tenant first), the step of its buckets, when it was last asked
    for, the bucket index (``(t - settle) // step``) of its last computation, and how to compute it."""

    key: tuple[Hashable, ...]
    step_s: int
    asked: float
    bucket: int
    compute: Callable[[], object]


class WarmForecasts:
    """The forecasts asked for in the last ``keep_s`` seconds, at most ``max_entries`` (the least recently
    asked one goes first); see the module docstring."""

    def __init__(self, keep_s: float, max_entries: int, settle_s: float = 0.0) -> None:
        if keep_s <= 0:
            raise ValueError(f"keep_s must be positive, got {keep_s}")
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.keep_s = float(keep_s)
        self.max_entries = int(max_entries)
        self.settle_s = float(settle_s)
        self._entries: OrderedDict[tuple[Hashable, ...], WarmEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _bucket(self, step_s: int, now: float) -> int:
        return int((now - self.settle_s) // step_s)

    def remember(self, key: tuple[Hashable, ...], step_s: int, now: float, compute: Callable[[], object]) -> None:
        """Record that the forecast ``key`` was just computed for a caller (at ``now``, on buckets of
        ``step_s`` seconds); ``compute`` recomputes it the same way. A key held already is refreshed."""
        if self.max_entries == 0 or step_s <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = WarmEntry(key, int(step_s), now, self._bucket(int(step_s), now), compute)
            self._expire(now)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.asked < self.keep_s:
                break
            self._entries.popitem(last=False)

    def due(self, now: float) -> list[WarmEntry]:
        """The entries (not expired) whose query completed a bucket, ``settle_s`` ago or more, since they
        were last computed; the least recently asked first."""
        with self._lock:
            self._expire(now)
            return [e for e in self._entries.values() if self._bucket(e.step_s, now) > e.bucket]

    def computed(self, key: tuple[Hashable, ...], now: float) -> None:
        """Mark ``key`` computed at ``now`` (not due again until its query's next bucket completes)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.bucket = self._bucket(entry.step_s, now)

    def forget(self, key: tuple[Hashable, ...]) -> None:
        """Drop ``key`` (its recomputation failed: the request would now fail too)."""
        with self._lock:
            self._entries.pop(key, None)

    def remembered(self) -> list[tuple[Hashable, ...]]:
        """The remembered keys, the least recently asked first."""
        with self._lock:
            return list(self._entries)
