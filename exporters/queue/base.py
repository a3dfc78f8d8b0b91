"""The exporter skeleton shared by VictoriaMetrics, Loki and Tempo: a durable ``export`` and a worker.

``export(kind, columns)`` appends the batch to the exporter's on-disk queue and returns (or raises
``QueueFullError``); it never touches the network. A worker thread wakes every ``flush_interval``,
takes the oldest batches, hands them to :meth:`QueuedExporter.process` (convert + deliver, with
retries), and acknowledges them — with the exporter's :meth:`snapshot_state` — only once they were
accepted or dead-lettered. A crash re-delivers from the last acknowledgement (at-least-once).

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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx

from exporters.queue.config import QueuedExporterConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.retry import Backoff
from exporters.queue.sender import Aborted, DeliveryStats, HttpDelivery
from hubcore.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

Batch = tuple[int, Any]  # (queue sequence number, {"kind": ..., "cols": {...}})
T = TypeVar("T")


class Deferred(Exception):
    """Raised by :meth:`QueuedExporter.process`: nothing of this flush can be delivered before the
    monotonic time ``until`` (every tenant in it is backing off); leave the batches queued and try
    again then, or sooner when more batches arrive."""

    def __init__(self, until: float) -> None:
        super().__init__(f"deferred until {until:.3f}")
        self.until = until


@dataclass(slots=True)
class _TenantRetry:
    """The backoff of one tenant that the backend refused for now (429/5xx/connection errors)."""

    backoff: Backoff
    started: float  # monotonic time of the first failure
    not_before: float = 0.0


def _rows(cols: Mapping[str, Any]) -> int:
    first = next(iter(cols.values()), None) if isinstance(cols, Mapping) else None
    return len(first) if isinstance(first, list) else 1


class QueuedExporter:
    name: ClassVar[str] = "exporter"
    kinds: ClassVar[frozenset[str]] = frozenset()

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
        self._tenant_retry: dict[str, _TenantRetry] = {}  # worker thread only
        self._poisoned: set[int] = set()  # dead-lettered, not yet acknowledged (worker thread only)

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

    def export(self, kind: str, columns: dict[str, list[Any]]) -> None:
        """Queue a batch durably (fast; no network). Raises ``QueueFullError`` when the queue is full."""
        if kind not in self.kinds:
            raise PermanentError(f"the {self.name} exporter does not take {kind!r} (takes {sorted(self.kinds)})")
        if not columns or not next(iter(columns.values()), None):
            return
        queue = self._queue
        if queue is None or not self._started or self._closed:
            raise RuntimeError(f"{self.name} exporter is not started")
        queue.put({"kind": kind, "cols": columns})

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

    def deliver_by_tenant(
        self,
        batches: list[Batch],
        groups: Mapping[str, Sequence[T]],
        encode: Callable[[Sequence[T]], bytes],
        *,
        url: str,
        headers_for: Callable[[str], Mapping[str, str]],
    ) -> list[str]:
        """Deliver each tenant's records of this flush (``groups``: tenant → records converted from
        ``batches``) so that a tenant the backend refuses for now (a 429 rate limit...) cannot hold the
        others back. Returns the tenants done (delivered or dead-lettered).

        Every tenant gets one attempt (413 splits and permanent errors are handled as usual); a tenant
        that fails retryably gets its own backoff (``retry_on_failure``, ``Retry-After`` as a floor)
        and is not attempted again before it. Its rows of ``batches`` are then put back at the end of
        the queue (one batch per kind) before the flush is acknowledged, so they are neither lost nor
        in the way (at least once: a crash in between delivers them twice). When no tenant of the flush
        could be delivered and no other batch waits, nothing is re-queued: :class:`Deferred` leaves the
        flush queued until a tenant is due or more batches arrive. When the queue has no room to take
        them back, they are retried here (back-pressure, as before). ``max_elapsed_time`` counts from a
        tenant's first failure.
        """
        delivery = self.delivery
        now = time.monotonic()
        done: list[str] = []
        deferred: dict[str, Sequence[T]] = {}
        for tenant, records in groups.items():
            retry = self._tenant_retry.get(tenant)
            if retry is not None and retry.not_before > now:
                deferred[tenant] = records
                continue
            failed = delivery.deliver(records, encode, url=url, headers=headers_for(tenant), once=True)
            if failed is None:
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            if retry is None:
                retry = self._tenant_retry[tenant] = _TenantRetry(Backoff(self.retry_config), time.monotonic())
            delay = retry.backoff.next_delay(failed.retry_after)
            limit = self.retry_config.max_elapsed_time
            if limit and time.monotonic() - retry.started + delay > limit:
                reason = f"retries exhausted after {limit}s: {failed.reason}"
                delivery.give_up(records, encode(records), reason, status=failed.status, url=url)
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            retry.not_before = time.monotonic() + delay
            delivery.stats.retries += 1
            log.info("%s: tenant %r: %s; retrying it in %.2fs, the others go on", self.name, tenant,
                     failed.reason, delay)  # fmt: skip
            deferred[tenant] = records
        if not deferred:
            return done
        queue = self._queue
        assert queue is not None
        if not done and queue.depth <= len(batches):
            raise Deferred(min(self._tenant_retry[t].not_before for t in deferred))
        if not self._requeue(queue, batches, deferred.keys()):
            for tenant, records in deferred.items():  # no room to put them back: retry them here
                delivery.deliver(records, encode, url=url, headers=headers_for(tenant))
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
        return done

    def _requeue(self, queue: DiskQueue, batches: list[Batch], tenants: Collection[str]) -> bool:
        """Put the rows of ``tenants`` in ``batches`` back at the end of the queue, one batch per kind."""
        merged: dict[str, dict[str, list[Any]]] = {}
        counts: dict[str, int] = {}
        for _seq, body in batches:
            cols: dict[str, list[Any]] = body["cols"]
            n = _rows(cols)
            tenant_col = cols.get("tenant_id") or [None] * n
            idx = [i for i in range(n) if (tenant_col[i] or "") in tenants]
            if not idx:
                continue
            kind = body["kind"]
            out = merged.setdefault(kind, {})
            have = counts.get(kind, 0)
            for name in cols:
                if name not in out:
                    out[name] = [None] * have
            for name, values in out.items():
                src = cols.get(name)
                values.extend([src[i] for i in idx] if src else [None] * len(idx))
            counts[kind] = have + len(idx)
        try:
            for kind, cols in merged.items():
                queue.put({"kind": kind, "cols": cols})
        except (RetryableError, OSError) as exc:
            log.warning("%s: cannot re-queue the rows of %d tenants (%s); retrying them in place",
                        self.name, len(tenants), exc)  # fmt: skip
            return False
        return True

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        patience = self.flush_interval  # after a Deferred flush, how soon new batches may wake us
        while not self._stop.is_set():
            if not queue.wait(0.05 if self._drain.is_set() else 0.2):
                if self._drain.is_set():
                    return
                continue
            started = time.monotonic()
            peeked = queue.peek(self.max_batches_per_flush, max_bytes=64 << 20)
            batches = [b for b in peeked if b[0] not in self._poisoned]
            try:
                if batches:
                    self._process_isolating(batches)
            except Aborted:
                self.discard_unacked_state()
                return
            except Deferred as wait:
                self.discard_unacked_state()
                self._wait_deferred(queue, len(peeked), wait.until, started + patience)
                patience = min(patience * 2, max(self.flush_interval, self.retry_config.max_interval))
                continue
            patience = self.flush_interval
            queue.ack(peeked[-1][0], state=self.snapshot_state())
            self._poisoned.clear()
            if self._drain.is_set() or queue.depth >= self.max_batches_per_flush:
                continue
            rest = self.flush_interval - (time.monotonic() - started)
            if rest > 0:
                self._drain.wait(rest)

    def _process_isolating(self, batches: list[Batch]) -> None:
        """``process``; when it fails (a bug or a poison batch), dead-letter only the batches that fail
        alone (:meth:`check_batch`) and process the rest; all of them when none fails alone."""
        try:
            self.process(batches)
            return
        except (Aborted, Deferred):
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
        elif good:
            self._process_isolating(good)

    def _dead_letter_batch(self, seq: int, body: Any, exc: BaseException) -> None:
        rows = _rows(body.get("cols", {})) if isinstance(body, Mapping) else 1
        log.warning("%s: dead-lettering queued batch %d (%d rows): conversion failed: %r", self.name, seq, rows, exc)
        self.dead_letter.write(
            f"conversion failed: {exc!r}", status=None, url="", records=rows, body=repr(body)[:100_000].encode()
        )
        self.delivery.stats.dead_lettered += rows
        self._poisoned.add(seq)

    def _wait_deferred(self, queue: DiskQueue, taken: int, until: float, wake_after: float) -> None:
        """Sleep until ``until``, or (from ``wake_after`` on) until more than ``taken`` batches wait."""
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= until or (now >= wake_after and queue.depth > taken):
                return
            self._stop.wait(min(0.05, until - now))


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
