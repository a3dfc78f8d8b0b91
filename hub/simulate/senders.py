"""Where simulated events go: the hub's REST ingest API (or its native gRPC receiver), a JSON Lines
file, and OTLP/HTTP.

* :class:`RestSender` — ``POST {api}/api/v1/events`` with a JSON array; 429/503 are retried after
  ``Retry-After`` (the same batch is resent), other 5xx and connection errors with jittered exponential
  backoff; when the API cannot be reached at all a :class:`SendError` is raised (exit code 1).
* :class:`GrpcSender` — ``--grpc HOST:PORT``: ``EventIngestionService.SendEvents``, same retry rules.
* :class:`FileSink` — ``--dry-run --output FILE.jsonl``.
* :class:`OtlpSender` — the OpenTelemetry SDK's OTLP/HTTP exporters: GenAI metrics for every request,
  spans for a sample, log records for errors and security findings.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

from hub.simulate.generator import Event, encode_batch, encode_lines

EVENTS_PATH = "/api/v1/events"


class SendError(RuntimeError):
    """The destination cannot take events at all (unreachable, authentication refused)."""


@dataclass(slots=True)
class SendStats:
    batches: int = 0
    sent: int = 0  # events handed over in answered requests
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    throttled: int = 0  # 429/503 answers (each followed by a resend of the same batch)
    retries: int = 0  # resends for any reason
    errors: int = 0  # failed requests (connection errors, 5xx...), retried or not
    failed_events: int = 0  # events given up on after the retries
    bytes_sent: int = 0
    last_error: str | None = None
    status_counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches, "sent": self.sent, "accepted": self.accepted, "rejected": self.rejected,
            "duplicates": self.duplicates, "throttled": self.throttled, "retries": self.retries,
            "errors": self.errors, "failed_events": self.failed_events, "bytes_sent": self.bytes_sent,
            "status_counts": dict(sorted(self.status_counts.items())), "last_error": self.last_error,
        }  # fmt: skip


def parse_retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class FileSink:
    """Writes events as JSON Lines; everything written counts as accepted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] = self.path.open("wb")
        self.stats = SendStats()

    def send(self, events: Sequence[Event]) -> None:
        data = encode_lines(events)
        self._fh.write(data)
        st = self.stats
        st.batches += 1
        st.sent += len(events)
        st.accepted += len(events)
        st.bytes_sent += len(data)

    def close(self) -> None:
        self._fh.close()


class RestSender:
    """Synchronous batches to the hub's REST ingest endpoint, with retries that honour Retry-After."""

    def __init__(
        self,
        api: str,
        *,
        tenant: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_throttle_retries: int = 60,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = api.rstrip("/") + EVENTS_PATH
        headers = {"Content-Type": "application/json", "User-Agent": "hub-simulate/1.0"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(headers=headers, timeout=timeout, transport=transport)
        self.max_retries = max_retries
        self.max_throttle_retries = max_throttle_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.stats = SendStats()
        self._lock = threading.Lock()

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2**attempt) * (0.5 + random.random() / 2)

    def send(self, events: Sequence[Event]) -> None:
        """Send one batch until it is answered (2xx/4xx); raises SendError if the API is unreachable.

        Thread-safe: ``--concurrency`` calls it from several threads (the counters take a lock).
        """
        body = encode_batch(events)
        st = self.stats
        lock = self._lock
        n = len(events)
        failures = 0  # connection errors and 5xx other than 503
        throttles = 0
        while True:
            try:
                resp = self.client.post(self.url, content=body)
            except httpx.TransportError as exc:
                with lock:
                    st.errors += 1
                    st.last_error = f"{type(exc).__name__}: {exc}"
                if failures >= self.max_retries:
                    raise SendError(
                        f"cannot reach the hub API at {self.url} after {failures + 1} attempts "
                        f"({type(exc).__name__}: {exc}); is `hub run` up and --api right?"
                    ) from exc
                self.sleep(self._backoff(failures))
                failures += 1
                with lock:
                    st.retries += 1
                continue
            code = resp.status_code
            key = str(code)
            with lock:
                st.status_counts[key] = st.status_counts.get(key, 0) + 1
            if code in (429, 503):
                with lock:
                    st.throttled += 1
                    if throttles >= self.max_throttle_retries:
                        st.failed_events += n
                        st.last_error = f"HTTP {code}: still throttled after {throttles} resends; batch dropped"
                        return
                wait = parse_retry_after(resp.headers.get("Retry-After"), self._backoff(throttles))
                self.sleep(min(wait, 60.0))
                throttles += 1
                with lock:
                    st.retries += 1
                continue
            if code >= 500:
                with lock:
                    st.errors += 1
                    st.last_error = f"HTTP {code}: {resp.text[:200]}"
                    if failures >= self.max_retries:
                        st.failed_events += n
                        return
                self.sleep(self._backoff(failures))
                failures += 1
                with lock:
                    st.retries += 1
                continue
            if code in (401, 403):
                with lock:
                    st.errors += 1
                raise SendError(f"the hub API refused the credentials (HTTP {code}): {resp.text[:200]}")
            with lock:
                st.batches += 1
                st.sent += n
                st.bytes_sent += len(body)
                self._count(resp, n)
            return

    def _count(self, resp: httpx.Response, n: int) -> None:
        """Read ``{"accepted": n, "rejected": [...], "duplicates": n}`` (the hub's answer) if present."""
        st = self.stats
        info: Any = None
        try:
            info = msgspec.json.decode(resp.content) if resp.content else None
        except msgspec.DecodeError:
            info = None
        if isinstance(info, dict) and ("accepted" in info or "rejected" in info):
            acc = info.get("accepted")
            rej = info.get("rejected")
            dup = info.get("duplicates", 0)
            n_rej = len(rej) if isinstance(rej, list) else int(rej or 0)
            n_dup = int(dup) if isinstance(dup, int) else 0
            n_acc = int(acc) if isinstance(acc, int) else max(0, n - n_rej - n_dup)
            st.accepted += n_acc
            st.rejected += n_rej
            st.duplicates += n_dup
            if n_rej and isinstance(rej, list) and isinstance(rej[0], dict):
                st.last_error = f"rejected: {str(rej[0].get('reason', rej[0]))[:200]}"
        elif resp.status_code < 300:
            st.accepted += n
        else:
            st.rejected += n
            st.last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"

    def close(self) -> None:
        self.client.close()


class GrpcSender:
    """Batches through the hub's native gRPC receiver (``EventIngestionService.SendEvents``).

    ``RETRY`` acks and ``RESOURCE_EXHAUSTED`` are resent after their hint (counted as throttled);
    ``UNAVAILABLE`` is retried with backoff, then raises :class:`SendError`.
    """

    def __init__(
        self,
        target: str,
        *,
        tenant: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_throttle_retries: int = 60,
        backoff_base: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from receivers.native_grpc.client import EventStreamClient

        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.client = EventStreamClient(target, tenant_id=tenant, timeout=timeout, max_retries=0, metadata=metadata)
        self.url = f"grpc://{target}"
        self.max_retries = max_retries
        self.max_throttle_retries = max_throttle_retries
        self.backoff_base = backoff_base
        self.sleep = sleep
        self.stats = SendStats()
        self._lock = threading.Lock()

    def send(self, events: Sequence[Event]) -> None:
        import grpc

        from receivers.native_grpc.protos import events_pb2

        request = self.client.batch([msgspec.json.encode(e) for e in events])
        size = request.ByteSize()
        st, lock, n = self.stats, self._lock, len(events)
        failures = throttles = 0
        while True:
            try:
                ack = self.client._send(request, timeout=self.client.timeout, metadata=self.client._metadata)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                name = code.name if code is not None else "UNKNOWN"
                with lock:
                    st.status_counts[name] = st.status_counts.get(name, 0) + 1
                    st.last_error = f"gRPC {name}: {exc.details() if hasattr(exc, 'details') else exc}"
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED and throttles < self.max_throttle_retries:
                    with lock:
                        st.throttled += 1
                        st.retries += 1
                    self.sleep(min(10.0, self.backoff_base * 2**throttles))
                    throttles += 1
                    continue
                with lock:
                    st.errors += 1
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise SendError(f"the hub's gRPC receiver refused the credentials ({name})") from exc
                if failures >= self.max_retries:
                    if code == grpc.StatusCode.UNAVAILABLE:
                        raise SendError(
                            f"cannot reach the hub's gRPC receiver at {self.url} after {failures + 1} attempts "
                            f"({st.last_error}); is `hub run` up and --grpc right?"
                        ) from exc
                    with lock:
                        st.failed_events += n
                    return
                self.sleep(min(10.0, self.backoff_base * 2**failures))
                failures += 1
                with lock:
                    st.retries += 1
                continue
            status = events_pb2.Ack.Status.Name(ack.status)
            with lock:
                st.status_counts[status] = st.status_counts.get(status, 0) + 1
            if ack.status == events_pb2.Ack.RETRY:
                with lock:
                    st.throttled += 1
                    if throttles >= self.max_throttle_retries:
                        st.failed_events += n
                        st.last_error = f"gRPC RETRY: still busy after {throttles} resends; batch dropped"
                        return
                    st.retries += 1
                self.sleep(min(60.0, max(0.0, ack.retry_after_seconds)))
                throttles += 1
                continue
            with lock:
                st.batches += 1
                st.sent += n
                st.bytes_sent += size
                st.accepted += ack.accepted
                st.duplicates += ack.duplicates
                st.rejected += len(ack.rejected) if ack.rejected else (n - ack.accepted - ack.duplicates)
                if ack.rejected:
                    st.last_error = f"rejected: {ack.rejected[0].reason[:200]}"
                elif ack.message and ack.status == events_pb2.Ack.REJECTED:
                    st.last_error = f"rejected: {ack.message[:200]}"
            return

    def close(self) -> None:
        self.client.close()


class ConcurrentSender:
    """Up to ``concurrency`` batches in flight (threads), so generation overlaps the server's work."""

    def __init__(self, inner: RestSender | GrpcSender, concurrency: int) -> None:
        self.inner = inner
        self.stats = inner.stats
        self.url = inner.url
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="hub-simulate-send")
        self.inflight: deque[Future[None]] = deque()

    def send(self, events: Sequence[Event]) -> None:
        """Queue one batch; blocks while ``concurrency`` batches are in flight; re-raises SendError."""
        while self.inflight and (len(self.inflight) >= self.concurrency or self.inflight[0].done()):
            self.inflight.popleft().result()
        self.inflight.append(self.pool.submit(self.inner.send, list(events)))

    def drain(self) -> None:
        while self.inflight:
            self.inflight.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.inner.close()


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
