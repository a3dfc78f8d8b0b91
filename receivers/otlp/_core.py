"""What the gRPC and HTTP transports share: the three signals, tenancy, and one export function.

Both transports stay thin: they decode the body (or let :func:`decode_protobuf` do it), resolve the
tenant with :func:`resolve_tenant`, and call :func:`export` in a worker thread.

    >>> from hubcore.contracts import SignalsConsumer
    >>> class Sink:
    ...     def consume_rows(self, kind, columns, *, receiver):
    ...         print(kind, len(columns["tenant_id"]), receiver)
    >>> sig = SIGNALS["traces"]
    >>> resp = export(Sink(), sig, decode_protobuf(sig, b""), "t1", resource_tenant=True, receiver="otlp_http")
    >>> resp.HasField("partial_success")
    False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from hubcore.contracts import IngestOutcome, SignalKind, SignalsConsumer
from hubcore.errors import PermanentError
from hubcore.security.context import tenant_for_write
from hubcore.tenants import TENANT_RULE, is_tenant
from receivers.otlp._values import Rejections
from receivers.otlp.translate import Rows, logs_to_rows, metrics_to_rows, traces_to_rows

#: Header (HTTP) / metadata key (gRPC) naming the tenant, as Loki, Mimir and Tempo use it.
TENANT_HEADER = "x-scope-orgid"

#: Called when a whole request (or part of one) is refused: ``on_reject(receiver, reason)``.
RejectHook = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Signal:
    """One OTLP signal: its messages, its table, its translator and its gRPC service name."""

    name: str  # metrics | logs | traces (the /v1/<name> path)
    kind: SignalKind
    request: type[Message]
    response: type[Message]
    rejected_field: str  # rejected_data_points | rejected_log_records | rejected_spans
    translate: Callable[..., Rows]
    grpc_service: str


SIGNALS: dict[str, Signal] = {
    "metrics": Signal(
        "metrics", "metric_points", metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points", metrics_to_rows,
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
    ),
    "logs": Signal(
        "logs", "logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse,
        "rejected_log_records", logs_to_rows, "opentelemetry.proto.collector.logs.v1.LogsService",
    ),
    "traces": Signal(
        "traces", "spans", trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", traces_to_rows,
        "opentelemetry.proto.collector.trace.v1.TraceService",
    ),
}  # fmt: skip


def resolve_tenant(header: str | None, default_tenant: str) -> tuple[str, bool]:
    """``(tenant, resource_tenant)``: the header's tenant when sent, else the default and let the
    resources' ``tenant_id``/``tenant.id`` attributes override it.

    Raises :class:`PermanentError` for a header value outside the tenant grammar (:mod:`hubcore.tenants`).
    """
    if header is None:
        # With a credential, the credential's tenant (resource attributes cannot change it).
        return tenant_for_write(None, default_tenant=default_tenant)
    tenant = header.strip()
    if not is_tenant(tenant):
        raise PermanentError(f"{TENANT_HEADER} must be {TENANT_RULE}", reason="invalid_tenant")
    return tenant, False


def decode_protobuf(signal: Signal, data: bytes) -> Any:
    """Parse a binary Export*ServiceRequest; :class:`PermanentError` when it is not one."""
    try:
        return signal.request.FromString(data)
    except (DecodeError, ValueError, TypeError, RuntimeError) as exc:
        raise PermanentError(
            f"request body is not a valid {signal.request.__name__}: {exc}", reason="malformed"
        ) from None


def export(
    consumer: SignalsConsumer, signal: Signal, request: Any, tenant_id: str, *, resource_tenant: bool, receiver: str
) -> Any:
    """Translate ``request``, hand the rows to ``consumer`` and build the Export*ServiceResponse.

    Blocking (the consumer may fsync): call it from a worker thread. The consumer's
    :class:`~hubcore.errors.QueueFullError` / :class:`~hubcore.errors.PermanentError` propagate.
    """
    native_rejected, native_message = 0, None
    if signal.kind == "logs":
        native = take_native_events(request)
        if native and hasattr(consumer, "consume_events"):
            # native JSON events that came through the Collector (its kafka receiver): the native pipeline
            outcome = consumer.consume_events(
                native, tenant_id=None if resource_tenant else tenant_id, receiver="kafka"
            )
            native_rejected, native_message = _native_rejections(outcome)
    columns, rejected, message = signal.translate(request, tenant_id, resource_tenant=resource_tenant)
    if columns["tenant_id"]:
        consumer.consume_rows(signal.kind, columns, receiver=receiver)
    response = signal.response()
    rejected += native_rejected
    message = "; ".join(m for m in (native_message, message) if m) or None
    if rejected or message:
        partial = response.partial_success  # type: ignore[attr-defined]
        setattr(partial, signal.rejected_field, rejected)
        partial.error_message = message or ""
    return response


def _native_rejections(outcome: IngestOutcome | None) -> tuple[int, str | None]:
    """``(count, error_message)`` for the native events (``hub.native_event`` records) that were refused."""
    rejected = outcome.rejected if outcome is not None else []
    if not rejected:
        return 0, None
    rej = Rejections()
    for r in rejected:
        rej.add(str(r.get("reason", "rejected"))[:300])
    return rej.count, rej.message("native events (hub.native_event log records; see the dead-letter queue)")


NATIVE_EVENT_ATTRIBUTE = "hub.native_event"


def take_native_events(request: Any) -> list[bytes]:
    """Remove the log records marked ``hub.native_event = true`` from an ExportLogsServiceRequest and
    return their bodies (one native JSON event each): what ``otel-collector-config/collector-in-front.yaml``
    forwards from the platform's Kafka topics. Other records stay in the request."""
    found: list[bytes] = []
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            keep = []
            for rec in sl.log_records:
                marked = any(
                    kv.key == NATIVE_EVENT_ATTRIBUTE and (kv.value.bool_value or kv.value.string_value == "true")
                    for kv in rec.attributes
                )
                if not marked:
                    keep.append(rec)
                    continue
                body = rec.body
                if body.HasField("string_value"):
                    found.append(body.string_value.encode())
                elif body.HasField("bytes_value"):
                    found.append(bytes(body.bytes_value))
                else:
                    keep.append(rec)  # not a JSON payload: store it as the log record it is
            if len(keep) != len(sl.log_records):
                del sl.log_records[:]
                sl.log_records.extend(keep)
    return found
