"""OpenTelemetry traces of the hub itself.

The hub is an OTel product, so it traces its own work (one span per ingested batch of native events,
``ingest native events``). Spans go to an OTLP endpoint when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and otherwise into the hub's own store under the
tenant ``_hub``. A caller allowed to read every tenant (a platform admin; anyone when auth is off) reads them
with ``GET /api/v1/spans?tenant=_hub`` and ``GET /api/v1/traces/{trace_id}?tenant=_hub`` (or
``X-Scope-OrgID: _hub``; only the OTLP read routes take it, :data:`api.security.HUB_TENANT_ROUTES`); SQL
sees them with the hub stopped (DuckDB locks other processes out while it runs).

    >>> provider = configure_tracing(store=None)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from hubcore.errors import QueueFullError
from hubcore.storage.embedded import EmbeddedStore

log = logging.getLogger(__name__)
SELF_TENANT = "_hub"
_KINDS = {0: "INTERNAL", 1: "SERVER", 2: "CLIENT", 3: "PRODUCER", 4: "CONSUMER"}


class StoreSpanExporter(SpanExporter):
    """Writes the hub's own spans into its ``spans`` table (tenant ``_hub``)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        cols: dict[str, list[Any]] = {k: [] for k in (
            "tenant_id", "start_ts", "end_ts", "trace_id", "span_id", "parent_span_id", "name", "kind",
            "duration_ms", "status_code", "status_message", "service_name", "attributes", "resource", "source",
        )}  # fmt: skip
        for s in spans:
            ctx = s.get_span_context()
            if ctx is None or s.start_time is None or s.end_time is None:
                continue
            cols["tenant_id"].append(SELF_TENANT)
            cols["start_ts"].append(s.start_time // 1000)
            cols["end_ts"].append(s.end_time // 1000)
            cols["trace_id"].append(f"{ctx.trace_id:032x}")
            cols["span_id"].append(f"{ctx.span_id:016x}")
            cols["parent_span_id"].append(f"{s.parent.span_id:016x}" if s.parent else None)
            cols["name"].append(s.name)
            cols["kind"].append(_KINDS.get(s.kind.value, "INTERNAL"))
            cols["duration_ms"].append((s.end_time - s.start_time) / 1e6)
            cols["status_code"].append(s.status.status_code.name)
            cols["status_message"].append(s.status.description)
            cols["service_name"].append("llm-analytics-hub")
            cols["attributes"].append(json.dumps(dict(s.attributes or {}), default=str))
            cols["resource"].append(json.dumps(dict(s.resource.attributes), default=str))
            cols["source"].append("self")
        if not cols["span_id"]:
            return SpanExportResult.SUCCESS
        try:
            self.store.append("spans", cols)
        except (QueueFullError, RuntimeError):
            return SpanExportResult.FAILURE  # the hub's own spans yield to user data under pressure
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def configure_tracing(store: EmbeddedStore | None, *, service_version: str = "0.1.0") -> TracerProvider:
    """Create the hub's TracerProvider (not installed globally, so tests stay independent)."""
    resource = Resource.create({"service.name": "llm-analytics-hub", "service.version": service_version})
    provider = TracerProvider(resource=resource)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            log.info("hub traces go to OTLP", extra={"endpoint": endpoint})
        except ImportError:  # pragma: no cover - the exporter is a dev/optional dependency
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed")
    elif store is not None:
        provider.add_span_processor(BatchSpanProcessor(StoreSpanExporter(store), schedule_delay_millis=2000))
    return provider


def tracer(provider: TracerProvider | None) -> trace.Tracer:
    return (provider or trace.NoOpTracerProvider()).get_tracer("llm-analytics-hub")
