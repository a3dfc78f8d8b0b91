"""POST/GET /api/v1/events, schemas, DLQ, health and metrics against a running hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.helpers.events import EVENT_TYPES, make_event, one_of_each
from tests.helpers.hub import RunningHub, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("hub"), grpc=False, otlp_http=False) as h:
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.api, timeout=30) as c:
        yield c


def post(client: httpx.Client, body: object, **kw: object) -> httpx.Response:
    return client.post("/api/v1/events", json=body, **kw)  # type: ignore[arg-type]


def test_a_batch_of_every_type_is_accepted_and_listed(client: httpx.Client, hub: RunningHub) -> None:
    events = one_of_each(tags={"team": "alpha", "tenant_id": "ignored-by-header"})
    r = post(client, events, headers={"X-Scope-OrgID": "tenant-a"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 6, "rejected": [], "duplicates": 0}
    hub.flush()
    listed = client.get("/api/v1/events", params={"tags.team": "alpha"}, headers={"X-Scope-OrgID": "tenant-a"})
    assert listed.status_code == 200
    body = listed.json()
    assert {e["event_type"] for e in body["events"]} == set(EVENT_TYPES)
    assert body["next_cursor"] is None
    assert all(e["tenant_id"] == "tenant-a" for e in body["events"])
    # other tenants see nothing of it
    other = client.get("/api/v1/events", params={"tags.team": "alpha"}, headers={"X-Scope-OrgID": "tenant-b"})
    assert other.json()["events"] == []


def test_wrapped_form_and_partial_rejection(client: httpx.Client) -> None:
    good = make_event("cost")
    bad = make_event("cost", payload={"amount": -5})
    r = post(client, {"events": [good, bad]})
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 1, "event_id": bad["event_id"], "reason": "payload.amount must be a positive number (got -5.0)"}
    ]


def test_all_rejected_is_422_with_reasons(client: httpx.Client) -> None:
    r = post(client, [make_event("cost", schema_version="3.1.0")])
    assert r.status_code == 422
    assert "unsupported schema_version '3.1.0'" in r.json()["rejected"][0]["reason"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"[{", {"content-type": "application/json"}, 400, "bad_json"),
        (b"", {"content-type": "application/json"}, 400, "empty_body"),
        (b"[]", {"content-type": "application/json"}, 422, "empty_batch"),
        (b'"just a string"', {"content-type": "application/json"}, 422, "bad_shape"),
        (b'{"events": 5}', {"content-type": "application/json"}, 422, "bad_shape"),
        (b'["\xff"]', {"content-type": "application/json"}, 400, "bad_json"),
        (b"a=b", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b'{"a": 1}\n{not json\n', {"content-type": "application/x-ndjson"}, 400, "bad_json"),
        (b"\n \n", {"content-type": "application/x-ndjson"}, 400, "empty_body"),
        (b'["\xff"]\n', {"content-type": "application/x-ndjson"}, 400, "bad_json"),
        (b"{}\n" * 1001, {"content-type": "application/x-ndjson"}, 413, "batch_too_large"),
    ],
)
def test_bad_bodies_get_a_clear_4xx(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    r = client.post("/api/v1/events", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert client.get("/healthz").status_code == 200


def test_ndjson_bodies_hold_one_event_per_line(client: httpx.Client, hub: RunningHub) -> None:
    good, bad = make_event("cost", tags={"team": "ndjson"}), make_event("cost", payload={"amount": -1})
    body = (json.dumps(good) + "\r\n\n" + json.dumps(bad) + "\n").encode()
    r = client.post("/api/v1/events", content=body, headers={"content-type": "application/x-ndjson; charset=utf-8"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1]
    hub.flush()
    assert hub.sql("SELECT event_id FROM events WHERE team = 'ndjson'") == [(good["event_id"],)]
    r = client.post("/api/v1/events", content=json.dumps([good]).encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/x-ndjson" in r.json()["error"]["message"]


def test_too_many_events_and_too_large_bodies(client: httpx.Client) -> None:
    r = post(client, [make_event("cost") for _ in range(1001)])
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"
    huge = b"[" + b" " * (9 << 20) + b"]"
    r = client.post("/api/v1/events", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_bad_tenant_header_is_400(client: httpx.Client) -> None:
    r = post(client, [make_event("cost")], headers={"X-Scope-OrgID": "bad tenant/../"})
    assert r.status_code == 400


def test_duplicates_are_acknowledged_not_stored_twice(client: httpx.Client, hub: RunningHub) -> None:
    ev = make_event("cost", tags={"team": "dup-team"})
    assert post(client, [ev]).json()["accepted"] == 1
    again = post(client, [ev])
    assert again.status_code == 202 and again.json() == {"accepted": 0, "rejected": [], "duplicates": 1}
    assert hub.sql("SELECT count(*) FROM events WHERE event_id = ?", [ev["event_id"]]) == [(1,)]


def test_listing_filters_and_cursor_pagination(client: httpx.Client, hub: RunningHub) -> None:
    events = [make_event("telemetry", tags={"team": "pager"}, correlation_id=f"c{i % 2}") for i in range(7)]
    assert post(client, events).status_code == 202
    hub.flush()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"tags.team": "pager", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/events", params=params).json()
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(e["event_id"] for e in events) and len(seen) == 7
    only_c1 = client.get("/api/v1/events", params={"tags.team": "pager", "correlation_id": "c1"}).json()
    assert len(only_c1["events"]) == 3
    by_payload = client.get("/api/v1/events", params={"tags.team": "pager", "payload.model": "gpt-4o"}).json()
    assert len(by_payload["events"]) == 7
    times = [e["timestamp"] for e in by_payload["events"]]
    assert times == sorted(times, reverse=True)
    # times relative to now, as the analytics endpoints take them
    recent = client.get("/api/v1/events", params={"tags.team": "pager", "start": "-1h", "end": "now"}).json()
    assert len(recent["events"]) == 7
    earlier = client.get("/api/v1/events", params={"tags.team": "pager", "start": "-1h", "end": "-30m"}).json()
    assert earlier["events"] == []


def test_a_listing_cursor_is_bound_to_its_filters_tenant_and_window(client: httpx.Client, hub: RunningHub) -> None:
    events = [make_event("telemetry", tags={"team": "bound"}, correlation_id=f"b{i % 2}") for i in range(5)]
    assert post(client, events).status_code == 202
    hub.flush()
    base = {"tags.team": "bound", "start": "-1h", "limit": 2}
    cursor = client.get("/api/v1/events", params=base).json()["next_cursor"]
    assert cursor is not None
    # the same filters and window (a relative start is the same text) with another page size: it resumes
    rest = client.get("/api/v1/events", params={**base, "limit": 10, "cursor": cursor})
    assert rest.status_code == 200 and len(rest.json()["events"]) == 3, rest.text
    others = [{**base, "correlation_id": "b1"}, {**base, "tags.team": "pager"}, {**base, "start": "-2h"},
              {**base, "end": "now"}, {"tags.team": "bound", "limit": 2}, {**base, "tenant": "someone-else"}]  # fmt: skip
    for params in others:  # each had resumed on the other listing, as if it were its cursor
        r = client.get("/api/v1/events", params={**params, "cursor": cursor})
        assert r.status_code == 422, (params, r.text)
        error = r.json()["error"]
        assert error["code"] == "bad_cursor" and error["message"].startswith("cursor belongs to another listing"), error


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 5000}, {"cursor": "garbage!!"}, {"start": "noon"}, {"bogus": "1"},
     {"payload.a;drop table events": "x"}, {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}],
)  # fmt: skip
def test_bad_listing_parameters_are_422(client: httpx.Client, params: dict[str, object]) -> None:
    r = client.get("/api/v1/events", params=params)
    assert r.status_code == 422, r.text
    code = r.json()["error"]["code"]
    assert code == "bad_time" if "start" in params else code != "bad_time"  # one code for bad times everywhere


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [("severity", "critcal", "debug, info, warning, error, critical"),
     ("event_type", "costs", "telemetry, security, cost, governance, metadata, policy"),
     ("source_module", "llm-costop", "llm-observatory, llm-sentinel, llm-costops")],
)  # fmt: skip
def test_a_typo_of_an_enumerated_filter_is_a_422_naming_the_allowed_values(
    client: httpx.Client, name: str, value: str, allowed: str
) -> None:
    r = client.get("/api/v1/events", params={name: value})  # had answered an empty 200
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_parameter" and name in error["message"] and repr(value) in error["message"]
    assert allowed in error["message"], error
    assert error["field"] == name  # as /events/export and the query's errors name it
    fixed = {"severity": "critical", "event_type": "cost", "source_module": "llm-costops"}[name]
    assert client.get("/api/v1/events", params={name: fixed}).status_code == 200


@pytest.mark.parametrize(
    ("query", "code"),
    [("model=a&model=b", "repeated_parameter"), ("tags.env=a&tags.env=b", "repeated_parameter"),
     ("limit=1&limit=2", "repeated_parameter")],
)  # fmt: skip
def test_a_listing_parameter_given_twice_is_422(client: httpx.Client, query: str, code: str) -> None:
    r = client.get(f"/api/v1/events?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code and "more than once" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "code"),
    [("tenant=a&tenant=b", "repeated_parameter"), ("tennat=b", "unknown_parameter"),
     ("dry_run=true", "unknown_parameter")],
)  # fmt: skip
def test_an_ingest_query_parameter_other_than_one_tenant_is_422_and_nothing_is_stored(
    client: httpx.Client, query: str, code: str
) -> None:
    ev = make_event("telemetry", correlation_id=f"req-{query}")
    r = client.post(f"/api/v1/events?{query}", json=[ev])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    metrics = client.get("/metrics").text
    assert f'reason="{code}"' in metrics
    for tenant in ("a", "b", "default"):
        listed = client.get("/api/v1/events", params={"tenant": tenant, "correlation_id": ev["correlation_id"]})
        assert listed.status_code == 200 and listed.json()["events"] == [], (tenant, listed.text)


def test_schemas_are_served_and_validate_events(client: httpx.Client) -> None:
    idx = client.get("/api/v1/schemas").json()
    assert idx["current"] == "1.0.0"
    schema = client.get("/api/v1/schemas/1.0.0").json()
    for ev in one_of_each():
        jsonschema.validate(ev, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"event_id": "x"}, schema)
    assert client.get("/api/v1/schemas/9.9.9").status_code == 404


def test_dead_letters_are_listed_and_replayed(tmp_path: Path) -> None:
    bad = make_event("cost", payload={"currency": "XYZ"})
    with running_hub(tmp_path, grpc=False, otlp_http=False) as h1:
        r = httpx.post(f"{h1.api}/api/v1/events", json=[bad], headers={"X-Scope-OrgID": "t9"})
        assert r.status_code == 422
        dlq = httpx.get(f"{h1.api}/api/v1/dlq", headers={"X-Scope-OrgID": "t9"}).json()
        assert dlq["total"] == 1 and "unknown currency" in dlq["entries"][0]["reason"]
        assert json.loads(dlq["entries"][0]["raw"])["event_id"] == bad["event_id"]
        assert httpx.get(f"{h1.api}/api/v1/dlq", headers={"X-Scope-OrgID": "other"}).json()["total"] == 0
        entry_id = dlq["entries"][0]["id"]
    # the operator adds the currency and replays
    from tests.helpers.hub import hub_config

    cfg = hub_config(tmp_path, grpc=False, otlp_http=False,
                     processors__native_events__exchange_rates={"USD": 1.0, "XYZ": 2.0})  # fmt: skip
    with running_hub(tmp_path, cfg) as h2:
        replay = f"{h2.api}/api/v1/dlq/replay"
        # ids that name no entry of the tenant (a typo; another tenant's entry) are listed, not silently ignored
        for tenant, ids in (("t9", ["nope", "nope"]), ("other", [entry_id, "nope"])):
            out = httpx.post(replay, json={"ids": ids}, headers={"X-Scope-OrgID": tenant}).json()
            assert out == {"replayed": 0, "accepted": 0, "still_rejected": 0, "not_found": list(dict.fromkeys(ids))}
        out = httpx.post(replay, headers={"X-Scope-OrgID": "t9"}).json()
        assert out == {"replayed": 1, "accepted": 1, "still_rejected": 0, "not_found": []}
        assert h2.sql("SELECT value FROM events WHERE event_id = ?", [bad["event_id"]]) == [(0.0246,)]
        assert httpx.get(f"{h2.api}/api/v1/dlq", headers={"X-Scope-OrgID": "t9"}).json()["total"] == 0
        # replayed and accepted: gone from the queue, so a retry by id says so (and replays nothing)
        out = httpx.post(replay, json={"ids": [entry_id]}, headers={"X-Scope-OrgID": "t9"}).json()
        assert out == {"replayed": 0, "accepted": 0, "still_rejected": 0, "not_found": [entry_id]}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"ids": "abc"}, "ids"), ({"ids": [1, 2]}, "ids[0]"), ({"idz": ["x"]}, "idz"), (["x"], "body")],
)
def test_a_replay_body_with_a_bad_field_is_a_422_naming_it(client: httpx.Client, body: object, field: str) -> None:
    r = client.post("/api/v1/dlq/replay", json=body)  # had been 400 bad_request
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field, error
    assert '"ids"' in error["message"]


def test_a_replay_body_that_is_not_json_stays_400(client: httpx.Client) -> None:
    r = client.post("/api/v1/dlq/replay", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json", r.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_the_probes_answers_like_get_without_a_body(client: httpx.Client, path: str) -> None:
    got = client.get(path)
    head = client.head(path)  # load balancers and uptime checkers probe with HEAD: it had been a 405
    assert head.status_code == got.status_code == 200, head.text
    assert head.content == b""
    for name in ("content-type", "content-length"):
        assert head.headers[name] == got.headers[name], name


def test_health_readiness_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    text = client.get("/metrics").text
    for name in ("hub_ingest_events_total", "hub_ingest_rejected_total", "hub_queue_depth",
                 "hub_request_duration_seconds_bucket", "hub_ingest_batch_duration_seconds"):  # fmt: skip
        assert name in text, name


def test_queue_full_is_503_with_retry_after(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, exporters__embedded__max_pending_rows=2) as h:
        r = httpx.post(f"{h.api}/api/v1/events", json=[make_event("cost") for _ in range(3)])
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        ev = r.json()
        assert ev["error"]["code"] == "queue_full"
        # nothing was half-accepted: the same events can be sent again in smaller batches
        r2 = httpx.post(f"{h.api}/api/v1/events", json=[make_event("cost")])
        assert r2.status_code == 202


def test_a_full_disk_is_503_store_unavailable_and_the_resend_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as h:
        wal = h.service.store._wal
        assert wal is not None
        real = wal.write

        def full(body: object) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(wal, "write", full)
        batch = [make_event("cost") for _ in range(3)]
        r = httpx.post(f"{h.api}/api/v1/events", json=batch)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1  # was a 500 with a traceback
        assert r.json()["error"]["code"] == "store_unavailable" and "No space left" in r.json()["error"]["message"]
        monkeypatch.setattr(wal, "write", real)
        again = httpx.post(f"{h.api}/api/v1/events", json=batch)
        assert again.status_code == 202 and again.json()["accepted"] == 3  # not "duplicates"
        assert h.sql("SELECT count(*) FROM events") == [(3,)]
