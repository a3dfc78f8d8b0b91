"""Authentication, RBAC and tenant isolation end to end, on every route and receiver.

Tenant A's data must be invisible to tenant B on every read path; every route needs a credential
(probes excepted) and a permission from the one table in ``api/security.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api.security import PUBLIC, ROUTE_PERMISSIONS
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("authhub"), service__auth__enabled=True) as h:
        yield h


def key(hub: RunningHub, tenant: str, role: str, team: str | None = None) -> dict[str, str]:
    store = hub.service.security.key_store
    assert store is not None
    return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role, team=team).key}"}


@pytest.fixture(scope="module")
def keys(hub: RunningHub) -> dict[str, dict[str, str]]:
    return {
        "a_admin": key(hub, "tenant-a", "tenant_admin"),
        "a_ingest": key(hub, "tenant-a", "ingest"),
        "a_viewer": key(hub, "tenant-a", "analytics_viewer"),
        "b_admin": key(hub, "tenant-b", "tenant_admin"),
        "platform": key(hub, "ops", "platform_admin"),
    }


def _routes(hub: RunningHub) -> list[tuple[str, str]]:
    out = []
    for r in hub.service.app.routes:
        if isinstance(r, APIRoute):
            out += [(m, r.path) for m in sorted(r.methods)]
        elif isinstance(r, APIWebSocketRoute):
            out.append(("WS", r.path))
    return out


def test_every_route_has_a_permission(hub: RunningHub) -> None:
    missing = [rk for rk in _routes(hub) if rk not in ROUTE_PERMISSIONS and rk[1] not in PUBLIC]
    assert missing == [], f"routes without a permission in api/security.py: {missing}"


def test_every_route_refuses_anonymous_callers(hub: RunningHub) -> None:
    for method, path in _routes(hub):
        if path in PUBLIC or method == "WS":
            continue
        url = hub.api + re.sub(r"\{[^}]+\}", "x", path)
        r = httpx.request(method, url, json={} if method in ("POST", "PUT") else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.get(f"{hub.api}/api/v1/events", headers={"Authorization": "Bearer lah_0000000000000000_" + "0" * 48})
    assert bad.status_code == 401
    assert httpx.get(f"{hub.api}/healthz").status_code == 200


def test_tenant_isolation_matrix(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    secret = make_event("security", tags={"team": "red"}, correlation_id="iso-1")
    r = httpx.post(f"{hub.api}/api/v1/events", json=[secret, make_event("cost", payload={"currency": "XYZ"})],
                   headers=keys["a_ingest"])  # fmt: skip
    assert r.status_code == 202 and r.json()["accepted"] == 1
    hub.flush()
    a, b = keys["a_admin"], keys["b_admin"]
    # A sees its own data
    assert len(httpx.get(f"{hub.api}/api/v1/events", headers=a).json()["events"]) == 1
    assert httpx.get(f"{hub.api}/api/v1/dlq", headers=a).json()["total"] == 1
    # B sees nothing of A on any read path, with or without naming A
    reads = [
        ("GET", "/api/v1/events", None), ("GET", "/api/v1/events?correlation_id=iso-1", None),
        ("GET", "/api/v1/events?tags.team=red", None), ("GET", "/api/v1/events?payload.threat_type=prompt_injection", None),
        ("GET", "/api/v1/dlq", None), ("GET", "/api/v1/keys", None), ("GET", "/api/v1/audit", None),
        ("GET", "/api/v1/metrics", None), ("GET", "/api/v1/metrics/names", None),
    ]  # fmt: skip
    for method, path, body in reads:
        mine = httpx.request(method, hub.api + path, headers=b, json=body)
        assert mine.status_code == 200, (path, mine.text)
        text = mine.text
        assert secret["event_id"] not in text, (path, text[:300])
        if path == "/api/v1/audit":  # B's own (denied) attempts may name tenant-a; A's records never show
            assert {r["tenant_id"] for r in mine.json()["records"]} <= {"tenant-b"}
        else:
            assert "tenant-a" not in text, (path, text[:300])
        named = httpx.request(method, hub.api + path, headers={**b, "X-Scope-OrgID": "tenant-a"}, json=body)
        assert named.status_code == 403, (path, named.status_code)
        param = httpx.request(method, hub.api + path + ("&" if "?" in path else "?") + "tenant=tenant-a", headers=b)
        assert param.status_code == 403, (path, param.status_code)
    q = {"time_range": {"last": "1h"}, "aggregation": {"functions": ["count"]}}
    qb = httpx.post(f"{hub.api}/api/v1/query", headers=b, json=q)
    assert qb.status_code == 200 and all(row.get("count", 0) == 0 for row in qb.json()["data"]), qb.text
    qa = httpx.post(f"{hub.api}/api/v1/query", headers={**b, "X-Scope-OrgID": "tenant-a"}, json=q)
    assert qa.status_code == 403
    # B cannot erase, replay or key-manage A
    assert httpx.delete(f"{hub.api}/api/v1/tenants/tenant-a/data", headers=b).status_code == 403
    assert httpx.post(f"{hub.api}/api/v1/dlq/replay?tenant=tenant-a", headers=b).status_code == 403
    a_keys = httpx.get(f"{hub.api}/api/v1/keys", headers=a).json()["keys"]
    # another tenant's key id is answered like an unknown one: its existence and tenant stay hidden
    assert httpx.delete(f"{hub.api}/api/v1/keys/{a_keys[0]['key_id']}", headers=b).status_code == 404
    assert httpx.delete(f"{hub.api}/api/v1/keys/0123456789abcdef", headers=b).status_code == 404
    # B cannot write into A either
    w = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers={**b, "X-Scope-OrgID": "tenant-a"})
    assert w.status_code == 403
    # tags.tenant_id inside an event cannot move it to another tenant
    moved = make_event("cost", tags={"tenant_id": "tenant-a"})
    assert httpx.post(f"{hub.api}/api/v1/events", json=[moved], headers=b).status_code == 202
    hub.flush()
    assert hub.sql("SELECT tenant_id FROM events WHERE event_id = ?", [moved["event_id"]]) == [("tenant-b",)]
    # a platform admin reads A only when it asks explicitly
    plat = keys["platform"]
    assert httpx.get(f"{hub.api}/api/v1/events", headers=plat).json()["events"] == []
    cross = httpx.get(f"{hub.api}/api/v1/events", headers={**plat, "X-Scope-OrgID": "tenant-a"})
    assert cross.status_code == 200 and len(cross.json()["events"]) == 1


def test_roles_limit_what_a_key_does(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    ingest, viewer = keys["a_ingest"], keys["a_viewer"]
    assert httpx.get(f"{hub.api}/api/v1/events", headers=ingest).status_code == 403
    assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers=viewer).status_code == 403
    assert httpx.get(f"{hub.api}/api/v1/events", headers=viewer).status_code == 200
    assert httpx.post(f"{hub.api}/api/v1/keys", json={"role": "ingest"}, headers=viewer).status_code == 403
    made = httpx.post(f"{hub.api}/api/v1/keys", json={"role": "ingest"}, headers=keys["a_admin"])
    assert made.status_code == 201 and made.json()["key"].startswith("lah_")
    escalate = httpx.post(f"{hub.api}/api/v1/keys", json={"role": "platform_admin"}, headers=keys["a_admin"])
    assert escalate.status_code == 403
    new_key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers=new_key).status_code == 202
    rev = httpx.delete(f"{hub.api}/api/v1/keys/{made.json()['key_id']}", headers=keys["a_admin"])
    assert rev.json()["revoked"] is True
    hub.service.security.key_store._cache.clear()  # type: ignore[union-attr]
    assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers=new_key).status_code == 401


def test_receivers_need_credentials_and_keep_tenants(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    body = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = body.resource_metrics.add()
    rm.resource.attributes.add(key="tenant_id").value.string_value = "tenant-b"  # must be ignored
    m = rm.scope_metrics.add().metrics.add(name="auth.test.gauge")
    m.gauge.data_points.add(as_double=1.0, time_unix_nano=1_700_000_000_000_000_000 + 1)
    data = body.SerializeToString()
    url = f"{hub.otlp_http}/v1/metrics"
    ctype = {"Content-Type": "application/x-protobuf"}
    assert httpx.post(url, content=data, headers=ctype).status_code == 401
    assert httpx.post(url, content=data, headers={**ctype, **keys["a_viewer"]}).status_code == 403
    assert (
        httpx.post(url, content=data, headers={**ctype, **keys["a_ingest"], "X-Scope-OrgID": "tenant-b"}).status_code
        == 403
    )
    assert httpx.post(url, content=data, headers={**ctype, **keys["a_ingest"]}).status_code == 200
    with grpc.insecure_channel(hub.grpc_target) as ch:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(body)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token = keys["a_ingest"]["Authorization"]
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(body, metadata=(("authorization", token), ("x-scope-orgid", "tenant-b")))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.Export(body, metadata=(("authorization", token),))
    rows = hub.sql("SELECT DISTINCT tenant_id FROM metric_points WHERE name = 'auth.test.gauge'")
    assert rows == [("tenant-a",)]
    # read back by tenant A only (the resource's tenant_id attribute did not move it to B)
    points = "/api/v1/metrics?name=auth.test.gauge"
    assert {p["tenant_id"] for p in httpx.get(hub.api + points, headers=keys["a_viewer"]).json()["metric_points"]} == {
        "tenant-a"
    }
    assert httpx.get(hub.api + points, headers=keys["b_admin"]).json()["metric_points"] == []
    assert httpx.get(hub.api + points, headers=keys["a_ingest"]).status_code == 403
    ws_url = hub.api.replace("http", "ws") + "/ws/events"
    with pytest.raises(InvalidStatus), connect(ws_url) as ws:
        ws.recv(5)
    with connect(ws_url, additional_headers=keys["a_ingest"]) as ws:
        ws.send(json.dumps([make_event("cost")]))
        assert json.loads(ws.recv(10))["accepted"] == 1


def test_rate_limits_answer_429(tmp_path: Path) -> None:
    with running_hub(tmp_path, service__quotas={"enabled": True, "api_calls_per_second": 1, "api_calls_burst": 2,
                                                "key_calls_per_second": 1, "key_calls_burst": 2}) as h:  # fmt: skip
        codes = [httpx.get(f"{h.api}/api/v1/events").status_code for _ in range(6)]
        assert 429 in codes and codes[0] == 200
        r = httpx.get(f"{h.api}/api/v1/events")
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
        assert "hub_quota_throttled_total" in httpx.get(f"{h.api}/metrics").text


def test_open_bind_elsewhere_refuses_to_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "run", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "refusing to start" in out.stderr and "auth" in out.stderr.lower()


def test_keys_cli_and_audit_verify(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "hub.cli", "keys", "create", "--data-dir", str(tmp_path), "--tenant", "t1",
         "--role", "ingest"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    api_key = made.stdout.strip().splitlines()[-1]
    assert api_key.startswith("lah_")
    with running_hub(tmp_path, service__auth__enabled=True) as h:
        r = httpx.post(
            f"{h.api}/api/v1/events", json=[make_event("cost")], headers={"Authorization": f"Bearer {api_key}"}
        )
        assert r.status_code == 202
        assert httpx.get(f"{h.api}/api/v1/events", headers={"Authorization": f"Bearer {api_key}"}).status_code == 403
    ok = subprocess.run([sys.executable, "-m", "hub.cli", "audit", "verify", "--data-dir", str(tmp_path)],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    log = tmp_path / "audit" / "audit.jsonl"
    lines = log.read_text().splitlines()
    assert any('"events:write"' in line for line in lines) and any('"denied"' in line for line in lines)
    lines[0] = lines[0].replace("events:write", "events:read")
    log.write_text("\n".join(lines) + "\n")
    bad = subprocess.run([sys.executable, "-m", "hub.cli", "audit", "verify", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1


def test_event_and_storage_quotas_answer_429(tmp_path: Path) -> None:
    quotas = {"enabled": True, "events_per_second": 5, "events_burst": 10,
              "tenants": {"tiny": {"storage_bytes": 1}}}  # fmt: skip
    with running_hub(tmp_path, service__quotas=quotas) as h:
        batch = [make_event("cost") for _ in range(8)]
        assert httpx.post(f"{h.api}/api/v1/events", json=batch).status_code == 202
        over = httpx.post(f"{h.api}/api/v1/events", json=[make_event("cost") for _ in range(8)])
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        # storage: a tenant over its bytes quota is refused until data is erased or retention runs
        first = httpx.post(f"{h.api}/api/v1/events", json=[make_event("cost")], headers={"X-Scope-OrgID": "tiny"})
        assert first.status_code == 202
        h.flush()
        h.service.pipeline.storage_bytes.__self__._at = float("-inf")  # type: ignore[union-attr]
        full = httpx.post(f"{h.api}/api/v1/events", json=[make_event("cost")], headers={"X-Scope-OrgID": "tiny"})
        assert full.status_code == 429 and "storage" in full.text


def test_all_tenants_query_needs_a_platform_admin(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    body = {"tenant": "*", "time_range": {"last": "1h"}, "aggregation": {"functions": ["count"]}}
    assert httpx.post(f"{hub.api}/api/v1/query", json=body, headers=keys["a_admin"]).status_code == 403
    r = httpx.post(f"{hub.api}/api/v1/query", json=body, headers=keys["platform"])
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["count"] >= 1  # tenant-a's events, seen across tenants
    batch = {"tenant": "*", "queries": [{"time_range": {"last": "1h"}, "aggregation": {"functions": ["count"]}}]}
    assert httpx.post(f"{hub.api}/api/v1/query/batch", json=batch, headers=keys["a_admin"]).status_code == 403
    rb = httpx.post(f"{hub.api}/api/v1/query/batch", json=batch, headers=keys["platform"])
    assert rb.status_code == 200 and rb.json()["results"][0]["data"] == r.json()["data"]


def test_a_batch_reads_only_the_callers_tenant(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    batch = {"queries": [{"time_range": {"last": "1h"}, "aggregation": {"functions": ["count"]}}]}
    own = httpx.post(f"{hub.api}/api/v1/query/batch", json=batch, headers=keys["a_admin"])
    assert own.status_code == 200
    other = httpx.post(f"{hub.api}/api/v1/query/batch", json={**batch, "tenant": "tenant-b"}, headers=keys["a_admin"])
    assert other.status_code == 403
