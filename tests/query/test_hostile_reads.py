"""Hostile input on the read side: forged cursors, unknown and repeated query parameters, odd numbers.

Every bad input is a 4xx in the one error shape naming what to change, never a 500 nor an answer that
silently ignores part of the request.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from hubcore.query.export import QueryExportCursor, encode_query_cursor, export_scope
from hubcore.query.model import parse_query
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub

ACME = {"X-Scope-OrgID": "acme"}
DAY_US = 86_400_000_000
YEAR_2100_US = 4_102_444_800_000_000


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _error(r: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    error: dict[str, Any] = r.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


# -- forged cursors ----------------------------------------------------------------------------------------

#: the scope of ``GET /api/v1/events/export`` for tenant acme without filters or times (anyone can compute it)
EVENTS_SCOPE = export_scope("acme", [], [None, None, None])
_NOW_US = time.time_ns() // 1000


@pytest.mark.parametrize(
    "cursor",
    [
        {"w": [0, 2**63], "k": None},  # an end out of the store's range (a 500 from make_timestamp before)
        {"w": [-(2**63) - 1, _NOW_US], "k": None},
        {"w": [_NOW_US - DAY_US, _NOW_US], "k": [2**64, "e", -1]},  # the last row's time
        {"w": [_NOW_US - DAY_US, _NOW_US], "k": [_NOW_US - 1, "e", 2**64]},  # its receipt time
        {"w": [0, YEAR_2100_US], "k": None},  # 130 years: wider than any window a request may ask (400 days)
        {"w": [_NOW_US, _NOW_US - DAY_US], "k": None},  # reversed
    ],
)
def test_a_forged_events_export_cursor_is_a_422(client: httpx.Client, cursor: dict[str, Any]) -> None:
    r = client.get("/api/v1/events/export", params={"cursor": _b64({**cursor, "s": EVENTS_SCOPE})}, headers=ACME)
    error = _error(r)
    assert error["field"] == "cursor" and "pass next_cursor unchanged" in error["message"]


def test_a_well_formed_events_export_cursor_still_resumes(client: httpx.Client) -> None:
    cursor = {"w": [_NOW_US - DAY_US, _NOW_US + 60_000_000], "k": None, "s": EVENTS_SCOPE}
    r = client.get("/api/v1/events/export", params={"cursor": _b64(cursor), "format": "jsonl"}, headers=ACME)
    plain = client.get("/api/v1/events/export", params={"format": "jsonl"}, headers=ACME)
    assert r.status_code == 200 and r.text.splitlines() == plain.text.splitlines() != [], r.text  # acme's events


QUERY = {"time_range": {"last": "1h"}, "aggregation": {"time_bucket": "1m", "functions": ["count"]}}


def _query_export_cursor(start_us: int, end_us: int) -> str:
    """A cursor of ``POST /api/v1/query/export`` for :data:`QUERY` of acme, over the window given."""
    q = parse_query(QUERY, tenant="acme", now_us=_NOW_US)
    scope = export_scope("query", q.fingerprint(with_page=False))
    return encode_query_cursor(QueryExportCursor(start_us, end_us, _NOW_US, None, scope))


def test_a_query_export_cursor_cannot_widen_the_bodys_window(client: httpx.Client) -> None:
    # the body's hour of one-minute buckets was checked against the range and bucket limits; a cursor of the
    # right scope but a window of 130 years had been taken as it was
    wide = _query_export_cursor(0, YEAR_2100_US - 1)
    error = _error(client.post("/api/v1/query/export", params={"cursor": wide}, json=QUERY, headers=ACME))
    assert error["field"] == "cursor" and "pass next_cursor unchanged" in error["message"]
    same = _query_export_cursor(_NOW_US - 3_600_000_000, _NOW_US)  # the length of "last 1h": it resumes
    r = client.post("/api/v1/query/export", params={"cursor": same, "format": "jsonl"}, json=QUERY, headers=ACME)
    assert r.status_code == 200, r.text


def test_a_page_cursor_with_a_forged_row_count_is_a_422(client: httpx.Client) -> None:
    body = {"time_range": {"last": "3h"}, "aggregation": {"group_by": ["model"]}, "limit": 1}
    cursor = client.post("/api/v1/query", json=body, headers=ACME).json()["metadata"]["next_cursor"]
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = _b64({**data, "n": 2**64})  # it had been echoed as metadata.offset
    error = _error(client.post("/api/v1/query", json={**body, "cursor": forged}, headers=ACME))
    assert error["field"] == "cursor" and "not a cursor from this API" in error["message"]
    assert client.post("/api/v1/query", json={**body, "cursor": cursor}, headers=ACME).status_code == 200


# -- unknown and repeated query parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "name"),
    [
        ("GET", "/api/v1/alerts", {"status": "firing"}, "status"),  # a typo of state: every alert had come back
        ("GET", "/api/v1/alerts/rules", {"name": "x"}, "name"),
        ("GET", "/api/v1/alerts/nope", {"teams": "x"}, "teams"),  # (?team= is the guard's: taken)
        ("POST", "/api/v1/alerts/nope/acknowledge", {"comment": "x"}, "comment"),
        ("POST", "/api/v1/alerts/nope/resolve", {"by": "x"}, "by"),
        ("DELETE", "/api/v1/alerts/rules/nope", {"force": "1"}, "force"),
        ("GET", "/api/v1/dlq", {"reasons": "x"}, "reasons"),
        ("POST", "/api/v1/dlq/replay", {"ids": "x"}, "ids"),
        ("GET", "/api/v1/keys", {"role": "ingest"}, "role"),
        ("POST", "/api/v1/keys", {"tenant": "globex"}, "tenant"),  # the key had been made for the caller's tenant
        ("DELETE", "/api/v1/keys/nope", {"tenant": "x"}, "tenant"),
        ("GET", "/api/v1/audit", {"start": "-1h"}, "start"),
        ("DELETE", "/api/v1/tenants/no-such-tenant/data", {"dry_run": "true"}, "dry_run"),  # it had erased
        ("DELETE", "/api/v1/tenants/no-such-tenant/users/u1/data", {"dry_run": "true"}, "dry_run"),
        ("GET", "/api/v1/metrics/catalog", {"since": "7d"}, "since"),
        ("GET", "/api/v1/schemas", {"versions": "1"}, "versions"),
        ("GET", "/api/v1/schemas/latest", {"format": "yaml"}, "format"),
        ("POST", "/api/v1/query", {"tenant": "globex"}, "tenant"),  # the caller's own tenant had been queried
        ("POST", "/api/v1/query/batch", {"limit": "5"}, "limit"),
        ("POST", "/api/v1/query/export", {"tenant": "globex"}, "tenant"),
    ],
)
def test_an_unknown_query_parameter_is_a_422_naming_it(
    client: httpx.Client, method: str, path: str, params: dict[str, str], name: str
) -> None:
    body = QUERY if path.startswith("/api/v1/query") else None
    r = client.request(method, path, params=params, json=body, headers=ACME)
    error = _error(r)
    assert error["code"] == "unknown_parameter" and repr(name) in error["message"], error


def test_the_query_routes_say_where_the_tenant_goes(client: httpx.Client) -> None:
    error = _error(client.post("/api/v1/query", params={"tenant": "globex"}, json=QUERY))
    assert "JSON body" in error["message"] and "X-Scope-OrgID" in error["message"]


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/alerts", [("limit", "1"), ("limit", "2")], "limit"),
        ("/api/v1/alerts", [("state", "firing"), ("state", "resolved")], "state"),
        ("/api/v1/dlq", [("offset", "0"), ("offset", "5")], "offset"),
        ("/api/v1/spans", [("limit", "1"), ("limit", "2")], "limit"),
        ("/api/v1/logs", [("service", "a"), ("service", "b")], "service"),
        ("/api/v1/metrics/catalog", [("last", "1d"), ("last", "7d")], "last"),
        ("/api/v1/events/export", [("model", "gpt-4o"), ("model", "claude")], "model"),  # had matched nothing
        ("/api/v1/events/export", [("limit", "1"), ("limit", "2")], "limit"),
    ],
)
def test_a_repeated_query_parameter_is_a_422(
    client: httpx.Client, path: str, params: list[tuple[str, str]], name: str
) -> None:
    error = _error(client.get(path, params=params, headers=ACME))
    assert error["code"] == "repeated_parameter" and name in error["message"], error


def test_label_matchers_may_repeat(client: httpx.Client) -> None:
    r = client.get("/api/v1/metrics", params=[("label", "a=b"), ("label", "c!=d")], headers=ACME)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999", "\u0661\u0662"])
def test_an_events_export_numeric_filter_is_a_finite_ascii_number(client: httpx.Client, value: str) -> None:
    error = _error(client.get("/api/v1/events/export", params={"value": value}, headers=ACME))
    assert error["field"] == "value" and "finite number" in error["message"]


def test_an_alert_transition_body_with_an_unknown_key_is_a_422(hub: RunningHub, client: httpx.Client) -> None:
    r = client.post("/api/v1/alerts/nope/acknowledge", json={"comments": "looking"}, headers=ACME)
    error = _error(r)
    assert error["code"] == "bad_body" and "'comments'" in error["message"] and error["field"] == "comments"


def test_an_erasure_refuses_a_header_naming_another_tenant(hub: RunningHub, client: httpx.Client) -> None:
    # the header had won over the path: DELETE /tenants/erase-me/data erased the header's tenant, keep-me
    keep = {"X-Scope-OrgID": "keep-me"}
    assert client.post("/api/v1/events", json=[make_event("telemetry")], headers=keep).status_code == 202
    hub.flush()
    error = _error(client.delete("/api/v1/tenants/erase-me/data", headers=keep))
    assert error["code"] == "conflicting_tenant"
    assert "'keep-me'" in error["message"] and "'erase-me'" in error["message"]
    error = _error(client.delete("/api/v1/tenants/erase-me/users/u-7/data", headers=keep))
    assert error["code"] == "conflicting_tenant"
    count = client.post("/api/v1/query", json={"time_range": {"last": "1h"}}, headers=keep).json()["data"]
    assert count == [{"count": 1}]
    same = client.delete("/api/v1/tenants/keep-me/data", headers=keep)  # the header may repeat the path's tenant
    assert same.status_code == 200 and same.json()["deleted"]["events"] == 1, same.text


# -- bounds of listing and erasure parameters -----------------------------------------------------------------


@pytest.mark.parametrize("offset", ["1000001", "1" + "0" * 30, "1" + "0" * 1000])
def test_a_dead_letter_offset_past_a_million_is_a_422(client: httpx.Client, offset: str) -> None:
    # any integer had been taken (10**30 answered an empty page, echoing the offset)
    error = _error(client.get("/api/v1/dlq", params={"offset": offset}, headers=ACME))
    assert error["code"] == "validation_error" and error["details"][0]["loc"] == "query.offset", error
    assert client.get("/api/v1/dlq", params={"offset": "1000000"}, headers=ACME).status_code == 200


@pytest.mark.parametrize(("user", "words"), [("%20", "blank"), ("%09%20", "blank"), ("*", "not a wildcard")])
def test_erasing_a_blank_or_star_user_is_a_422_that_erases_nothing(
    hub: RunningHub, client: httpx.Client, user: str, words: str
) -> None:
    # it had answered 200 with every count 0: a caller meaning "every user" believed the data gone
    tenant = {"X-Scope-OrgID": "erase-users"}
    assert client.post("/api/v1/events", json=[make_event("telemetry")], headers=tenant).status_code == 202
    hub.flush()
    error = _error(client.delete(f"/api/v1/tenants/erase-users/users/{user}/data", headers=tenant))
    assert error["code"] == "bad_user_id" and "user_id" in error["message"] and words in error["message"], error
    if user == "*":
        assert "DELETE /api/v1/tenants/{tenant_id}/data" in error["message"]
    count = client.post("/api/v1/query", json={"time_range": {"last": "1h"}}, headers=tenant).json()["data"]
    assert count[0]["count"] >= 1
    named = client.delete("/api/v1/tenants/erase-users/users/u-7/data", headers=tenant)
    assert named.status_code == 200 and named.json()["user_id"] == "u-7", named.text
    # the package's hub is shared: leave no events behind (the all-tenants counts of test_query_batch)
    assert client.delete("/api/v1/tenants/erase-users/data", headers=tenant).status_code == 200
