"""Tenant boundaries found by probing a hub as a hostile user (27 Nov 2026): one tenant grammar on every
path, audited native gRPC cross-tenant writes, /metrics behind auth, keys, and ``tenant=*`` only where
a route reads every tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubcore.security.audit import iter_records
from hubcore.security.config import JwtConfig
from hubcore.security.jwt import JwtVerifier
from hubcore.security.principal import AuthError
from hubcore.tenants import check_tenant, is_tenant
from receivers.native_grpc.client import EventStreamClient
from receivers.native_grpc.protos import events_pb2
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, hub_config, running_hub
from tests.security.test_security_jwt import AUD, ISS, RSA_KEY, jwk, token

BAD_TENANTS = ["_hub", "*", "../x", "a b", "a'b\"c", "x" * 129, "-x", ".", "é"]
LOG = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    cfg = hub_config(tmp_path_factory.mktemp("hub"), service__auth__enabled=True, service__audit__enabled=True)
    with running_hub(Path(), cfg) as h:
        yield h


def _key(hub: RunningHub, tenant: str, role: str, team: str | None = None) -> dict[str, str]:
    store = hub.service.security.key_store
    assert store is not None
    return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role, team=team).key}"}


def _audit(hub: RunningHub) -> list[dict[str, Any]]:
    audit = hub.service.security.audit
    assert audit is not None
    return list(iter_records(audit.path))


def test_the_grammar() -> None:
    assert all(is_tenant(t) for t in ("acme", "a", "A-1.b_c", "9" * 128))
    assert not any(is_tenant(t) for t in [*BAD_TENANTS, "", None, 3])
    with pytest.raises(Exception, match="X-Scope-OrgID must be 1-128"):
        check_tenant("_hub", "X-Scope-OrgID")


@pytest.mark.parametrize("tenant", ["*", "_hub", "../x", "x" * 300])
def test_a_jwt_names_one_real_tenant(tmp_path: Path, tenant: str) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(RSA_KEY, "k1", "RS256")]}))
    verifier = JwtVerifier(JwtConfig(issuer=ISS, audience=AUD, jwks_file=str(jwks)).validate())
    with pytest.raises(AuthError) as ei:
        verifier.verify(token(tenant_id=tenant))
    assert ei.value.code == "bad_claim"  # "*" had read every tenant's data, unaudited
    assert verifier.verify(token()).tenant_id == "acme"


def test_receivers_refuse_tenants_outside_the_grammar(hub: RunningHub) -> None:
    admin = _key(hub, "ops", "platform_admin")
    for bad in ("_hub", "../x", "a'b"):
        r = httpx.post(f"{hub.otlp_http}/v1/logs", json=LOG, headers={**admin, "X-Scope-OrgID": bad})
        assert r.status_code == 400 and r.json()["code"] == 3, r.text  # google.rpc.Status INVALID_ARGUMENT
    before = len(_audit(hub))
    r = httpx.post(f"{hub.otlp_http}/v1/logs", json=LOG, headers={**admin, "X-Scope-OrgID": "x" * 5000})
    assert r.status_code == 400 and len(_audit(hub)) == before  # refused before any audit record
    with EventStreamClient(hub.grpc_target, metadata=[("authorization", admin["Authorization"])]) as c:
        for bad in ("_hub", "../x"):
            ack = c._send(c.batch([make_event("cost")], tenant_id=bad), metadata=c._metadata, timeout=10)
            assert ack.status == events_pb2.Ack.REJECTED and "tenant_id must be 1-128" in ack.message
    assert hub.sql("SELECT count(*) FROM events WHERE tenant_id NOT IN ('ops')") == [(0,)]
    assert hub.sql("SELECT count(*) FROM logs WHERE tenant_id <> 'ops'") == [(0,)]


def test_native_grpc_frame_tenant_is_audited(hub: RunningHub) -> None:
    ingest_a = _key(hub, "tenant-a", "ingest")
    admin = _key(hub, "ops", "platform_admin")
    before = len(_audit(hub))
    with EventStreamClient(hub.grpc_target, metadata=[("authorization", ingest_a["Authorization"])]) as c:
        ack = c._send(c.batch([make_event("cost")], tenant_id="tenant-b"), metadata=c._metadata, timeout=10)
        assert ack.status == events_pb2.Ack.REJECTED and "tenant-b" in ack.message
    with EventStreamClient(hub.grpc_target, metadata=[("authorization", admin["Authorization"])]) as c:
        ack = c._send(c.batch([make_event("cost")], tenant_id="tenant-b"), metadata=c._metadata, timeout=10)
        assert ack.status == events_pb2.Ack.OK
    new = [(r["tenant_id"], r["target_tenant_id"], r["outcome"]) for r in _audit(hub)[before:]]
    assert ("tenant-a", "tenant-b", "denied") in new and ("ops", "tenant-b", "allowed") in new
    assert hub.sql("SELECT count(*) FROM events WHERE tenant_id = 'tenant-b'") == [(1,)]


def test_open_mode_tags_and_resource_tenants(tmp_path: Path) -> None:
    with running_hub(tmp_path) as h:
        events = [make_event("cost", tags={"tenant_id": "_hub"}), make_event("cost", tags={"tenant_id": "okay"})]
        r = httpx.post(f"{h.api}/api/v1/events", json=events)
        assert r.status_code == 202 and r.json()["accepted"] == 1
        assert "tags.tenant_id must be" in r.json()["rejected"][0]["reason"]
        res = {"attributes": [{"key": "tenant_id", "value": {"stringValue": "_hub"}}]}
        body = {"resourceLogs": [{"resource": res, **LOG["resourceLogs"][0]}]}
        assert httpx.post(f"{h.otlp_http}/v1/logs", json=body).status_code == 200
        assert h.sql("SELECT DISTINCT tenant_id FROM events") == [("okay",)]
        assert h.sql("SELECT DISTINCT tenant_id FROM logs") == [("default",)]  # ignored, not "_hub"


def test_metrics_need_a_credential_when_auth_is_on(hub: RunningHub, tmp_path: Path) -> None:
    r = httpx.get(f"{hub.api}/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_credentials"
    r = httpx.get(f"{hub.api}/metrics", headers=_key(hub, "ops", "platform_admin"))
    assert r.status_code == 200
    # the store writer's health is on it too (alerts HubStoreWriterFailing, HubStoreQuarantinedRows)
    assert "hub_store_writer_failing 0.0" in r.text and "hub_store_quarantined_rows_total 0.0" in r.text
    assert httpx.get(f"{hub.api}/metrics", headers=_key(hub, "tenant-a", "ingest")).status_code == 403
    cfg = hub_config(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True,
                     service__telemetry__metrics_public=True)  # fmt: skip
    with running_hub(tmp_path, cfg) as h:
        assert httpx.get(f"{h.api}/metrics").status_code == 200  # opted in explicitly
    with running_hub(tmp_path / "open", grpc=False, otlp_http=False) as h:
        assert httpx.get(f"{h.api}/metrics").status_code == 200  # auth off: public


def test_keys_tenant_admin_cannot_unmake_a_platform_admin(hub: RunningHub) -> None:
    store = hub.service.security.key_store
    assert store is not None
    pa = store.create(tenant_id="tenant-k", role="platform_admin")
    ta = _key(hub, "tenant-k", "tenant_admin")
    r = httpx.delete(f"{hub.api}/api/v1/keys/{pa.info.key_id}", headers=ta)
    assert r.status_code == 403 and "platform_admin" in r.text
    assert store.verify(pa.key) is not None
    own = store.create(tenant_id="tenant-k", role="ingest")
    assert httpx.delete(f"{hub.api}/api/v1/keys/{own.info.key_id}", headers=ta).json()["revoked"] is True


@pytest.mark.parametrize("body", [{"role": "ingest", "team": "t" * 129}, {"role": "ingest", "team": ""},
                                  {"role": "ingest", "expires_in_seconds": 1e308},
                                  {"role": "ingest", "description": "d" * 1001}])  # fmt: skip
def test_key_fields_are_bounded(hub: RunningHub, body: dict[str, Any]) -> None:
    r = httpx.post(f"{hub.api}/api/v1/keys", json=body, headers=_key(hub, "tenant-k", "tenant_admin"))
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("lifetime", [1e-300, 0.5, 0, -1, 315_360_001, 1e308])
def test_a_key_lifetime_is_1_second_to_10_years(hub: RunningHub, lifetime: float) -> None:
    # 1e-300 had made a key already expired when it was handed out
    body = f'{{"role": "ingest", "expires_in_seconds": {lifetime}}}'
    admin = {**_key(hub, "tenant-k", "tenant_admin"), "Content-Type": "application/json"}
    r = httpx.post(f"{hub.api}/api/v1/keys", content=body, headers=admin)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == "expires_in_seconds", error
    assert "between 1 and 315,360,000 seconds" in error["message"], error
    store = hub.service.security.key_store
    assert store is not None
    assert not [k for k in store.list(tenant_id="tenant-k") if k.role == "ingest" and k.expires_at is not None
                and k.expires_at - k.created_at < 1]  # fmt: skip


def test_a_key_lifetime_out_of_the_float_range_is_a_422_naming_it(hub: RunningHub) -> None:
    admin = {**_key(hub, "tenant-k", "tenant_admin"), "Content-Type": "application/json"}
    r = httpx.post(f"{hub.api}/api/v1/keys", content='{"role": "ingest", "expires_in_seconds": 1e999}', headers=admin)
    assert r.status_code == 422 and "expires_in_seconds" in r.json()["error"]["message"], r.text


def test_a_key_of_the_shortest_and_longest_lifetime_is_made(hub: RunningHub) -> None:
    admin = _key(hub, "tenant-k", "tenant_admin")
    for lifetime in (1, 315_360_000):
        r = httpx.post(f"{hub.api}/api/v1/keys", json={"role": "ingest", "expires_in_seconds": lifetime}, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["expires_at"] > r.json()["created_at"]


def test_post_events_honours_tenant_parameter(hub: RunningHub) -> None:
    admin = _key(hub, "ops", "platform_admin")
    r = httpx.post(f"{hub.api}/api/v1/events?tenant=tenant-p", json=[make_event("policy")], headers=admin)
    assert r.status_code == 202
    assert hub.sql("SELECT count(*) FROM events WHERE tenant_id = 'tenant-p'") == [(1,)]
    r = httpx.post(f"{hub.api}/api/v1/events?tenant=_hub", json=[make_event("policy")], headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_tenant"


def test_star_only_where_a_route_reads_every_tenant(hub: RunningHub) -> None:
    admin = _key(hub, "ops", "platform_admin")
    for method, path in (("GET", "/api/v1/events?tenant=*"), ("GET", "/api/v1/budgets?tenant=*"),
                         ("GET", "/api/v1/keys?tenant=*"), ("DELETE", "/api/v1/tenants/*/data")):  # fmt: skip
        r = httpx.request(method, hub.api + path, headers=admin)
        assert r.status_code == 422 and "every tenant" in r.text, (path, r.text)
    for path in ("/api/v1/alerts?tenant=*", "/api/v1/audit?tenant=*", "/api/v1/events/export?tenant=*"):
        assert httpx.get(hub.api + path, headers=admin).status_code == 200, path
    viewer = _key(hub, "tenant-a", "tenant_admin")
    assert httpx.get(hub.api + "/api/v1/alerts?tenant=*", headers=viewer).status_code == 403


def test_otlp_http_refusals_carry_grpc_codes(hub: RunningHub) -> None:
    r = httpx.post(f"{hub.otlp_http}/v1/logs", json=LOG)
    assert r.status_code == 401 and r.json()["code"] == 16  # UNAUTHENTICATED
    r = httpx.post(f"{hub.otlp_http}/v1/logs", json=LOG,
                   headers={**_key(hub, "tenant-a", "ingest"), "X-Scope-OrgID": "tenant-b"})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == 7  # PERMISSION_DENIED
