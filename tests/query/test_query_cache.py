"""The query result cache: hits, invalidation by committed data (tenant + range), TTLs, metrics, Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hubcore.query.cache import QueryCache
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub
from tests.query.dataset import at, query


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lru_evicts_the_least_recently_used() -> None:
    cache = QueryCache(max_entries=2)
    for key in ("a", "b"):
        cache.put(key, key, tenant="t", start_us=0, end_us=10)
    assert cache.get("a") == "a"  # a is now the most recent
    cache.put("c", "c", tenant="t", start_us=0, end_us=10)
    assert cache.get("b") is None and cache.get("a") == "a" and cache.get("c") == "c"
    assert cache.stats.hits == 3 and cache.stats.misses == 1


def test_invalidation_needs_same_tenant_and_overlapping_range() -> None:
    cache = QueryCache()
    cache.put("k", 1, tenant="t1", start_us=100, end_us=200)
    cache.on_commit("events", frozenset({"t2"}), 150, 150)  # other tenant
    cache.on_commit("events", frozenset({"t1"}), 200, 300)  # after the range (end is exclusive)
    cache.on_commit("events", frozenset({"t1"}), 0, 99)  # before the range
    cache.on_commit("logs", frozenset({"t1"}), 150, 150)  # a table queries do not read
    assert cache.get("k") == 1
    cache.on_commit("events", frozenset({"t1"}), 50, 120)
    assert cache.get("k") is None and cache.stats.invalidations == 1


def test_relative_ranges_expire_quickly_and_are_open_ended() -> None:
    clock = FakeClock()
    cache = QueryCache(ttl_s=300, relative_ttl_s=10, clock=clock)
    cache.put("rel", 1, tenant="t", start_us=0, end_us=100, relative=True)
    cache.put("abs", 2, tenant="t", start_us=0, end_us=100)
    clock.now += 11
    assert cache.get("rel") is None and cache.get("abs") == 2
    cache.put("rel", 1, tenant="t", start_us=0, end_us=100, relative=True)
    cache.on_commit("events", frozenset({"t"}), 5_000, 5_000)  # newer than end: still in a sliding window
    assert cache.get("rel") is None and cache.get("abs") == 2


def test_a_commit_during_the_query_skips_the_put() -> None:
    cache = QueryCache()
    gen = cache.generation("t")
    cache.on_commit("events", frozenset({"t"}), 0, 0)
    cache.put("k", 1, tenant="t", start_us=0, end_us=10, generation=gen)
    assert cache.get("k") is None
    cache.put("k", 1, tenant="t", start_us=0, end_us=10, generation=cache.generation("t"))
    assert cache.get("k") == 1


def test_hit_then_invalidated_by_new_data(client: httpx.Client, hub: RunningHub) -> None:
    tenant = "cache-tenant"
    headers = {"X-Scope-OrgID": tenant}
    assert client.post("/api/v1/events", json=[make_event("cost", timestamp=at(5))], headers=headers).status_code == 202
    hub.flush()
    body = {"time_range": {"last": "3h"}, "metric": {"event_type": "cost"}, "aggregation": {"functions": ["count"]}}
    first = query(client, body, tenant).json()
    assert first["metadata"]["cached"] is False and first["data"] == [{"count": 1}]
    second = query(client, body, tenant).json()
    assert second["metadata"]["cached"] is True and second["data"] == first["data"]
    # other tenants' data does not invalidate
    client.post("/api/v1/events", json=[make_event("cost", timestamp=at(5))], headers={"X-Scope-OrgID": "other-t"})
    hub.flush()
    assert query(client, body, tenant).json()["metadata"]["cached"] is True
    # new data of this tenant in the range does
    assert client.post("/api/v1/events", json=[make_event("cost", timestamp=at(6))], headers=headers).status_code == 202
    hub.flush()
    third = query(client, body, tenant).json()
    assert third["metadata"]["cached"] is False and third["data"] == [{"count": 2}]
    metrics = client.get("/metrics").text
    hits = [line for line in metrics.splitlines() if line.startswith('hub_query_cache_requests_total{result="hit"}')]
    assert hits and float(hits[0].split()[-1]) >= 2
    assert "hub_query_duration_seconds_bucket" in metrics


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """``HUB_QUERY_REDIS_URL`` if set, else a real redis-server (Debian ``redis-server``) on a free port."""
    if os.environ.get("HUB_QUERY_REDIS_URL"):
        yield os.environ["HUB_QUERY_REDIS_URL"]
        return
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        pytest.skip("redis-server is not installed (make apt installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_backed_cache(redis_url: str) -> None:
    redis = pytest.importorskip("redis")
    url = redis_url
    redis.Redis.from_url(url, socket_timeout=2).ping()
    a, b = QueryCache(redis_url=url), QueryCache(redis_url=url)
    a.put("shared-key", {"x": 1}, tenant="rt", start_us=0, end_us=10)
    assert b.get("shared-key") == {"x": 1}  # another process's entry
    b.on_commit("events", frozenset({"rt"}), 5, 5)  # bumps the tenant's generation in Redis
    assert QueryCache(redis_url=url).get("shared-key") is None
