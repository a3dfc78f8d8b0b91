"""Simulated traffic shows the platform's flow in the dependency graph (``GET /api/v1/dependencies``).

It was always empty: every event of a request had the request's time, so a correlation id gave no order
(``analytics.correlation.dependency_graph`` draws a ``precedes`` edge only between components whose first
events are strictly ordered). The events of a request now follow the order a platform handles a call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest

from analytics.correlation import dependency_graph
from hub.simulate import GeneratorState, generate_timed, synthetic_traces
from hubcore.config import NativeEventsConfig
from hubcore.storage.embedded import EmbeddedStore
from processors.native_events.processor import NativeEventsProcessor

T0 = float(int(time.time()) - 600)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


def _ingest(store: EmbeddedStore, n: int, seed: int) -> None:
    state = GeneratorState.create(synthetic_traces(), rate=200.0, t0=T0)
    events, _ = generate_timed(n, np.random.default_rng(seed), state)
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], tenant_id="t1", now_us=int(time.time() * 1e6))  # fmt: skip
    assert not res.rejected, res.rejected[:3]
    store.append("events", res.columns)
    assert store.flush(10.0)


def test_simulated_traffic_yields_the_platforms_flow(store: EmbeddedStore) -> None:
    _ingest(store, 6000, seed=3)
    graph = dependency_graph(store, "t1", int(T0 * 1e6), int((T0 + 120) * 1e6))
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    # policy check and security scan before the model call's telemetry, its cost and governance audit after
    for pair in [("llm-policy-engine", "llm-observatory"), ("llm-observatory", "llm-costops"),
                 ("llm-costops", "llm-governance"), ("llm-policy-engine", "llm-sentinel"),
                 ("llm-sentinel", "llm-observatory")]:  # fmt: skip
        assert pair in edges, (pair, sorted(edges))
        assert edges[pair]["kind"] == "precedes" and edges[pair]["evidence"] == "correlation_ids"
    # never against the flow
    for late, early in [("llm-observatory", "llm-policy-engine"), ("llm-costops", "llm-observatory"),
                        ("llm-governance", "llm-costops")]:  # fmt: skip
        assert (late, early) not in edges
    assert {n["id"] for n in graph["nodes"]} >= {"llm-policy-engine", "llm-observatory", "llm-costops",
                                                  "llm-governance"}  # fmt: skip
    # weighted by requests: every successful call has a cost, 30 % a policy check, 8 % an audit record
    heaviest = [(e["source"], e["target"]) for e in graph["edges"][:3]]
    assert heaviest == [("llm-observatory", "llm-costops"), ("llm-policy-engine", "llm-observatory"),
                        ("llm-costops", "llm-governance")]  # fmt: skip
