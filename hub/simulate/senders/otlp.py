"""``--otlp URL``: the OpenTelemetry SDK's OTLP/HTTP exporters — GenAI metrics for every request (or a
sample), one trace for each of a sample of those, log records for errors and security findings.

The SDK is imported when a sender is built; ``record`` reads the native events the generator made, so
OTLP always describes the same requests as the native events. A traced request's spans (one tree across
the modules that reported on it: :mod:`hub.simulate.spans`) are built once all of its events have been
recorded — they come together, so when the next request's telemetry arrives (or at ``shutdown``). ``record``
gives each event of a traced request a W3C ``traceparent`` tag naming the span that emitted it
(:func:`hub.simulate.spans.traceparent`), so the hub puts the events' spans in the request's tree: call it
before the events are sent.

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
from hub.simulate.spans import PlannedSpan, request_spans, traceparent

SPAN_QUEUE_SIZE = 32_768  # spans waiting for export; the SDK drops (silently) beyond it


class OtlpSender:
    """GenAI metrics (every request, or a ``sample``), traces (``span_sample`` of those: a root span at the
    gateway, a span per module call, the GenAI inference span; ``service.name`` per module) and logs
    (errors, security findings) via OTLP/HTTP.

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
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

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
        # Spans are built whole (ids, parents, times from the events) and handed to the SDK's batch processor
        # and OTLP exporter; each module's spans carry its own resource (service.name), which a
        # TracerProvider (one resource) cannot give.
        # The processor drops spans beyond its queue (2,048 by default, about 300 traced requests): room for a
        # few seconds of --span-sample 1 at the --otlp-sample auto limit (2,000 requests/s, 7.1 spans each).
        self.span_processor = BatchSpanProcessor(
            self._counting(OTLPSpanExporter, "traces")(endpoint=f"{base}/v1/traces", headers=headers,
                                                       timeout=timeout_s),
            max_queue_size=SPAN_QUEUE_SIZE,
        )  # fmt: skip
        self._scope = InstrumentationScope("hub.simulate", "1.0.0")
        self._resource_attrs = attrs
        self._resources: dict[tuple[str, str], Any] = {}
        self._open: dict[str, list[Event]] = {}  # traced requests whose events may not all be in yet
        self.tenant = tenant
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
        self.traces = 0
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
        """Record the batch's requests (telemetry events; a ``sample`` of them), security findings, and the
        traces of ``span_sample`` of the recorded requests; each event of a traced request gets its
        ``tags.traceparent`` (a new ``tags`` dict), so record the events before sending them."""
        now_ns = time.time_ns()
        rnd = self._rng.random
        sample = self.sample
        opened = self._open
        for ev in events:
            etype = ev["event_type"]
            if opened and etype != "telemetry":
                corr = ev.get("correlation_id")
                if corr is not None and corr in opened:
                    self._stamp(ev)
                    opened[corr].append(ev)
            if etype == "security":
                self._log(ev, now_ns)
                continue
            if etype != "telemetry":
                continue
            if opened:  # a request's events come together: the traced ones before this are complete
                self._close_traces()
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
            if rnd() < self.span_sample and ev.get("correlation_id"):
                self._stamp(ev)
                opened[ev["correlation_id"]] = [ev]

    def _stamp(self, ev: Event) -> None:
        """Put ``ev`` (an event of a traced request) under the span that emitted it: its ``traceparent`` tag."""
        tp = traceparent(self.tenant, ev)
        if tp is not None:
            ev["tags"] = {**(ev.get("tags") or {}), "traceparent": tp}

    def _close_traces(self) -> None:
        """Send the spans of the traced requests recorded so far."""
        for evs in self._open.values():
            planned = request_spans(evs, tenant=self.tenant, rng=self._rng)
            for ps in planned:
                self.span_processor.on_end(self._readable(ps, evs[0].get("environment", "production")))
            self.spans += len(planned)
            self.traces += 1 if planned else 0
        self._open.clear()

    def _readable(self, ps: PlannedSpan, environment: str) -> Any:
        """``ps`` as the SDK's finished span, with its module's resource."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        key = (ps.service, environment)
        resource = self._resources.get(key)
        if resource is None:
            resource = Resource.create({**self._resource_attrs, "service.name": ps.service,
                                        "deployment.environment.name": environment})  # fmt: skip
            self._resources[key] = resource
        flags = TraceFlags(TraceFlags.SAMPLED)
        parent = None if ps.parent_id is None else SpanContext(ps.trace_id, ps.parent_id, False, flags)
        attributes = {k: tuple(v) if isinstance(v, list) else v for k, v in ps.attributes.items()}
        return ReadableSpan(
            ps.name, context=SpanContext(ps.trace_id, ps.span_id, False, flags), parent=parent, resource=resource,
            attributes=attributes, kind=SpanKind[ps.kind], start_time=ps.start_ns, end_time=ps.end_ns,
            status=Status(StatusCode.ERROR, ps.error) if ps.error else Status(StatusCode.UNSET),
            instrumentation_scope=self._scope,
        )  # fmt: skip

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
        return {"sample": self.sample, "requests": self.requests, "skipped": self.skipped, "traces": self.traces,
                "spans": self.spans, "logs": self.logs, "exports": dict(self.exports),
                "export_failures": dict(self.export_failures)}  # fmt: skip

    def shutdown(self) -> None:
        """Send the open traces, flush and stop the providers (each flush bounded by the exporters' timeout)."""
        with contextlib.suppress(Exception):
            self._close_traces()
        for fn in (self.span_processor.shutdown, self.logger_provider.shutdown, self.meter_provider.shutdown):
            with contextlib.suppress(Exception):  # best effort at exit
                fn()
