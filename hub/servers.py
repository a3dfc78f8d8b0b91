"""The servers the hub listens with: the API and OTLP/HTTP on uvicorn, OTLP (and the native event stream) on gRPC.

:class:`ServersMixin` holds :class:`~hub.service.HubService`'s start-up of each server; the service stops them
first on shutdown (:mod:`hub.shutdown`). Every server is guarded by the receivers' authentication and quotas,
and each holds at most :data:`MAX_CONCURRENT_REQUESTS` requests in flight.

    >>> MAX_CONCURRENT_REQUESTS
    64
    >>> sorted(name for name in vars(ServersMixin) if name.startswith("_start_"))
    ['_start_grpc', '_start_http', '_start_otlp_http']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn

from hubcore.security.tls import grpc_server_credentials, uvicorn_ssl_kwargs
from receivers.auth import GrpcAuthInterceptor, HttpAuthMiddleware, ReceiverGuard, grpc_receiver_name

if TYPE_CHECKING:
    from api.state import ApiState, SecurityContext
    from hub.pipeline import IngestPipeline
    from hubcore.config import HubConfig

log = logging.getLogger("hub")

#: Requests in flight per server (gRPC RPCs, OTLP/HTTP requests): bounds memory held by large bodies
#: before back-pressure at the store applies. Past it: RESOURCE_EXHAUSTED / 503.
MAX_CONCURRENT_REQUESTS = 64


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ServersMixin:
    """Start-up of the hub's servers (part of :class:`~hub.service.HubService`, which sets this state)."""

    config: HubConfig
    security: SecurityContext
    pipeline: IngestPipeline
    api_state: ApiState
    bound: dict[str, int]
    _servers: list[_Server]
    _grpc: grpc.aio.Server | None

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


def _grpc_registrations(svc: ServersMixin) -> dict[str, Callable[[grpc.aio.Server], None]]:
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
