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

Entries can also be added due at once: ``pin`` (the configured ``forecast_warm.preload``: never expire,
not counted in ``max_entries``) and ``restore`` (what :meth:`snapshot` gave before a restart,
:mod:`analytics.service.warm_file`). Thread-safe: the API's threads remember, the scheduler's thread takes
the due entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = ["ForecastKey", "WarmEntry", "WarmForecasts"]

#: How an entry came: asked through the API, restored from the file of the last run, or configured
Origin = Literal["asked", "restored", "preload"]
#: The bucket of an entry added due at once (restored, pinned): below every real bucket index
NEVER = -(2**62)


class ForecastKey(NamedTuple):
    """What a ``GET /api/v1/forecast`` answer depends on (the tenant first): the key of its warm entry.
    A plain tuple of JSON values, so the entries can be written to a file and read back."""

    tenant: str
    query: str
    horizon: str
    level: float
    history: str | None = None
    threshold: float | None = None
    window_start: str | None = None
    window_end: str | None = None
    step: str | None = None


@dataclass
class WarmEntry:
    """One remembered forecast: ``key`` (tenant first), the step of its buckets, when it was last asked
    for (``-inf``: a preload entry never asked), the bucket index (``(t - settle) // step``) of its last
    computation, and how to compute it; ``origin`` and ``pinned`` (never expires: ``preload``);
    ``warmed`` once computed by the warm pass."""

    key: tuple[Hashable, ...]
    step_s: int
    asked: float
    bucket: int
    compute: Callable[[], object]
    origin: Origin = "asked"
    pinned: bool = False
    warmed: bool = False


class WarmForecasts:
    """The forecasts asked for in the last ``keep_s`` seconds, at most ``max_entries`` (the least recently
    asked one goes first), and the pinned ones; see the module docstring."""

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
        #: bumped whenever what :meth:`snapshot` returns may have changed (the file is written only then)
        self.version = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _bucket(self, step_s: int, now: float) -> int:
        return int((now - self.settle_s) // step_s)

    def remember(self, key: tuple[Hashable, ...], step_s: int, now: float, compute: Callable[[], object]) -> None:
        """Record that the forecast ``key`` was just computed for a caller (at ``now``, on buckets of
        ``step_s`` seconds); ``compute`` recomputes it the same way. A key held already is refreshed (a
        pinned one stays pinned)."""
        if self.max_entries == 0 or step_s <= 0:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            entry = WarmEntry(key, int(step_s), now, self._bucket(int(step_s), now), compute)
            if old is not None and old.pinned:
                entry.origin, entry.pinned, entry.warmed = old.origin, True, old.warmed
            self._entries[key] = entry
            self.version += 1
            self._expire(now)
            self._bound()

    def pin(self, key: tuple[Hashable, ...], step_s: int, compute: Callable[[], object]) -> None:
        """Keep ``key`` warm for good (a configured preload), due at once; not counted in ``max_entries``."""
        if step_s <= 0:
            raise ValueError(f"step_s must be positive, got {step_s}")
        with self._lock:
            old = self._entries.get(key)
            if old is not None:
                old.pinned, old.origin = True, "preload"
                return
            self._entries[key] = WarmEntry(key, int(step_s), float("-inf"), NEVER, compute, "preload", True)
            self._entries.move_to_end(key, last=False)  # (before the asked ones, which are in asked order)

    def restore(self, entries: Iterable[tuple[tuple[Hashable, ...], int, float, Callable[[], object]]],
                now: float) -> int:  # fmt: skip
        """Add ``(key, step_s, asked, compute)`` entries of an earlier run (:meth:`snapshot`), due at once;
        those asked ``keep_s`` ago or more go, and the bounds hold (the most recently asked stay). A key
        held already keeps its entry (asked later). Returns how many were added."""
        if self.max_entries == 0:
            return 0
        with self._lock:
            added = []
            for key, step_s, asked, compute in sorted(entries, key=lambda e: e[2]):
                if step_s <= 0 or now - asked >= self.keep_s:
                    continue
                held = self._entries.get(key)
                if held is not None:
                    held.asked = max(held.asked, asked) if held.pinned else held.asked
                    continue
                self._entries[key] = WarmEntry(key, int(step_s), asked, NEVER, compute, "restored")
                added.append(key)
            # the restored were asked before the ones this run was asked for: in asked order, oldest first
            for key in sorted(self._entries, key=lambda k: self._entries[k].asked):
                self._entries.move_to_end(key)
            self._bound()
            self.version += 1
            return sum(1 for k in added if k in self._entries)

    def _bound(self) -> None:
        unpinned = [k for k, e in self._entries.items() if not e.pinned]
        for key in unpinned[: max(0, len(unpinned) - self.max_entries)]:
            del self._entries[key]

    def _expire(self, now: float) -> None:
        for key, entry in list(self._entries.items()):
            if entry.pinned:
                continue
            if now - entry.asked < self.keep_s:
                break
            del self._entries[key]
            self.version += 1

    def due(self, now: float) -> list[WarmEntry]:
        """The entries (not expired) whose query completed a bucket, ``settle_s`` ago or more, since they
        were last computed (restored and pinned ones: at once); the least recently asked first."""
        with self._lock:
            self._expire(now)
            return [e for e in self._entries.values() if self._bucket(e.step_s, now) > e.bucket]

    def computed(self, key: tuple[Hashable, ...], now: float) -> None:
        """Mark ``key`` computed at ``now`` (not due again until its query's next bucket completes)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.bucket = self._bucket(entry.step_s, now)
                entry.warmed = True

    def forget(self, key: tuple[Hashable, ...]) -> None:
        """Drop ``key`` (its recomputation failed: the request would now fail too)."""
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self.version += 1

    def remembered(self) -> list[tuple[Hashable, ...]]:
        """The remembered keys, the least recently asked first (pinned ones never asked: first)."""
        with self._lock:
            return list(self._entries)

    def snapshot(self) -> list[tuple[tuple[Hashable, ...], int, float]]:
        """``(key, step_s, asked)`` of every entry asked through the API (not the pinned ones never asked),
        the least recently asked first: what :meth:`restore` takes back after a restart."""
        with self._lock:
            return [(e.key, e.step_s, e.asked) for e in self._entries.values() if e.asked != float("-inf")]
