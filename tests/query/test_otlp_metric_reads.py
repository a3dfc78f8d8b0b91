"""GET /api/v1/metrics and /api/v1/metrics/names: OTLP metric points (gauge, sum, histogram, exponential
histogram, summary) sent over OTLP/HTTP, read back tenant-scoped, filtered by name, service and attribute
matchers, paged without loss or repetition (ties and exact duplicates included), every bad parameter a 422,
401/403 by role, 501 in stack mode."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from hubcore.query.otlp import SpanListQuery, encode_cursor
from hubcore.query.otlp_metrics import MetricListQuery
from tests.helpers.hub import RunningHub, running_hub

PB = {"Content-Type": "application/x-protobuf"}
T0 = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago, whole seconds
S = 10**9
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
POINTS = MetricListQuery("acme").scope()  # what a cursor of acme's unfiltered list of points is bound to
SPAN_CURSOR = encode_cursor(T0 // 1000, "1" * 48, 1, SpanListQuery("acme").scope())  # a span's: trace + span id


def _kvs(**attrs: Any) -> list[KeyValue]:
    out = []
    for k, v in attrs.items():
        key = k.replace("__", ".")
        value = AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v)
        out.append(KeyValue(key=key, value=value))
    return out


def _scope(req: ExportMetricsServiceRequest, service: str) -> Any:
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    return rm.scope_metrics.add()


def metrics_request() -> ExportMetricsServiceRequest:
    """llm-svc: a token counter (cumulative sum, two token types, an int attribute), a duration histogram, an
    exponential histogram and a summary; gateway: a gauge; both: ``queue.depth``. Plus ``bulk``, 30 gauge
    points for paging: groups of 3 share a time, 5 are sent twice (exact duplicates) and 5 more twice with
    another value."""
    req = ExportMetricsServiceRequest()
    llm = _scope(req, "llm-svc")
    tokens = llm.metrics.add(name="llm.tokens", unit="{token}")
    tokens.sum.aggregation_temporality, tokens.sum.is_monotonic = CUMULATIVE, True
    for token_type, value in (("input", 120), ("output", 45)):
        tokens.sum.data_points.add(time_unix_nano=T0, start_time_unix_nano=T0 - 60 * S, as_int=value,
                                   attributes=_kvs(gen_ai__token__type=token_type, gen_ai__request__model="gpt-4o",
                                                   shard=3))  # fmt: skip
    duration = llm.metrics.add(name="gen_ai.client.operation.duration", unit="s")
    duration.histogram.aggregation_temporality = DELTA
    duration.histogram.data_points.add(time_unix_nano=T0 - S, start_time_unix_nano=T0 - 11 * S, count=4, sum=7.5,
                                       min=0.05, max=6.0, explicit_bounds=[0.1, 1.0, 5.0], bucket_counts=[1, 2, 0, 1],
                                       attributes=_kvs(gen_ai__request__model="gpt-4o"))  # fmt: skip
    expo = llm.metrics.add(name="ttft", unit="s")
    expo.exponential_histogram.aggregation_temporality = DELTA
    ep = expo.exponential_histogram.data_points.add(time_unix_nano=T0 - 2 * S, count=3, sum=3.5, scale=0, zero_count=1)
    ep.positive.offset, ep.positive.bucket_counts[:] = 0, [1, 1]
    summary = llm.metrics.add(name="rpc.latency", unit="ms")
    sp = summary.summary.data_points.add(time_unix_nano=T0 - 3 * S, count=10, sum=250.0)
    sp.quantile_values.add(quantile=0.5, value=20.0)
    sp.quantile_values.add(quantile=0.99, value=90.0)
    depth = llm.metrics.add(name="queue.depth", unit="1")
    depth.gauge.data_points.add(time_unix_nano=T0 - 4 * S, as_double=7.0)
    gateway = _scope(req, "gateway")
    depth = gateway.metrics.add(name="queue.depth", unit="1")
    depth.gauge.data_points.add(time_unix_nano=T0 - 5 * S, as_double=2.0, attributes=_kvs(pool="a/b"))
    bulk = gateway.metrics.add(name="bulk", unit="1")
    for i in range(30):
        t = T0 - (10 + i // 3) * S
        bulk.gauge.data_points.add(time_unix_nano=t, as_double=float(i), attributes=_kvs(i=str(i)))
        if i % 6 == 0:
            bulk.gauge.data_points.add(time_unix_nano=t, as_double=float(i), attributes=_kvs(i=str(i)))
        if i % 6 == 3:
            bulk.gauge.data_points.add(time_unix_nano=t, as_double=i + 0.5, attributes=_kvs(i=str(i)))
    return req


def other_tenant_request() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    m = _scope(req, "llm-svc").metrics.add(name="llm.tokens", unit="{token}")
    m.gauge.data_points.add(time_unix_nano=T0, as_double=999.0, attributes=_kvs(secret="globex-only"))
    return req


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("otlpmetrics"), grpc=False) as h:
        for tenant, req in (("acme", metrics_request()), ("globex", other_tenant_request())):
            r = httpx.post(h.otlp_http + "/v1/metrics", content=req.SerializeToString(),
                           headers={**PB, "X-Scope-OrgID": tenant})  # fmt: skip
            assert r.status_code == 200, r.text
            assert "partialSuccess" not in r.text or "rejected" not in r.text.lower(), r.text
        h.flush()
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.api, timeout=30, headers={"X-Scope-OrgID": "acme"}) as c:
        yield c


def _points(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/metrics", params=params)
    assert r.status_code == 200, r.text
    points: list[dict[str, Any]] = r.json()["metric_points"]
    return points


def _all_pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        r = client.get("/api/v1/metrics", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["metric_points"]) <= params.get("limit", 100)
        out += body["metric_points"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def _identity(p: dict[str, Any]) -> tuple[Any, ...]:
    return p["timestamp"], p["name"], p["value"], p["count"], msgspec.json.encode(p["attributes"], order="sorted")


def test_every_point_newest_first(client: httpx.Client, hub: RunningHub) -> None:
    points = _points(client, limit=1000)
    stored = hub.sql("SELECT count(*) FROM metric_points WHERE tenant_id = 'acme'")[0][0]
    # 2 sums + 1 histogram + 1 exponential + 1 summary and 2 quantiles + 2 gauges + 30 + 5 + 5 bulk
    assert len(points) == stored == 2 + 1 + 1 + 3 + 2 + 40
    times = [p["timestamp"] for p in points]
    assert times == sorted(times, reverse=True)
    assert {p["tenant_id"] for p in points} == {"acme"}
    assert all(p["timestamp"].endswith("Z") for p in points)


def test_sum_gauge_and_histogram_points_keep_their_shape(client: httpx.Client) -> None:
    tokens = _points(client, name="llm.tokens")
    assert sorted(p["value"] for p in tokens) == [45.0, 120.0]
    p = next(p for p in tokens if p["value"] == 120.0)
    assert p["kind"] == "sum" and p["temporality"] == "cumulative" and p["monotonic"] is True
    assert p["unit"] == "{token}" and p["service_name"] == "llm-svc" and p["model"] == "gpt-4o"
    assert p["token_type"] == "input" and p["resource"]["service.name"] == "llm-svc"
    assert p["attributes"] == {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o", "shard": 3}
    assert p["start_timestamp"] < p["timestamp"] and p["count"] is None and p["bounds"] is None
    [h] = _points(client, name="gen_ai.client.operation.duration")
    assert h["kind"] == "histogram" and h["temporality"] == "delta" and h["monotonic"] is None
    assert (h["count"], h["sum"], h["min"], h["max"]) == (4, 7.5, 0.05, 6.0)
    assert h["bounds"] == [0.1, 1.0, 5.0] and h["bucket_counts"] == [1, 2, 0, 1] and h["value"] is None
    [e] = _points(client, name="ttft")  # an exponential histogram is stored with explicit buckets
    assert e["kind"] == "histogram" and e["count"] == 3 and sum(e["bucket_counts"]) == 3
    summary = _points(client, name="rpc.latency")
    assert sorted((p["attributes"].get("quantile"), p["value"]) for p in summary if "quantile" in p["attributes"]) == [
        ("0.5", 20.0), ("0.99", 90.0)
    ]  # fmt: skip
    assert [(p["count"], p["sum"]) for p in summary if not p["attributes"]] == [(10, 250.0)]
    [g] = _points(client, name="queue.depth", service="gateway")
    assert g["kind"] == "gauge" and g["value"] == 2.0 and g["temporality"] is None and g["monotonic"] is None


def test_filters_and_label_matchers(client: httpx.Client) -> None:
    def values(**params: Any) -> list[float]:
        return sorted(p["value"] for p in _points(client, **params))

    assert values(name="queue.depth") == [2.0, 7.0]
    assert values(name="queue.depth", service="llm-svc") == [7.0]
    assert values(name="no.such.metric") == [] and values(service="nope") == []
    assert values(name="llm.tokens", label="gen_ai.token.type=output") == [45.0]
    assert values(name="llm.tokens", label="gen_ai.token.type!=output") == [120.0]
    assert values(label=["gen_ai.token.type=input", "gen_ai.request.model=gpt-4o"]) == [120.0]
    assert values(label=["gen_ai.token.type=input", "gen_ai.request.model=gpt-4"]) == []
    assert values(name="llm.tokens", label="shard=3") == [45.0, 120.0]  # a non-string value, as text
    assert values(name="queue.depth", label="pool=a/b") == [2.0]  # '/' in the key's value
    assert values(name="queue.depth", label="pool=") == [7.0]  # key= : points without the attribute
    assert values(name="queue.depth", label="pool!=") == [2.0]
    assert values(name="bulk", label="i=7") == [7.0]
    assert values(name="rpc.latency", label="quantile=0.99") == [90.0]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 / 1e9))
    assert values(start=start) == [45.0, 120.0]  # start inclusive
    assert len(_points(client, end=start, limit=1000)) == 1 + 1 + 3 + 2 + 40  # end exclusive
    assert values(start="-1m") == []


def test_pages_neither_lose_nor_repeat_points(client: httpx.Client) -> None:
    everything = _points(client, name="bulk", limit=1000)
    expected = Counter(_identity(p) for p in everything)
    assert len(everything) == 40 and max(expected.values()) == 2  # the exact duplicates are both listed
    for limit in (1, 2, 3, 7):  # groups of 3 or 4 points tie on the time: pages end inside and between them
        got = _all_pages(client, name="bulk", limit=limit)
        assert Counter(_identity(p) for p in got) == expected, limit
        assert [p["timestamp"] for p in got] == sorted((p["timestamp"] for p in got), reverse=True)
    whole = _all_pages(client, limit=9)
    assert len(whole) == 49 and Counter(_identity(p) for p in whole) == Counter(
        _identity(p) for p in _points(client, limit=1000)
    )


def test_a_cursor_is_bound_to_its_filters_but_not_to_the_order_of_the_matchers(client: httpx.Client) -> None:
    params = {"name": "bulk", "label": ["i!=1", "i!=2"], "limit": 3}
    first = client.get("/api/v1/metrics", params=params).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    again = client.get("/api/v1/metrics", params={**params, "label": ["i!=2", "i!=1"], "cursor": cursor})
    assert again.status_code == 200, again.text
    assert again.json()["metric_points"][0]["timestamp"] <= first["metric_points"][-1]["timestamp"]
    for other in ({**params, "label": ["i!=1"]}, {**params, "name": "llm.tokens"}, {"limit": 3}):
        r = client.get("/api/v1/metrics", params={**other, "cursor": cursor})
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_cursor", r.text
        assert "belongs to another query" in r.json()["error"]["message"]
    logs = client.get("/api/v1/logs", params={"cursor": cursor})  # the same kind of key, another list
    assert logs.status_code == 422 and logs.json()["error"]["code"] == "bad_cursor", logs.text


def test_names_with_kind_unit_and_counts(client: httpx.Client) -> None:
    r = client.get("/api/v1/metrics/names")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is False
    entries = {(m["name"], m["kind"], m["unit"]): m["points"] for m in body["metrics"]}
    assert entries == {
        ("bulk", "gauge", "1"): 40, ("gen_ai.client.operation.duration", "histogram", "s"): 1,
        ("llm.tokens", "sum", "{token}"): 2, ("queue.depth", "gauge", "1"): 2, ("rpc.latency", "summary", "ms"): 3,
        ("ttft", "histogram", "s"): 1,
    }  # fmt: skip
    assert [m["name"] for m in body["metrics"]] == sorted(m["name"] for m in body["metrics"])
    bulk = body["metrics"][0]
    assert bulk["first_timestamp"] < bulk["last_timestamp"]

    def names(**params: Any) -> list[str]:
        r = client.get("/api/v1/metrics/names", params=params)
        assert r.status_code == 200, r.text
        return [m["name"] for m in r.json()["metrics"]]

    assert names(prefix="gen_ai.") == ["gen_ai.client.operation.duration"]
    assert names(service="gateway") == ["bulk", "queue.depth"]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 / 1e9))
    assert names(start=start) == ["llm.tokens"]
    assert names(start="-1m") == []
    cut = client.get("/api/v1/metrics/names", params={"limit": 2}).json()
    assert [m["name"] for m in cut["metrics"]] == ["bulk", "gen_ai.client.operation.duration"] and cut["truncated"]


def test_another_tenant_sees_only_its_own(client: httpx.Client, hub: RunningHub) -> None:
    other = {"X-Scope-OrgID": "globex"}
    [p] = client.get("/api/v1/metrics", headers=other).json()["metric_points"]
    assert p["tenant_id"] == "globex" and p["attributes"] == {"secret": "globex-only"}
    assert "globex-only" not in client.get("/api/v1/metrics", params={"limit": 1000}).text
    names = client.get("/api/v1/metrics/names", headers=other).json()["metrics"]
    assert [(m["name"], m["kind"], m["points"]) for m in names] == [("llm.tokens", "gauge", 1)]
    empty = httpx.get(hub.api + "/api/v1/metrics", params={"tenant": "initech"})
    assert empty.status_code == 200 and empty.json() == {"metric_points": [], "next_cursor": None}
    nothing = httpx.get(hub.api + "/api/v1/metrics/names", params={"tenant": "initech"})
    assert nothing.json() == {"metrics": [], "truncated": False}


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/metrics", {"limit": "0"}, "limit"),
        ("/api/v1/metrics", {"limit": "1001"}, "limit"),
        ("/api/v1/metrics", {"limit": "x"}, "limit"),
        ("/api/v1/metrics", {"start": "yesterday"}, "start"),
        ("/api/v1/metrics", {"end": "3000-01-01T00:00:00Z"}, "end"),
        ("/api/v1/metrics", {"start": "-1h", "end": "-2h"}, "start"),
        ("/api/v1/metrics", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/metrics", {"cursor": "WzEsImEiLDFd"}, "cursor"),  # [1,"a",1]: a string key
        ("/api/v1/metrics", {"cursor": SPAN_CURSOR}, "cursor"),  # a span cursor on metric points
        ("/api/v1/metrics", {"cursor": encode_cursor(T0 // 1000, "1" * 48, 1, POINTS)}, "cursor"),  # a span key
        ("/api/v1/metrics", {"cursor": encode_cursor(2**63, 5, 1, POINTS)}, "cursor"),  # a time out of range
        ("/api/v1/metrics", {"label": "gen_ai.token.type"}, "label"),  # no '='
        ("/api/v1/metrics", {"label": "=input"}, "label"),  # no key
        ("/api/v1/metrics", {"label": "!=input"}, "label"),
        ("/api/v1/metrics", {"label": "k" * 257 + "=v"}, "label"),
        ("/api/v1/metrics", {"label": "k=" + "v" * 1025}, "label"),
        ("/api/v1/metrics", {"label": [f"k{i}=v" for i in range(21)]}, "label"),
        ("/api/v1/metrics", {"tenant": "*"}, "tenant"),
        ("/api/v1/metrics", {"bogus": "1"}, "bogus"),
        ("/api/v1/metrics", {"status": "ERROR"}, "status"),  # a span filter on metric points
        ("/api/v1/metrics", {"labels": "a=b"}, "labels"),  # a typo of label
        ("/api/v1/metrics/names", {"limit": "0"}, "limit"),
        ("/api/v1/metrics/names", {"limit": "1001"}, "limit"),
        ("/api/v1/metrics/names", {"start": "soon"}, "start"),
        ("/api/v1/metrics/names", {"start": "-1h", "end": "-2h"}, "start"),
        ("/api/v1/metrics/names", {"name": "llm.tokens"}, "name"),  # a list filter on the names route
        ("/api/v1/metrics/names", {"cursor": "x"}, "cursor"),
        ("/api/v1/metrics/names", {"tenant": "*"}, "tenant"),
    ],
)
def test_bad_parameters_are_422_naming_them(hub: RunningHub, path: str, params: dict[str, Any], name: str) -> None:
    headers = {} if "tenant" in params else {"X-Scope-OrgID": "acme"}  # the header would win over ?tenant=
    r = httpx.get(hub.api + path, params=params, headers=headers)
    assert r.status_code == 422, (params, r.status_code, r.text)
    assert "error" in r.json() and name in r.text, r.text


def test_auth_on(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        viewer = {"Authorization": f"Bearer {store.create(tenant_id='tenant-a', role='analytics_viewer').key}"}
        ingest = {"Authorization": f"Bearer {store.create(tenant_id='tenant-a', role='ingest').key}"}
        other = {"Authorization": f"Bearer {store.create(tenant_id='tenant-b', role='tenant_admin').key}"}
        hub.service.store.append("metric_points", {
            "tenant_id": ["tenant-a"], "ts": [T0 // 1000], "name": ["secret.gauge"], "kind": ["gauge"],
            "value": [1.0], "attributes": ["{}"], "source": ["otlp"],
        })  # fmt: skip
        hub.flush()
        for path in ("/api/v1/metrics", "/api/v1/metrics/names"):
            anonymous = httpx.get(hub.api + path)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert httpx.get(hub.api + path, headers=viewer).status_code == 200, path
            assert httpx.get(hub.api + path, headers=ingest).status_code == 403, path  # no events:read
            named = httpx.get(hub.api + path, headers={**other, "X-Scope-OrgID": "tenant-a"})
            assert named.status_code == 403, path
            assert httpx.get(hub.api + path, params={"tenant": "tenant-a"}, headers=other).status_code == 403
            assert "secret.gauge" not in httpx.get(hub.api + path, headers=other).text
        mine = httpx.get(hub.api + "/api/v1/metrics", headers=viewer).json()["metric_points"]
        assert [p["name"] for p in mine] == ["secret.gauge"]
        names = httpx.get(hub.api + "/api/v1/metrics/names", headers=viewer).json()["metrics"]
        assert [m["name"] for m in names] == ["secret.gauge"]


def test_stack_mode_answers_501(tmp_path: Path) -> None:
    pipelines = {
        "events": {"receivers": ["native"], "processors": ["native_events"], "exporters": ["embedded"]},
        "otlp": {"receivers": ["otlp"], "exporters": ["victoriametrics"]},
    }
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__pipelines=pipelines,
                     exporters__victoriametrics={"endpoint": "http://127.0.0.1:9"}) as hub:  # fmt: skip
        for path in ("/api/v1/metrics", "/api/v1/metrics/names"):
            r = httpx.get(hub.api + path)
            assert r.status_code == 501, (path, r.text)
            assert r.json()["error"]["code"] == "not_stored_locally" and "VictoriaMetrics" in r.text
        assert httpx.get(hub.api + "/api/v1/metrics?limit=0").status_code == 422  # parameters are still checked
        assert httpx.get(hub.api + "/api/v1/metrics/names?bogus=1").status_code == 422
