"""The native-event gRPC receiver against a real grpc.aio server, pipeline and embedded store."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from hub.pipeline import IngestPipeline
from hubcore.config import NativeEventsConfig
from hubcore.contracts import IngestOutcome
from hubcore.dlq import DeadLetterQueue
from hubcore.errors import QueueFullError
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from receivers.native_grpc import add_event_stream_servicer, server_options
from receivers.native_grpc.client import EventStreamClient, encode_event
from receivers.native_grpc.protos import events_pb2, events_pb2_grpc

T = TypeVar("T")
Ack = events_pb2.Ack
EventBatch = events_pb2.EventBatch
STREAM_METHOD = "/llm_analytics_hub.v1.EventIngestionService/StreamEvents"
SEND_METHOD = "/llm_analytics_hub.v1.EventIngestionService/SendEvents"


def event(**overrides: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "source_module": "llm-costops",
        "event_type": "cost",
        "schema_version": "1.0.0",
        "payload": {"model": "gpt-4o", "cost_type": "token", "amount": 0.02},
    }
    ev.update(overrides)
    return ev


class LoopThread:
    """An asyncio loop in a thread, so that tests can use blocking gRPC clients against an aio server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=20)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@dataclass
class Hub:
    store: EmbeddedStore
    pipeline: IngestPipeline
    metrics: HubMetrics

    def count(self, where: str = "true") -> int:
        self.store.flush()
        row = self.store.read(f"select count(*) from events where {where}").fetchone()
        assert row is not None
        return int(row[0])


class Throttled:
    """A consumer that answers QueueFullError ``times`` times, then delegates."""

    def __init__(self, inner: IngestPipeline, times: int, retry_after: float = 0.2) -> None:
        self.inner, self.times, self.retry_after, self.calls = inner, times, retry_after, 0

    def consume_events(self, raw_events: Sequence[Any], *, tenant_id: str | None, receiver: str) -> IngestOutcome:
        self.calls += 1
        if self.times > 0:
            self.times -= 1
            raise QueueFullError("ingest queue is full", retry_after=self.retry_after)
        return self.inner.consume_events(raw_events, tenant_id=tenant_id, receiver=receiver)


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    metrics = HubMetrics()
    pipeline = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp_path, fsync=False), metrics)
    yield Hub(store, pipeline, metrics)
    store.shutdown()


@pytest.fixture
def serve(loop_thread: LoopThread) -> Iterator[Callable[..., str]]:
    """``serve(consumer, **limits) -> "127.0.0.1:port"``; servers stop at teardown."""
    servers: list[grpc.aio.Server] = []

    def start(consumer: Any, **limits: int) -> str:
        async def make() -> int:
            server = grpc.aio.server(options=server_options(limits.get("max_message_bytes", 8 << 20)))
            add_event_stream_servicer(server, consumer, **limits)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            servers.append(server)
            return port

        return f"127.0.0.1:{loop_thread.run(make())}"

    yield start
    for server in servers:
        loop_thread.run(server.stop(None))


@pytest.fixture
def channels() -> Iterator[Callable[[str], grpc.Channel]]:
    opened: list[grpc.Channel] = []

    def open_channel(target: str) -> grpc.Channel:
        ch = grpc.insecure_channel(target)
        opened.append(ch)
        return ch

    yield open_channel
    for ch in opened:
        ch.close()


def batch(events: Sequence[dict[str, Any] | bytes], batch_id: str = "b", tenant_id: str = "") -> Any:
    return EventBatch(batch_id=batch_id, events_json=[encode_event(e) for e in events], tenant_id=tenant_id)


class Outbox:
    """A request iterator the test feeds one batch at a time (``None`` half-closes)."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def __iter__(self) -> Iterator[Any]:
        while (item := self.q.get()) is not None:
            yield item

    def put(self, item: Any) -> None:
        self.q.put(item)


# -- storing and acknowledging ---------------------------------------------------------------------
def test_stream_stores_valid_events_and_acks_every_batch(hub: Hub, serve: Callable[..., str]) -> None:
    target = serve(hub.pipeline)
    with EventStreamClient(target) as client:
        acks = list(client.stream([[event() for _ in range(5)] for _ in range(12)]))
    assert len(acks) == 12
    assert len({a.batch_id for a in acks}) == 12
    for ack in acks:
        assert (ack.status, ack.accepted, ack.duplicates, len(ack.rejected)) == (Ack.OK, 5, 0, 0)
        assert 1 <= ack.credits <= 8
    assert hub.count() == 60
    assert (
        hub.metrics.registry.get_sample_value(
            "hub_ingest_events_total", {"receiver": "grpc_stream", "tenant_id": "default"}
        )
        == 60
    )


def test_initial_credits_in_metadata_and_acks_in_order(
    hub: Hub, serve: Callable[..., str], channels: Callable[[str], grpc.Channel]
) -> None:
    stub = events_pb2_grpc.EventIngestionServiceStub(channels(serve(hub.pipeline, max_in_flight=3)))
    requests = [batch([event()], batch_id=f"b{i}") for i in range(6)]
    call = stub.StreamEvents(iter(requests))
    assert ("x-credits", "3") in list(call.initial_metadata())
    acks = list(call)
    assert [a.batch_id for a in acks] == [f"b{i}" for i in range(6)]
    assert all(a.credits == 3 and a.status == Ack.OK for a in acks)
    assert call.code() == grpc.StatusCode.OK


def test_unary_send_and_duplicates(hub: Hub, serve: Callable[..., str]) -> None:
    events = [event() for _ in range(4)]
    with EventStreamClient(serve(hub.pipeline)) as client:
        first = client.send(events, batch_id="one")
        again = client.send(events, batch_id="two")
    assert (first.batch_id, first.status, first.accepted, first.duplicates) == ("one", Ack.OK, 4, 0)
    assert (again.batch_id, again.status, again.accepted, again.duplicates) == ("two", Ack.OK, 0, 4)
    assert first.credits == 0
    assert hub.count() == 4


# -- bad events and bad batches --------------------------------------------------------------------
def test_invalid_json_event_is_rejected_with_index_and_reason(hub: Hub, serve: Callable[..., str]) -> None:
    good = event()
    with EventStreamClient(serve(hub.pipeline)) as client:
        (ack,) = client.stream([[event(), b'{"event_id": "x", oops', good]])
    assert ack.status == Ack.PARTIAL
    assert ack.accepted == 2
    assert [(r.index, r.reason.split(":")[0]) for r in ack.rejected] == [(1, "malformed JSON")]
    (everything_bad,) = EventStreamClient(serve(hub.pipeline)).stream([[b"not json", {"event_id": "e"}]])
    assert everything_bad.status == Ack.REJECTED
    assert [r.index for r in everything_bad.rejected] == [0, 1]
    assert everything_bad.rejected[1].reason.startswith("invalid event")
    assert hub.count() == 2


def test_unknown_major_schema_version_is_rejected(hub: Hub, serve: Callable[..., str]) -> None:
    future = event(schema_version="2.0.0")
    with EventStreamClient(serve(hub.pipeline)) as client:
        ack = client.send([future, event(schema_version="1.4.0")])
    assert ack.status == Ack.PARTIAL
    (rej,) = ack.rejected
    assert (rej.index, rej.event_id) == (0, future["event_id"])
    assert "unsupported schema_version '2.0.0'" in rej.reason
    assert hub.count() == 1


def test_oversized_and_empty_batches_are_refused_and_the_stream_goes_on(
    hub: Hub, serve: Callable[..., str], channels: Callable[[str], grpc.Channel]
) -> None:
    target = serve(hub.pipeline, max_batch_events=10, max_message_bytes=64 << 10)
    stub = events_pb2_grpc.EventIngestionServiceStub(channels(target))
    big_event = event(tags={"blob": "x" * 4000})
    requests = [
        batch([event() for _ in range(11)], batch_id="too-many"),
        batch(
            [big_event] * 1 + [event(tags={f"k{i}": "y" * 4000 for i in range(16)}) for _ in range(2)],
            batch_id="too-big",
        ),
        batch([], batch_id="empty"),
        batch([event() for _ in range(10)], batch_id="fine"),
    ]
    acks = {a.batch_id: a for a in stub.StreamEvents(iter(requests))}
    assert acks["too-many"].status == Ack.REJECTED
    assert "max_batch_events=10" in acks["too-many"].message
    assert acks["too-big"].status == Ack.REJECTED
    assert "max_message_bytes=65536" in acks["too-big"].message
    assert acks["empty"].status == Ack.REJECTED
    assert "empty batch" in acks["empty"].message
    assert (acks["fine"].status, acks["fine"].accepted) == (Ack.OK, 10)
    assert hub.count() == 10
    rejected = hub.metrics.registry.get_sample_value
    assert rejected("hub_ingest_rejected_total", {"receiver": "grpc_stream", "reason": "batch_too_large"}) == 2
    assert rejected("hub_ingest_rejected_total", {"receiver": "grpc_stream", "reason": "empty_batch"}) == 1
    # far beyond the limit, gRPC itself refuses the message (nothing is buffered)
    with pytest.raises(grpc.RpcError) as info:
        stub.SendEvents(batch([b"x" * (2 << 20)]))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_garbage_frames_get_an_error_and_the_server_keeps_serving(
    hub: Hub, serve: Callable[..., str], channels: Callable[[str], grpc.Channel]
) -> None:
    target = serve(hub.pipeline)
    channel = channels(target)
    raw_stream = channel.stream_stream(STREAM_METHOD)  # identity (de)serializers: raw bytes both ways
    good = batch([event()], batch_id="after-garbage").SerializeToString()
    replies = [Ack.FromString(r) for r in raw_stream(iter([b"\xff\xff", good]))]
    assert [r.status for r in replies] == [Ack.REJECTED, Ack.OK]
    assert "not an EventBatch" in replies[0].message
    assert replies[1].batch_id == "after-garbage"
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(SEND_METHOD)(b"\xff\xff")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with EventStreamClient(target) as client:
        assert client.send([event()]).status == Ack.OK
    assert hub.count() == 2


# -- back-pressure ---------------------------------------------------------------------------------
def test_queue_full_answers_retry_keeps_the_stream_and_a_resend_succeeds(
    hub: Hub, serve: Callable[..., str], channels: Callable[[str], grpc.Channel]
) -> None:
    consumer = Throttled(hub.pipeline, times=1, retry_after=0.2)
    stub = events_pb2_grpc.EventIngestionServiceStub(channels(serve(consumer, max_in_flight=8)))
    outbox = Outbox()
    call = stub.StreamEvents(iter(outbox))
    the_batch = batch([event() for _ in range(3)], batch_id="a")
    outbox.put(the_batch)
    first = next(call)
    assert (first.batch_id, first.status, first.retry_after_seconds) == ("a", Ack.RETRY, pytest.approx(0.2))
    assert first.credits == 4  # halved while the hub is busy
    assert hub.count() == 0  # nothing of a RETRY batch is stored
    time.sleep(first.retry_after_seconds)
    outbox.put(the_batch)
    second = next(call)
    assert (second.batch_id, second.status, second.accepted, second.duplicates) == ("a", Ack.OK, 3, 0)
    assert second.credits == 5
    outbox.put(None)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK
    assert hub.count() == 3


def test_client_resends_retry_batches_after_the_hint(hub: Hub, serve: Callable[..., str]) -> None:
    consumer = Throttled(hub.pipeline, times=2, retry_after=0.1)
    retries: list[Any] = []
    started = time.monotonic()
    with EventStreamClient(serve(consumer)) as client:
        acks = list(client.stream([[event() for _ in range(2)] for _ in range(5)], on_retry=retries.append))
    assert len(retries) == 2 and all(r.status == Ack.RETRY for r in retries)
    assert time.monotonic() - started >= 0.1
    assert len(acks) == 5 and all(a.status == Ack.OK and a.accepted == 2 for a in acks)
    assert hub.count() == 10
    with EventStreamClient(serve(Throttled(hub.pipeline, times=1, retry_after=0.05)), max_retries=0) as c:
        assert c.send([event()]).status == Ack.RETRY


# -- tenant ----------------------------------------------------------------------------------------
def test_metadata_tenant_wins_over_batch_tenant(
    hub: Hub, serve: Callable[..., str], channels: Callable[[str], grpc.Channel]
) -> None:
    stub = events_pb2_grpc.EventIngestionServiceStub(channels(serve(hub.pipeline)))
    assert stub.SendEvents(batch([event()], tenant_id="other"), metadata=(("x-scope-orgid", "acme"),)).accepted == 1
    assert stub.SendEvents(batch([event()], tenant_id="other")).accepted == 1
    assert stub.SendEvents(batch([event()])).accepted == 1
    acks = list(stub.StreamEvents(iter([batch([event()], tenant_id="other")]), metadata=(("x-scope-orgid", "acme"),)))
    assert acks[0].accepted == 1
    hub.store.flush()
    rows = hub.store.read("select tenant_id, count(*) from events group by 1 order by 1").fetchall()
    assert rows == [("acme", 2), ("default", 1), ("other", 1)]
