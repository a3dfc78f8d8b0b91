"""Event spans sent to Tempo have a parent: the synthetic root span of their correlation id, sent once per trace
(with the first delivered batch of it, again only if that delivery is retried), or the span of their W3C
``traceparent`` tag. Decoded from the OTLP protobuf the endpoint received."""

from __future__ import annotations

from pathlib import Path

import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from exporters.tempo import TempoExporter, TempoExporterConfig
from hubcore.config import NativeEventsConfig
from hubcore.mapping import event_trace_id, root_span_id
from processors.native_events import NativeEventsProcessor
from tests.exporters._server import RecordingServer
from tests.exporters._util import FAST_RETRY, queue_in
from tests.helpers.events import make_event

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _columns(tenant: str, *events: dict[str, object]) -> dict[str, list[object]]:
    processor = NativeEventsProcessor(NativeEventsConfig())
    return processor.process([msgspec.json.encode(e) for e in events], tenant_id=tenant).columns


def _spans(body: bytes) -> list[Span]:
    return [sp for rs in ExportTraceServiceRequest.FromString(body).resource_spans
            for ss in rs.scope_spans for sp in ss.spans]  # fmt: skip


def test_event_spans_have_a_parent_in_the_same_export_or_an_earlier_one(tmp_path: Path) -> None:
    first = [make_event("telemetry", correlation_id="req-1"), make_event("security", correlation_id="req-1")]
    later = [make_event("cost", correlation_id="req-1"), make_event("policy", correlation_id="req-1",
                                                                    tags={"traceparent": TRACEPARENT})]  # fmt: skip
    # the first delivery is refused (retryable): its root must still reach Tempo, with the retry
    with RecordingServer(fail=[(429, {"Retry-After": "0"})]) as srv:
        ex = TempoExporter(TempoExporterConfig(endpoint=srv.url, flush_interval=0.05,
                                               sending_queue=queue_in(tmp_path / "q"), retry_on_failure=FAST_RETRY))  # fmt: skip
        ex.start()
        ex.export("events", _columns("acme", *first))
        ex.export("events", _columns("globex", first[0]))  # the same correlation id in another tenant
        assert ex.flush(10)
        ex.export("events", _columns("acme", *later))
        assert ex.flush(10)
        ex.shutdown(5)
    assert len(srv.requests) == len(srv.accepted) + 1
    seen: dict[str, set[bytes]] = {}
    roots: dict[str, list[Span]] = {}
    events: dict[str, list[Span]] = {}
    for req in srv.accepted:  # in the order Tempo got them
        tenant = req.headers["x-scope-orgid"]
        spans = _spans(req.body)
        seen.setdefault(tenant, set()).update(sp.span_id for sp in spans)
        for sp in spans:
            if sp.name == "correlation":
                roots.setdefault(tenant, []).append(sp)
                assert not sp.parent_span_id
                continue
            events.setdefault(tenant, []).append(sp)
            if sp.trace_id == bytes.fromhex(TRACEPARENT[3:35]):  # under the traceparent's span, not a root
                assert sp.parent_span_id == bytes.fromhex(TRACEPARENT[36:52])
            else:
                assert sp.parent_span_id in seen[tenant], f"{sp.name}: parent not sent yet"
    assert len(events["acme"]) == 4 and len(events["globex"]) == 1
    # one root per trace, sent once: the later batch of req-1 did not send it again
    for tenant in ("acme", "globex"):
        (root,) = roots[tenant]
        assert root.span_id == bytes.fromhex(root_span_id(tenant, "req-1"))
        assert root.trace_id == bytes.fromhex(event_trace_id(tenant, "req-1"))
        assert {sp.parent_span_id for sp in events[tenant] if sp.trace_id == root.trace_id} == {root.span_id}
    assert roots["acme"][0].span_id != roots["globex"][0].span_id
    assert f"acme/{root_span_id('acme', 'req-1')}" in ex.sent_roots


def test_a_root_is_sent_once_for_many_batches_of_its_trace(tmp_path: Path) -> None:
    with RecordingServer() as srv:
        ex = TempoExporter(TempoExporterConfig(endpoint=srv.url, flush_interval=5.0,
                                               sending_queue=queue_in(tmp_path / "q")))  # fmt: skip
        ex.start()
        for _ in range(3):  # three batches of one trace
            ex.export("events", _columns("acme", make_event("cost", correlation_id="req-9")))
        assert ex.flush(10)
        ex.shutdown(5)
    spans = [sp for req in srv.accepted for sp in _spans(req.body)]
    assert [sp.name for sp in spans].count("correlation") == 1 and len(spans) == 4
    assert spans[0].name == "correlation"  # ahead of its children (a 413 split sends it first)
