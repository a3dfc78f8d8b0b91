"""The streaming windows refilled from the store after a restart (``CorrelationEngine.refill``): a correlation
whose first events came before the restart and the rest after it is found; nothing is counted twice; the
bounds hold; a store that cannot answer is logged and the windows fill from the stream."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.correlation import CorrelationEngine, EngineConfig
from analytics.correlation.scenarios import SCENARIOS, Dims
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import process


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    yield s
    s.shutdown()


def _stored(store: EmbeddedStore, cols: dict[str, list[Any]]) -> None:
    store.append("events", cols)
    assert store.flush(30)


def _rows(
    n: int, start_us: int, *, tenant: str = "t1", key: str | None = None, prefix: str = "e"
) -> dict[str, list[Any]]:
    """``n`` plain telemetry rows a millisecond apart from ``start_us``."""
    return {"tenant_id": [tenant] * n, "event_id": [f"{prefix}{i}" for i in range(n)],
            "ts": [start_us + i * 1_000 for i in range(n)], "source_module": ["llm-observatory"] * n,
            "event_type": ["telemetry"] * n, "correlation_id": [key] * n, "name": ["x"] * n}  # fmt: skip


def test_a_correlation_half_before_a_restart_and_half_after_is_found(store: EmbeddedStore) -> None:
    rng = np.random.default_rng(3)
    inj = SCENARIOS["attack_campaign"](rng, time.time() - 40, Dims.pick(rng, 1))
    events = sorted(inj.events, key=lambda e: e["timestamp"])
    first, second = process(events[:4]), process(events[4:])
    _stored(store, first)  # streamed by the hub that stopped, and stored

    def restarted(refill: bool) -> list[tuple[str, set[str]]]:
        engine = CorrelationEngine(store, export=False)
        engine.start()
        if refill:
            stats = engine.refill(now_us=max(first["ts"]) + 1)
            assert (stats.tenants, stats.read, stats.kept, stats.failed) == (1, 4, 4, 0)
        engine.ingest(second)
        res = engine.flush_results(now_us=max(second["ts"]) + 1_000_000)
        return [(c.type, set(c.event_ids)) for r in res for c in r.correlations]

    assert restarted(refill=False) == []  # an empty window: the campaign's four later events alone are not one
    _stored(store, second)
    assert restarted(refill=True) == [("security_incident", set(inj.truth.event_ids))]


def test_an_event_streamed_meanwhile_or_refilled_again_is_not_counted_twice(store: EmbeddedStore) -> None:
    now = int(time.time() * 1e6)
    stored = _rows(300, now - 30_000_000)
    _stored(store, stored)
    engine = CorrelationEngine(store, export=False)
    live = {c: v[200:] for c, v in stored.items()}  # the last 100 streamed (after the restart) before the refill
    live["event_id"] = [*live["event_id"][:50], *[f"new{i}" for i in range(50)]]
    engine.ingest(live)
    stats = engine.refill(now_us=now)
    assert (stats.read, stats.kept) == (300, 250)  # the 50 already held are left out
    assert engine.window_sizes()["t1"][0] == 350
    assert engine.refill(now_us=now).kept == 0  # a second refill adds nothing
    (res,) = engine.flush_results(now_us=now)
    assert res.events == 350
    assert engine._windows["t1"].columns(0)["event_id"][:3] == ["e0", "e1", "e2"]  # in time order, in front


def test_the_bounds_hold(store: EmbeddedStore) -> None:
    now = int(time.time() * 1e6)
    _stored(store, _rows(300, now - 20_000_000))
    _stored(store, _rows(30, now - 10_000_000, key="k", prefix="k"))  # one correlation id, over its cap
    _stored(store, _rows(5, now - 120_000_000, prefix="old"))  # older than window_s
    _stored(store, _rows(5, now - 15_000_000, tenant="t2"))
    _stored(store, _rows(5, now - 25_000_000, tenant="t3"))  # the least recently active tenant
    engine = CorrelationEngine(store, EngineConfig(max_events_per_window=100, max_events_per_key=20, max_tenants=3),
                               export=False)  # fmt: skip
    engine.ingest(_rows(3, now, tenant="live"))  # a tenant streaming since the restart keeps its window
    stats = engine.refill(now_us=now + 1)
    assert stats.tenants == 3 and stats.read == 100 + 5 + 5  # newest first within max_events_per_window
    sizes = engine.window_sizes()
    assert set(sizes) == {"live", "t1", "t2"}  # max_tenants: t3 (least recently active) is not refilled
    held = engine._windows["t1"].columns(0)["event_id"]
    assert len(held) == 90 and held[-20:] == [f"k{i}" for i in range(10, 30)]  # the newest 20 of the key
    assert held[0] == "e230" and not any(e.startswith("old") for e in held)
    assert list(engine._windows) == ["t2", "t1", "live"]  # refilled tenants are the least recently active


class _Broken:
    def cursor(self) -> Any:
        raise OSError("disk gone")

    def read(self, sql: str, params: Any = None) -> Any:
        raise OSError("disk gone")

    def append(self, kind: str, columns: dict[str, list[Any]]) -> int:
        return 0


def test_a_store_that_cannot_answer_is_logged_and_streaming_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    engine = CorrelationEngine(_Broken(), export=False)  # type: ignore[arg-type]
    now = int(time.time() * 1e6)
    with caplog.at_level(logging.WARNING, logger="analytics.correlation"):
        stats = engine.refill(now_us=now)
    assert (stats.tenants, stats.kept, stats.failed) == (0, 0, 1)
    assert any("refill the correlation windows" in r.getMessage() and r.exc_info for r in caplog.records)
    assert engine.ingest(_rows(3, now)) == 3


def test_one_tenants_failed_read_leaves_the_others_refilled(store: EmbeddedStore, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    now = int(time.time() * 1e6)
    _stored(store, _rows(5, now - 5_000_000, tenant="t1"))
    _stored(store, _rows(5, now - 6_000_000, tenant="t2"))
    real = store.read

    def read(sql: str, params: Any = None) -> Any:
        if params and params[0] == "t1":
            raise OSError("bad block")
        return real(sql, params)

    monkeypatch.setattr(store, "read", read)
    engine = CorrelationEngine(store, export=False)
    with caplog.at_level(logging.WARNING, logger="analytics.correlation"):
        stats = engine.refill(now_us=now)
    assert (stats.tenants, stats.kept, stats.failed) == (1, 5, 1)
    assert set(engine.window_sizes()) == {"t2"}
    assert any("'t1'" in r.getMessage() for r in caplog.records)


def _hub_refill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, broken: bool) -> tuple[Any, dict[str, Any]]:
    """Start a hub over a data directory holding 200 events of the last minute; its windows and ports."""
    import asyncio

    from hub.service import HubService
    from tests.helpers.hub import hub_config

    first = EmbeddedStore(tmp_path / "data", wal_fsync=False)
    first.start()
    _stored(first, _rows(200, int(time.time() * 1e6) - 20_000_000))
    first.shutdown()
    svc = HubService(hub_config(tmp_path / "data"), install_signal_handlers=False)
    if broken:
        real = svc.store.read

        def read(sql: str, params: Any = None) -> Any:
            if "GROUP BY tenant_id ORDER BY 2 DESC" in sql:
                raise OSError("bad block")
            return real(sql, params)

        monkeypatch.setattr(svc.store, "read", read)

    done = threading.Event()
    refill = svc.correlation.refill

    def refill_then_say(*args: Any, **kwargs: Any) -> Any:
        try:
            return refill(*args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(svc.correlation, "refill", refill_then_say)

    async def main() -> tuple[Any, dict[str, Any]]:
        await svc.start()
        try:
            assert await asyncio.to_thread(done.wait, 60)  # a deadline against a hang, not a timing check
            # the flush thread (which refilled first) goes on flushing
            assert svc._corr_thread is not None and svc._corr_thread.is_alive()
            return svc.correlation.window_sizes(), dict(svc.bound)
        finally:
            await svc.shutdown()

    return asyncio.run(main())


def test_the_hub_refills_the_windows_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes, bound = _hub_refill(tmp_path, monkeypatch, broken=False)
    assert sizes == {"t1": (200, 0)} and "api" in bound


def test_the_hub_starts_when_the_refill_cannot_read_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with caplog.at_level(logging.INFO):
        sizes, bound = _hub_refill(tmp_path, monkeypatch, broken=True)
    assert sizes == {} and "api" in bound
    messages = [r.getMessage() for r in caplog.records]
    assert "hub started" in messages
    assert any("refill the correlation windows" in m for m in messages), messages
