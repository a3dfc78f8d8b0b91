"""The OTLP receiver's factory: the only way in (type name, default config, one constructor per protocol).

    >>> import grpc
    >>> cfg = default_config()
    >>> dict(grpc_server_options(cfg))["grpc.max_receive_message_length"]
    16777216

In the service (see ``hub/service.py``)::

    server = grpc.aio.server(options=grpc_server_options(cfg))
    register_grpc(server, cfg, pipeline, default_tenant="default", on_reject=pipeline.reject_request)
    app = create_http_app(cfg, pipeline, default_tenant="default", on_reject=pipeline.reject_request)
"""

from __future__ import annotations

import grpc
from starlette.applications import Starlette

from hubcore.contracts import SignalsConsumer
from receivers.otlp._core import RejectHook
from receivers.otlp.config import OtlpReceiverConfig, validate
from receivers.otlp.grpc_service import add_otlp_servicers
from receivers.otlp.http_app import create_otlp_http_app

__all__ = ["TYPE", "create_http_app", "default_config", "grpc_server_options", "register_grpc"]

TYPE = "otlp"


def default_config() -> OtlpReceiverConfig:
    """gRPC on 127.0.0.1:4317 and HTTP on 127.0.0.1:4318, 16 MiB messages."""
    return validate(OtlpReceiverConfig())


def grpc_server_options(config: OtlpReceiverConfig) -> list[tuple[str, int]]:
    """``grpc.aio.server(options=...)`` for the OTLP gRPC endpoint (message size limit)."""
    limit = config.protocols.grpc.max_message_bytes
    return [("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)]


def register_grpc(
    server: grpc.aio.Server,
    config: OtlpReceiverConfig,
    consumer: SignalsConsumer,
    *,
    default_tenant: str,
    on_reject: RejectHook | None = None,
) -> None:
    """Register the OTLP Metrics/Logs/Trace services on ``server`` (nothing when gRPC is disabled)."""
    if config.protocols.grpc.enabled:
        add_otlp_servicers(server, consumer, default_tenant=default_tenant, on_reject=on_reject)


def create_http_app(
    config: OtlpReceiverConfig,
    consumer: SignalsConsumer,
    *,
    default_tenant: str,
    on_reject: RejectHook | None = None,
) -> Starlette | None:
    """The OTLP/HTTP ASGI app, or None when HTTP is disabled."""
    http = config.protocols.http
    if not http.enabled:
        return None
    return create_otlp_http_app(
        consumer, default_tenant=default_tenant, max_body_bytes=http.max_message_bytes, on_reject=on_reject
    )
