"""The ingest pipeline: a batch that could not be stored is forgotten by the de-duplicator, and
rejected events are dead-lettered under their own tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
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


class _SmallQueue:
    """A stack exporter whose queue has room for ``room`` bytes (a real DiskQueue under it)."""

    kinds = frozenset({"events"})

    def __init__(self, directory: Path, room: int) -> None:
        from exporters.queue.disk_queue import DiskQueue

        self.queue = DiskQueue(directory, max_bytes=room, fsync=False)
        self.queue.put({"kind": "events", "cols": {"x": [1]}})  # not empty: the bound applies

    def has_room(self, nbytes: int = 0) -> bool:
        return self.queue.has_room(nbytes)

    def export(self, kind: str, columns: dict[str, list[Any]]) -> None:
        self.queue.put({"kind": kind, "cols": columns})


def test_a_batch_too_big_for_an_export_queue_is_refused_before_anything_keeps_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store", wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        small = _SmallQueue(tmp_path / "q", room=2_000)
        pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), HubMetrics(),
                              exporters={"events": [("loki", small)]})  # fmt: skip
        batch = _raw(*[make_event("cost") for _ in range(20)])  # far more than 2 kB encoded
        with pytest.raises(QueueFullError):
            pipe.consume_events(batch, tenant_id="t", receiver="rest")
        assert _stored(pipe) == []  # before: stored, then refused; the client's resend was stored twice
        assert small.queue.depth == 1
        small.queue.max_bytes = 1 << 20  # the backend drained: the resend goes everywhere, once
        assert pipe.consume_events(batch, tenant_id="t", receiver="rest").accepted == 20
        assert len(_stored(pipe)) == 20 and small.queue.depth == 2
    finally:
        store.shutdown()


def test_a_full_disk_under_an_export_queue_is_a_retryable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporters.queue.disk_queue import DiskQueue
    from hubcore.errors import StoreUnavailableError

    q = DiskQueue(tmp_path, fsync=False)

    def full(body: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(q._wal, "append", full)
    with pytest.raises(StoreUnavailableError, match="No space left"):  # 503 + Retry-After, not a 500
        q.put({"kind": "events", "cols": {"x": [1]}})
    assert q.depth == 0


def test_an_export_queue_on_a_full_disk_after_the_store_kept_the_batch_dead_letters_its_copy(tmp_path: Path) -> None:
    """The store (the record of what was acknowledged) kept the batch: answering 503 would have the client
    resend it and the store keep it twice; the backend's missing copy is dead-lettered and counted."""
    store = EmbeddedStore(tmp_path / "store", wal_fsync=False, flush_interval=0.02)
    store.start()
    refused: list[tuple[str, int, str]] = []

    class DiskFull:
        kinds = frozenset({"events"})

        def has_room(self, nbytes: int = 0) -> bool:
            return True

        def export(self, kind: str, columns: dict[str, list[Any]]) -> None:
            from hubcore.errors import StoreUnavailableError

            raise StoreUnavailableError("exporter queue cannot write (No space left on device)", retry_after=5.0)

        def refuse(self, kind: str, columns: dict[str, list[Any]], reason: str) -> None:
            refused.append((kind, len(columns["event_id"]), reason))

    try:
        pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), HubMetrics(),
                              exporters={"events": [("victoriametrics", DiskFull())]})  # fmt: skip
        out = pipe.consume_events(_raw(*[make_event("cost") for _ in range(3)]), tenant_id="t", receiver="rest")
        assert out.accepted == 3  # acknowledged: the store has it
        assert len(_stored(pipe)) == 3
        assert refused and refused[0][:2] == ("events", 3) and "No space left" in refused[0][2]
    finally:
        store.shutdown()


def test_refuse_dead_letters_and_counts(tmp_path: Path) -> None:
    from exporters.loki import LokiExporter, LokiExporterConfig
    from tests.exporters._util import queue_in

    ex = LokiExporter(LokiExporterConfig(endpoint="http://127.0.0.1:9", sending_queue=queue_in(tmp_path)))
    ex.start()
    try:
        ex.refuse("logs", {"tenant_id": ["t", "t"], "ts": [1, 2]}, "OSError: No space left on device")
        assert ex.delivery_stats is not None and ex.delivery_stats.dead_lettered == 2
        line = json.loads((tmp_path / "dead_letter.jsonl").read_text().splitlines()[-1])
        assert "not queued" in line["reason"] and line["records"] == 2
    finally:
        ex.shutdown(1.0)


class _CountingEncoder:
    """Wraps a module's msgpack encoder; counts the batches (``{"kind", "cols"}``) it encodes."""

    def __init__(self, inner: Any, counts: list[str], where: str) -> None:
        self.inner, self.counts, self.where = inner, counts, where

    def encode(self, obj: Any) -> bytes:
        if isinstance(obj, dict) and "cols" in obj:
            self.counts.append(self.where)
        return self.inner.encode(obj)


def test_stack_mode_encodes_each_batch_once_for_the_room_check_the_store_and_every_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.pipeline
    import hubcore.storage.wal
    from exporters.loki import LokiExporter, LokiExporterConfig
    from exporters.queue import disk_queue
    from exporters.tempo import TempoExporter, TempoExporterConfig
    from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
    from tests.exporters._util import queue_in

    url = "http://127.0.0.1:9"
    built = [
        ("victoriametrics", VictoriaMetricsExporter(VictoriaMetricsExporterConfig(url, sending_queue=queue_in(tmp_path / "vm")))),
        ("loki", LokiExporter(LokiExporterConfig(url, sending_queue=queue_in(tmp_path / "loki")))),
        ("tempo", TempoExporter(TempoExporterConfig(url, sending_queue=queue_in(tmp_path / "tempo")))),
    ]  # fmt: skip
    store = EmbeddedStore(tmp_path / "store", wal_fsync=False, flush_interval=0.02)
    store.start()
    for _name, ex in built:
        ex.start()
        ex._stop.set()  # no delivery: the queues keep what they got, to be read back below
        assert ex._thread is not None
        ex._thread.join(5)
    counts: list[str] = []
    for module, attr, where in ((hub.pipeline, "_msgpack", "room check"), (disk_queue, "_encoder", "queue"),
                                (hubcore.storage.wal, "_encoder", "log")):  # fmt: skip
        monkeypatch.setattr(module, attr, _CountingEncoder(getattr(module, attr), counts, where))
    try:
        pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), HubMetrics(),
                              exporters={"events": built})  # fmt: skip
        events = [make_event("cost"), make_event("security")]
        assert pipe.consume_events(_raw(*events), tenant_id="t", receiver="rest").accepted == 2
        assert counts == ["room check"]  # before: once more by the store's log and by each of the three queues
        assert sorted(e for _t, e in _stored(pipe)) == sorted(e["event_id"] for e in events)
        for _name, ex in built:
            assert ex._queue is not None
            ((_seq, body),) = ex._queue.peek(10)
            assert body["kind"] == "events"
            assert sorted(body["cols"]["event_id"]) == sorted(e["event_id"] for e in events)
            assert len(msgspec.msgpack.encode(body)) == ex._queue.pending_bytes  # the size the bound counts
    finally:
        for _name, ex in built:
            ex.shutdown(1.0)
        store.shutdown()


def test_stack_mode_refuses_unencodable_rows_as_a_permanent_error(tmp_path: Path) -> None:
    from hubcore.errors import PermanentError

    store = EmbeddedStore(tmp_path / "store", wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        small = _SmallQueue(tmp_path / "q", room=1 << 20)
        pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), HubMetrics(),
                              exporters={"events": [("loki", small)]})  # fmt: skip
        with pytest.raises(PermanentError, match="cannot be logged"):  # as the store alone answers (a 400)
            pipe._deliver("events", "events", {"event_id": ["x"], "value": [2**70]})
        assert small.queue.depth == 1 and _stored(pipe) == []
    finally:
        store.shutdown()
