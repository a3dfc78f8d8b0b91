"""The hub service: one lifespan wires the store, the pipeline, the API and the receivers.

Started in order, torn down in reverse (Arize Phoenix's exit-stack style). SIGTERM/SIGINT stop the
servers first (no new input), then the store flushes what it holds and closes.

    >>> from hubcore.config import HubConfig
    >>> svc = HubService(HubConfig())   # doctest: +SKIP
    >>> asyncio.run(svc.run())          # doctest: +SKIP

``hub run`` runs it on the loop ``service.event_loop`` names (uvloop by default: ``hub.cli.new_event_loop``).

This module holds :class:`HubService`'s wiring, its start and the correlation thread; the rest is split by
purpose (each name stays importable from here):

* :mod:`hub.servers` — the API, OTLP/HTTP and gRPC servers' start-up (``MAX_CONCURRENT_REQUESTS``);
* :mod:`hub.startup_replay` — the startup write-ahead log replay with its progress lines, the state rebuilt
  from the store, a ``hub.duckdb`` that cannot be used (``STARTUP_REPLAY_TIMEOUT``, ``REPLAY_PROGRESS_SECONDS``);
* :mod:`hub.shutdown` — the stop request and the shutdown sequence (``UNSERVED_STORE_TIMEOUT``);
* :mod:`hub.exporter_hooks` — audit rows to Loki, derived series to VictoriaMetrics, the exporters' gauges;
* :mod:`hub.security_setup` — :func:`build_security` from ``service.*``.

    >>> [base.__name__ for base in HubService.__bases__]
    ['ServersMixin', 'StartupReplayMixin', 'ShutdownMixin']
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any

import grpc

from analytics.correlation import CorrelationEngine
from analytics.service import AnalyticsService
from api.app import create_app
from api.state import ApiState
from exporters.embedded import create_exporter
from hub.components import (
    alerting_config,
    build_stack_exporters,
    check_startable,
    correlation_config,
    pipeline_exporters,
    port_conflict,
)
from hub.exporter_hooks import (
    _audit_to_loki,
    _depth_reader,
    _derived_to_points,
    _series_reader,
    _stats_reader,
    _ts_us,
)
from hub.pipeline import IngestPipeline
from hub.security_setup import _storage_quotas, build_security
from hub.selftrace import configure_tracing, tracer
from hub.servers import MAX_CONCURRENT_REQUESTS, ServersMixin, _grpc_registrations, _Server
from hub.shutdown import UNSERVED_STORE_TIMEOUT, ShutdownMixin
from hub.startup_replay import (
    _REPLAY_POLL_SECONDS,
    REPLAY_PROGRESS_SECONDS,
    STARTUP_REPLAY_TIMEOUT,
    StartupReplayMixin,
)
from hub.storage_usage import StorageUsage
from hubcore.config import HubConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.security.authenticator import open_warning
from hubcore.telemetry import HubMetrics
from processors.alerting.factory import create_service as create_alerting

__all__ = [
    "CORRELATION_DUTY",
    "MAX_CONCURRENT_REQUESTS",
    "REPLAY_PROGRESS_SECONDS",
    "STARTUP_REPLAY_TIMEOUT",
    "UNSERVED_STORE_TIMEOUT",
    "_REPLAY_POLL_SECONDS",
    "HubService",
    "ServersMixin",
    "ShutdownMixin",
    "StartupReplayMixin",
    "_Server",
    "_audit_to_loki",
    "_depth_reader",
    "_derived_to_points",
    "_grpc_registrations",
    "_loop_kind",
    "_series_reader",
    "_stats_reader",
    "_storage_quotas",
    "_ts_us",
    "_warm_api",
    "build_security",
]

log = logging.getLogger("hub")

#: Largest share of wall-clock time the streaming correlation engine may spend in its flushes.
CORRELATION_DUTY = 0.2


def _loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the loop the hub serves on (the ``hub started`` line says which)."""
    return "uvloop" if type(loop).__module__.partition(".")[0] == "uvloop" else "asyncio"


class HubService(ServersMixin, StartupReplayMixin, ShutdownMixin):
    def __init__(self, config: HubConfig, *, install_signal_handlers: bool = True) -> None:
        check_startable(config)  # a refusal (an open bind without auth) before the data directory is touched
        self.config = config
        self.install_signal_handlers = install_signal_handlers
        emb = config.exporters.embedded
        self.metrics = HubMetrics()
        self.store = create_exporter(emb)
        self.dlq = DeadLetterQueue(emb.data_dir, fsync=emb.wal_fsync)
        self.security = build_security(config, self.metrics)
        self.tracer_provider = configure_tracing(self.store)
        self.stack_exporters = build_stack_exporters(config)
        routes = pipeline_exporters(config)
        by_name = dict(self.stack_exporters)
        self.pipeline = IngestPipeline(
            config.processors.native_events,
            self.store,
            self.dlq,
            self.metrics,
            tracer=tracer(self.tracer_provider),
            exporters={src: [(n, by_name[n]) for n in sorted(names) if n in by_name] for src, names in routes.items()},
            store_sources=frozenset(src for src, names in routes.items() if "embedded" in names),
            quotas=self.security.quotas,
            storage_bytes=StorageUsage(self.store).bytes_for if _storage_quotas(config) else None,
        )
        self.api_state = ApiState(config, self.store, self.pipeline, self.dlq, self.metrics, security=self.security)
        self.app = create_app(self.api_state)
        self.alerting = create_alerting(
            alerting_config(config),
            self.store,
            self.metrics.registry,
            by_name.get("alertmanager"),
            default_tenant=config.processors.native_events.default_tenant,
            manage_client=False,  # started and shut down with the other stack exporters
        )
        self.app.state.alerting = self.alerting
        self.analytics = AnalyticsService(config.processors.analytics, self.store, self.metrics.registry)
        self.app.state.analytics = self.analytics
        corr_enabled, self._corr_flush_interval, corr_cfg = correlation_config(config)
        self.correlation = CorrelationEngine(self.store, corr_cfg, registry=self.metrics.registry)
        if corr_enabled:
            self.pipeline.correlation = self.correlation
        self.app.state.correlation_engine = self.correlation
        self._corr_thread: threading.Thread | None = None
        self._corr_stop = threading.Event()
        loki = by_name.get("loki")
        if loki is not None and self.security.audit is not None:  # audit records are shipped to Loki too
            self.security.audit.listeners.append(_audit_to_loki(loki))
        vm = by_name.get("victoriametrics")
        if vm is not None:  # derived series (anomaly_score, yhat...) go to VictoriaMetrics as well
            self.analytics.add_series_listener(_derived_to_points(vm))
        self._servers: list[_Server] = []
        self._grpc: grpc.aio.Server | None = None
        self._stop = asyncio.Event()
        self._started = False
        self.bound: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        started = time.perf_counter()
        # before the data directory is touched: a second hub on the same ports stops here, in one line
        conflict = port_conflict(self.config)  # (hub run asked before importing the service: hub.components)
        if conflict is not None:
            raise RuntimeError(conflict)
        with self._database_errors():
            await asyncio.to_thread(self.store.start)
        # the data directory is this process's now (the store holds its lock): what a crash left mid-rewrite goes,
        # and the audit log's torn or damaged last line is cut (a refused second hub must touch neither)
        self.dlq.discard_partial_writes()
        if self.security.audit is not None:
            self.security.audit.recover()
            self.security.audit.discard_partial_writes()
        # once this hub is the one that will serve: a hub refused on a port or the lock says only why
        warning = open_warning(self.config.service.api.host, self.config.service.auth.enabled)
        if warning:
            log.warning(warning)
        if not await self._wait_for_replay():
            log.info(
                "stop requested during the write-ahead log replay: not serving; the log keeps what is not applied",
                extra={"applied_rows": self.store.stats.applied_rows, "pending_rows": self.store.stats.pending_rows},
            )
            return
        with self._database_errors():
            await asyncio.to_thread(self._rebuild_state)
        for name, exporter in self.stack_exporters:
            await asyncio.to_thread(exporter.start)
            if hasattr(exporter, "queue_depth"):
                self.metrics.bind_queue(f"export_{name}", _depth_reader(exporter))
            self.metrics.bind_exporter(name, _stats_reader(exporter))
            if hasattr(exporter, "series_stats"):  # running totals kept in memory (VictoriaMetrics)
                self.metrics.bind_series(name, _series_reader(exporter))
            log.info("exporter started", extra={"exporter": name})
        await asyncio.to_thread(self.alerting.start)
        await asyncio.to_thread(self.analytics.start)
        if self.analytics.config.warm_up:  # (the forecast warm-up is the analytics service's own)
            threading.Thread(target=_warm_api, args=(self.app,), name="hub-api-warm-up", daemon=True).start()
        await asyncio.to_thread(self.correlation.start)
        self.metrics.bind_queue("store_pending_rows", lambda: float(self.store.stats.pending_rows))
        self.metrics.bind_store(lambda: self.store.stats)
        self.metrics.bind_queue("wal_bytes", lambda: float(self.store.wal_bytes()))
        self.metrics.bind_queue("dedup_ids", lambda: float(len(self.pipeline.processor.dedup)))
        api = self.config.service.api
        await self._start_http("api", self.app, api.host, api.port)
        await self._start_grpc()
        await self._start_otlp_http()
        if self.pipeline.correlation is not None:  # once serving: its first refill does not delay readiness
            self._corr_stop.clear()
            self._corr_thread = threading.Thread(target=self._flush_correlations, name="hub-correlation", daemon=True)
            self._corr_thread.start()
        self._started = True
        log.info(
            "hub started",
            extra={
                "ports": self.bound,
                "data_dir": str(self.store.data_dir),
                "event_loop": _loop_kind(asyncio.get_running_loop()),
                "startup_seconds": round(time.perf_counter() - started, 3),
            },
        )

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), then shut down cleanly."""
        loop = asyncio.get_running_loop()
        if self.install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.shutdown()

    # -- pieces -----------------------------------------------------------------------------------
    def _flush_correlations(self) -> None:
        """Close the streaming engine's windows every ``processors.correlation.flush_interval`` seconds,
        or less often when a flush is slow: the engine spends at most ``CORRELATION_DUTY`` of the time
        analysing, so a traffic peak slows correlation down instead of ingest. First, the windows are refilled
        with the events stored in the last ``window_s`` (the hub serves meanwhile: see ``CorrelationEngine.refill``)."""
        try:
            stats = self.correlation.refill(stop=self._corr_stop)
            log.info("correlation windows refilled from the store", extra={
                "tenants": stats.tenants, "rows": stats.kept, "read_rows": stats.read, "failed_reads": stats.failed,
                "seconds": round(stats.seconds, 3)})  # fmt: skip
        except Exception:  # never stop flushing: the windows fill from the stream
            log.exception("correlation windows could not be refilled")
        wait = self._corr_flush_interval
        while not self._corr_stop.wait(wait):
            started = time.monotonic()
            try:
                self.correlation.flush()
            except Exception:  # keep flushing; the next window may be fine
                log.exception("correlation flush failed")
            took = time.monotonic() - started
            wait = max(self._corr_flush_interval, took * (1.0 / CORRELATION_DUTY - 1.0))


def _warm_api(app: Any) -> None:
    """Build the API's routes before the first request needs them (``processors.analytics.warm_up``).

    FastAPI builds an included router's routes (dependencies, pydantic schemas) on the first request that
    reaches the router: the first ``GET /api/v1/budgets`` after a start took 1.4 s on a loaded 2-core
    machine, with no budget at all, and 0.02 s after. Generating the OpenAPI document builds every route."""
    started = time.perf_counter()
    try:
        app.openapi()
    except Exception:  # a failed warm-up costs only the first requests' latency
        log.exception("API warm-up failed")
        return
    log.info("API warm-up done", extra={"seconds": round(time.perf_counter() - started, 3)})
