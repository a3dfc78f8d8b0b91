"""The hub service: one lifespan wires the store, the pipeline, the API and the receivers.

Started in order, torn down in reverse (Arize Phoenix's exit-stack style). SIGTERM/SIGINT stop the
servers first (no new input), then the store flushes what it holds and closes.

    >>> from hubcore.config import HubConfig
    >>> svc = HubService(HubConfig())   # doctest: +SKIP
    >>> asyncio.run(svc.run())          # doctest: +SKIP

``hub run`` runs it on the loop ``service.event_loop`` names (uvloop by default: ``hub.cli.new_event_loop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import duckdb
import grpc
import msgspec
import uvicorn

from analytics.correlation import CorrelationEngine
from analytics.service import AnalyticsService
from api.app import create_app
from api.state import ApiState, SecurityContext
from exporters.embedded import create_exporter
from hub.components import (
    alerting_config,
    build_stack_exporters,
    check_startable,
    correlation_config,
    pipeline_exporters,
    port_conflict,
)
from hub.pipeline import IngestPipeline
from hub.selftrace import configure_tracing, tracer
from hub.storage_usage import StorageUsage
from hubcore.config import HubConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import ALL_TENANTS, AuditLog, concerns
from hubcore.security.authenticator import Authenticator, open_warning
from hubcore.security.jwt import JwtVerifier
from hubcore.security.quotas import Quotas
from hubcore.security.rbac import RoleRegistry
from hubcore.security.tls import grpc_server_credentials, uvicorn_ssl_kwargs
from hubcore.telemetry import HubMetrics
from processors.alerting.factory import create_service as create_alerting
from receivers.auth import GrpcAuthInterceptor, HttpAuthMiddleware, ReceiverGuard, grpc_receiver_name

log = logging.getLogger("hub")

#: Requests in flight per server (gRPC RPCs, OTLP/HTTP requests): bounds memory held by large bodies
#: before back-pressure at the store applies. Past it: RESOURCE_EXHAUSTED / 503.
MAX_CONCURRENT_REQUESTS = 64

#: Largest share of wall-clock time the streaming correlation engine may spend in its flushes.
CORRELATION_DUTY = 0.2


#: How long startup waits for the write-ahead log replay before it serves anyway (the rest is then applied
#: in the background, behind new writes). A stop request (SIGTERM) ends the wait at once.
STARTUP_REPLAY_TIMEOUT = 300.0
#: How often a long startup replay logs its progress.
REPLAY_PROGRESS_SECONDS = 10.0
#: The replay is waited for in slices this long, so that a stop request is seen promptly.
_REPLAY_POLL_SECONDS = 0.25
#: The store's shutdown deadline when the hub never served: nothing was acknowledged by this process, and the
#: write-ahead log keeps whatever the startup replay has not applied yet.
UNSERVED_STORE_TIMEOUT = 2.0


def _loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the loop the hub serves on (the ``hub started`` line says which)."""
    return "uvloop" if type(loop).__module__.partition(".")[0] == "uvloop" else "asyncio"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HubService:
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

    async def _wait_for_replay(self) -> bool:
        """Wait until the store has applied what the write-ahead log replayed at start (at most
        :data:`STARTUP_REPLAY_TIMEOUT`), logging progress every :data:`REPLAY_PROGRESS_SECONDS`. False when a
        stop was requested meanwhile: then the hub does not serve."""
        began = time.monotonic()
        next_report = began + REPLAY_PROGRESS_SECONDS
        while not self._stop.is_set():
            left = began + STARTUP_REPLAY_TIMEOUT - time.monotonic()
            if left <= 0:
                log.warning(
                    "write-ahead log replay not finished; serving anyway, the rest is applied in the background",
                    extra=self._replay_progress(began),
                )
                return True
            if await asyncio.to_thread(self.store.flush, min(_REPLAY_POLL_SECONDS, left)):
                if time.monotonic() - began >= REPLAY_PROGRESS_SECONDS:
                    log.info("write-ahead log replayed", extra=self._replay_progress(began))
                return True
            if time.monotonic() >= next_report:
                log.info("replaying write-ahead log", extra=self._replay_progress(began))
                next_report += REPLAY_PROGRESS_SECONDS
        return False

    def _replay_progress(self, began: float) -> dict[str, Any]:
        stats = self.store.stats
        return {
            "applied_rows": stats.applied_rows,
            "pending_rows": stats.pending_rows,
            "elapsed_seconds": round(time.monotonic() - began, 1),
        }

    @contextlib.contextmanager
    def _database_errors(self) -> Generator[None, None, None]:
        """A DuckDB error while opening or reading ``hub.duckdb`` (not a DuckDB file, a checksum error) as
        one line that names the file."""
        try:
            yield
        except duckdb.Error as exc:
            path = self.store.data_dir / "hub.duckdb"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(
                f"the database {path} cannot be used ({reason}); restore it from a backup, or move it aside "
                "to start with an empty one (what it held is lost; the write-ahead log holds only what was not "
                "applied yet)"
            ) from None

    def request_stop(self) -> None:
        log.info("stop requested")
        self._stop.set()

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop receivers (no new input), then flush and close the store. Idempotent; safe unstarted.

        ``timeout`` bounds the whole stop, not each step: the stack exporters drain in parallel, and what
        they or the store cannot finish in time stays in their on-disk queues and the write-ahead log for
        the next start (a stop used to take 30 s per unreachable backend, one after another, past the
        grace period of Kubernetes or systemd)."""
        deadline = time.monotonic() + timeout

        def left(cap: float = timeout) -> float:
            return max(0.5, min(cap, deadline - time.monotonic()))

        for server in self._servers:
            server.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace=left(5.0))
            self._grpc = None
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.shutdown_task, left())  # type: ignore[attr-defined]
        self._servers.clear()
        self._corr_stop.set()
        if self._corr_thread is not None:
            await asyncio.to_thread(self._corr_thread.join, left(10.0))
            self._corr_thread = None
        await asyncio.gather(asyncio.to_thread(self.analytics.shutdown, left(10.0)),
                             asyncio.to_thread(self.alerting.shutdown, left(10.0)))  # fmt: skip
        await asyncio.to_thread(self.tracer_provider.shutdown)
        if self.security.audit is not None:
            self.security.audit.close()  # the head sidecar names the last record (ingest moves it lazily)
        if self.stack_exporters:
            await asyncio.gather(*(asyncio.to_thread(ex.shutdown, left()) for _name, ex in self.stack_exporters))
        # never served (a stop during the startup replay): no flush to wait for, the WAL keeps the rest
        await asyncio.to_thread(self.store.shutdown, left() if self._started else min(left(), UNSERVED_STORE_TIMEOUT))
        if self._started:
            log.info("hub stopped", extra={"applied_rows": self.store.stats.applied_rows,
                                           "seconds": round(timeout - (deadline - time.monotonic()), 2)})  # fmt: skip
        self._started = False

    # -- pieces -----------------------------------------------------------------------------------
    async def _start_http(
        self, name: str, app: Any, host: str, port: int, *, limit_concurrency: int | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            limit_concurrency=limit_concurrency,
            **uvicorn_ssl_kwargs(self.config.service.tls),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(), name=f"uvicorn-{name}")
        server.shutdown_task = task  # type: ignore[attr-defined]
        while not server.started:
            if task.done():
                exc = task.exception()
                raise RuntimeError(f"{name} server could not start on {host}:{port}: {exc!r}")
            await asyncio.sleep(0.01)
        self._servers.append(server)
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.bound[name] = sockets[0].getsockname()[1] if sockets else port

    async def _start_grpc(self) -> None:
        grpc_cfg = self.config.receivers.otlp.protocols.grpc
        if not grpc_cfg.enabled:
            return
        host, port = grpc_cfg.host_port("receivers.otlp.protocols.grpc.endpoint")
        guard = ReceiverGuard(self.security.authenticator, self.security.quotas, self.security.audit)
        server = grpc.aio.server(
            interceptors=[GrpcAuthInterceptor(guard, grpc_receiver_name)],
            maximum_concurrent_rpcs=MAX_CONCURRENT_REQUESTS,
            options=[
                # twice the native batch limit, so an oversized batch gets a clear REJECTED ack
                (
                    "grpc.max_receive_message_length",
                    max(grpc_cfg.max_message_bytes, 2 * self.config.receivers.native.max_body_bytes),
                ),
                ("grpc.so_reuseport", 0),
            ],
        )
        for name, register in _grpc_registrations(self).items():
            register(server)
            log.debug("registered gRPC service", extra={"service": name})
        tls = self.config.service.tls
        if tls.enabled:
            bound = server.add_secure_port(f"{host}:{port}", grpc_server_credentials(tls))
        else:
            bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise RuntimeError(f"OTLP gRPC receiver could not bind {host}:{port}")
        await server.start()
        self._grpc = server
        self.bound["otlp_grpc"] = bound

    async def _start_otlp_http(self) -> None:
        http_cfg = self.config.receivers.otlp.protocols.http
        if not http_cfg.enabled:
            return
        from receivers.otlp.http_app import create_otlp_http_app

        app = create_otlp_http_app(
            self.pipeline,
            default_tenant=self.api_state.default_tenant,
            max_body_bytes=http_cfg.max_message_bytes,
            on_reject=self.pipeline.reject_request,
        )
        host, port = http_cfg.host_port("receivers.otlp.protocols.http.endpoint")
        guard = ReceiverGuard(self.security.authenticator, self.security.quotas, self.security.audit)
        guarded = HttpAuthMiddleware(app, guard)
        await self._start_http("otlp_http", guarded, host, port, limit_concurrency=MAX_CONCURRENT_REQUESTS)

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

    def _rebuild_state(self) -> None:
        """Registry metadata and recent event ids come back from the store after a restart."""
        proc = self.pipeline.processor
        rows = self.store.read(
            "SELECT tenant_id, asset_id, status, payload FROM events WHERE event_type = 'metadata' ORDER BY ts"
        ).fetchall()
        for tenant, asset_id, status, payload in rows:
            p = msgspec.json.decode(payload)
            meta = None if status == "deleted" else {
                **p.get("attributes", {}), "asset_type": p.get("asset_type"), "name": p.get("name"),
                "version": p.get("version", ""), "provider": p.get("provider"), "owner": p.get("owner"),
            }  # fmt: skip
            proc.registry.update(tenant, asset_id, meta)
        window = self.config.processors.native_events.dedup_window
        recent = self.store.read(
            "SELECT tenant_id, event_id, epoch(received_at) FROM events "
            "WHERE received_at >= now()::TIMESTAMP - to_microseconds(?) ORDER BY received_at",
            [int(window * 1e6)],
        ).fetchall()
        for tenant, event_id, received in recent:
            proc.dedup.seen_or_add(tenant, event_id, float(received))


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


def _audit_to_loki(exporter: Any) -> Callable[[dict[str, Any]], None]:
    """An audit record as a log row (service ``llm-analytics-hub-audit``) for the Loki exporter.

    The row goes to the acting principal's tenant (``tenant_id``; Loki's ``X-Scope-OrgID``), and a second,
    identical row to the tenant acted upon (``target_tenant_id``) when that is another one and the record
    :func:`concerns <hubcore.security.audit.concerns>` it as ``GET /api/v1/audit`` shows it to that tenant
    (``foreign_denied=False``): what was done to its data (a platform admin's access), so it sees that in its
    own Loki too; another tenant's *refused* attempt names that tenant's user, key and address and stays in
    the actor's tenant (and the local log). Never twice to one Loki tenant: no second row for a same-tenant
    record, a target of ``"*"`` (every tenant) or an old record without a target, nor when the exporter sends
    every request under one ``org_id`` or without ``X-Scope-OrgID`` at all.
    """
    config = getattr(exporter, "config", None)
    one_loki_tenant = bool(getattr(config, "org_id", "")) or not getattr(config, "tenant_header", True)

    def ship(record: dict[str, Any]) -> None:
        actor = record.get("tenant_id") or "_hub"
        tenants = [actor]
        target = record.get("target_tenant_id")
        if (
            not one_loki_tenant and isinstance(target, str) and target and target not in (actor, ALL_TENANTS)
            and concerns(record, target, foreign_denied=False)
        ):  # fmt: skip
            tenants.append(target)
        ts = _ts_us(time.time())
        denied = record.get("outcome") == "denied"
        attributes = msgspec.json.encode({"action": record.get("action"), "outcome": record.get("outcome")}).decode()
        n = len(tenants)
        exporter.export(
            "logs",
            {
                "tenant_id": tenants,
                "ts": [ts] * n,
                "observed_ts": [ts] * n,
                "service_name": ["llm-analytics-hub-audit"] * n,
                "severity_number": [13 if denied else 9] * n,
                "severity_text": ["WARN" if denied else "INFO"] * n,
                "body": [msgspec.json.encode(record).decode()] * n,
                "event_name": ["hub.audit"] * n,
                "attributes": [attributes] * n,
            },
        )

    return ship


def _derived_to_points(exporter: Any) -> Callable[[Sequence[Any]], None]:
    """Derived rows (vmanomaly vocabulary) as gauge points for the VictoriaMetrics exporter."""

    def send(rows: Sequence[Any]) -> None:
        if not rows:
            return
        cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "name", "kind", "temporality", "monotonic",
                                                      "value", "unit", "attributes", "source")}  # fmt: skip
        for r in rows:
            cols["tenant_id"].append(r.tenant_id)
            cols["ts"].append(_ts_us(r.ts))
            cols["name"].append(r.name)
            cols["kind"].append("gauge")
            cols["temporality"].append("")
            cols["monotonic"].append(False)
            cols["value"].append(float(r.value))
            cols["unit"].append("")
            cols["attributes"].append(msgspec.json.encode(r.labels).decode())
            cols["source"].append("derived")
        try:
            exporter.export("metric_points", cols)
        except Exception:  # a full export queue must not stop the analytics scheduler
            log.warning("derived series not exported (VictoriaMetrics queue full)", exc_info=True)

    return send


def _ts_us(ts: Any) -> int:
    """Epoch seconds (DerivedRow.ts) or a datetime → epoch microseconds."""
    if isinstance(ts, int | float):
        return int(ts * 1_000_000)
    return int(ts.timestamp() * 1_000_000)


def _storage_quotas(config: HubConfig) -> bool:
    q = config.service.quotas
    return q.enabled and (q.storage_bytes is not None or any(t.storage_bytes for t in q.tenants.values()))


def _depth_reader(exporter: Any) -> Callable[[], float]:
    return lambda: float(exporter.queue_depth)


def _stats_reader(exporter: Any) -> Callable[[], Any]:
    """The exporter's delivery counters (None until it has started, or for an exporter without any)."""
    return lambda: getattr(exporter, "delivery_stats", None)


def _series_reader(exporter: Any) -> Callable[[], Any]:
    return lambda: exporter.series_stats


def build_security(config: HubConfig, metrics: HubMetrics) -> SecurityContext:
    """Key store, JWT verifier, authenticator, quotas and audit log from ``service.*``."""
    sec = config.service
    data_dir = config.exporters.embedded.data_dir
    default_tenant = config.processors.native_events.default_tenant
    registry = RoleRegistry.from_config(sec.auth.roles)
    key_store = ApiKeyStore(data_dir, registry=registry, cache_seconds=sec.auth.key_cache_seconds)
    verifier = JwtVerifier(sec.auth.jwt, registry=registry) if sec.auth.jwt is not None else None
    authenticator = Authenticator(sec.auth, key_store, verifier, default_tenant=default_tenant, registry=registry)
    quotas = Quotas(sec.quotas, registry=metrics.registry) if sec.quotas.enabled else None
    audit = (  # its tail is repaired by HubService.start, once the store holds the data directory's lock
        AuditLog(data_dir, fsync=sec.audit.fsync, directory=sec.audit.directory, recover=False)
        if sec.audit.enabled
        else None
    )
    return SecurityContext(
        authenticator=authenticator,
        enabled=sec.auth.enabled,
        quotas=quotas,
        audit=audit,
        key_store=key_store,
        log_reads=sec.audit.log_reads,
    )


def _grpc_registrations(svc: HubService) -> dict[str, Callable[[grpc.aio.Server], None]]:
    """The gRPC services on the OTLP gRPC port: OTLP metrics/logs/traces and the native event stream."""
    from receivers.native_grpc.service import add_event_stream_servicer
    from receivers.otlp.grpc_service import add_otlp_servicers

    tenant = svc.api_state.default_tenant
    native = svc.config.receivers.native
    regs: dict[str, Callable[[grpc.aio.Server], None]] = {
        "otlp": lambda s: add_otlp_servicers(
            s, svc.pipeline, default_tenant=tenant, on_reject=svc.pipeline.reject_request
        ),
    }
    if native.grpc_stream:
        regs["events"] = lambda s: add_event_stream_servicer(
            s, svc.pipeline, max_batch_events=native.max_batch_events, audit=svc.security.audit
        )
    return regs
