"""Streaming engine: bounded memory, continuation across windows, RCA, storage and export."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from analytics.correlation import (
    CorrelationEngine,
    EngineConfig,
    PushConfig,
    build_frame,
    push_compliance_report,
)
from analytics.correlation.frame import COLUMNS
from analytics.correlation.scenarios import SCENARIOS, Dims
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import T0, process, with_incident


def _rows(n: int, tenant: str = "t1", keys: int = 50, t0_us: int = 0) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {c: [None] * n for c in COLUMNS}
    cols["tenant_id"] = [tenant] * n
    cols["event_id"] = [f"e{i}" for i in range(n)]
    cols["ts"] = [t0_us + i * 1000 for i in range(n)]
    cols["correlation_id"] = [f"c{i % keys}" for i in range(n)]
    cols["source_module"] = ["llm-observatory"] * n
    cols["event_type"] = ["telemetry"] * n
    return cols


def test_streaming_memory_stays_under_caps() -> None:
    cfg = EngineConfig(max_events_per_window=5_000, max_events_per_key=30, max_tenants=3)
    engine = CorrelationEngine(None, cfg)
    for b in range(40):
        engine.ingest(_rows(5_000, tenant=f"t{b % 5}", keys=100, t0_us=b * 5_000_000_000))
        for rows, keys in engine.window_sizes().values():
            assert rows <= cfg.max_events_per_window
            assert keys <= 100
    sizes = engine.window_sizes()
    assert len(sizes) <= cfg.max_tenants
    # per-key cap: 100 keys x 30 events at most
    assert all(rows <= 100 * cfg.max_events_per_key for rows, _ in sizes.values())
    # time eviction: a flush far in the future empties the windows
    engine.flush(now_us=10**18)
    assert all(rows == 0 for rows, _ in engine.window_sizes().values())


def test_rca_top1_on_clear_chain(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(2)
    inj = SCENARIOS["security_chain"](rng, T0 + 40, Dims.pick(rng, 1))
    res = CorrelationEngine(None).analyze_frame(build_frame(with_incident(noise_events, inj)), "t1")
    truth = set(inj.truth.event_ids)
    inc = max(res.incidents, key=lambda i: len(truth & set(i.event_ids)))
    hyps = res.hypotheses[inc.id]
    assert hyps[0]["evidence"][0] == inj.truth.root_event_id
    assert [h["confidence"] for h in hyps] == sorted((h["confidence"] for h in hyps), reverse=True)
    graph = hyps[0]["graph"]
    assert {n["id"] for n in graph["nodes"]} >= truth and graph["edges"]


def test_streaming_continues_correlations_across_windows(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(4)
    inj = SCENARIOS["attack_campaign"](rng, T0 + 20, Dims.pick(rng, 2))
    cols = with_incident(noise_events, inj)
    order = np.argsort(cols["ts"])
    engine = CorrelationEngine(None)
    seen: dict[str, set[str]] = {}
    for chunk in np.array_split(order, 18):  # 5 s of traffic per batch
        engine.ingest({c: [cols[c][i] for i in chunk] for c in cols})
        for r in engine.flush_results(now_us=int(cols["ts"][chunk[-1]])):
            for c in r.correlations:
                if c.type == "security_incident":
                    seen[c.id] = set(c.event_ids)
    assert len(seen) == 1, "one attack, one correlation id across windows"
    assert set(inj.truth.event_ids) <= next(iter(seen.values()))


def test_store_and_export(tmp_path: Any, noise_events: list[dict[str, Any]]) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        registry = CollectorRegistry()
        engine = CorrelationEngine(store, registry=registry)
        engine.start()
        engine.start()  # idempotent
        rng = np.random.default_rng(7)
        inj = SCENARIOS["failed_billing"](rng, T0 + 30, Dims.pick(rng, 3))
        cols = with_incident(noise_events, inj)
        store.append("events", cols)
        assert store.flush(30)
        res = engine.analyze("t1", int((T0 - 10) * 1e6), int((T0 + 200) * 1e6))
        assert any(c.type == "cost_impact" for c in res.new)
        assert store.flush(30)
        rows = engine.repo.list_correlations("t1", None, None, "cost_impact")  # type: ignore[union-attr]
        assert rows and rows[0]["impact"]["cost"]["wasted_usd"] > 0
        logs = store.read(
            "SELECT count(*), count(DISTINCT trace_id) FROM logs WHERE event_name = 'hub.correlation'"
        ).fetchone()
        assert logs is not None and logs[0] == len(res.new) == logs[1]
        spans = store.read("SELECT trace_id, count(*) FROM spans WHERE source = 'correlation' GROUP BY 1").fetchall()
        assert len(spans) == len(res.new) and all(n >= 2 for _, n in spans)
        assert registry.get_sample_value("hub_correlations_total", {"type": "cost_impact"}) >= 1
        again = engine.analyze("t1", int((T0 - 10) * 1e6), int((T0 + 200) * 1e6))
        assert again.new == []  # stored already: not exported twice
        assert engine.repo.list_correlations("t2", None, None, None) == []  # type: ignore[union-attr]
    finally:
        store.shutdown()


def test_push_retries_then_succeeds() -> None:
    calls: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(503 if len(calls) < 3 else 200, headers={"Retry-After": "0"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    status = push_compliance_report(
        PushConfig(url="http://policy.test/report"), {"policies": []}, client, sleep=lambda _: None
    )
    assert status == 200 and len(calls) == 3
    assert push_compliance_report(PushConfig(), {"policies": []}) == 0


def test_push_recent_compliance(tmp_path: Any) -> None:
    from analytics.correlation import push_recent_compliance
    from tests.helpers.events import make_event

    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        store.append("events", process([make_event("policy", payload={"result": r}) for r in ("pass", "fail", "pass")]))
        assert store.flush(30)
        sent: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(json.loads(request.content))
            return httpx.Response(202)

        client = httpx.Client(transport=httpx.MockTransport(handler))
        assert push_recent_compliance(store, "t1", PushConfig(url="http://policy.test/r"), client=client) == 202
        (policy,) = sent[0]["policies"]
        assert (policy["policy_id"], policy["evaluations"], policy["fail"]) == ("rate-limit", 3, 1)
        assert abs(policy["compliance_rate"] - 2 / 3) < 1e-6
    finally:
        store.shutdown()


def test_config_validation() -> None:
    import pytest

    with pytest.raises(ValueError, match="window_s"):
        EngineConfig(window_s=0)
    with pytest.raises(ValueError, match="url"):
        PushConfig(url="ftp://x")


def test_process_helper_keeps_tenant() -> None:
    cols = process([])
    assert cols["event_id"] == []


def test_times_relative_to_now_are_accepted_like_the_other_endpoints() -> None:
    import time

    from analytics.correlation.timeutil import BadTimeError, parse_time

    now = time.time()
    assert abs(parse_time("-24h", "start") / 1e6 - (now - 86_400)) < 5
    assert abs(parse_time("-90m", "start") / 1e6 - (now - 5_400)) < 5
    assert abs(parse_time("-1.5d", "start") / 1e6 - (now - 129_600)) < 5
    assert abs(parse_time("now", "end") / 1e6 - now) < 5
    assert parse_time("5", "start") == 5_000_000  # a bare number is epoch seconds ...
    with pytest.raises(BadTimeError, match="between 1970-01-01 and 2100-01-01, got '-5'"):
        parse_time("-5", "start")  # ... so -5 is 1969: out of range, as on the analytics endpoints
    assert parse_time("2026-01-01T00:00:00Z", "start") == 1_767_225_600_000_000
    for bad in ("yesterday", "-24x", "24h"):
        try:
            parse_time(bad, "start")
        except BadTimeError as exc:
            assert "start must be ISO-8601, epoch seconds, now or -24h" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
