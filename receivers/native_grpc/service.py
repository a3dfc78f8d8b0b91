"""``EventIngestionService``: native events over a gRPC stream with acks and credits, or one unary call.

The servicer only decodes, checks the limits and hands each batch to the injected
:class:`~hubcore.contracts.EventsConsumer` (in a worker thread: the consumer may block on fsync). Every
batch gets exactly one :class:`Ack`, in order; no bad input closes a stream::

    server = grpc.aio.server(options=server_options(8 << 20))
    add_event_stream_servicer(server, pipeline, max_batch_events=1000, max_in_flight=8)
    server.add_insecure_port("127.0.0.1:4320")
    await server.start()

Flow control: the initial response metadata ``x-credits`` and every stream Ack's ``credits`` give the
window (batches a client may have sent but not seen acknowledged). The window halves on RETRY (down to
1) and grows by one per other Ack (up to ``max_in_flight``). The server reads at most ``max_in_flight``
batches ahead per stream, so a client that ignores credits is slowed by HTTP/2 flow control instead of
growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from hubcore.contracts import EventsConsumer, IngestOutcome
from hubcore.errors import PermanentError, RetryableError
from hubcore.security.audit import AuditLog
from hubcore.security.context import authenticated, current_principal
from hubcore.security.principal import Principal
from hubcore.tenants import TENANT_RULE, is_tenant
from receivers.native_grpc.protos import events_pb2

log = logging.getLogger(__name__)

RECEIVER = "grpc_stream"
SERVICE_NAME = "llm_analytics_hub.v1.EventIngestionService"
TENANT_METADATA_KEY = "x-scope-orgid"
CREDITS_METADATA_KEY = "x-credits"
MAX_REASON_LENGTH = 1024

Ack = events_pb2.Ack
EventBatch = events_pb2.EventBatch


@dataclass(frozen=True, slots=True)
class UnreadableBatch:
    """A request frame that is not an ``EventBatch`` (truncated or garbage protobuf)."""

    size: int
    error: str


@dataclass(frozen=True, slots=True)
class OversizedBatch:
    """A request frame over ``max_message_bytes``: not parsed, but for a leading ``batch_id``."""

    size: int
    batch_id: str = ""


Frame = Any  # EventBatch | UnreadableBatch | OversizedBatch (EventBatch is a generated class)


def server_options(max_message_bytes: int = 8 << 20, *, max_concurrent_streams: int = 100) -> list[tuple[str, int]]:
    """gRPC server options that let batches up to twice ``max_message_bytes`` reach the servicer.

    Batches between the limit and twice the limit get a ``REJECTED`` Ack naming the limit; larger ones
    are refused by gRPC itself (``RESOURCE_EXHAUSTED``) without being buffered.
    """
    hard_limit = max(2 * max_message_bytes, max_message_bytes + (1 << 20))
    return [
        ("grpc.max_receive_message_length", hard_limit),
        ("grpc.max_send_message_length", hard_limit),
        ("grpc.max_concurrent_streams", max_concurrent_streams),
    ]


def _deserializer(max_message_bytes: int) -> Callable[[bytes], Frame]:
    def decode(data: bytes) -> Frame:
        if len(data) > max_message_bytes:
            return OversizedBatch(len(data), _peek_batch_id(data))
        try:
            return EventBatch.FromString(data)
        except Exception as exc:  # google.protobuf.message.DecodeError, whatever the backend
            return UnreadableBatch(len(data), str(exc) or type(exc).__name__)

    return decode


def _peek_batch_id(data: bytes) -> str:
    """``batch_id`` when it is the first field (as every protobuf serializer writes it), else ""."""
    if len(data) < 2 or data[0] != 0x0A:  # field 1, length-delimited
        return ""
    length, shift, pos = 0, 0, 1
    while pos < min(len(data), 6):
        byte = data[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            if length > 1024 or pos + length > len(data):
                return ""
            return data[pos : pos + length].decode("utf-8", "replace")
        shift += 7
    return ""


class FlowWindow:
    """Credits of one stream: halve on RETRY (at least 1), grow by one otherwise (at most ``limit``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.credits = limit

    def update(self, status: int) -> int:
        if status == Ack.RETRY:
            self.credits = max(1, self.credits // 2)
        else:
            self.credits = min(self.limit, self.credits + 1)
        return self.credits


class EventIngestionServicer:
    """The service's two methods; :meth:`handler` registers them with their tolerant deserializer."""

    def __init__(
        self,
        consumer: EventsConsumer,
        *,
        max_batch_events: int = 1000,
        max_in_flight: int = 8,
        max_message_bytes: int = 8 << 20,
        receiver: str = RECEIVER,
        audit: AuditLog | None = None,
    ) -> None:
        if not callable(getattr(consumer, "consume_events", None)):
            raise TypeError("consumer must implement hubcore.contracts.EventsConsumer (consume_events)")
        for name, value in (
            ("max_batch_events", max_batch_events),
            ("max_in_flight", max_in_flight),
            ("max_message_bytes", max_message_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.consumer = consumer
        self.max_batch_events = max_batch_events
        self.max_in_flight = max_in_flight
        self.max_message_bytes = max_message_bytes
        self.receiver = receiver
        self.audit = audit

    def handler(self) -> grpc.GenericRpcHandler:
        decode = _deserializer(self.max_message_bytes)
        encode = Ack.SerializeToString
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "StreamEvents": grpc.stream_stream_rpc_method_handler(
                    self.StreamEvents, request_deserializer=decode, response_serializer=encode
                ),
                "SendEvents": grpc.unary_unary_rpc_method_handler(
                    self.SendEvents, request_deserializer=decode, response_serializer=encode
                ),
            },
        )

    # -- RPCs -------------------------------------------------------------------------------------
    async def StreamEvents(
        self, request_iterator: AsyncIterator[Frame], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        tenant = _metadata_tenant(context)
        window = FlowWindow(self.max_in_flight)
        await context.send_initial_metadata(((CREDITS_METADATA_KEY, str(window.credits)),))
        # Read ahead at most max_in_flight batches: beyond that, HTTP/2 flow control holds the client.
        slots = asyncio.Semaphore(self.max_in_flight)
        pending: asyncio.Queue[Frame | None] = asyncio.Queue()

        async def read() -> None:
            requests = aiter(request_iterator)
            try:
                while True:
                    await slots.acquire()
                    try:
                        frame = await anext(requests)
                    except StopAsyncIteration:
                        break
                    pending.put_nowait(frame)
            except Exception:  # the client went away or the transport failed: answer what was read
                log.debug("native gRPC stream: reading requests failed", exc_info=True)
            finally:
                pending.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (frame := await pending.get()) is not None:
                ack = await self._answer(frame, tenant)
                ack.credits = window.update(ack.status)
                yield ack
                slots.release()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def SendEvents(self, request: Frame, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, UnreadableBatch):
            self._count_refusal("malformed_protobuf")
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"request is not an EventBatch protobuf: {request.error}"
            )
        return await self._answer(request, _metadata_tenant(context))

    def _audit(self, principal: Principal, tenant: str, outcome: str, reason: str) -> None:
        if self.audit is not None:
            self.audit.record(principal, "events:write", f"{self.receiver}/{tenant}", target_tenant_id=tenant,
                              outcome=outcome, reason=reason, sync=outcome == "denied")  # fmt: skip

    # -- one batch --------------------------------------------------------------------------------
    async def _answer(self, frame: Frame, metadata_tenant: str | None) -> Any:
        if isinstance(frame, UnreadableBatch):
            return self._refuse(
                "", "malformed_protobuf", f"frame of {frame.size} bytes is not an EventBatch: {frame.error}"
            )
        if isinstance(frame, OversizedBatch):
            return self._refuse(
                frame.batch_id,
                "batch_too_large",
                f"batch of {frame.size} bytes is over max_message_bytes={self.max_message_bytes}: split it",
            )
        batch_id: str = frame.batch_id
        events: Sequence[bytes] = list(frame.events_json)
        if not events:
            return self._refuse(batch_id, "empty_batch", "empty batch: events_json holds no events")
        if len(events) > self.max_batch_events:
            return self._refuse(
                batch_id,
                "batch_too_large",
                f"batch of {len(events)} events is over max_batch_events={self.max_batch_events}: split it",
            )
        tenant = metadata_tenant or frame.tenant_id or None
        if tenant is not None and not is_tenant(tenant):
            return self._refuse(batch_id, "invalid_tenant", f"tenant_id must be {TENANT_RULE}")
        principal = current_principal()
        if authenticated(principal) and principal is not None:
            # the interceptor decided (and audited) a tenant named in metadata; one named in the frame is
            # decided, and a write into another tenant audited, here
            crossing = tenant is not None and tenant != principal.tenant_id and tenant != metadata_tenant
            if tenant is not None and tenant != principal.tenant_id and not principal.cross_tenant:
                reason = f"the credential may not write to tenant {tenant!r}"
                if crossing:
                    self._audit(principal, tenant, "denied", f"denied: {reason}")
                return self._refuse(batch_id, "forbidden_tenant", reason)
            if crossing:
                assert tenant is not None
                self._audit(principal, tenant, "allowed", f"allowed: events:write into tenant {tenant} (EventBatch.tenant_id)")
            tenant = tenant or principal.tenant_id
        try:
            outcome = await asyncio.to_thread(
                self.consumer.consume_events, events, tenant_id=tenant, receiver=self.receiver
            )
        except RetryableError as exc:  # QueueFullError: back-pressure; nothing of the batch was stored
            return Ack(
                batch_id=batch_id,
                status=Ack.RETRY,
                retry_after_seconds=float(exc.retry_after),
                message=f"{exc}: send this batch again after {exc.retry_after:g} s",
            )
        except PermanentError as exc:
            return self._refuse(batch_id, exc.reason, str(exc))
        except Exception:
            log.exception("native gRPC batch failed", extra={"batch_id": batch_id, "events": len(events)})
            return Ack(
                batch_id=batch_id,
                status=Ack.RETRY,
                retry_after_seconds=1.0,
                message="internal error while storing the batch: send it again later "
                "(events already stored come back as duplicates)",
            )
        return outcome_to_ack(batch_id, outcome)

    def _refuse(self, batch_id: str, reason: str, message: str) -> Any:
        self._count_refusal(reason)
        return Ack(batch_id=batch_id, status=Ack.REJECTED, message=message)

    def _count_refusal(self, reason: str) -> None:
        count = getattr(self.consumer, "reject_request", None)  # IngestPipeline counts whole-batch refusals
        if callable(count):
            try:
                count(self.receiver, reason)
            except Exception:  # pragma: no cover - metrics must never fail a request
                log.debug("reject_request failed", exc_info=True)


def outcome_to_ack(batch_id: str, outcome: IngestOutcome) -> Any:
    """The Ack for a consumer's :class:`~hubcore.contracts.IngestOutcome` (credits left at 0)."""
    rejected = [
        events_pb2.Rejection(
            index=int(r["index"]), event_id=r.get("event_id") or "", reason=str(r["reason"])[:MAX_REASON_LENGTH]
        )
        for r in outcome.rejected
    ]
    stored = outcome.accepted + outcome.duplicates
    if not rejected:
        status, message = Ack.OK, ""
    elif stored:
        status, message = Ack.PARTIAL, f"{len(rejected)} of {stored + len(rejected)} events rejected"
    else:
        status, message = Ack.REJECTED, f"all {len(rejected)} events rejected"
    return Ack(
        batch_id=batch_id,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=rejected,
        status=status,
        message=message,
    )


def _metadata_tenant(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == TENANT_METADATA_KEY and isinstance(value, str) and value:
            return value
    return None


def add_event_stream_servicer(
    server: grpc.aio.Server,
    consumer: EventsConsumer,
    *,
    max_batch_events: int = 1000,
    max_in_flight: int = 8,
    max_message_bytes: int = 8 << 20,
    audit: AuditLog | None = None,
) -> None:
    """Serve ``EventIngestionService`` on ``server``, handing batches to ``consumer`` (receiver "grpc_stream").

    Create the server with :func:`server_options` (``max_message_bytes``) so that large batches get a
    clear ``REJECTED`` Ack rather than gRPC's own 4 MiB ``RESOURCE_EXHAUSTED``.
    """
    servicer = EventIngestionServicer(
        consumer,
        max_batch_events=max_batch_events,
        max_in_flight=max_in_flight,
        max_message_bytes=max_message_bytes,
        audit=audit,
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
