"""Query result cache: an in-process LRU, optionally backed by Redis, invalidated by the store's commits.

Keys are the normalised query (its fingerprint, tenant included). Each entry remembers its tenant and
time range; :meth:`QueryCache.on_commit` (an ``EmbeddedStore`` listener) drops the entries of a tenant
whose range overlaps the newly committed rows. Relative ranges ("last 24h") are keyed by their ``last``
and live at most ``relative_ttl_s`` (the window slides even without new data).

    >>> cache = QueryCache(max_entries=2)
    >>> cache.put("k", {"rows": 1}, tenant="t1", start_us=0, end_us=10)
    >>> cache.get("k")
    {'rows': 1}
    >>> cache.on_commit("events", frozenset({"t1"}), 5, 5)
    >>> cache.get("k") is None
    True

Redis (``redis_url``, only when the ``redis`` package is importable) shares entries between hub
processes; there invalidation is per tenant (a generation counter bumped on each commit), coarser
than the in-process range check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec

log = logging.getLogger(__name__)

#: Tables whose commits can change query results.
WATCHED_KINDS = frozenset({"events"})


@dataclass(slots=True)
class _Entry:
    value: Any
    tenant: str
    start_us: int
    end_us: int
    expires: float


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    invalidations: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class QueryCache:
    """Thread-safe LRU of query answers. ``ttl_s`` bounds every entry; ``None`` values are not cached."""

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        ttl_s: float = 300.0,
        relative_ttl_s: float = 10.0,
        redis_url: str | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.relative_ttl_s = relative_ttl_s
        self.stats = CacheStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._redis = _connect_redis(redis_url) if redis_url else None
        self._generations: dict[str, int] = {}

    def generation(self, tenant: str) -> int:
        """Take this before running a query and pass it to :meth:`put`: a commit in between skips the put."""
        return self._generations.get(tenant, 0)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > now:
                self._entries.move_to_end(key)
                self.stats.hits += 1
                return entry.value
            if entry is not None:
                del self._entries[key]
        value = self._redis_get(key)
        with self._lock:
            if value is not None:
                self.stats.hits += 1
            else:
                self.stats.misses += 1
        return value

    def put(
        self,
        key: str,
        value: Any,
        *,
        tenant: str,
        start_us: int,
        end_us: int,
        relative: bool = False,
        generation: int | None = None,
    ) -> None:
        ttl = min(self.ttl_s, self.relative_ttl_s) if relative else self.ttl_s
        # a relative window keeps moving forward: treat it as open-ended for invalidation
        entry = _Entry(value, tenant, start_us, 2**62 if relative else end_us, self._clock() + ttl)
        with self._lock:
            current = self._generations.get(tenant, 0)
            if generation is not None and generation != current:
                return  # data was committed while the query ran: its answer may be stale already
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        self._redis_put(key, value, tenant, ttl)

    def on_commit(self, kind: str, tenants: frozenset[str], min_ts_us: int, max_ts_us: int) -> None:
        """``EmbeddedStore`` listener: drop entries of ``tenants`` whose range overlaps the commit."""
        if kind not in WATCHED_KINDS:
            return
        with self._lock:
            for t in (*tenants, "*"):  # "*" (all tenants) changes with every commit
                self._generations[t] = self._generations.get(t, 0) + 1
            stale = [
                k
                for k, e in self._entries.items()
                if (e.tenant in tenants or e.tenant == "*") and e.start_us <= max_ts_us and min_ts_us < e.end_us
            ]
            for k in stale:
                del self._entries[k]
            self.stats.invalidations += len(stale)
        if self._redis is not None:
            for tenant in tenants:
                self._safe(lambda t=tenant: self._redis.incr(f"hubq:gen:{t}"))  # type: ignore[union-attr]
            self._safe(lambda: self._redis.incr("hubq:gen:*"))  # type: ignore[union-attr]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- optional Redis ------------------------------------------------------------------------------
    def _redis_key(self, key: str, tenant: str) -> str | None:
        gen = self._safe(lambda: self._redis.get(f"hubq:gen:{tenant}"))  # type: ignore[union-attr]
        return f"hubq:v1:{tenant}:{int(gen or 0)}:{key}"

    def _redis_get(self, key: str) -> Any | None:
        if self._redis is None:
            return None
        tenant = self._safe(lambda: self._redis.get(f"hubq:tenant:{key}"))  # type: ignore[union-attr]
        if tenant is None:
            return None
        rkey = self._redis_key(key, tenant.decode() if isinstance(tenant, bytes) else str(tenant))
        raw = self._safe(lambda: self._redis.get(rkey))  # type: ignore[union-attr]
        return msgspec.json.decode(raw) if raw else None

    def _redis_put(self, key: str, value: Any, tenant: str, ttl: float) -> None:
        if self._redis is None:
            return
        rkey = self._redis_key(key, tenant)
        seconds = max(1, int(ttl))
        self._safe(lambda: self._redis.set(f"hubq:tenant:{key}", tenant, ex=seconds))  # type: ignore[union-attr]
        self._safe(lambda: self._redis.set(rkey, msgspec.json.encode(value), ex=seconds))  # type: ignore[union-attr]

    def _safe(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # Redis is an optimisation: never fail a query because of it
            log.warning("query cache: redis unavailable: %s", exc)
            return None


def _connect_redis(url: str) -> Any | None:
    try:
        import redis  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        log.warning("query cache: redis_url is set but the 'redis' package is not installed; using memory only")
        return None
    return redis.Redis.from_url(url, socket_timeout=0.2)
