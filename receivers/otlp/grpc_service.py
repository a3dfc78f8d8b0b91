"""OTLP/gRPC: the Metrics, Logs and Trace services on a ``grpc.aio`` server.

The servicers only decode and hand off (the request bytes are parsed in a worker thread, so a truncated
or garbage message is answered INVALID_ARGUMENT instead of grpc's own deserialisation failure, and the
event loop never parses). Status codes:

* OK, with ``partial_success`` when some items were refused;
* INVALID_ARGUMENT: not a valid request, bad ``x-scope-orgid``, or the consumer raised PermanentError;
* RESOURCE_EXHAUSTED + ``google.rpc.RetryInfo`` (in ``grpc-status-details-bin`` and in
  ``google.rpc.retryinfo-bin``, the key the OpenTelemetry Python exporter reads): the ingest queue is
  full (QueueFullError); UNAVAILABLE + RetryInfo for any other RetryableError;
* INTERNAL: a bug (logged).

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 << 20)])
    add_otlp_servicers(server, pipeline, default_tenant="default", on_reject=pipeline.reject_request)
    port = server.add_insecure_port("127.0.0.1:4317")
    await server.start()
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceServicer
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceServicer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer

from hubcore.contracts import SignalsConsumer
from hubcore.errors import PermanentError, QueueFullError, RetryableError
from receivers.otlp._core import SIGNALS, TENANT_HEADER, RejectHook, Signal, decode_protobuf, export, resolve_tenant

log = logging.getLogger(__name__)

RECEIVER = "otlp_grpc"

__all__ = ["RECEIVER", "OtlpLogsServicer", "OtlpMetricsServicer", "OtlpTraceServicer", "add_otlp_servicers"]


def retry_trailers(code: grpc.StatusCode, message: str, retry_after: float) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying a ``google.rpc.Status`` with a ``RetryInfo`` detail."""
    seconds = max(0.0, retry_after)
    frac, whole = math.modf(seconds)
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=int(whole), nanos=int(frac * 1e9)))
    detail = AnyProto()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


class _ExportHandler:
    """The one ``Export`` method, shared by the three servicers."""

    signal: Signal

    def __init__(self, consumer: SignalsConsumer, *, default_tenant: str, on_reject: RejectHook | None = None) -> None:
        self._consumer = consumer
        self._default_tenant = default_tenant
        self._on_reject = on_reject

    def _reject(self, reason: str) -> None:
        if self._on_reject is not None:
            try:
                self._on_reject(RECEIVER, reason)
            except Exception:  # pragma: no cover - a metrics hook must not fail the request
                log.exception("on_reject hook failed")

    def _handle(self, request: Any, tenant_header: str | None) -> Any:
        tenant, resource_tenant = resolve_tenant(tenant_header, self._default_tenant)
        if isinstance(request, bytes | bytearray | memoryview):
            request = decode_protobuf(self.signal, bytes(request))
        response = export(
            self._consumer, self.signal, request, tenant, resource_tenant=resource_tenant, receiver=RECEIVER
        )
        if response.HasField("partial_success") and getattr(response.partial_success, self.signal.rejected_field):
            self._reject("partial_success")
        return response

    async def Export(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        tenant_header = None
        for key, value in context.invocation_metadata() or ():
            if key.lower() == TENANT_HEADER:
                tenant_header = value if isinstance(value, str) else None
                break
        try:
            return await asyncio.to_thread(self._handle, request, tenant_header)
        except QueueFullError as exc:
            code, message, trailers = (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                str(exc),
                retry_trailers(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.retry_after),
            )
        except RetryableError as exc:
            code, message, trailers = (
                grpc.StatusCode.UNAVAILABLE,
                str(exc),
                retry_trailers(grpc.StatusCode.UNAVAILABLE, str(exc), exc.retry_after),
            )
        except PermanentError as exc:
            self._reject(exc.reason)
            code, message, trailers = grpc.StatusCode.INVALID_ARGUMENT, str(exc), ()
        except Exception:
            log.exception("OTLP/gRPC export failed", extra={"signal": self.signal.name})
            code, message, trailers = grpc.StatusCode.INTERNAL, "internal error", ()
        await context.abort(code, message, trailing_metadata=trailers)


class OtlpMetricsServicer(_ExportHandler, MetricsServiceServicer):
    """``opentelemetry.proto.collector.metrics.v1.MetricsService``."""

    signal = SIGNALS["metrics"]


class OtlpLogsServicer(_ExportHandler, LogsServiceServicer):
    """``opentelemetry.proto.collector.logs.v1.LogsService``."""

    signal = SIGNALS["logs"]


class OtlpTraceServicer(_ExportHandler, TraceServiceServicer):
    """``opentelemetry.proto.collector.trace.v1.TraceService``."""

    signal = SIGNALS["traces"]


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def add_otlp_servicers(
    server: grpc.aio.Server,
    consumer: SignalsConsumer,
    *,
    default_tenant: str,
    on_reject: RejectHook | None = None,
) -> None:
    """Register the three OTLP services on ``server`` (before ``server.start()``).

    Requests reach the servicers as raw bytes (no grpc-side deserialiser): see the module docstring.
    ``on_reject(receiver, reason)`` is called once per request refused as bad input (reason
    ``malformed`` / ``invalid_tenant`` / the PermanentError's reason) and once per request answered with
    a partial success (``partial_success``); back-pressure is counted by the consumer, not here.
    """
    if not default_tenant:
        raise ValueError("default_tenant must not be empty")
    for cls in (OtlpMetricsServicer, OtlpLogsServicer, OtlpTraceServicer):
        servicer = cls(consumer, default_tenant=default_tenant, on_reject=on_reject)
        handler = grpc.unary_unary_rpc_method_handler(
            servicer.Export, request_deserializer=None, response_serializer=_serialize
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(cls.signal.grpc_service, {"Export": handler}),)
        )
