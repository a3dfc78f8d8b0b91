"""GET /api/v1/traces/{trace_id}, /api/v1/spans and /api/v1/logs: OTLP data sent over OTLP/HTTP, read back
tenant-scoped, paged without loss or repetition (ties and exact duplicates included), every bad parameter a
422, 401 without a credential, 501 in stack mode."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from hubcore.query.otlp import LogListQuery, SpanListQuery, encode_cursor
from tests.helpers.hub import RunningHub, running_hub

PB = {"Content-Type": "application/x-protobuf"}
TRACE = "5b8efff798038103d269b633813fc60c"
T0 = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago, whole seconds
MS = 10**6
#: what the cursors of acme's unfiltered lists are bound to: a forged cursor carrying it is checked for itself
SPANS, LOGS = SpanListQuery("acme").scope(), LogListQuery("acme").scope()


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span(rs: Any, trace: str, span: str, name: str, start: int, dur_ms: int, **kw: Any) -> Span:
    sp = rs.scope_spans[0].spans.add(trace_id=bytes.fromhex(trace), span_id=bytes.fromhex(span), name=name,
                                     start_time_unix_nano=start, end_time_unix_nano=start + dur_ms * MS, kind=kw.get("kind", 1))  # fmt: skip
    if "parent" in kw:
        sp.parent_span_id = bytes.fromhex(kw["parent"])
    if "model" in kw:
        sp.attributes.append(_kv("gen_ai.request.model", kw["model"]))
    if kw.get("error"):
        sp.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="429 from provider"))
    return sp


def _resource(req: Any, field: str, service: str) -> Any:
    res = getattr(req, field).add()
    res.resource.attributes.append(_kv("service.name", service))
    getattr(res, "scope_spans" if field == "resource_spans" else "scope_logs").add()
    return res


def traces_request() -> ExportTraceServiceRequest:
    """One trace of three spans (gateway → llm with an event and an error, → tool), plus 40 spans of
    other traces for paging: groups of 4 share a start time, 5 are sent twice (exact duplicates) and 5 more
    twice with another name."""
    req = ExportTraceServiceRequest()
    gw = _resource(req, "resource_spans", "gateway")
    llm = _resource(req, "resource_spans", "llm-svc")
    _span(gw, TRACE, "a000000000000001", "handle request", T0, 900, kind=2)
    child = _span(llm, TRACE, "a000000000000002", "chat gpt-4o", T0 + 10 * MS, 700, parent="a000000000000001",
                  model="gpt-4o", error=True, kind=3)  # fmt: skip
    child.events.add(time_unix_nano=T0 + 20 * MS, name="gen_ai.content.prompt", attributes=[_kv("p", "hello")])
    _span(llm, TRACE, "a000000000000003", "tool call", T0 + 5 * MS, 50, parent="a000000000000001")
    for i in range(40):
        trace = f"{i + 1:032x}"
        start = T0 - (i // 4 + 1) * 10**9
        _span(llm, trace, f"{i + 1:016x}", "bulk", start, i)
        if i % 8 == 0:
            _span(llm, trace, f"{i + 1:016x}", "bulk", start, i)  # the same span sent twice
        if i % 8 == 4:
            _span(llm, trace, f"{i + 1:016x}", "bulk again", start, i)  # twice, with another name
    return req


def logs_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = _resource(req, "resource_logs", "llm-svc")
    records = rl.scope_logs[0].log_records
    bodies = [
        ("progress 100%_done", 9),
        ("progress 100abdone", 9),
        ("Prompt BLOCKED by policy", 13),
        ("back\\slash here", 17),
        ("fatal: out of quota", 21),
    ]
    for i, (body, sev) in enumerate(bodies):
        lr = records.add(time_unix_nano=T0 - i * 10**9, severity_number=sev, body=AnyValue(string_value=body))
        if i == 2:
            lr.trace_id, lr.span_id = bytes.fromhex(TRACE), bytes.fromhex("a000000000000002")
    for i in range(30):  # ties: 6 records per second, every third one an exact duplicate of another
        body = f"tick {i // 3}"
        records.add(time_unix_nano=T0 - (10 + i // 6) * 10**9, severity_number=5, body=AnyValue(string_value=body))
    return req


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("otlpreads"), grpc=False) as h:
        for path, req in (("/v1/traces", traces_request()), ("/v1/logs", logs_request())):
            r = httpx.post(h.otlp_http + path, content=req.SerializeToString(), headers={**PB, "X-Scope-OrgID": "acme"})
            assert r.status_code == 200, r.text
        h.flush()
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.api, timeout=30, headers={"X-Scope-OrgID": "acme"}) as c:
        yield c


def _all_pages(client: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        r = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body[key]) <= params.get("limit", 100)
        out += body[key]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def test_a_trace_is_read_back_in_start_order_with_its_events(client: httpx.Client) -> None:
    r = client.get(f"/api/v1/traces/{TRACE.upper()}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trace_id"] == TRACE and body["span_count"] == 3 and body["truncated"] is False
    assert [s["span_id"] for s in body["spans"]] == ["a000000000000001", "a000000000000003", "a000000000000002"]
    chat = body["spans"][2]
    assert chat["tenant_id"] == "acme" and chat["service_name"] == "llm-svc" and chat["kind"] == "CLIENT"
    assert chat["parent_span_id"] == "a000000000000001" and chat["status_code"] == "ERROR"
    assert chat["status_message"] == "429 from provider" and chat["model"] == "gpt-4o"
    assert chat["duration_ms"] == 700.0 and chat["attributes"] == {"gen_ai.request.model": "gpt-4o"}
    assert chat["resource"]["service.name"] == "llm-svc"
    assert chat["start_time"].endswith("Z") and chat["end_time"] > chat["start_time"]
    assert chat["events"] == [{"name": "gen_ai.content.prompt", "time": chat["events"][0]["time"],
                               "attributes": {"p": "hello"}}]  # fmt: skip
    assert chat["events"][0]["time"].endswith(".020000Z")


def test_unknown_trace_and_another_tenants_trace_are_404(client: httpx.Client, hub: RunningHub) -> None:
    assert client.get(f"/api/v1/traces/{'ab' * 16}").status_code == 404
    other = client.get(f"/api/v1/traces/{TRACE}", headers={"X-Scope-OrgID": "globex"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{hub.api}/api/v1/traces/{TRACE}", params={"tenant": "globex"}).status_code == 404
    assert httpx.get(f"{hub.api}/api/v1/traces/{TRACE}", params={"tenant": "acme"}).status_code == 200


def test_spans_newest_first_and_filters(client: httpx.Client) -> None:
    spans = client.get("/api/v1/spans", params={"limit": 1000}).json()["spans"]
    assert len(spans) == 3 + 40 + 5 + 5
    starts = [s["start_time"] for s in spans]
    assert starts == sorted(starts, reverse=True)
    assert spans[0]["span_id"] == "a000000000000002"  # the latest start

    def ids(**params: Any) -> set[str]:
        r = client.get("/api/v1/spans", params=params)
        assert r.status_code == 200, r.text
        return {s["span_id"] for s in r.json()["spans"]}

    assert ids(service="gateway") == {"a000000000000001"}
    assert ids(name="tool call") == {"a000000000000003"}
    assert ids(status="error") == ids(status="ERROR") == ids(model="gpt-4o") == {"a000000000000002"}
    assert ids(trace_id=TRACE) == {"a000000000000001", "a000000000000002", "a000000000000003"}
    assert ids(min_duration_ms=700) == {"a000000000000001", "a000000000000002"}
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 / 1e9))
    assert ids(start=start) == {"a000000000000001", "a000000000000002", "a000000000000003"}
    assert len(ids(end=start, limit=1000)) == 40
    assert ids(start="-1m") == set()


def test_span_pages_neither_lose_nor_repeat_rows(client: httpx.Client, hub: RunningHub) -> None:
    expected = Counter(hub.sql("SELECT span_id, name FROM spans WHERE tenant_id = 'acme'"))
    assert len(expected) == 3 + 40 + 5 and sum(expected.values()) == 3 + 40 + 10
    for limit in (1, 2, 3, 4, 7):
        got = _all_pages(client, "/api/v1/spans", "spans", limit=limit)
        assert Counter((s["span_id"], s["name"]) for s in got) == expected, limit
        starts = [s["start_time"] for s in got]
        assert starts == sorted(starts, reverse=True)


def test_logs_filters_and_escaped_contains(client: httpx.Client) -> None:
    def bodies(**params: Any) -> list[str]:
        r = client.get("/api/v1/logs", params=params)
        assert r.status_code == 200, r.text
        return [x["body"] for x in r.json()["logs"]]

    assert bodies(contains="100%_d") == ["progress 100%_done"]  # % and _ are literal
    assert bodies(contains="blocked BY") == ["Prompt BLOCKED by policy"]  # case-insensitive
    assert bodies(contains="k\\s") == ["back\\slash here"]
    assert bodies(severity="warn") == ["Prompt BLOCKED by policy", "back\\slash here", "fatal: out of quota"]
    assert bodies(severity="21") == bodies(severity="FATAL") == ["fatal: out of quota"]
    assert bodies(trace_id=TRACE) == ["Prompt BLOCKED by policy"]
    assert bodies(service="nope") == []
    first = client.get("/api/v1/logs", params={"limit": 1}).json()["logs"][0]
    assert first["body"] == "progress 100%_done" and first["severity_number"] == 9
    assert first["service_name"] == "llm-svc" and first["timestamp"].endswith("Z") and first["tenant_id"] == "acme"
    linked = client.get("/api/v1/logs", params={"trace_id": TRACE}).json()["logs"][0]
    assert linked["span_id"] == "a000000000000002"


def test_log_pages_neither_lose_nor_repeat_rows(client: httpx.Client) -> None:
    everything = client.get("/api/v1/logs", params={"limit": 1000}).json()["logs"]
    assert len(everything) == 35
    expected = Counter((x["timestamp"], x["body"]) for x in everything)
    assert expected[(everything[-1]["timestamp"], everything[-1]["body"])] >= 1
    assert max(expected.values()) == 3  # the exact duplicates are all listed
    for limit in (1, 2, 4, 5):
        got = _all_pages(client, "/api/v1/logs", "logs", limit=limit)
        assert Counter((x["timestamp"], x["body"]) for x in got) == expected, limit
        assert [x["timestamp"] for x in got] == sorted((x["timestamp"] for x in got), reverse=True)


def test_another_tenant_lists_nothing(client: httpx.Client) -> None:
    for path, key in (("/api/v1/spans", "spans"), ("/api/v1/logs", "logs")):
        r = client.get(path, headers={"X-Scope-OrgID": "globex"})
        assert r.status_code == 200 and r.json() == {key: [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/spans", {"limit": "0"}, "limit"),
        ("/api/v1/spans", {"limit": "1001"}, "limit"),
        ("/api/v1/logs", {"limit": "x"}, "limit"),
        ("/api/v1/spans", {"start": "yesterday"}, "start"),
        ("/api/v1/logs", {"end": "3000-01-01T00:00:00Z"}, "end"),
        ("/api/v1/spans", {"start": "-1h", "end": "-2h"}, "start"),
        ("/api/v1/spans", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/logs", {"cursor": "WzEsImEiLDBd"}, "cursor"),  # [1,"a",0]
        ("/api/v1/logs", {"cursor": "WzEsImEiLDFd"}, "cursor"),  # [1,"a",1]: a string key on logs
        ("/api/v1/spans", {"cursor": "WzEsNSwxXQ"}, "cursor"),  # [1,5,1]: a hash key on spans
        ("/api/v1/spans", {"cursor": "WzEsImFiIiwxXQ"}, "cursor"),  # [1,"ab",1]: not trace+span ids
        ("/api/v1/logs", {"cursor": "WzEsNSwxMDAwMDAwXQ"}, "cursor"),  # [1,5,1000000]: too many ties
        # the same, bound to the query they are sent with
        ("/api/v1/logs", {"cursor": encode_cursor(1, "a", 0, LOGS)}, "cursor"),
        ("/api/v1/logs", {"cursor": encode_cursor(1, "a", 1, LOGS)}, "cursor"),
        ("/api/v1/spans", {"cursor": encode_cursor(1, 5, 1, SPANS)}, "cursor"),
        ("/api/v1/spans", {"cursor": encode_cursor(1, "ab", 1, SPANS)}, "cursor"),
        ("/api/v1/logs", {"cursor": encode_cursor(1, 5, 10**6, LOGS)}, "cursor"),
        ("/api/v1/logs", {"cursor": encode_cursor(1, 5, 1, 7)}, "cursor"),  # type: ignore[arg-type]  # a number
        # a time out of the store's range (a 500 from DuckDB's make_timestamp before)
        ("/api/v1/logs", {"cursor": encode_cursor(2**63, 5, 1, LOGS)}, "cursor"),
        ("/api/v1/spans", {"cursor": encode_cursor(2**63 - 1, "1" * 48, 1, SPANS)}, "cursor"),
        ("/api/v1/logs", {"cursor": encode_cursor(-(2**63) - 1, 5, 1, LOGS)}, "cursor"),
        ("/api/v1/spans", {"status": "broken"}, "status"),
        ("/api/v1/spans", {"trace_id": "xyz"}, "trace_id"),
        ("/api/v1/logs", {"trace_id": "0" * 32}, "trace_id"),
        ("/api/v1/spans", {"min_duration_ms": "-1"}, "min_duration_ms"),
        ("/api/v1/spans", {"min_duration_ms": "nan"}, "min_duration_ms"),
        ("/api/v1/spans", {"min_duration_ms": "abc"}, "min_duration_ms"),
        ("/api/v1/logs", {"severity": "LOUD"}, "severity"),
        ("/api/v1/logs", {"severity": "25"}, "severity"),
        ("/api/v1/logs", {"contains": ""}, "contains"),
        ("/api/v1/logs", {"contains": "x" * 257}, "contains"),
        ("/api/v1/logs", {"tenant": "*"}, "tenant"),
        ("/api/v1/spans", {"bogus": "1"}, "bogus"),
        ("/api/v1/logs", {"status": "ERROR"}, "status"),  # a span filter on logs
        (f"/api/v1/traces/{TRACE}", {"limit": "5"}, "limit"),  # a list parameter on the trace route
        (f"/api/v1/traces/{TRACE[:-1]}", {}, "trace_id"),
        (f"/api/v1/traces/{'g' * 32}", {}, "trace_id"),
        (f"/api/v1/traces/{'0' * 32}", {}, "trace_id"),
    ],
)
def test_bad_parameters_are_422_naming_them(hub: RunningHub, path: str, params: dict[str, str], name: str) -> None:
    headers = {} if "tenant" in params else {"X-Scope-OrgID": "acme"}  # the header would win over ?tenant=
    r = httpx.get(hub.api + path, params=params, headers=headers)
    assert r.status_code == 422, (params, r.status_code, r.text)
    assert name in r.text, r.text


def _cursor_error(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_cursor", error
    message: str = error["message"]
    return message


def test_a_cursor_is_bound_to_the_query_it_was_made_for(client: httpx.Client) -> None:
    params = {"service": "llm-svc", "start": "-2h", "limit": 2}
    first = client.get("/api/v1/spans", params=params).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    # another filter, time window, tenant or list: the cursor's resume point means nothing there
    for other, headers in (
        ({**params, "service": "gateway"}, {}),
        ({**params, "status": "ERROR"}, {}),
        ({**params, "start": "-3h"}, {}),
        ({**params, "end": "now"}, {}),
        ({"limit": 2}, {}),
        (params, {"X-Scope-OrgID": "globex"}),
    ):
        message = _cursor_error(client.get("/api/v1/spans", params={**other, "cursor": cursor}, headers=headers))
        assert "belongs to another query" in message and "drop the cursor" in message, message
    assert "another query" in _cursor_error(client.get("/api/v1/logs", params={"start": "-2h", "cursor": cursor}))
    # the same query resumes, with another page size too, and a relative start (which moves) is no other query
    nxt = client.get("/api/v1/spans", params={**params, "limit": 3, "cursor": cursor})
    assert nxt.status_code == 200, nxt.text
    assert {s["span_id"] for s in nxt.json()["spans"]}.isdisjoint(s["span_id"] for s in first["spans"])
    got = _all_pages(client, "/api/v1/spans", "spans", service="llm-svc", start="-2h", limit=4)
    assert len(got) == len(client.get("/api/v1/spans", params={"service": "llm-svc", "limit": 1000}).json()["spans"])


def test_a_cursor_of_an_earlier_hub_is_refused_clearly(client: httpx.Client) -> None:
    cursor = client.get("/api/v1/logs", params={"limit": 1}).json()["next_cursor"]
    ts_us, key, seen, _ = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    old = base64.urlsafe_b64encode(json.dumps([ts_us, key, seen]).encode()).decode().rstrip("=")
    message = _cursor_error(client.get("/api/v1/logs", params={"limit": 1, "cursor": old}))
    assert "earlier version of the hub" in message and "drop the cursor" in message


def test_auth_on(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        viewer = {"Authorization": f"Bearer {store.create(tenant_id='tenant-a', role='analytics_viewer').key}"}
        ingest = {"Authorization": f"Bearer {store.create(tenant_id='tenant-a', role='ingest').key}"}
        other = {"Authorization": f"Bearer {store.create(tenant_id='tenant-b', role='tenant_admin').key}"}
        span_cols = {"tenant_id": ["tenant-a"], "start_ts": [T0 // 1000], "end_ts": [T0 // 1000 + 5],
                     "trace_id": [TRACE], "span_id": ["a000000000000001"], "name": ["x"], "duration_ms": [0.005]}  # fmt: skip
        hub.service.store.append("spans", span_cols)
        hub.service.store.append("logs", {"tenant_id": ["tenant-a"], "ts": [T0 // 1000], "body": ["secret"]})
        hub.flush()
        paths = [f"/api/v1/traces/{TRACE}", "/api/v1/spans", "/api/v1/logs"]
        for path in paths:
            anonymous = httpx.get(hub.api + path)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert httpx.get(hub.api + path, headers=viewer).status_code == 200, path
            assert httpx.get(hub.api + path, headers=ingest).status_code == 403, path  # no events:read
            named = httpx.get(hub.api + path, headers={**other, "X-Scope-OrgID": "tenant-a"})
            assert named.status_code == 403, path
            assert "secret" not in httpx.get(hub.api + path, headers=other).text
        assert httpx.get(hub.api + paths[0], headers=other).status_code == 404
        assert httpx.get(hub.api + "/api/v1/spans", headers=other).json()["spans"] == []
        assert httpx.get(hub.api + "/api/v1/logs", headers=viewer).json()["logs"][0]["body"] == "secret"


def test_stack_mode_answers_501(tmp_path: Path) -> None:
    pipelines = {
        "events": {"receivers": ["native"], "processors": ["native_events"], "exporters": ["embedded"]},
        "otlp": {"receivers": ["otlp"], "exporters": ["tempo"]},
    }
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__pipelines=pipelines,
                     exporters__tempo={"endpoint": "http://127.0.0.1:9"}) as hub:  # fmt: skip
        for path, backend in ((f"/api/v1/traces/{TRACE}", "Tempo"), ("/api/v1/spans", "Tempo"),
                              ("/api/v1/logs", "Loki")):  # fmt: skip
            r = httpx.get(hub.api + path)
            assert r.status_code == 501, (path, r.text)
            assert r.json()["error"]["code"] == "not_stored_locally" and backend in r.text
        assert httpx.get(hub.api + "/api/v1/spans?limit=0").status_code == 422  # parameters are still checked
