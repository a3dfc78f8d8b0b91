"""Token-bucket rate limits: burst, refill, retry-after, overrides, eviction, threads, counters."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from hubcore.security.config import QuotasConfig, TenantQuota
from hubcore.security.principal import Principal
from hubcore.security.quotas import Quotas, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_burst_refill_and_retry_after() -> None:
    c = Clock()
    rl = RateLimiter(rate=10.0, burst=5.0, clock=c)
    assert [rl.check("k") for _ in range(5)] == [None] * 5
    assert rl.check("k") == pytest.approx(0.1)
    assert rl.check("k", cost=3) == pytest.approx(0.3)
    c.t = 0.25  # 2.5 tokens back
    assert rl.check("k", cost=2) is None
    assert rl.check("k") == pytest.approx(0.05)
    c.t = 10.0  # refills to the burst, not beyond
    assert [rl.check("k") for _ in range(5)] == [None] * 5
    assert rl.check("k") is not None
    assert rl.check("other") is None  # buckets are per key


def test_cost_above_burst_passes_when_full_then_owes() -> None:
    c = Clock()
    rl = RateLimiter(rate=100.0, burst=50.0, clock=c)
    assert rl.check("t", cost=200) is None  # a big batch on a full bucket
    assert rl.check("t", cost=1) == pytest.approx((1 + 150) / 100)  # 150 tokens of debt to repay first
    c.t = 0.5
    assert rl.check("t", cost=60) == pytest.approx((50 + 100) / 100)  # need min(cost, burst)


def test_per_key_override() -> None:
    rl = RateLimiter(rate=1.0, burst=1.0, overrides={"big": (100.0, 100.0)}, clock=Clock())
    assert sum(rl.check("big") is None for _ in range(150)) == 100
    assert sum(rl.check("small") is None for _ in range(5)) == 1


def test_eviction_of_idle_and_lru_buckets() -> None:
    c = Clock()
    rl = RateLimiter(rate=1.0, burst=2.0, max_buckets=3, clock=c)
    for k in "abc":
        rl.check(k)
    assert len(rl) == 3
    rl.check("d")  # over max_buckets: least recently used "a" goes
    assert len(rl) == 3 and "a" not in rl._buckets
    c.t = 100.0  # everything idle long enough to be full again: evicted as equivalent to new
    rl.check("e")
    assert list(rl._buckets) == ["e"]
    for i in range(10_000):
        rl.check(f"k{i}")
    assert len(rl) == 3


def test_thread_safety() -> None:
    rl = RateLimiter(rate=1e-9, burst=1000.0)
    allowed = []

    def worker() -> None:
        allowed.append(sum(rl.check("shared") is None for _ in range(500)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1000


def test_quotas_from_config_with_tenant_override_and_counters() -> None:
    reg = CollectorRegistry()
    cfg = QuotasConfig(enabled=True, events_per_second=10, events_burst=10, key_calls_per_second=1, key_calls_burst=2,
                       api_calls_per_second=100, api_calls_burst=3,
                       tenants={"big": TenantQuota(events_per_second=1000, events_burst=1000, storage_bytes=500)},
                       storage_bytes=100).validate()  # fmt: skip
    q = Quotas(cfg, registry=reg, clock=Clock())
    small, big = Principal("s", "small", key_id="k1"), Principal("b", "big", key_id="k2")
    assert q.check_events(small, 10) is None and q.check_events(small, 5) == pytest.approx(0.5)
    assert q.check_events(big, 900) is None and q.check_events("big", 100) is None
    # per key: 2 calls; per tenant: 3 calls
    assert [q.check_request(small) is None for _ in range(3)] == [True, True, False]
    other_key = Principal("s2", "small", key_id="k3")
    assert q.check_request(other_key) is None
    assert q.check_request(Principal("s3", "small", key_id="k4")) is not None  # tenant bucket empty
    assert q.check_storage("small", lambda t: 90, 10) is None
    assert "over its storage quota" in (q.check_storage("small", lambda t: 90, 11) or "")
    assert q.check_storage("big", lambda t: 400, 50) is None
    assert reg.get_sample_value("hub_quota_throttled_total", {"limit": "tenant_events", "tenant_id": "small"}) == 1
    assert reg.get_sample_value("hub_quota_throttled_total", {"limit": "key_calls", "tenant_id": "small"}) == 1
    assert reg.get_sample_value("hub_quota_throttled_total", {"limit": "storage", "tenant_id": "small"}) == 1
    assert reg.get_sample_value("hub_quota_checks_total", {"limit": "tenant_events", "outcome": "allowed"}) == 3


def test_quotas_disabled_allows_everything() -> None:
    q = Quotas(QuotasConfig(events_burst=1, events_per_second=1))
    p = Principal("s", "t")
    assert all(q.check_events(p, 10**6) is None for _ in range(3))
    assert q.check_request(p) is None and q.check_storage("t", lambda t: 10**12) is None
