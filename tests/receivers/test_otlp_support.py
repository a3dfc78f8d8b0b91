"""Shared pieces of the OTLP receiver tests (no tests here): a real store + pipeline, servers on free
loopback ports (grpc.aio in a loop thread, uvicorn in a thread), and telemetry made by the real
OpenTelemetry Python SDK.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import uvicorn
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from hub.pipeline import IngestPipeline
from hubcore.config import NativeEventsConfig
from hubcore.contracts import SignalKind
from hubcore.dlq import DeadLetterQueue
from hubcore.errors import QueueFullError
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics
from receivers.otlp.grpc_service import add_otlp_servicers
from receivers.otlp.http_app import create_otlp_http_app

T = TypeVar("T")

RESOURCE = {
    "service.name": "llm-observatory",
    "deployment.environment.name": "prod",
    "team": "ml-platform",
    "project": "chatbot",
}


@dataclass
class Hub:
    """A real embedded store behind the real ingest pipeline."""

    store: EmbeddedStore
    pipeline: IngestPipeline
    metrics: HubMetrics
    rejects: list[tuple[str, str]]

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        assert self.store.flush(10.0)
        return self.store.read(sql, params).fetchall()

    def count(self, table: str, where: str = "true") -> int:
        return int(self.rows(f"select count(*) from {table} where {where}")[0][0])

    def on_reject(self, receiver: str, reason: str) -> None:
        self.rejects.append((receiver, reason))
        self.pipeline.reject_request(receiver, reason)


def make_hub(tmp: Path) -> Hub:
    store = EmbeddedStore(tmp, wal_fsync=False, flush_interval=0.02)
    store.start()
    metrics = HubMetrics()
    pipeline = IngestPipeline(NativeEventsConfig(), store, DeadLetterQueue(tmp, fsync=False), metrics)
    return Hub(store, pipeline, metrics, [])


class QueueFull:
    """A consumer whose queue is always full."""

    def __init__(self) -> None:
        self.calls = 0

    def consume_rows(self, kind: SignalKind, columns: dict[str, list[Any]], *, receiver: str) -> None:
        self.calls += 1
        raise QueueFullError("ingest queue is full (test)", retry_after=2.0)


class LoopThread:
    """An asyncio loop in a thread: blocking clients (the SDK exporters) talk to an aio server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=20)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class GrpcServer:
    """The OTLP gRPC services on a free loopback port."""

    def __init__(self, consumer: Any, *, default_tenant: str = "default", on_reject: Any = None,
                 max_message_bytes: int = 4 << 20) -> None:  # fmt: skip
        self.lt = LoopThread()

        async def start() -> tuple[grpc.aio.Server, int]:
            server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes)])
            add_otlp_servicers(server, consumer, default_tenant=default_tenant, on_reject=on_reject)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            return server, port

        self.server, self.port = self.lt.run(start())
        self.target = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.lt.run(self.server.stop(None))
        self.lt.close()


class HttpServer:
    """The OTLP/HTTP app under uvicorn in a thread, on a socket bound beforehand (no port race)."""

    def __init__(self, consumer: Any, *, default_tenant: str = "default", max_body_bytes: int = 1 << 20,
                 on_reject: Any = None) -> None:  # fmt: skip
        app = create_otlp_http_app(
            consumer, default_tenant=default_tenant, max_body_bytes=max_body_bytes, on_reject=on_reject
        )
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


# -- telemetry from the real SDK ------------------------------------------------------------------------
EXP_HISTOGRAM = "gen_ai.client.operation.duration"


def sdk_metrics(resource: dict[str, Any] | None = None) -> MetricsData:
    """Every kind the SDK makes: monotonic and non-monotonic sums, a gauge, an explicit histogram and an
    exponential histogram (a View on gen_ai.client.operation.duration), with GenAI attributes."""
    temporality = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=temporality)  # type: ignore[arg-type]
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(resource or RESOURCE),
        views=[
            View(instrument_name=EXP_HISTOGRAM, aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
            View(instrument_name="*"),
        ],
    )
    meter = provider.get_meter("test.genai", "1.0")
    tokens = meter.create_counter("gen_ai.client.token.usage", unit="{token}")
    tokens.add(120, {"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                     "gen_ai.operation.name": "chat", "gen_ai.token.type": "input"})  # fmt: skip
    tokens.add(30, {"gen_ai.response.model": "claude-3-5-sonnet", "gen_ai.system": "anthropic",
                    "gen_ai.operation.name": "chat", "gen_ai.token.type": "output"})  # fmt: skip
    inflight = meter.create_up_down_counter("llm.requests.inflight")
    inflight.add(3, {"gen_ai.request.model": "gpt-4o"})
    inflight.add(-1, {"gen_ai.request.model": "gpt-4o"})
    meter.create_observable_gauge(
        "llm.gpu.utilization", callbacks=[lambda _opts: [_observation(0.75, {"gpu": "0"})]], unit="1"
    )
    duration = meter.create_histogram(EXP_HISTOGRAM, unit="s")
    for v in (0.2, 0.4, 0.8, 1.6, 3.2):
        duration.record(v, {"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                            "gen_ai.operation.name": "chat"})  # fmt: skip
    duration.record(2.0, {"gen_ai.request.model": "gpt-4o", "error.type": "timeout",
                          "gen_ai.operation.name": "chat"})  # fmt: skip
    ttft = meter.create_histogram("gen_ai.server.time_to_first_token", unit="s")
    for v in (0.05, 0.3, 7.0):
        ttft.record(v, {"gen_ai.request.model": "llama-3-70b"})
    data = reader.get_metrics_data()
    assert data is not None
    provider.shutdown()
    return data


def _observation(value: float, attrs: dict[str, str]) -> Any:
    from opentelemetry.metrics import Observation

    return Observation(value, attrs)


def sdk_spans(resource: dict[str, Any] | None = None) -> Sequence[ReadableSpan]:
    """A parent span and an LLM client span with GenAI attributes, an event and an error status."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test.genai")
    with (
        tracer.start_as_current_span("handle request", kind=SpanKind.SERVER),
        tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span,
    ):
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                             "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 120,
                             "error.type": "rate_limited"})  # fmt: skip
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "hello"})
        span.set_status(Status(StatusCode.ERROR, "429 from provider"))
    provider.shutdown()
    return memory.get_finished_spans()


def sdk_logs(resource: dict[str, Any] | None = None) -> Sequence[Any]:
    """Two log records: a string body with trace context, and a map body with an event name."""
    from opentelemetry._logs import SeverityNumber

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(resource or RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("test.genai")
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("op"):
        logger.emit(body="prompt blocked by policy", severity_number=SeverityNumber.WARN, severity_text="WARN",
                    attributes={"policy.id": "pii-1", "gen_ai.request.model": "gpt-4o"})  # fmt: skip
    logger.emit(body={"decision": "allow", "score": 0.1}, severity_number=SeverityNumber.INFO,
                event_name="policy.evaluated", timestamp=time.time_ns())  # fmt: skip
    provider.shutdown()
    return memory.get_finished_logs()
