"""GET /api/v1/traces/{trace_id} returns the spans mapped from the tenant's native events of the trace (read by
the stored ``events.trace_id``) next to its OTLP spans: a correlation id's events under their synthetic root, an
event with a W3C ``traceparent`` tag in that real trace under the traceparent's span; never another tenant's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from hubcore.mapping import event_trace_id, root_span_id
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub

#: an OTLP trace (gateway span a1 → model call a2) that acme's events with correlation id req-1 belong to
CHAIN = event_trace_id("acme", "req-1")
#: a trace sent over OTLP under its own id, which an event names in its traceparent tag
REAL = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{REAL}-00f067aa0ba902b7-01"
T0 = (time.time_ns() // 10**9 - 600) * 10**9


def _otlp() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="gateway")))
    spans = rs.scope_spans.add().spans
    spans.add(trace_id=bytes.fromhex(CHAIN), span_id=bytes.fromhex("a1" * 8), name="handle request",
              start_time_unix_nano=T0, end_time_unix_nano=T0 + 900 * 10**6, kind=2)  # fmt: skip
    spans.add(trace_id=bytes.fromhex(REAL), span_id=bytes.fromhex("00f067aa0ba902b7"), name="policy check",
              start_time_unix_nano=T0, end_time_unix_nano=T0 + 50 * 10**6, kind=1)  # fmt: skip
    return req


def _events(tenant: str) -> list[dict[str, Any]]:
    """Two events of correlation id req-1, one under the traceparent, one of another correlation id."""
    tags = {"team": "search", "traceparent": TRACEPARENT}
    return [
        make_event("telemetry", correlation_id="req-1", tags={"tenant_note": tenant}),
        make_event("cost", correlation_id="req-1"),
        make_event("policy", correlation_id="req-1", tags=tags),  # joins REAL, not req-1's trace
        make_event("security", correlation_id="req-2"),
    ]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("traceevents"), grpc=False) as h:
        r = httpx.post(h.otlp_http + "/v1/traces", content=_otlp().SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": "acme"})  # fmt: skip
        assert r.status_code == 200, r.text
        for tenant in ("acme", "globex"):  # the same correlation ids and traceparent in another tenant
            r = httpx.post(h.api + "/api/v1/events", json={"events": _events(tenant)}, headers={"X-Scope-OrgID": tenant})
            assert r.status_code in (200, 202) and r.json()["accepted"] == 4, r.text
        h.flush()
        yield h


def _trace(hub: RunningHub, trace_id: str, tenant: str = "acme") -> httpx.Response:
    return httpx.get(f"{hub.api}/api/v1/traces/{trace_id}", headers={"X-Scope-OrgID": tenant}, timeout=30)


def test_a_trace_holds_its_otlp_spans_and_its_event_spans_under_their_root(hub: RunningHub) -> None:
    r = _trace(hub, CHAIN)
    assert r.status_code == 200, r.text
    body = r.json()
    spans = body["spans"]
    assert body["span_count"] == len(spans) == 4 and body["truncated"] is False
    by_source: dict[str, list[dict[str, Any]]] = {}
    for sp in spans:
        assert sp["trace_id"] == CHAIN and sp["tenant_id"] == "acme"
        by_source.setdefault(sp["source"], []).append(sp)
    assert [s["name"] for s in by_source["otlp"]] == ["handle request"]
    (root,) = by_source["event_root"]
    assert root["span_id"] == root_span_id("acme", "req-1") and root["parent_span_id"] is None
    assert root["attributes"]["correlation_id"] == "req-1" and root["service_name"] == "llm-analytics-hub"
    events = by_source["event"]
    assert sorted(s["name"].split()[0] for s in events) == ["cost", "telemetry"]
    assert all(s["parent_span_id"] == root["span_id"] and s["event_id"] for s in events)
    # the root spans its events, and comes before a child that starts with it
    assert root["start_time"] == min(s["start_time"] for s in events)
    assert root["end_time"] == max(s["end_time"] for s in events)
    assert spans.index(root) < min(spans.index(s) for s in events)


def test_an_event_with_a_traceparent_joins_that_trace_under_its_span(hub: RunningHub) -> None:
    body = _trace(hub, REAL).json()
    assert sorted((s["source"], s["name"].split()[0]) for s in body["spans"]) == [("event", "policy"),
                                                                                  ("otlp", "policy")]  # fmt: skip
    (event,) = [s for s in body["spans"] if s["source"] == "event"]
    assert event["parent_span_id"] == "00f067aa0ba902b7" and event["tenant_id"] == "acme"


def test_a_trace_of_events_only_is_found(hub: RunningHub) -> None:
    body = _trace(hub, event_trace_id("acme", "req-2").upper()).json()
    assert [s["source"] for s in body["spans"]] == ["event_root", "event"]


def test_another_tenants_events_are_not_returned(hub: RunningHub) -> None:
    # globex's events carry the same traceparent (so the same trace id) and correlation ids
    real = _trace(hub, REAL, "globex").json()["spans"]
    assert [(s["tenant_id"], s["source"]) for s in real] == [("globex", "event")]
    globex_chain = _trace(hub, event_trace_id("globex", "req-1"), "globex").json()["spans"]
    assert {s["tenant_id"] for s in globex_chain} == {"globex"} and len(globex_chain) == 3
    assert "globex" not in {s["tenant_id"] for s in _trace(hub, CHAIN).json()["spans"]}
    # acme's trace id of req-1 names nothing of globex's, and globex's nothing of acme's
    assert _trace(hub, CHAIN, "globex").status_code == 404
    assert _trace(hub, event_trace_id("globex", "req-1")).status_code == 404


@pytest.mark.parametrize("bad", ["xyz", CHAIN[:-1], CHAIN + "0", "g" * 32, "0" * 32])
def test_a_bad_trace_id_is_a_422_naming_it(hub: RunningHub, bad: str) -> None:
    r = _trace(hub, bad)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert "trace_id" in err["message"] and err["code"]


def test_a_span_comes_after_its_parent_when_they_start_together() -> None:
    # the SQL put only roots first: a policy check starting with the request span around it came before it
    from hubcore.query.otlp import _SPAN_COLUMNS, parents_first

    n = len(_SPAN_COLUMNS)

    def row(span: str, parent: str | None, start: int) -> tuple[Any, ...]:
        r: list[Any] = [None] * (n + 2)
        r[2], r[3], r[n] = span, parent, start
        return tuple(r)

    rows = [row("root", None, 1), row("rule", "eval", 5), row("eval", "root", 5), row("late", "root", 9),
            row("orphan", "gone", 5), row("x", "y", 7), row("y", "x", 7)]  # fmt: skip
    got = [r[2] for r in parents_first(rows)]
    assert got[:4] == ["root", "orphan", "eval", "rule"] and got[6] == "late"
    assert sorted(got[4:6]) == ["x", "y"]  # a parent cycle (bad data) is cut somewhere, and nothing is lost
