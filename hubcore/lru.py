"""A thread-safe least-recently-used map bounded by the bytes its values hold (the caller sizes each).

The analytics caches (:class:`analytics.anomaly.raw_cache.RawScoreCache`,
:class:`analytics.forecast.cache.ForecastCache`) are this map plus their own key and copy rules.

    >>> lru: SizedLRU[str] = SizedLRU(max_bytes=10)
    >>> lru.put("a", "alpha", 5); lru.put("b", "beta", 4)
    >>> lru.get("a"), lru.get("zz")
    ('alpha', None)
    >>> lru.put("c", "gamma", 5)  # 14 bytes: the least recently used ("b") goes
    >>> sorted(lru.stats().items())
    [('bytes', 10), ('entries', 2), ('hits', 1), ('misses', 1)]
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class SizedLRU(Generic[V]):
    """At most ``max_bytes`` of values, least recently used out first; ``hits`` and ``misses`` count
    :meth:`get`. A value larger than ``max_bytes`` is not kept."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        """The value under ``key`` (now the most recently used), or None; counted as a hit or a miss."""
        with self._lock:
            held = self._entries.get(key)
            if held is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return held[0]

    def put(self, key: str, value: V, size: int) -> None:
        """Keep ``value`` (``size`` bytes) unless it alone exceeds ``max_bytes``; a key held already keeps
        its value (two threads that computed the same thing store it once)."""
        if size > self.max_bytes:
            return
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (value, size)
                self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict[str, Any]:
        """``entries``, ``bytes``, ``hits`` and ``misses`` (for logs and tests)."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses}
