"""Drop an ``event_id`` seen again within a time window (per tenant), with bounded memory.

>>> d = Deduplicator(window_seconds=300, max_ids=10)
>>> d.seen_or_add("t", "a", now=0.0), d.seen_or_add("t", "a", now=10.0), d.seen_or_add("t", "a", now=400.0)
(False, True, False)
"""

from __future__ import annotations

from collections import OrderedDict


class Deduplicator:
    """Insertion-ordered map id → first-seen time; expired and overflowing entries are evicted."""

    def __init__(self, window_seconds: float, max_ids: int) -> None:
        if window_seconds <= 0 or max_ids <= 0:
            raise ValueError("window_seconds and max_ids must be positive")
        self.window = window_seconds
        self.max_ids = max_ids
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._last_evict = float("-inf")

    def seen_or_add(self, tenant: str, event_id: str, now: float) -> bool:
        """True if (tenant, event_id) was seen within the window; otherwise remember it."""
        key = (tenant, event_id)
        first = self._seen.get(key)
        if first is not None and now - first < self.window:
            return True
        if first is not None:
            del self._seen[key]
        self._seen[key] = now
        if len(self._seen) > self.max_ids or now - self._last_evict >= 1.0:
            self._last_evict = now
            self._evict(now)
        return False

    def forget(self, tenant: str, event_id: str) -> None:
        self._seen.pop((tenant, event_id), None)

    def __len__(self) -> int:
        return len(self._seen)

    def _evict(self, now: float) -> None:
        seen = self._seen
        while seen:
            _key, first = next(iter(seen.items()))
            if now - first >= self.window or len(seen) > self.max_ids:
                seen.popitem(last=False)
            else:
                break
