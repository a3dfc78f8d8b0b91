"""Fuzzing every receiver with hypothesis: malformed JSON and protobuf never crash the hub or yield a
5xx (or gRPC INTERNAL/UNKNOWN), and the hub keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("fuzz")) as h:
        yield h


def _mutate(event: dict[str, object], key: str, value: object) -> bytes:
    ev = dict(event)
    if key.startswith("payload."):
        ev["payload"] = {**ev["payload"], key[8:]: value}  # type: ignore[dict-item]
    else:
        ev[key] = value
    return json.dumps([ev]).encode()


@FUZZ
@given(body=st.binary(max_size=300))
def test_rest_random_bytes(hub: RunningHub, body: bytes) -> None:
    r = httpx.post(f"{hub.api}/api/v1/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, r.text


@FUZZ
@given(
    key=st.sampled_from(["event_id", "timestamp", "source_module", "event_type", "schema_version", "severity",
                         "tags", "payload", "payload.amount", "payload.cost_type", "payload.currency", "correlation_id"]),
    value=json_values,
)  # fmt: skip
def test_rest_mutated_events(hub: RunningHub, key: str, value: object) -> None:
    body = _mutate(make_event("cost"), key, value)
    r = httpx.post(f"{hub.api}/api/v1/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (202, 400, 413, 422), (r.status_code, r.text)


@FUZZ
@given(body=json_values)
def test_rest_arbitrary_json(hub: RunningHub, body: object) -> None:
    r = httpx.post(f"{hub.api}/api/v1/events", json=body)
    assert r.status_code < 500, r.text


@FUZZ
@given(body=st.binary(max_size=300), path=st.sampled_from(["/v1/metrics", "/v1/logs", "/v1/traces"]),
       ctype=st.sampled_from(["application/x-protobuf", "application/json"]))  # fmt: skip
def test_otlp_http_random_bodies(hub: RunningHub, body: bytes, path: str, ctype: str) -> None:
    r = httpx.post(f"{hub.otlp_http}{path}", content=body, headers={"content-type": ctype})
    assert r.status_code < 500, r.text


@FUZZ
@given(body=json_values)
def test_otlp_http_arbitrary_json(hub: RunningHub, body: object) -> None:
    r = httpx.post(f"{hub.otlp_http}/v1/metrics", json=body)
    assert r.status_code < 500, r.text


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=st.binary(max_size=300),
       method=st.sampled_from(["/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                               "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                               "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                               "/llm_analytics_hub.v1.EventIngestionService/SendEvents"]))  # fmt: skip
def test_grpc_random_frames(hub: RunningHub, body: bytes, method: str) -> None:
    with grpc.insecure_channel(hub.grpc_target) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(body, timeout=10)
        except grpc.RpcError as err:
            assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err.details()


def test_still_serving_after_fuzzing(hub: RunningHub) -> None:
    assert httpx.get(f"{hub.api}/healthz").status_code == 200
    assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")]).status_code == 202


def test_deeply_nested_json_is_a_clear_4xx(hub: RunningHub) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    whole = httpx.post(f"{hub.api}/api/v1/events", content=f'[{{"a": {deep}}}]'.encode(),
                       headers={"content-type": "application/json"})  # fmt: skip
    assert whole.status_code in (400, 422), whole.text
    ev = json.dumps(make_event("cost")).replace('"amount": ', f'"extra": {deep}, "amount": ')
    inside = httpx.post(f"{hub.api}/api/v1/events", content=f"[{ev}]".encode(),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert inside.status_code in (400, 422), inside.text
    otlp = httpx.post(f"{hub.otlp_http}/v1/metrics", content=f'{{"resourceMetrics": {deep}}}'.encode(),
                      headers={"content-type": "application/json"})  # fmt: skip
    assert otlp.status_code == 400, otlp.text
    assert httpx.get(f"{hub.api}/healthz").status_code == 200
