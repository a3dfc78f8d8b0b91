"""The hub observes itself: Prometheus metrics, structured JSON logs and OpenTelemetry traces.

Each hub instance owns its :class:`HubMetrics` (its own registry: no global state between tests).

    >>> m = HubMetrics()
    >>> m.ingest_events.labels(receiver="rest", tenant_id="t").inc(3)
    >>> b"hub_ingest_events_total" in m.render()
    True
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HubMetrics:
    """The hub's own series (names follow Prometheus conventions)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ingest_events = Counter(
            "hub_ingest_events",
            "Events or data points accepted, by receiver and tenant",
            ["receiver", "tenant_id"],
            registry=r,
        )
        self.ingest_rejected = Counter(
            "hub_ingest_rejected", "Items refused, by receiver and reason class", ["receiver", "reason"], registry=r
        )
        self.ingest_duplicates = Counter(
            "hub_ingest_duplicates",
            "Native events dropped as duplicates (same event_id within the window)",
            ["receiver"],
            registry=r,
        )
        self.ingest_throttled = Counter(
            "hub_ingest_throttled",
            "Batches refused because a queue was full (429/503/RESOURCE_EXHAUSTED)",
            ["receiver"],
            registry=r,
        )
        self.ingest_batch_seconds = Histogram(
            "hub_ingest_batch_duration_seconds",
            "Time to accept one batch durably",
            ["receiver"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "hub_request_duration_seconds",
            "HTTP request latency by route and status class",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("hub_queue_depth", "Items waiting in a hub queue", ["queue"], registry=r)
        self.dlq_entries = Gauge("hub_dlq_entries", "Entries in the dead-letter queue", registry=r)
        self.store_rows = Counter("hub_store_rows_written", "Rows written to the embedded store", registry=r)
        self._exporters: dict[str, Callable[[], Any]] = {}
        self._series: dict[str, Callable[[], Any]] = {}

    def bind_queue(self, name: str, read: Callable[[], float]) -> None:
        """Report ``read()`` as ``hub_queue_depth{queue=name}`` at every scrape."""
        self.queue_depth.labels(queue=name).set_function(read)

    def bind_exporter(self, name: str, read: Callable[[], Any]) -> None:
        """Report an exporter's delivery counters (``read()`` returns an object with ``requests``,
        ``records``, ``retries``, ``splits``, ``dead_lettered`` and ``bytes_sent``, or None before it
        starts) as ``hub_export_<counter>_total{exporter=name}`` at every scrape: a backend that is down
        shows as retries that grow while records do not.

        >>> from types import SimpleNamespace
        >>> m = HubMetrics()
        >>> m.bind_exporter("loki", lambda: SimpleNamespace(requests=2, records=10, retries=3, splits=0,
        ...                                                 dead_lettered=0, bytes_sent=512))
        >>> b'hub_export_retries_total{exporter="loki"} 3.0' in m.render()
        True
        """
        if not self._exporters:
            self.registry.register(_ExportCollector(self._exporters))
        self._exporters[name] = read

    def bind_store(self, read: Callable[[], Any]) -> None:
        """Report the embedded store's writer health from ``read()`` (its ``StoreStats``) at every scrape:
        ``hub_store_quarantined_rows_total`` (rows it could not store, kept in ``quarantine.jsonl``) and
        ``hub_store_writer_failing`` (1 while a write fails and is retried: a full disk, an I/O error).

        >>> from types import SimpleNamespace
        >>> m = HubMetrics()
        >>> m.bind_store(lambda: SimpleNamespace(quarantined_rows=2, writer_error="IOException: disk full"))
        >>> b"hub_store_writer_failing 1.0" in m.render()
        True
        """
        self.registry.register(_StoreCollector(read))

    def bind_series(self, name: str, read: Callable[[], Any]) -> None:
        """Report the running totals an exporter keeps in memory (``read()`` returns an object with
        ``tracked``, ``expired`` and ``evicted``: the VictoriaMetrics exporter's ``series_stats``) as
        ``hub_export_tracked_series{exporter=name}`` and ``hub_export_series_forgotten_total{exporter=name,
        reason="idle"|"limit"}`` at every scrape: idle past ``series_ttl``, or over ``max_series`` (a
        ``limit`` that grows means series are forgotten while still in use: PromQL sees counter resets).

        >>> from types import SimpleNamespace
        >>> m = HubMetrics()
        >>> m.bind_series("victoriametrics", lambda: SimpleNamespace(tracked=12, expired=3, evicted=0))
        >>> b'hub_export_tracked_series{exporter="victoriametrics"} 12.0' in m.render()
        True
        """
        if not self._series:
            self.registry.register(_SeriesCollector(self._series))
        self._series[name] = read

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector:
    def __init__(self, read: Callable[[], Any]) -> None:
        self.read = read

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.read()
        yield CounterMetricFamily("hub_store_quarantined_rows", "Rows the store could not hold (kept in "
                                  "quarantine.jsonl, with the reason)", value=float(stats.quarantined_rows))  # fmt: skip
        yield GaugeMetricFamily("hub_store_writer_failing", "1 while the store writer retries a failing write "
                                "(disk full, I/O error)", value=float(stats.writer_error is not None))  # fmt: skip


_EXPORT_COUNTERS = {
    "requests": "Requests a stack exporter's backend accepted",
    "records": "Records (samples, log lines, spans, alerts) a stack exporter's backend accepted",
    "retries": "Delivery attempts that failed and were retried (backend down, 429, 5xx)",
    "splits": "Batches split in two because the backend found them too large",
    "dead_lettered": "Records a backend refused for good, written to the exporter's dead-letter file",
    "bytes_sent": "Request body bytes a stack exporter's backend accepted",
}


class _ExportCollector:
    """``hub_export_<counter>_total{exporter}`` read from each exporter's delivery stats at scrape time."""

    def __init__(self, readers: dict[str, Callable[[], Any]]) -> None:
        self.readers = readers

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        for field, help_text in _EXPORT_COUNTERS.items():
            family = CounterMetricFamily(f"hub_export_{field}", help_text, labels=["exporter"])
            for name, read in sorted(self.readers.items()):
                stats = read()
                if stats is not None:
                    family.add_metric([name], float(getattr(stats, field)))
            yield family


class _SeriesCollector:
    """``hub_export_tracked_series`` / ``hub_export_series_forgotten_total`` per exporter, at scrape time."""

    def __init__(self, readers: dict[str, Callable[[], Any]]) -> None:
        self.readers = readers

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        tracked = GaugeMetricFamily("hub_export_tracked_series", "Series whose running total (delta counters, "
                                    "histograms) a stack exporter keeps in memory", labels=["exporter"])  # fmt: skip
        forgotten = CounterMetricFamily("hub_export_series_forgotten", "Series whose running total was "
                                        "forgotten: idle past series_ttl, or over max_series (limit)",
                                        labels=["exporter", "reason"])  # fmt: skip
        for name, read in sorted(self.readers.items()):
            stats = read()
            tracked.add_metric([name], float(stats.tracked))
            forgotten.add_metric([name, "idle"], float(stats.expired))
            forgotten.add_metric([name, "limit"], float(stats.evicted))
        yield tracked
        yield forgotten


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields."""

    #: ``color_message``: uvicorn's copy of its message with ANSI colour codes (``\u001b[36m``), for its own
    #: console formatter; in a JSON line it only repeats ``msg`` with escape codes
    _RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                     "color_message"}  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


#: uvicorn 0.54's default WebSocket implementation (websockets-sansio) logs this at ERROR after every
#: handshake the app refuses with an HTTP answer (the ``websocket.http.response`` extension), although the
#: client got that answer (uvicorn PR #3138 fixes it). The hub refuses handshakes on purpose (401, 403,
#: 429, 400: api/errors.py ``deliver``) and its guard records them, so the line is noise; nothing else
#: logs it for a handshake that was answered.
SPURIOUS_HANDSHAKE_ERROR = "ASGI callable returned without completing handshake."


#: uvicorn logs these once per server, and the hub runs two (the API and OTLP/HTTP) in one process: two
#: "Started server process [pid]" lines with the same pid read as two processes. ``hub starting``,
#: ``hub started`` (with the ports) and ``hub stopped`` say it once.
PER_SERVER_PROCESS_LINES = frozenset({"Started server process [%d]", "Finished server process [%d]"})


class _PerServerProcessFilter(logging.Filter):
    """Drops uvicorn's :data:`PER_SERVER_PROCESS_LINES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in PER_SERVER_PROCESS_LINES


class _AnsweredHandshakeFilter(logging.Filter):
    """Drops uvicorn's :data:`SPURIOUS_HANDSHAKE_ERROR` line and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != SPURIOUS_HANDSHAKE_ERROR


def configure_logging(level: str = "info") -> None:
    """Structured JSON logs on stderr for the whole process (uvicorn's loggers included).

    uvicorn's spurious "ASGI callable returned without completing handshake." after a refused WebSocket
    handshake (answered with a 401/403/429/400) is dropped: see :data:`SPURIOUS_HANDSHAKE_ERROR`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    uv_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _AnsweredHandshakeFilter) for f in uv_error.filters):
        uv_error.addFilter(_AnsweredHandshakeFilter())
    if not any(isinstance(f, _PerServerProcessFilter) for f in uv_error.filters):
        uv_error.addFilter(_PerServerProcessFilter())
