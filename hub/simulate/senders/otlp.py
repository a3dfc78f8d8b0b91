"""``--otlp URL``: the OpenTelemetry SDK's OTLP/HTTP exporters — GenAI metrics for every request (or a
sample), spans for a sample of those, log records for errors and security findings.

The SDK is imported when a sender is built; ``record`` reads the native events the generator made
(telemetry and security), so OTLP always describes the same requests as the native events.

    >>> sender = OtlpSender("http://127.0.0.1:4318", tenant="acme", sample=0.5, seed=1)  # doctest: +SKIP
    >>> sender.record(events); sender.stats()["requests"]                                 # doctest: +SKIP
    >>> sender.shutdown()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from hub.simulate.events import Event


class OtlpSender:
    """GenAI metrics (every request, or a ``sample``), spans (``span_sample`` of those) and logs (errors,
    security findings) via OTLP/HTTP.

    The SDK costs about 20-60 µs per recorded request, so the CLI records a sample above ~2,000
    requests/s (``--otlp-sample auto``); the summary says which fraction.

    Metrics follow the OpenTelemetry GenAI semantic conventions: ``gen_ai.client.operation.duration``
    (histogram, s) and ``gen_ai.client.token.usage`` (histogram, {token}, ``gen_ai.token.type``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        tenant: str | None = None,
        span_sample: float = 0.01,
        sample: float = 1.0,
        export_interval_s: float = 5.0,
        timeout_s: float = 3.0,
        seed: int | None = None,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        base = base_url.rstrip("/")
        self.endpoint = base
        self.exports: dict[str, int] = {"metrics": 0, "traces": 0, "logs": 0}
        self.export_failures: dict[str, int] = {"metrics": 0, "traces": 0, "logs": 0}
        headers = {"X-Scope-OrgID": tenant} if tenant else None
        attrs: dict[str, str] = {"service.name": "llm-observatory", "service.namespace": "llm-platform",
                                 "deployment.environment.name": "production"}  # fmt: skip
        if tenant:
            attrs["tenant_id"] = tenant
        resource = Resource.create(attrs)
        self.reader = PeriodicExportingMetricReader(
            self._counting(OTLPMetricExporter, "metrics")(
                endpoint=f"{base}/v1/metrics", headers=headers, timeout=timeout_s
            ),
            export_interval_millis=export_interval_s * 1000,
        )
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        meter = self.meter_provider.get_meter("hub.simulate", "1.0.0")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                                                 10.24, 20.48, 40.96, 81.92],
        )  # fmt: skip
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=[1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
                                                 1048576, 4194304, 16777216, 67108864],
        )  # fmt: skip
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                self._counting(OTLPSpanExporter, "traces")(
                    endpoint=f"{base}/v1/traces", headers=headers, timeout=timeout_s
                )
            )
        )
        self.tracer = self.tracer_provider.get_tracer("hub.simulate", "1.0.0")
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                self._counting(OTLPLogExporter, "logs")(endpoint=f"{base}/v1/logs", headers=headers, timeout=timeout_s)
            )
        )
        self.otel_logger = self.logger_provider.get_logger("hub.simulate", "1.0.0")
        self.span_sample = span_sample
        self.sample = sample
        self._rng = random.Random(seed)
        self._attr_cache: dict[tuple[str, str, str, str | None], tuple[dict[str, str], ...]] = {}
        self.skipped = 0
        self.requests = 0
        self.spans = 0
        self.logs = 0
        # The SDK exporters log every failed export at ERROR; keep the progress line readable.
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)

    def _counting(self, exporter_cls: type[Any], signal: str) -> type[Any]:
        """The exporter class, counting its exports and failed exports (the SDK only logs them)."""
        sender = self

        class Counting(exporter_cls):  # type: ignore[misc,valid-type]
            def export(self, *args: Any, **kwargs: Any) -> Any:
                result = super().export(*args, **kwargs)
                sender.exports[signal] += 1
                if getattr(result, "name", "SUCCESS") != "SUCCESS":
                    sender.export_failures[signal] += 1
                return result

        return Counting

    def _attrs(self, model: str, provider: str, operation: str, error: str | None) -> tuple[dict[str, str], ...]:
        key = (model, provider, operation, error)
        cached = self._attr_cache.get(key)
        if cached is None:
            base = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model, "gen_ai.response.model": model}  # fmt: skip
            if error:
                base["error.type"] = error
            cached = (base, {**base, "gen_ai.token.type": "input"}, {**base, "gen_ai.token.type": "output"})
            self._attr_cache[key] = cached
        return cached

    def record(self, events: Sequence[Event]) -> None:
        """Record the batch's requests (telemetry events; a ``sample`` of them) and security findings."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        now_ns = time.time_ns()
        rnd = self._rng.random
        sample = self.sample
        for ev in events:
            etype = ev["event_type"]
            if etype == "security":
                self._log(ev, now_ns)
                continue
            if etype != "telemetry":
                continue
            if sample < 1.0 and rnd() >= sample:
                self.skipped += 1
                continue
            p = ev["payload"]
            seconds = p["value"] if p.get("unit") == "s" else p["value"] / 1000.0
            error = p.get("error_type")
            attrs, in_attrs, out_attrs = self._attrs(p["model"], p["provider"], p.get("operation", "chat"), error)
            self.duration.record(seconds, attrs)
            if not error:
                self.tokens.record(p["input_tokens"], in_attrs)
                self.tokens.record(p["output_tokens"], out_attrs)
            self.requests += 1
            if error:
                self._log(ev, now_ns)
            if rnd() < self.span_sample:
                start = now_ns - int(seconds * 1e9)
                tags = ev.get("tags", {})
                span = self.tracer.start_span(
                    f"chat {p['model']}", kind=SpanKind.CLIENT, start_time=start,
                    attributes={**attrs, "gen_ai.usage.input_tokens": p["input_tokens"],
                                "gen_ai.usage.output_tokens": p["output_tokens"],
                                "hub.correlation_id": ev.get("correlation_id", ""),
                                "hub.team": tags.get("team", ""), "hub.project": tags.get("project", "")},
                )  # fmt: skip
                if error:
                    span.set_status(Status(StatusCode.ERROR, error))
                span.end(end_time=now_ns)
                self.spans += 1

    def _log(self, ev: Event, now_ns: int) -> None:
        from opentelemetry._logs import SeverityNumber

        sev = {"warning": SeverityNumber.WARN, "error": SeverityNumber.ERROR,
               "critical": SeverityNumber.FATAL}.get(ev.get("severity", "info"), SeverityNumber.INFO)  # fmt: skip
        p = ev["payload"]
        attrs = {k: v for k, v in p.items() if isinstance(v, str | int | float | bool)}
        attrs["event.name"] = f"{ev['source_module']}.{ev['event_type']}"
        attrs["hub.correlation_id"] = ev.get("correlation_id", "")
        self.otel_logger.emit(
            timestamp=now_ns, observed_timestamp=now_ns, severity_text=ev.get("severity", "info").upper(),
            severity_number=sev, body=msgspec.json.encode(p).decode(), attributes=attrs,
        )  # fmt: skip
        self.logs += 1

    def stats(self) -> dict[str, Any]:
        return {"sample": self.sample, "requests": self.requests, "skipped": self.skipped, "spans": self.spans,
                "logs": self.logs, "exports": dict(self.exports),
                "export_failures": dict(self.export_failures)}  # fmt: skip

    def shutdown(self) -> None:
        """Flush and stop the providers (each flush bounded by the exporters' timeout)."""
        for fn in (self.tracer_provider.shutdown, self.logger_provider.shutdown, self.meter_provider.shutdown):
            with contextlib.suppress(Exception):  # best effort at exit
                fn()
