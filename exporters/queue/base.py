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
import msgspec

from exporters.queue.config import QueuedExporterConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.retry import Backoff
from exporters.queue.sender import Aborted, DeliveryStats, HttpDelivery
from hubcore.errors import PermanentError, QueueFullError, RetryableError

log = logging.getLogger(__name__)

Batch = tuple[int, Any]  # (queue sequence number, {"kind": ..., "cols": {...}})
_batch_encoder = msgspec.msgpack.Encoder()
T = TypeVar("T")


@dataclass(slots=True)
class _TenantRetry:
    """The backoff of one tenant that the backend refused for now (429/5xx/connection errors)."""

    backoff: Backoff
    started: float  # monotonic time of the first failure
    not_before: float = 0.0


def _rows(cols: Mapping[str, Any]) -> int:
    first = next(iter(cols.values()), None) if isinstance(cols, Mapping) else None
    return len(first) if isinstance(first, list) else 1


def encode_batch(kind: str, columns: Mapping[str, Any]) -> bytes:
    """A batch as the queues (and the embedded store's log) hold it: msgpack ``{"kind", "cols"}``.

    >>> import msgspec
    >>> msgspec.msgpack.decode(encode_batch("logs", {"ts": [1]}))
    {'kind': 'logs', 'cols': {'ts': [1]}}
    """
    return _batch_encoder.encode({"kind": kind, "cols": columns})


class QueuedExporter:
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
        and its rows of ``batches`` are *held*: they stay where they are in the queue (nothing is
        rewritten), later batches' rows of that tenant are held behind them (its order is kept), and
        the queue is acknowledged up to its first held row, the rest of what was read being recorded
        as delivered with the acknowledgement (so a restart neither loses its rows nor re-sends the
        others'). When its backoff is over, its held rows are read again and delivered with the next
        flush. ``max_elapsed_time`` counts from a tenant's first failure. For stateless exporters (the
        acknowledgement's :meth:`snapshot_state` is taken while rows are still held). Records that
        cannot be traced back to their rows by :attr:`tenant_column` are retried in place instead.
        """
        delivery = self.delivery
        done: list[str] = []
        failed: list[str] = []
        for tenant, records in groups.items():
            attempt = delivery.deliver(records, encode, url=url, headers=headers_for(tenant), once=True)
            if attempt is None:
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            retry = self._tenant_retry.get(tenant)
            if retry is None:
                retry = self._tenant_retry[tenant] = _TenantRetry(Backoff(self.retry_config), time.monotonic())
            delay = retry.backoff.next_delay(attempt.retry_after)
            limit = self.retry_config.max_elapsed_time
            if limit and time.monotonic() - retry.started + delay > limit:
                reason = f"retries exhausted after {limit}s: {attempt.reason}"
                delivery.give_up(records, encode(records), reason, status=attempt.status, url=url)
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            retry.not_before = time.monotonic() + delay
            delivery.stats.retries += 1
            log.info("%s: tenant %r: %s; retrying it in %.2fs, the others go on", self.name, tenant,
                     attempt.reason, delay)  # fmt: skip
            failed.append(tenant)
        if failed:
            where = _tenant_rows(batches, self.tenant_column, failed)
            for tenant in failed:
                if where.get(tenant):
                    self._failed_now[tenant] = where[tenant]
                    continue
                # its records are not found in the batches by their tenant column: they cannot be held
                log.warning("%s: tenant %r's rows are not found by %r; retrying them in place", self.name,
                            tenant, self.tenant_column)  # fmt: skip
                delivery.deliver(groups[tenant], encode, url=url, headers=headers_for(tenant))
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
        return done

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

    def _hold_rows(self, tenant: str, where: Mapping[int, int], totals: Mapping[int, int]) -> None:
        """Index ``tenant``'s rows held in place (``where``: sequence number → its rows there; ``totals``:
        the batches' rows, for :meth:`_should_relocate`)."""
        index = self._held_index.setdefault(tenant, {})
        for seq, n in where.items():
            index[seq] = n
            if seq in totals:
                self._rows_in[seq] = totals[seq]

    def _release(self, tenant: str) -> None:
        self._held.pop(tenant, None)
        self._held_index.pop(tenant, None)
        self._tenant_retry.pop(tenant, None)

    def _due(self, tenant: str, now: float) -> bool:
        return self._not_before(tenant) <= now

    def _not_before(self, tenant: str) -> float:
        retry = self._tenant_retry.get(tenant)
        return retry.not_before if retry is not None else 0.0  # none after a restart: due at once

    def _load_held(self, queue: DiskQueue) -> None:
        """After a (re)start: what the last acknowledgement says was read and is held, and where."""
        self._cursor = queue.cursor
        self._held = queue.held
        self._held_index, self._rows_in = {}, {}
        if not self._held:
            return
        start = min(self._held.values())
        seqs = range(start, self._cursor + 1)
        for seq, body in queue.read(seqs):
            totals = _batch_rows([(seq, body)])
            for tenant, where in _tenant_rows([(seq, body)], self.tenant_column, self._held).items():
                if seq >= self._held[tenant]:
                    self._hold_rows(tenant, where, totals)
        log.info("%s: %d tenants' rows are held in the queue from the last run (%s)", self.name,
                 len(self._held), ", ".join(sorted(self._held)[:10]))  # fmt: skip

    def _should_relocate(self, queue: DiskQueue) -> bool:
        """Held rows keep the queue from being trimmed past them: when the batches read but kept for
        them take a quarter of the queue's bound, and the held rows no more than half of those, the held
        rows are moved to the end of the queue once (so that the queue does not fill up with batches
        already delivered while a tenant is throttled for long)."""
        count, nbytes = queue.pending_through(self._cursor)
        if count * 4 < queue.max_batches and nbytes * 4 < queue.max_bytes:
            return False
        seqs = {s for rows in self._held_index.values() for s in rows}
        sizes = queue.sizes(seqs)
        held_bytes = 0.0
        for rows in self._held_index.values():
            for s, n in rows.items():
                held_bytes += sizes.get(s, 0) * min(1.0, n / max(1, self._rows_in.get(s, n)))
        return held_bytes * 2 <= nbytes

    def _relocate(self, queue: DiskQueue) -> bool:
        """Move every held row to the end of the queue (one batch per kind); the tenants stay held,
        from the first batch after the cursor on (the moved rows come after the cursor). False when the
        queue has no room for them: they stay held where they are."""
        held = frozenset(self._held)
        seqs = {s for rows in self._held_index.values() for s in rows}
        merged: dict[str, dict[str, list[Any]]] = {}
        counts: dict[str, int] = {}
        for _seq, body in queue.read(seqs):
            picked = _select(body, self.tenant_column, held.__contains__)
            if picked is None:
                continue
            cols: dict[str, list[Any]] = picked["cols"]
            n = _rows(cols)
            kind = picked["kind"]
            out = merged.setdefault(kind, {})
            have = counts.get(kind, 0)
            for name in cols:
                if name not in out:
                    out[name] = [None] * have
            for name, values in out.items():
                values.extend(cols.get(name) or [None] * n)
            counts[kind] = have + n
        encoded = [(kind, cols, encode_batch(kind, cols)) for kind, cols in merged.items()]
        try:
            if queue.depth + len(encoded) > queue.max_batches or not queue.has_room(sum(len(e) for *_, e in encoded)):
                raise QueueFullError(f"{queue.depth} batches, {queue.pending_bytes} bytes waiting", retry_after=1.0)
            for kind, cols, raw in encoded:
                queue.put({"kind": kind, "cols": cols}, encoded=raw)
        except (RetryableError, OSError) as exc:
            log.warning("%s: cannot move the held rows of %d tenants to the end of the queue (%s)",
                        self.name, len(held), exc)  # fmt: skip
            return False
        log.info("%s: moved %d held rows of %d tenants to the end of the queue, so that %d batches already "
                 "delivered can be trimmed", self.name, sum(counts.values()), len(held),
                 queue.pending_through(self._cursor)[0])  # fmt: skip
        for tenant in held:
            self._held[tenant] = self._cursor + 1
        self._held_index, self._rows_in = {}, {}
        return True

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


def _batch_rows(batches: Sequence[Batch]) -> dict[int, int]:
    return {seq: _rows(body.get("cols", {})) if isinstance(body, Mapping) else 1 for seq, body in batches}


def _tenant_rows(batches: Sequence[Batch], column: str, tenants: Collection[str]) -> dict[str, dict[int, int]]:
    """For each of ``tenants`` with rows in ``batches``: {sequence number: its rows there}."""
    out: dict[str, dict[int, int]] = {}
    if not tenants:
        return out
    for seq, body in batches:
        cols = body.get("cols") if isinstance(body, Mapping) else None
        if not isinstance(cols, Mapping):
            continue
        col = cols.get(column)
        if not col:
            if "" in tenants:
                out.setdefault("", {})[seq] = _rows(cols)
            continue
        for value in col:
            tenant = value or ""
            if tenant in tenants:
                per = out.setdefault(tenant, {})
                per[seq] = per.get(seq, 0) + 1
    return out


def _select(body: Any, column: str, keep: Callable[[str], bool]) -> Any | None:
    """``body`` with only the rows whose tenant ``keep`` accepts (None when no row is left)."""
    cols = body.get("cols") if isinstance(body, Mapping) else None
    if not isinstance(cols, Mapping):
        return body if keep("") else None
    n = _rows(cols)
    col = cols.get(column) or [None] * n
    idx = [i for i, value in enumerate(col) if keep(value or "")]
    if len(idx) == n:
        return body
    if not idx:
        return None
    picked = {name: [values[i] for i in idx] if isinstance(values, list) else values for name, values in cols.items()}
    return {**body, "cols": picked}


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
