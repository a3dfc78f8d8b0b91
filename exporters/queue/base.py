"""The exporter skeleton shared by VictoriaMetrics, Loki and Tempo: a durable ``export`` and a worker.

``export(kind, columns)`` appends the batch to the exporter's on-disk queue and returns (or raises
``QueueFullError``); it never touches the network. A worker thread wakes every ``flush_interval``,
takes the oldest batches, hands them to :meth:`QueuedExporter.process` (convert + deliver, with
retries), and acknowledges them — with the exporter's :meth:`snapshot_state` — only once they were
accepted or dead-lettered. A crash re-delivers from the last acknowledgement (at-least-once). Rows of
a tenant the backend refuses for now are held where they are (:meth:`QueuedExporter.deliver_by_tenant`).

Subclasses set ``name`` and ``kinds``, pass their config (a
:class:`~exporters.queue.config.QueuedExporterConfig`) and their protocol's headers to
``QueuedExporter.__init__``, and implement ``process``; stateful ones also implement
``snapshot_state`` / ``restore_state`` / ``reset_state`` (e.g. running counter totals), and
``check_batch`` lets a conversion failure dead-letter only the batch that causes it. Multi-tenant
backends deliver with :meth:`QueuedExporter.deliver_by_tenant`, so that one throttled tenant does not
hold the others back::

    class LokiExporter(QueuedExporter):
        name = "loki"
        kinds = frozenset({"events", "logs"})
        config: LokiExporterConfig

        def __init__(self, config: LokiExporterConfig, *, default_directory: str = "") -> None:
            super().__init__(config, headers=JSON_HEADERS, default_directory=default_directory)

        def process(self, batches: list[Batch]) -> None:
            ...  # convert, then self.deliver_by_tenant(batches, by_tenant, encode, url=..., headers_for=...)

The per-tenant delivery (``deliver_by_tenant`` and the rows it holds) is in :mod:`exporters.queue.tenant_hold`,
the batches' encoding and row helpers in :mod:`exporters.queue.batches`; ``Batch`` and ``encode_batch`` are
importable from here too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from exporters.queue.batches import Batch, _batch_rows, _rows, _select, _tenant_rows, encode_batch
from exporters.queue.config import QueuedExporterConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.sender import Aborted, DeliveryStats, HttpDelivery
from exporters.queue.tenant_hold import TenantHoldMixin, _TenantRetry
from hubcore.errors import PermanentError

#: ``Batch`` and ``encode_batch`` (:mod:`exporters.queue.batches`) stay importable from here, as before the split
__all__ = ["Batch", "QueuedExporter", "TenantHoldMixin", "encode_batch", "stop_worker"]

log = logging.getLogger(__name__)


class QueuedExporter(TenantHoldMixin):
    name: ClassVar[str] = "exporter"
    kinds: ClassVar[frozenset[str]] = frozenset()
    #: ``export`` takes ``encoded=`` (the batch's :func:`encode_batch` bytes), so a caller that encoded the
    #: batch already (for the queues' room check) does not have it encoded again
    accepts_encoded: ClassVar[bool] = True
    #: the column that names a row's tenant, for :meth:`deliver_by_tenant` (held rows)
    tenant_column: ClassVar[str] = "tenant_id"

    def __init__(
        self,
        config: QueuedExporterConfig,
        *,
        headers: Mapping[str, str] | None = None,
        default_directory: str = "",
    ) -> None:
        """Validate ``config`` (``ConfigError``) and take the queue, flush and HTTP settings from it.

        ``headers``: the protocol's (content type...); the configured ``headers`` are applied over them.
        ``default_directory``: the queue's directory when ``sending_queue.directory`` is empty.
        """
        config.validate()
        if config.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if config.max_batches_per_flush <= 0:
            raise ValueError("max_batches_per_flush must be positive")
        queue = config.sending_queue
        self.config = config
        self.queue_config = queue
        self.retry_config = config.retry_on_failure
        self.flush_interval = config.flush_interval
        self.max_batches_per_flush = config.max_batches_per_flush
        self.max_body_bytes = config.max_request_bytes
        self.timeout = config.timeout
        self.headers = {**(headers or {}), **config.headers}
        self.directory = Path(queue.directory or default_directory or f"./data/queue/{self.name}")
        self._queue: DiskQueue | None = None
        self._client: httpx.Client | None = None
        self._delivery: HttpDelivery | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # abort retries now
        self._drain = threading.Event()  # finish what is queued, then exit
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.dead_letter = DeadLetterFile(self.directory / "dead_letter.jsonl", self.name)
        # -- worker thread only: per-tenant delivery (deliver_by_tenant) --
        self._tenant_retry: dict[str, _TenantRetry] = {}
        self._cursor = 0  # the batches through this sequence number were read (and delivered but ``_held``)
        #: tenant → first sequence number of its rows held back (kept in place in the queue, not delivered)
        self._held: dict[str, int] = {}
        #: tenant → {sequence number → its held rows there} for the batches through ``_cursor``
        self._held_index: dict[str, dict[int, int]] = {}
        self._rows_in: dict[int, int] = {}  # rows of the batches in ``_held_index``
        self._failed_now: dict[str, dict[int, int]] = {}  # tenants that failed in this flush, and where

    # -- the contract -----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError(f"{self.name} exporter was shut down; create a new one")
            q = self.queue_config
            self._queue = DiskQueue(
                self.directory,
                max_bytes=q.max_bytes,
                max_batches=q.max_batches,
                fsync=q.fsync,
                segment_bytes=q.segment_bytes,
            )
            if self._queue.state is not None:
                self.restore_state(self._queue.state)
            self._client = httpx.Client(timeout=self.timeout)
            self._delivery = HttpDelivery(
                self._client,
                self.retry_config,
                self.dead_letter,
                self._stop,
                exporter=self.name,
                max_body_bytes=self.max_body_bytes,
            )
            self._thread = threading.Thread(target=self._run, name=f"hub-export-{self.name}", daemon=True)
            self._started = True
            self._thread.start()

    def export(self, kind: str, columns: dict[str, list[Any]], *, encoded: bytes | None = None) -> None:
        """Queue a batch durably (fast; no network). Raises ``QueueFullError`` when the queue is full.

        ``encoded``: :func:`encode_batch` of ``kind`` and ``columns`` when the caller has it already (the
        ingest pipeline encodes each batch once, for its room check and every destination); the queue
        stores those bytes instead of encoding the batch again (:attr:`accepts_encoded`).
        """
        if kind not in self.kinds:
            raise PermanentError(f"the {self.name} exporter does not take {kind!r} (takes {sorted(self.kinds)})")
        if not columns or not next(iter(columns.values()), None):
            return
        queue = self._queue
        if queue is None or not self._started or self._closed:
            raise RuntimeError(f"{self.name} exporter is not started")
        queue.put({"kind": kind, "cols": columns}, encoded=encoded)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop. Idempotent; safe without start.

        Whatever could not be delivered in time stays in the on-disk queue for the next start.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        stop_worker(self._thread if started else None, self._drain, self._stop, timeout)
        if self._client is not None:
            self._client.close()
        if self._queue is not None:
            self._queue.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the queue is empty (True) or ``timeout`` passes (False). For tests and benchmarks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue is None or self._queue.depth == 0:
                return True
            time.sleep(0.02)
        return self._queue is None or self._queue.depth == 0

    def refuse(self, kind: str, columns: dict[str, list[Any]], reason: str) -> None:
        """A batch the hub kept elsewhere (its embedded store) but this exporter's queue could not take
        (its disk is full): dead-lettered here when the dead-letter file can still be written, and counted
        in ``hub_export_dead_lettered_total`` (alert ``HubExportDeadLettering``), so that the backend's
        missing copy is visible instead of the client resending a batch the store already holds."""
        rows = _rows(columns)
        log.error("%s: a batch of %d %s rows was stored but could not be queued for export: %s",
                  self.name, rows, kind, reason)  # fmt: skip
        try:
            body = repr({"kind": kind, "cols": columns})[:100_000].encode()
            self.dead_letter.write(f"not queued: {reason}", status=None, url="", records=rows, body=body)
        except OSError:
            log.exception("%s: the dead-letter file cannot be written either", self.name)
        if self._delivery is not None:
            self._delivery.stats.dead_lettered += rows

    def has_room(self, nbytes: int = 0) -> bool:
        """A hint for fan-out: check every exporter before exporting a batch to any of them, so that a
        ``QueueFullError`` from one rarely leaves the batch in another (which a client's retry would
        duplicate there)."""
        return self._queue is not None and self._queue.has_room(nbytes)

    @property
    def queue_depth(self) -> int:
        """Batches waiting (for ``hub_queue_depth{queue="<name>"}``)."""
        return self._queue.depth if self._queue is not None else 0

    @property
    def delivery_stats(self) -> DeliveryStats | None:
        """Delivery counters (``hub_export_*_total``); None until the exporter has started."""
        return self._delivery.stats if self._delivery is not None else None

    @property
    def delivery(self) -> HttpDelivery:
        if self._delivery is None:
            raise RuntimeError(f"{self.name} exporter is not started")
        return self._delivery

    # -- for subclasses ---------------------------------------------------------------------------
    def process(self, batches: list[Batch]) -> None:
        """Convert and deliver ``batches`` (use ``self.delivery``). Raise ``Aborted`` to leave them queued."""
        raise NotImplementedError

    def check_batch(self, body: Any) -> None:
        """Convert (and encode) one queued batch without side effects, raising what :meth:`process`
        would raise on it: used to find the batch that made a flush fail, so that only it is
        dead-lettered. The default knows nothing: a failing flush is then dead-lettered whole."""

    def snapshot_state(self) -> bytes | None:
        """State to persist with the acknowledgement (None: stateless)."""
        return None

    def restore_state(self, state: bytes) -> None:
        """Restore what :meth:`snapshot_state` returned at the last acknowledgement."""

    def reset_state(self) -> None:
        """Back to the initial state (no acknowledgement carried any yet)."""

    def discard_unacked_state(self) -> None:
        """Called when ``process`` raised: roll in-memory state back to the last acknowledgement."""
        q = self._queue
        if q is not None and q.state is not None:
            self.restore_state(q.state)
        else:
            self.reset_state()

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        self._load_held(queue)
        while not self._stop.is_set():
            now = time.monotonic()
            due = [t for t in self._held if self._due(t, now)]
            if not due:
                timeout = 0.05 if self._drain.is_set() else 0.2
                if self._held:
                    timeout = max(0.0, min(timeout, min(self._not_before(t) for t in self._held) - now))
                if not queue.wait(timeout, after=self._cursor):
                    if self._drain.is_set() and not self._held:
                        return
                    continue
            started = time.monotonic()
            try:
                self._flush(queue, due)
            except Aborted:
                self.discard_unacked_state()
                return
            if self._drain.is_set() or queue.count_after(self._cursor) >= self.max_batches_per_flush:
                continue
            rest = self.flush_interval - (time.monotonic() - started)
            if rest > 0:
                self._drain.wait(rest)

    def _flush(self, queue: DiskQueue, due: list[str]) -> None:
        """Read the batches after the cursor (and the held rows of ``due`` tenants), deliver, acknowledge."""
        peeked = queue.peek(self.max_batches_per_flush, max_bytes=64 << 20, after=self._cursor)
        if not peeked and not due:
            return
        batches: list[Batch] = []
        if due:  # their held rows first (older), then what they have in the new batches
            keep = frozenset(due)
            seqs = {seq for t in due for seq in self._held_index.get(t, {})}
            for seq, body in queue.read(seqs):
                picked = _select(body, self.tenant_column, keep.__contains__)
                if picked is not None:
                    batches.append((seq, picked))
        totals = _batch_rows(peeked) if self._held else {}
        if self._held:
            held_back = frozenset(t for t in self._held if t not in due)
            for seq, body in peeked:
                for tenant, where in _tenant_rows([(seq, body)], self.tenant_column, held_back).items():
                    self._hold_rows(tenant, where, totals)
                picked = _select(body, self.tenant_column, lambda t: t not in held_back)
                if picked is not None:
                    batches.append((seq, picked))
        else:
            batches.extend(peeked)
        self._failed_now = {}
        if batches:
            self._process_isolating(batches)
        for tenant in due:
            if tenant not in self._failed_now:  # delivered (or dead-lettered): nothing of it is held now
                self._release(tenant)
        if self._failed_now and not totals:
            totals = _batch_rows(peeked)
        for tenant, where in self._failed_now.items():  # held from its first row in this flush on
            self._hold_rows(tenant, where, totals)
            self._held.setdefault(tenant, min(where))
        self._failed_now = {}
        if peeked:
            self._cursor = max(self._cursor, peeked[-1][0])
        self._acknowledge(queue)

    def _acknowledge(self, queue: DiskQueue) -> None:
        held = self._held
        acked = min(held.values()) - 1 if held else self._cursor
        if held and self._should_relocate(queue) and self._relocate(queue):
            acked = self._cursor
        queue.ack(acked, state=self.snapshot_state(), cursor=self._cursor, held=dict(self._held))
        if acked >= self._cursor:
            self._rows_in.clear()
        elif len(self._rows_in) > 4 * max(1, sum(len(v) for v in self._held_index.values())):
            live = {s for rows in self._held_index.values() for s in rows}
            self._rows_in = {s: n for s, n in self._rows_in.items() if s in live}

    def _process_isolating(self, batches: list[Batch]) -> None:
        """``process``; when it fails (a bug or a poison batch), dead-letter only the batches that fail
        alone (:meth:`check_batch`) and process the rest; all of them when none fails alone."""
        try:
            self._failed_now = {}
            self.process(batches)
            return
        except Aborted:
            raise
        except Exception as exc:
            log.exception("%s: cannot convert %d batches; looking for the failing ones", self.name, len(batches))
            self.discard_unacked_state()
            failure = exc
        good: list[Batch] = []
        for seq, body in batches:
            try:
                self.check_batch(body)
            except Exception as exc:
                self._dead_letter_batch(seq, body, exc)
            else:
                good.append((seq, body))
        if len(good) == len(batches):  # no batch fails alone: the flush as a whole is the problem
            for seq, body in batches:
                self._dead_letter_batch(seq, body, failure)
            self._failed_now = {}
        elif good:
            self._process_isolating(good)
        else:
            self._failed_now = {}

    def _dead_letter_batch(self, seq: int, body: Any, exc: BaseException) -> None:
        rows = _rows(body.get("cols", {})) if isinstance(body, Mapping) else 1
        log.warning("%s: dead-lettering queued batch %d (%d rows): conversion failed: %r", self.name, seq, rows, exc)
        self.dead_letter.write(
            f"conversion failed: {exc!r}", status=None, url="", records=rows, body=repr(body)[:100_000].encode()
        )
        self.delivery.stats.dead_lettered += rows


def stop_worker(
    thread: threading.Thread | None,
    drain: threading.Event,
    stop: threading.Event,
    timeout: float,
    *,
    wake: threading.Event | None = None,
) -> None:
    """Stop an exporter's worker: set ``drain`` (finish what is waiting, then exit) and ``wake`` (if the
    worker sleeps on it), wait up to ``timeout`` seconds, then set ``stop`` (abort the retry in
    progress) and wait up to 5 s more. ``stop`` is set in the end either way; ``thread`` None: the
    worker never started."""
    if thread is not None:
        drain.set()
        if wake is not None:
            wake.set()
        thread.join(max(0.0, timeout))
        if thread.is_alive():
            stop.set()
            thread.join(5.0)
    stop.set()
