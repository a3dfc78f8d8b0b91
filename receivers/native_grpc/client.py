"""A small synchronous client for ``EventIngestionService`` (tests, ``hub simulate``, scripts).

    >>> from receivers.native_grpc.client import EventStreamClient
    >>> with EventStreamClient("127.0.0.1:4320", tenant_id="acme") as client:   # doctest: +SKIP
    ...     ack = client.send([{"event_id": "...", "timestamp": "...", ...}])
    ...     for ack in client.stream([[event1, event2], [event3]]):
    ...         print(ack.batch_id, ack.status, ack.accepted, list(ack.rejected))

``stream`` keeps at most ``credits`` batches unacknowledged and resends a batch answered ``RETRY``
after its ``retry_after_seconds`` (up to ``max_retries`` times; after that the RETRY Ack is yielded).
It yields one final Ack per batch, in the order the acks arrive.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import grpc
import msgspec

from receivers.native_grpc.protos import events_pb2
from receivers.native_grpc.service import CREDITS_METADATA_KEY, TENANT_METADATA_KEY

Event = dict[str, Any] | bytes | bytearray | memoryview | str
_SERVICE = "/llm_analytics_hub.v1.EventIngestionService/"


def encode_event(event: Event) -> bytes:
    """One native event as JSON bytes (dicts are encoded, bytes and str passed through)."""
    if isinstance(event, dict):
        return msgspec.json.encode(event)
    if isinstance(event, str):
        return event.encode()
    return bytes(event)


class EventStreamClient:
    """Talks to the hub's native gRPC receiver over one channel (insecure unless ``channel`` is given)."""

    def __init__(
        self,
        target: str,
        *,
        tenant_id: str | None = None,
        channel: grpc.Channel | None = None,
        timeout: float | None = 30.0,
        max_retries: int = 5,
        max_message_bytes: int = 16 << 20,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.target = target
        self.timeout = timeout
        self.max_retries = max_retries
        self._own_channel = channel is None
        self._channel = channel or grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self._metadata = tuple(metadata) + (((TENANT_METADATA_KEY, tenant_id),) if tenant_id else ())
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        serialize = events_pb2.EventBatch.SerializeToString
        parse = events_pb2.Ack.FromString
        self._send = self._channel.unary_unary(
            _SERVICE + "SendEvents", request_serializer=serialize, response_deserializer=parse
        )
        self._stream = self._channel.stream_stream(
            _SERVICE + "StreamEvents", request_serializer=serialize, response_deserializer=parse
        )

    def __enter__(self) -> EventStreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def batch(self, events: Iterable[Event], *, batch_id: str | None = None, tenant_id: str = "") -> Any:
        """An ``EventBatch`` with a fresh ``batch_id`` unless one is given."""
        return events_pb2.EventBatch(
            batch_id=batch_id or f"{self._prefix}-{next(self._ids)}",
            events_json=[encode_event(e) for e in events],
            tenant_id=tenant_id,
        )

    def send(self, events: Iterable[Event], *, batch_id: str | None = None) -> Any:
        """One batch through the unary ``SendEvents``; RETRY answers are retried after their hint."""
        request = self.batch(events, batch_id=batch_id)
        for attempt in itertools.count():
            ack = self._send(request, timeout=self.timeout, metadata=self._metadata)
            if ack.status != events_pb2.Ack.RETRY or attempt >= self.max_retries:
                return ack
            time.sleep(max(0.0, ack.retry_after_seconds))
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self, batches: Iterable[Iterable[Event]], *, on_retry: Callable[[Any], None] | None = None
    ) -> Iterator[Any]:
        """Send ``batches`` over one ``StreamEvents`` stream; yield each batch's final Ack."""
        outbox: queue.Queue[Any] = queue.Queue()

        def requests() -> Iterator[Any]:
            while (item := outbox.get()) is not None:
                yield item

        call = self._stream(requests(), metadata=self._metadata)
        finished = False
        try:
            window = _initial_credits(call)
            source = iter(batches)
            exhausted = False
            in_flight: dict[str, tuple[Any, int]] = {}  # batch_id -> (batch, attempts so far)
            waiting: list[tuple[float, int, Any, int]] = []  # (resend at, tie-break, batch, attempts)
            order = itertools.count()
            while True:
                while len(in_flight) < window:
                    if waiting and waiting[0][0] <= time.monotonic():
                        _, _, batch, attempts = heapq.heappop(waiting)
                    elif not exhausted:
                        try:
                            batch, attempts = self.batch(next(source)), 0
                        except StopIteration:
                            exhausted = True
                            continue
                    else:
                        break
                    in_flight[batch.batch_id] = (batch, attempts)
                    outbox.put(batch)
                if not in_flight:
                    if not waiting:
                        break  # everything sent and acknowledged
                    time.sleep(max(0.0, waiting[0][0] - time.monotonic()))
                    continue
                try:
                    ack = next(call)
                except StopIteration:
                    raise ConnectionError(
                        f"the server ended the stream with {len(in_flight)} batch(es) unacknowledged"
                    ) from None
                if ack.credits:
                    window = max(1, ack.credits)
                batch, attempts = in_flight.pop(ack.batch_id, (None, 0))
                if batch is None:  # not ours (a refused unreadable frame has no batch_id): pass it on
                    yield ack
                    continue
                if ack.status == events_pb2.Ack.RETRY and attempts < self.max_retries:
                    if on_retry is not None:
                        on_retry(ack)
                    resend_at = time.monotonic() + max(0.0, ack.retry_after_seconds)
                    heapq.heappush(waiting, (resend_at, next(order), batch, attempts + 1))
                    continue
                yield ack
            outbox.put(None)  # half-close: the server ends the stream once it has answered everything
            yield from call  # nothing more is expected: the server answers each batch once
            finished = True
        finally:
            if not finished:
                outbox.put(None)
                call.cancel()


def _initial_credits(call: Any) -> int:
    for key, value in call.initial_metadata() or ():
        if key == CREDITS_METADATA_KEY:
            try:
                return max(1, int(value))
            except ValueError:
                break
    return 1
