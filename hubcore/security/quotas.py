"""Rate limits (token buckets) per API key and per tenant, and a storage quota hook.

    >>> t = [0.0]
    >>> rl = RateLimiter(rate=2.0, burst=2.0, clock=lambda: t[0])
    >>> rl.check("k"), rl.check("k"), rl.check("k")      # burst of 2, then wait 0.5 s for a token
    (None, None, 0.5)
    >>> t[0] = 0.5
    >>> rl.check("k") is None
    True

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second. ``check(key, cost)`` takes
``cost`` tokens and returns None, or the seconds until the request could pass (for ``Retry-After``).
A cost larger than ``burst`` (a big batch) passes when the bucket is full and leaves it in debt.
Memory is bounded: buckets idle long enough to be full again are evicted (they are equivalent to new
ones), and past ``max_buckets`` the least recently used go first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter

from hubcore.security.config import QuotasConfig
from hubcore.security.principal import Principal


class RateLimiter:
    """Thread-safe token buckets keyed by a string; ``overrides`` maps a key to its own (rate, burst)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        overrides: Mapping[str, tuple[float, float]] | None = None,
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        if max_buckets <= 0:
            raise ValueError("max_buckets must be positive")
        self.rate, self.burst = rate, burst
        self.overrides = dict(overrides or {})
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key -> [tokens, last refill]
        self._lock = threading.Lock()

    def limits(self, key: str) -> tuple[float, float]:
        return self.overrides.get(key, (self.rate, self.burst))

    def check(self, key: str, cost: float = 1.0) -> float | None:
        """Take ``cost`` tokens from ``key``'s bucket: None if allowed, else retry-after seconds."""
        rate, burst = self.limits(key)
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = [burst, now]
                self._buckets[key] = bucket
            else:
                bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
                bucket[1] = now
                self._buckets.move_to_end(key)
            need = min(cost, burst)
            if bucket[0] >= need:
                bucket[0] -= cost
                allowed = None
            else:
                allowed = (need - bucket[0]) / rate
            self._evict(now)
            return allowed

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        while self._buckets:
            key, (tokens, last) = next(iter(self._buckets.items()))
            rate, burst = self.limits(key)
            full_again = tokens + (now - last) * rate >= burst
            if len(self._buckets) > self.max_buckets or full_again:
                self._buckets.popitem(last=False)
            else:
                return


class Quotas:
    """The hub's limits from ``service.quotas``: API calls per key (or subject) and per tenant, events per
    tenant, storage per tenant. Counters go to ``registry`` as ``hub_quota_checks_total{limit, outcome}``
    and ``hub_quota_throttled_total{limit, tenant_id}``.

        >>> q = Quotas(QuotasConfig(enabled=True, events_per_second=10, events_burst=10), clock=lambda: 0.0)
        >>> p = Principal("s", "acme")
        >>> q.check_events(p, 10), q.check_events(p, 1)
        (None, 0.1)
    """

    def __init__(
        self,
        config: QuotasConfig,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        c, tq = config, config.tenants

        def over(rate: str, burst: str) -> dict[str, tuple[float, float]]:
            return {t: (getattr(q, rate) or getattr(c, rate), getattr(q, burst) or getattr(c, burst))
                    for t, q in tq.items() if getattr(q, rate) is not None or getattr(q, burst) is not None}  # fmt: skip

        def limiter(rate: str, burst: str, overrides: bool = True) -> RateLimiter:
            return RateLimiter(getattr(c, rate), getattr(c, burst), overrides=over(rate, burst) if overrides else None,
                               max_buckets=c.max_buckets, clock=clock)  # fmt: skip

        self.key_calls = limiter("key_calls_per_second", "key_calls_burst", overrides=False)
        self.tenant_calls = limiter("api_calls_per_second", "api_calls_burst")
        self.tenant_events = limiter("events_per_second", "events_burst")
        reg = registry or CollectorRegistry()
        self.checks = Counter(
            "hub_quota_checks", "Quota checks by limit and outcome", ["limit", "outcome"], registry=reg
        )
        self.throttled = Counter(
            "hub_quota_throttled", "Requests refused by a quota, by limit and tenant", ["limit", "tenant_id"],
            registry=reg,
        )  # fmt: skip

    def _count(self, limit: str, tenant: str, retry: float | None) -> float | None:
        self.checks.labels(limit=limit, outcome="allowed" if retry is None else "throttled").inc()
        if retry is not None:
            self.throttled.labels(limit=limit, tenant_id=tenant).inc()
        return retry

    def check_request(self, principal: Principal) -> float | None:
        """One API call: the key's (or subject's) bucket, then the tenant's. None or retry-after seconds."""
        if not self.config.enabled:
            return None
        who = principal.key_id or f"{principal.tenant_id}/{principal.subject}"
        retry = self._count("key_calls", principal.tenant_id, self.key_calls.check(who))
        if retry is not None:
            return retry
        return self._count("tenant_calls", principal.tenant_id, self.tenant_calls.check(principal.tenant_id))

    def check_events(self, principal: Principal | str, count: int) -> float | None:
        """``count`` events (or points) for the principal's tenant (or a tenant id)."""
        if not self.config.enabled or count <= 0:
            return None
        tenant = principal if isinstance(principal, str) else principal.tenant_id
        return self._count("tenant_events", tenant, self.tenant_events.check(tenant, float(count)))

    def storage_limit(self, tenant_id: str) -> int | None:
        tq = self.config.tenants.get(tenant_id)
        return tq.storage_bytes if tq is not None and tq.storage_bytes is not None else self.config.storage_bytes

    def check_storage(self, tenant_id: str, used_bytes: Callable[[str], int], incoming_bytes: int = 0) -> str | None:
        """The storage hook: None when ``used_bytes(tenant) + incoming_bytes`` fits the tenant's quota,
        else a message (refuse the write with 413/507 and dead-letter nothing: the client must act)."""
        limit = self.storage_limit(tenant_id) if self.config.enabled else None
        if limit is None:
            return None
        used = used_bytes(tenant_id)
        if used + incoming_bytes <= limit:
            self.checks.labels(limit="storage", outcome="allowed").inc()
            return None
        self._count("storage", tenant_id, 0.0)
        return f"tenant {tenant_id!r} is over its storage quota: {used + incoming_bytes} of {limit} bytes"
