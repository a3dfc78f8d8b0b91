"""The exporter skeleton shared by VictoriaMetrics, Loki and Tempo: a durable ``export`` and a worker.

``export(kind, columns)`` appends the batch to the exporter's on-disk queue and returns (or raises
``QueueFullError``); it never touches the network. A worker thread wakes every ``flush_interval``,
takes the oldest batches, hands them to :meth:`QueuedExporter.process` (convert + deliver, with
retries), and acknowledges them — with the exporter's :meth:`snapshot_state` — only once they were
accepted or dead-lettered. A crash re-delivers from the last acknowledgement (at-least-once).

Subclasses set ``name`` and ``kinds``, pass their config (a
:class:`~exporters.queue.config.QueuedExporterConfig`) and their protocol's headers to
``QueuedExporter.__init__``, and implement ``process``; stateful ones also implement
``snapshot_state`` / ``restore_state`` (e.g. running counter totals)::

    class LokiExporter(QueuedExporter):
        name = "loki"
        kinds = frozenset({"events", "logs"})
        config: LokiExporterConfig

        def __init__(self, config: LokiExporterConfig, *, default_directory: str = "") -> None:
            super().__init__(config, headers=JSON_HEADERS, default_directory=default_directory)

        def process(self, batches: list[Batch]) -> None:
            ...  # convert, then self.delivery.deliver(records, encode, url=..., headers=self.headers)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from exporters.queue.config import QueuedExporterConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.sender import Aborted, DeliveryStats, HttpDelivery
from hubcore.errors import PermanentError

log = logging.getLogger(__name__)

Batch = tuple[int, Any]  # (queue sequence number, {"kind": ..., "cols": {...}})


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

    def snapshot_state(self) -> bytes | None:
        """State to persist with the acknowledgement (None: stateless)."""
        return None

    def restore_state(self, state: bytes) -> None:
        """Restore what :meth:`snapshot_state` returned at the last acknowledgement."""

    def discard_unacked_state(self) -> None:
        """Called when ``process`` raised: roll in-memory state back to the last acknowledgement."""
        q = self._queue
        if q is not None and q.state is not None:
            self.restore_state(q.state)

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        while not self._stop.is_set():
            if not queue.wait(0.05 if self._drain.is_set() else 0.2):
                if self._drain.is_set():
                    return
                continue
            started = time.monotonic()
            batches = queue.peek(self.max_batches_per_flush, max_bytes=64 << 20)
            try:
                self.process(batches)
            except Aborted:
                self.discard_unacked_state()
                return
            except Exception as exc:  # a bug or poison batch: dead-letter it rather than block forever
                log.exception("%s: cannot convert %d batches", self.name, len(batches))
                self.discard_unacked_state()
                body = repr([b for _s, b in batches])[:100_000].encode()
                self.dead_letter.write(
                    f"conversion failed: {exc!r}", status=None, url="", records=len(batches), body=body
                )
            queue.ack(batches[-1][0], state=self.snapshot_state())
            if self._drain.is_set() or queue.depth >= self.max_batches_per_flush:
                continue
            rest = self.flush_interval - (time.monotonic() - started)
            if rest > 0:
                self._drain.wait(rest)


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
