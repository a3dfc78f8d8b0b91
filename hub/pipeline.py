"""The ingest pipeline: receivers hand batches here; it processes, stores durably, dead-letters.

It implements both consumer contracts of :mod:`hubcore.contracts`, so every receiver (REST, WebSocket,
gRPC stream, OTLP) shares one path and one set of counters.

    >>> import tempfile
    >>> from hubcore.config import NativeEventsConfig
    >>> from hubcore.dlq import DeadLetterQueue
    >>> from hubcore.storage.embedded import EmbeddedStore
    >>> from hubcore.telemetry import HubMetrics
    >>> d = tempfile.mkdtemp()
    >>> store = EmbeddedStore(d, wal_fsync=False); store.start()
    >>> pipe = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(d), HubMetrics())
    >>> pipe.consume_events([b'{}'], tenant_id="t", receiver="rest").accepted
    0
    >>> store.shutdown()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from opentelemetry import trace

from hubcore.config import NativeEventsConfig
from hubcore.contracts import IngestOutcome, SignalKind
from hubcore.dlq import DeadLetterQueue
from hubcore.errors import PermanentError, QueueFullError, RateLimitedError
from hubcore.security.quotas import Quotas
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from processors.native_events import NativeEventsProcessor

log = logging.getLogger(__name__)
_msgpack = msgspec.msgpack.Encoder()


def reason_class(reason: str) -> str:
    """A low-cardinality label for a rejection reason (the text before the first colon)."""
    head = reason.split(":", 1)[0]
    for prefix in (
        "invalid payload",
        "invalid event",
        "malformed",
        "unsupported schema_version",
        "unknown source_module",
        "timestamp",
        "payload.value",
        "payload.amount",
        "unknown currency",
    ):
        if head.startswith(prefix):
            return prefix.replace(" ", "_").replace(".", "_")
    return "other"


class IngestPipeline:
    """Thread-safe: a lock serialises the (cheap, CPU-bound) processing step."""

    def __init__(
        self,
        config: NativeEventsConfig,
        store: EmbeddedStore,
        dlq: DeadLetterQueue,
        metrics: HubMetrics,
        *,
        processor: NativeEventsProcessor | None = None,
        tracer: trace.Tracer | None = None,
        exporters: dict[str, list[tuple[str, Any]]] | None = None,
        store_sources: frozenset[str] = frozenset({"events", "otlp"}),
        quotas: Quotas | None = None,
        storage_bytes: Callable[[str], int] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.dlq = dlq
        self.metrics = metrics
        self.processor = processor or NativeEventsProcessor(config)
        self._lock = threading.Lock()
        self.tracer = tracer or trace.NoOpTracer()
        #: stack exporters per input ("events": native events, "otlp": OTLP rows), from service.pipelines
        self.exporters = exporters or {}
        #: inputs whose rows are kept in the embedded store (both, unless a pipeline leaves it out)
        self.store_sources = store_sources
        self._deliver_lock = threading.Lock()
        #: per-tenant events/s and storage quotas (service.quotas), checked for every receiver here
        self.quotas = quotas
        self.storage_bytes = storage_bytes
        #: the streaming correlation engine (analytics.correlation), fed every accepted batch
        self.correlation: Any | None = None

    # -- native events ----------------------------------------------------------------------------
    def consume_events(
        self, raw_events: Sequence[bytes | msgspec.Raw], *, tenant_id: str | None, receiver: str
    ) -> IngestOutcome:
        with self.tracer.start_as_current_span("ingest native events") as span:
            outcome = self._consume_events(raw_events, tenant_id=tenant_id, receiver=receiver)
            span.set_attribute("hub.receiver", receiver)
            span.set_attribute("hub.events", len(raw_events))
            span.set_attribute("hub.accepted", outcome.accepted)
            span.set_attribute("hub.rejected", len(outcome.rejected))
            return outcome

    def check_quota(self, tenant_id: str, count: int, receiver: str) -> None:
        """Raise :class:`RateLimitedError` when ``tenant_id`` is over its events/s or storage quota."""
        if self.quotas is None:
            return
        retry = self.quotas.check_events(tenant_id, count)
        if retry is not None:
            self.metrics.ingest_throttled.labels(receiver=receiver).inc()
            raise RateLimitedError(f"tenant {tenant_id!r} is over its events/s quota", retry_after=retry)
        if self.storage_bytes is not None:
            over = self.quotas.check_storage(tenant_id, self.storage_bytes)
            if over is not None:
                self.metrics.ingest_throttled.labels(receiver=receiver).inc()
                raise RateLimitedError(over, retry_after=3600.0)

    def _consume_events(
        self, raw_events: Sequence[bytes | msgspec.Raw], *, tenant_id: str | None, receiver: str
    ) -> IngestOutcome:
        started = time.perf_counter()
        self.check_quota(tenant_id or self.config.default_tenant, len(raw_events), receiver)
        with self._lock:
            result = self.processor.process(raw_events, tenant_id=tenant_id)
        if result.accepted:
            try:
                self._deliver("events", "events", result.columns)
                if self.correlation is not None:
                    self._correlate(result.columns)
            except BaseException as exc:
                # Nothing of this batch was acknowledged: forget its ids, or the client's resend (after a
                # full queue, a WAL write error, anything) would be answered "duplicates" and lost.
                with self._lock:
                    self.processor.rollback(result)
                if isinstance(exc, QueueFullError):
                    self.metrics.ingest_throttled.labels(receiver=receiver).inc()
                raise
            tenants = result.columns["tenant_id"]
            if tenant_id is not None or len(set(tenants)) == 1:
                self.metrics.ingest_events.labels(receiver=receiver, tenant_id=tenants[0]).inc(len(tenants))
            else:
                for t in set(tenants):
                    self.metrics.ingest_events.labels(receiver=receiver, tenant_id=t).inc(tenants.count(t))
        if result.duplicates:
            self.metrics.ingest_duplicates.labels(receiver=receiver).inc(result.duplicates)
        if result.rejected:
            # each event under its own tenant (a valid tags.tenant_id), so that replay stores it there
            default_tenant = tenant_id or self.config.default_tenant
            self.dlq.put_many(
                [
                    (r.tenant_id or default_tenant, receiver, r.reason, bytes(raw_events[r.index]), r.index)
                    for r in result.rejected
                ]
            )
            for r in result.rejected:
                self.metrics.ingest_rejected.labels(receiver=receiver, reason=reason_class(r.reason)).inc()
        self.metrics.ingest_batch_seconds.labels(receiver=receiver).observe(time.perf_counter() - started)
        return IngestOutcome(
            accepted=result.accepted,
            rejected=[r.to_dict() for r in result.rejected],
            duplicates=result.duplicates,
        )

    # -- OTLP-derived rows ------------------------------------------------------------------------
    def consume_rows(self, kind: SignalKind, columns: dict[str, list[Any]], *, receiver: str) -> None:
        started = time.perf_counter()
        tenants = columns.get("tenant_id") or []
        if self.quotas is not None and tenants:
            for t in set(tenants):
                self.check_quota(t, tenants.count(t), receiver)
        try:
            self._deliver("otlp", kind, columns)
        except QueueFullError:
            self.metrics.ingest_throttled.labels(receiver=receiver).inc()
            raise
        tenants = columns.get("tenant_id") or []
        for t in set(tenants):
            self.metrics.ingest_events.labels(receiver=receiver, tenant_id=t).inc(tenants.count(t))
        self.metrics.ingest_batch_seconds.labels(receiver=receiver).observe(time.perf_counter() - started)

    def _deliver(self, source: str, kind: str, columns: dict[str, list[Any]]) -> None:
        """Durably hand rows to the embedded store and to every stack exporter of ``source``'s pipeline.

        All queues are checked for room first, under a lock, so a batch goes everywhere or nowhere
        (raises :class:`QueueFullError` before anything was written). The batch is encoded once, for that
        check, and the bytes go to the store's log and to every queue that takes them
        (``accepts_encoded``), which would each have encoded it again.
        """
        targets = [(n, ex) for n, ex in self.exporters.get(source, ()) if kind in getattr(ex, "kinds", ())]
        keep = source in self.store_sources
        if not targets:
            if keep:
                self.store.append(kind, columns)
            return
        with self._deliver_lock:
            # the size a queue will hold: checked with it, under this lock, room cannot run out between the
            # check and the put (with a size of 0 the check passed, the put then refused the batch, after
            # the store had kept it: the client's resend was stored twice)
            # (the format of exporters.queue.base.encode_batch and of the store's log)
            try:
                encoded = _msgpack.encode({"kind": kind, "cols": columns})
            except (OverflowError, TypeError, msgspec.EncodeError) as exc:  # as the store refuses them
                raise PermanentError(f"rows cannot be logged: {exc}", reason="unencodable") from exc
            nbytes = len(encoded)
            for name, ex in targets:
                if not ex.has_room(nbytes):
                    raise QueueFullError(
                        f"the {name} export queue is full (the backend is slow or down)", retry_after=5.0
                    )
            kept = False
            if keep:
                self.store.append(kind, columns, encoded=encoded)  # raises: nothing was kept anywhere
                kept = True
            for _name, ex in targets:
                try:
                    if getattr(ex, "accepts_encoded", False):
                        ex.export(kind, columns, encoded=encoded)
                    else:
                        ex.export(kind, columns)
                except (QueueFullError, OSError) as exc:  # the room was checked: a full disk, an I/O error
                    if not kept:
                        raise  # nothing kept anywhere yet: the client resends it
                    # another destination keeps the batch durably: answering an error would have the client
                    # resend what it holds; this backend's copy is dead-lettered and counted instead
                    refuse = getattr(ex, "refuse", None)
                    if refuse is None:
                        raise
                    refuse(kind, columns, f"{type(exc).__name__}: {exc}")
                    continue
                kept = True

    def _correlate(self, columns: dict[str, list[Any]]) -> None:
        assert self.correlation is not None
        try:
            self.correlation.ingest(columns)
        except Exception:  # correlation is best effort: it must never fail an acknowledged batch
            log.exception("correlation engine failed to ingest a batch")

    def reject_request(self, receiver: str, reason: str) -> None:
        """Count a whole request refused before processing (bad JSON, too large, wrong type...)."""
        self.metrics.ingest_rejected.labels(receiver=receiver, reason=reason).inc()

    # -- dead-letter replay -----------------------------------------------------------------------
    def replay_dlq(self, *, tenant_id: str | None, ids: list[str] | None = None) -> tuple[int, int]:
        """Re-process dead-lettered events (after a config change, say). Returns (replayed, accepted)."""

        def handler(entries: list[dict[str, Any]]) -> list[bool]:
            flags = []
            for e in entries:
                raw = e["raw"].encode()
                with self._lock:
                    res = self.processor.process([raw], tenant_id=e.get("tenant_id"))
                if res.accepted:
                    try:
                        self._deliver("events", "events", res.columns)
                    except BaseException:
                        with self._lock:  # else the next replay would count it a duplicate, and drop it
                            self.processor.rollback(res)
                        raise
                flags.append(bool(res.accepted or res.duplicates))
            return flags

        return self.dlq.replay(handler, tenant_id=tenant_id, ids=ids)
