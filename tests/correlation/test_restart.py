"""The streaming engine after a hub restart: a correlation seen again continues the stored one (its earlier
events, root and incident kept) instead of overwriting it with what the new process saw."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.correlation import CorrelationEngine
from analytics.correlation.scenarios import SCENARIOS, Dims
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import T0, process


def _engine(store: EmbeddedStore) -> CorrelationEngine:
    engine = CorrelationEngine(store, export=False)
    engine.start()
    return engine


def _feed(engine: CorrelationEngine, store: EmbeddedStore, cols: dict[str, list[Any]]) -> None:
    store.append("events", cols)  # what the pipeline does: store, then stream
    assert store.flush(30)
    engine.ingest(cols)
    engine.flush(now_us=max(cols["ts"]) + 1_000_000)


def test_a_chain_across_a_restart_keeps_its_first_events_root_and_incident(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    inj = SCENARIOS["security_chain"](rng, T0 + 10, Dims.pick(rng, 1))
    ids, root = inj.truth.event_ids, inj.truth.root_event_id  # injection, violation, policy fail, request error
    first, second = process(inj.events[:2]), process(inj.events[2:])
    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        before = _engine(store)
        _feed(before, store, first)
        assert before.repo is not None
        (chain,) = before.repo.list_correlations("t1", None, None, "causal_chain")
        assert chain["event_ids"] == ids[:2] and chain["root_event_id"] == root
        (incident,) = before.repo.list_incidents("t1")

        after = _engine(store)  # a restart: a new engine over the same store, its memory empty
        _feed(after, store, second)
        assert after.repo is not None
        (chain,) = after.repo.list_correlations("t1", None, None, "causal_chain")
        # it had been stored again with the two later events only, rooted at the policy failure
        assert chain["root_event_id"] == root and sorted(chain["event_ids"]) == sorted(ids)
        assert chain["event_ids"][0] == root and chain["start"] <= chain["end"]
        incidents = after.repo.list_incidents("t1")
        assert [i["id"] for i in incidents] == [incident["id"]]  # the same incident, not a later-rooted one
        assert incidents[0]["event_count"] == 4
        hyps = after.repo.hypotheses("t1", incident["id"])
        assert hyps and hyps[0]["root_event_id"] == root  # RCA saw the events from before the restart

        # the request goes on failing: the rows read back are remembered for the next analyses too
        last = inj.events[3]
        stamp = datetime.fromisoformat(last["timestamp"].replace("Z", "+00:00")) + timedelta(seconds=2)
        retry = {**last, "event_id": str(uuid.uuid4()), "timestamp": stamp.isoformat().replace("+00:00", "Z")}
        _feed(after, store, process([retry]))
        (chain,) = after.repo.list_correlations("t1", None, None, "causal_chain")
        assert chain["event_ids"][0] == root and len(chain["event_ids"]) == 5
        (again,) = after.repo.list_incidents("t1")
        assert again["id"] == incident["id"] and again["event_count"] == 5
        assert after.repo.hypotheses("t1", incident["id"])[0]["root_event_id"] == root  # type: ignore[index]
    finally:
        store.shutdown()


def _live(n: int, start_s: float, step_s: float, key: str = "k") -> dict[str, list[Any]]:
    """``n`` plain telemetry rows from ``start_s`` (epoch seconds), ``step_s`` apart."""
    return {"tenant_id": ["t1"] * n, "event_id": [f"{key}{i}" for i in range(n)],
            "ts": [int((start_s + i * step_s) * 1e6) for i in range(n)], "source_module": ["llm-observatory"] * n,
            "event_type": ["telemetry"] * n, "correlation_id": [None] * n}  # fmt: skip


def test_an_event_stamped_ahead_of_the_clock_does_not_empty_or_freeze_the_window() -> None:
    import time

    engine = CorrelationEngine(None)
    now = time.time()
    engine.ingest(_live(500, now - 50, 0.1))
    assert engine.window_sizes()["t1"][0] == 500
    engine.ingest(_live(1, now + 3600, 0, key="skewed"))  # a source an hour ahead (the normaliser accepts it)
    assert engine.window_sizes()["t1"][0] == 501  # it had evicted the 500 of the last minute at once
    # the window still closes behind: a minute later the first 500 are gone from what a flush analyses
    engine.ingest(_live(100, now + 60, 0.1, key="later"))
    (res,) = engine.flush_results(now_us=int((now + 70) * 1e6))
    assert res.events == 101 and engine.window_sizes()["t1"][0] == 101  # the 100 later ones and the skewed one


def test_a_late_event_is_not_analysed_with_a_window_it_is_older_than() -> None:
    engine = CorrelationEngine(None)
    engine.ingest(_live(300, 1_000_000.0, 0.1))  # [1,000,000 s, +30 s)
    engine.ingest(_live(5, 1_000_000.0 - 600, 1, key="late"))  # ten minutes late, behind the front row
    (res,) = engine.flush_results(now_us=int(1_000_031 * 1e6))
    assert res.events == 300 and engine.window_sizes()["t1"] == (300, 0)  # the late ones had been analysed too
