"""Drop an ``event_id`` seen again within a time window (per tenant), with bounded memory.

>>> d = Deduplicator(window_seconds=300, max_ids=10)
>>> d.seen_or_add("t", "a", now=0.0), d.seen_or_add("t", "a", now=10.0), d.seen_or_add("t", "a", now=400.0)
(False, True, False)
"""

from __future__ import annotations

from collections import OrderedDict


class Deduplicator:
    """Insertion-ordered map id → first-seen time; expired and overflowing entries are evicted.

    Keys are one string (:func:`_key`), not a ``(tenant, event_id)`` tuple: a tuple is an object the
    garbage collector tracks, and up to ``max_ids`` of them lived for the whole window (each ingest batch
    added a thousand to the old generation, bringing full collections of the hub's heap closer).
    """

    def __init__(self, window_seconds: float, max_ids: int) -> None:
        if window_seconds <= 0 or max_ids <= 0:
            raise ValueError("window_seconds and max_ids must be positive")
        self.window = window_seconds
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._last_evict = float("-inf")

    def seen_or_add(self, tenant: str, event_id: str, now: float) -> bool:
        """True if (tenant, event_id) was seen within the window; otherwise remember it."""
        key = _key(tenant, event_id)
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
        self._seen.pop(_key(tenant, event_id), None)

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


def _key(tenant: str, event_id: str) -> str:
    """One string per (tenant, event_id), distinct for distinct pairs: ``tenant NUL event_id`` when the
    tenant is a non-empty string without NUL (every valid tenant id, hubcore.tenants), else a form that
    starts with NUL (so it cannot meet the first) and carries the tenant's length.

    >>> _key("t", "a")
    't\\x00a'
    >>> len({_key("t\\x00", "a"), _key("t", "\\x00a"), _key("", "1:t\\x00a"), _key("2:t", "a")})
    4
    """
    if tenant and "\x00" not in tenant:
        return f"{tenant}\x00{event_id}"
    return f"\x00{len(tenant)}:{tenant}{event_id}"
