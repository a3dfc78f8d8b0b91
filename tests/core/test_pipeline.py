"""The ingest pipeline: a batch that could not be stored is forgotten by the de-duplicator, and
rejected events are dead-lettered under their own tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.pipeline import IngestPipeline
from hubcore.config import NativeEventsConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.errors import QueueFullError, RetryableError
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from tests.helpers.events import make_event


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[IngestPipeline]:
    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        yield IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), HubMetrics())
    finally:
        store.shutdown()


def _raw(*events: dict[str, Any]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def _stored(pipe: IngestPipeline) -> list[tuple[Any, ...]]:
    assert pipe.store.flush(10.0)
    return pipe.store.read("SELECT tenant_id, event_id FROM events ORDER BY event_id").fetchall()


@pytest.mark.parametrize(
    "error",
    [
        OSError(28, "No space left on device"),
        OverflowError("int too big to convert"),
        RetryableError("store unavailable"),
        RuntimeError("anything"),
        QueueFullError("queue full", retry_after=1.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_batch_the_store_refused_is_not_a_duplicate_when_resent(
    pipeline: IngestPipeline, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    real_append = pipeline.store.append
    calls: list[str] = []

    def failing_once(kind: str, columns: dict[str, list[Any]]) -> int:
        calls.append(kind)
        if len(calls) == 1:
            raise error
        return real_append(kind, columns)

    monkeypatch.setattr(pipeline.store, "append", failing_once)
    batch = _raw(make_event("cost"), make_event("telemetry"))
    with pytest.raises(type(error)):
        pipeline.consume_events(batch, tenant_id="t1", receiver="rest")
    outcome = pipeline.consume_events(batch, tenant_id="t1", receiver="rest")  # the client's resend
    assert (outcome.accepted, outcome.duplicates) == (2, 0)
    assert len(_stored(pipeline)) == 2
    assert pipeline.consume_events(batch, tenant_id="t1", receiver="rest").duplicates == 2  # now it is stored


def test_rejected_events_are_dead_lettered_under_their_own_tenant(pipeline: IngestPipeline) -> None:
    acme = make_event("cost", payload={"amount": 2.0, "currency": "XYZ"}, tags={"tenant_id": "acme"})
    bad_tag = make_event("cost", payload={"amount": 2.0}, tags={"tenant_id": "acme corp/x"})
    plain = make_event("cost", payload={"amount": -1})
    outcome = pipeline.consume_events(_raw(acme, bad_tag, plain), tenant_id=None, receiver="kafka")
    assert len(outcome.rejected) == 3
    (entry,), total = pipeline.dlq.list(tenant_id="acme")
    assert total == 1 and json.loads(entry["raw"])["event_id"] == acme["event_id"]
    default = pipeline.config.default_tenant
    entries, _ = pipeline.dlq.list(tenant_id=default)
    assert {json.loads(e["raw"])["event_id"] for e in entries} == {bad_tag["event_id"], plain["event_id"]}

    # replay (after the rate is configured) stores acme's event under acme, not the default tenant
    pipeline.processor.config.exchange_rates["XYZ"] = 2.0
    assert pipeline.replay_dlq(tenant_id="acme") == (1, 1)
    assert _stored(pipeline) == [("acme", acme["event_id"])]


def test_a_request_tenant_still_wins_for_dead_letters(pipeline: IngestPipeline) -> None:
    ev = make_event("cost", payload={"amount": 0}, tags={"tenant_id": "acme"})
    pipeline.consume_events(_raw(ev), tenant_id="t1", receiver="rest")
    assert pipeline.dlq.list(tenant_id="t1")[1] == 1
    assert pipeline.dlq.list(tenant_id="acme")[1] == 0


def test_a_replay_the_store_refused_can_be_replayed_again(
    pipeline: IngestPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = make_event("cost", payload={"currency": "XYZ"})
    pipeline.consume_events(_raw(ev), tenant_id="t1", receiver="rest")
    pipeline.processor.config.exchange_rates["XYZ"] = 2.0
    real_append = pipeline.store.append

    def refuse(kind: str, columns: dict[str, list[Any]]) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline.store, "append", refuse)
    with pytest.raises(OSError):
        pipeline.replay_dlq(tenant_id="t1")
    monkeypatch.setattr(pipeline.store, "append", real_append)
    assert pipeline.replay_dlq(tenant_id="t1") == (1, 1)
    assert _stored(pipeline) == [("t1", ev["event_id"])]
