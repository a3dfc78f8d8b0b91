"""The audit log names both tenants: the acting principal's (``tenant_id``) and the one acted upon
(``target_tenant_id``); filtering by a tenant shows both kinds; old records (without the target) still verify."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import Response

from api.deps import read_tenant
from api.errors import install_error_handlers, json_response
from api.routers import admin, keys
from api.security import guard
from api.state import SecurityContext
from hub.audit_cli import main as audit_main
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import GENESIS, AuditLog, canonical, iter_records, record_hash, tail, verify
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig
from hubcore.security.principal import Principal

PLATFORM = Principal("root", "ops", frozenset({"platform_admin"}), cross_tenant=True)
BOB = Principal("bob", "tenant-b")


def test_cross_tenant_action_names_actor_and_target(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    cross = log.record(PLATFORM, "data:erase", "tenant/tenant-b", target_tenant_id="tenant-b")
    own = log.record(BOB, "budgets:write", "budgets/tenant-b POST /api/v1/budgets")
    assert (cross["tenant_id"], cross["target_tenant_id"]) == ("ops", "tenant-b")
    assert own["tenant_id"] == own["target_tenant_id"] == "tenant-b"  # same-tenant action: both equal
    assert verify(log.path).ok
    # tenant B sees what was done to its data and its own users' actions; ops sees its admin's actions
    assert [r["seq"] for r in iter_records(log.path, tenant_id="tenant-b")] == [1, 2]
    assert [r["seq"] for r in iter_records(log.path, tenant_id="ops")] == [1]
    assert [r["seq"] for r in tail(log.path, tenant_id="tenant-b", limit=1)] == [2]
    assert list(iter_records(log.path, tenant_id="tenant-c")) == []
    # append() without a target: the target is the record's tenant
    assert log.append(subject="x", tenant_id="acme", action="x")["target_tenant_id"] == "acme"


def test_all_tenants_and_foreign_denials(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    log.record(PLATFORM, "events:read", "events/*", target_tenant_id="*")  # every tenant's data
    log.record(Principal("mallory", "tenant-a"), "events:read", "events/tenant-b", target_tenant_id="tenant-b",
               outcome="denied", reason="denied: cross-tenant")  # fmt: skip
    log.record(BOB, "events:read", "events/tenant-a", target_tenant_id="tenant-a", outcome="denied")
    assert [r["seq"] for r in iter_records(log.path, tenant_id="tenant-b")] == [1, 2, 3]
    # the tenant-facing view leaves out other tenants' refused attempts, never its own users' ones
    assert [r["seq"] for r in iter_records(log.path, tenant_id="tenant-b", foreign_denied=False)] == [1, 3]
    assert [r["seq"] for r in iter_records(log.path, tenant_id="tenant-a", foreign_denied=False)] == [1, 2]


def _old_format_log(tmp_path: Path, n: int) -> Path:
    """A log as written before ``target_tenant_id`` existed (same hashing, no target field)."""
    directory = tmp_path / "audit"
    directory.mkdir(parents=True)
    path, prev = directory / "audit.jsonl", GENESIS
    with open(path, "wb") as fh:
        for seq in range(1, n + 1):
            rec: dict[str, Any] = {
                "seq": seq, "ts": f"2026-01-01T00:00:0{seq}.000000Z", "subject": f"user{seq}", "key_id": None,
                "tenant_id": "acme" if seq % 2 else "globex", "action": "keys:manage", "resource": f"keys/{seq}",
                "outcome": "allowed", "reason": "", "source_ip": "10.0.0.1", "user_agent": None, "prev_hash": prev,
            }  # fmt: skip
            rec["hash"] = prev = record_hash(rec)
            fh.write(canonical(rec) + b"\n")
    (directory / "audit.jsonl.head").write_text(json.dumps({"seq": n, "hash": prev}))
    return path


def test_old_and_new_records_verify_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _old_format_log(tmp_path, 3)
    assert verify(path) == (True, 3, None, "intact")
    log = AuditLog(tmp_path, fsync=False)  # continues the old chain in the new format
    log.record(PLATFORM, "keys:manage", "keys/acme", target_tenant_id="acme")
    log.record(BOB, "keys:manage", "keys/tenant-b")
    assert verify(path) == (True, 5, None, "intact")
    recs = list(iter_records(path))
    assert ["target_tenant_id" in r for r in recs] == [False, False, False, True, True]
    # old records are filtered by their tenant_id, new ones by either tenant
    assert [r["seq"] for r in iter_records(path, tenant_id="acme")] == [1, 3, 4]
    assert [r["seq"] for r in iter_records(path, tenant_id="globex")] == [2]
    assert audit_main(["verify", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert audit_main(["list", "--data-dir", str(tmp_path), "--tenant", "acme"]) == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["tenant_id"], r.get("target_tenant_id")) for r in listed] == [
        (4, "ops", "acme"), (3, "acme", None), (1, "acme", None),
    ]  # fmt: skip


def _set_target(rec: dict[str, Any]) -> None:
    rec["target_tenant_id"] = "tenant-z"


def _drop_target(rec: dict[str, Any]) -> None:
    del rec["target_tenant_id"]


@pytest.mark.parametrize(
    ("line", "tamper"),
    [
        (4, _set_target),  # move a cross-tenant access to another tenant
        (4, _drop_target),  # make a new record look like an old one
        (5, _drop_target),
        (2, _set_target),  # give an old record a target it never had
    ],
)
def test_tampering_with_the_target_tenant_is_detected(tmp_path: Path, line: int, tamper: Any) -> None:
    path = _old_format_log(tmp_path, 3)
    log = AuditLog(tmp_path, fsync=False)
    log.record(PLATFORM, "data:erase", "tenant/tenant-b", target_tenant_id="tenant-b")
    log.record(BOB, "keys:manage", "keys/tenant-b")
    ls = path.read_text().splitlines(keepends=True)
    rec = json.loads(ls[line - 1])
    tamper(rec)
    ls[line - 1] = json.dumps(rec) + "\n"
    path.write_text("".join(ls))
    result = verify(path)
    assert (result.ok, result.first_bad_line) == (False, line)
    assert "edited" in result.reason
    assert audit_main(["verify", "--data-dir", str(tmp_path)]) == 1


# --- through the API: the guard and the routes that settle on a tenant ------------------------------------


def _app(tmp_path: Path) -> tuple[TestClient, ApiKeyStore, AuditLog]:
    store = ApiKeyStore(tmp_path)
    audit = AuditLog(tmp_path, fsync=False)
    security = SecurityContext(Authenticator(AuthConfig(enabled=True), store, None), enabled=True, audit=audit,
                               key_store=store, log_reads=True)  # fmt: skip
    app = FastAPI(dependencies=[Depends(guard)])
    app.state.hub = SimpleNamespace(security=security, default_tenant="default")
    install_error_handlers(app)
    app.include_router(keys.router)
    app.include_router(admin.router)

    @app.get("/api/v1/events")
    def events(request: Request, tenant: str | None = None) -> Response:
        return json_response({"tenant": read_tenant(request, app.state.hub, tenant)})

    return TestClient(app), store, audit


def _auth(store: ApiKeyStore, tenant: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role).key}"}


def test_api_records_the_tenant_acted_upon(tmp_path: Path) -> None:
    client, store, audit = _app(tmp_path)
    plat, b_admin, a_admin = (_auth(store, "ops", "platform_admin"), _auth(store, "tenant-b", "tenant_admin"),
                              _auth(store, "tenant-a", "tenant_admin"))  # fmt: skip

    seen = 0

    def new() -> list[dict[str, Any]]:
        """The records written since the last call."""
        nonlocal seen
        recs = list(iter_records(audit.path, after_seq=seen))
        seen = recs[-1]["seq"] if recs else seen
        return recs

    def who(recs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [(r["tenant_id"], r["target_tenant_id"], r["outcome"]) for r in recs]

    # a read the guard sees the tenant of (?tenant=): one record, actor ops, target B
    assert client.get("/api/v1/events?tenant=tenant-b", headers=plat).json() == {"tenant": "tenant-b"}
    assert who(new()) == [("ops", "tenant-b", "allowed")]
    # a same-tenant write: one record, both tenants B
    assert client.post("/api/v1/keys", json={"role": "ingest"}, headers=b_admin).status_code == 201
    assert who(new()) == [("tenant-b", "tenant-b", "allowed")]
    # the tenant in the body: the guard saw only the admin's own tenant, the route records B as well
    made = client.post("/api/v1/keys", json={"role": "ingest", "tenant_id": "tenant-b"}, headers=plat)
    assert made.status_code == 201 and made.json()["tenant_id"] == "tenant-b"
    recs = new()
    assert who(recs) == [("ops", "ops", "allowed"), ("ops", "tenant-b", "allowed")]
    assert recs[1]["resource"] == "keys/tenant-b POST /api/v1/keys" and recs[1]["subject"] == recs[0]["subject"]
    # the header names B: the guard records B, the route does not record it twice
    via_header = client.post("/api/v1/keys", json={"role": "ingest"}, headers={**plat, "X-Scope-OrgID": "tenant-b"})
    assert via_header.status_code == 201 and via_header.json()["tenant_id"] == "tenant-b"
    assert who(new()) == [("ops", "tenant-b", "allowed")]
    # revoking one of B's keys (its tenant comes from the key): by the platform admin, then refused to A's admin
    b_key = made.json()["key_id"]
    assert client.delete(f"/api/v1/keys/{b_key}", headers=a_admin).status_code == 404  # as for an unknown id
    assert who(new()) == [("tenant-a", "tenant-a", "allowed"), ("tenant-a", "tenant-b", "denied")]
    assert client.delete(f"/api/v1/keys/{b_key}", headers=plat).json()["revoked"] is True
    assert who(new()) == [("ops", "ops", "allowed"), ("ops", "tenant-b", "allowed")]
    assert verify(audit.path).ok

    # B's auditor sees the platform admin's access to its data, not A's refused attempt (A's user and key)
    b_view = client.get("/api/v1/audit?limit=1000", headers=b_admin).json()["records"]
    assert {(r["tenant_id"], r["target_tenant_id"]) for r in b_view} == {("ops", "tenant-b"), ("tenant-b", "tenant-b")}
    assert all(r["outcome"] == "allowed" for r in b_view if r["tenant_id"] != "tenant-b")
    # A sees its own user's refused attempt on B; the platform admin (and the CLI) see everything about B
    a_view = client.get("/api/v1/audit", headers=a_admin).json()["records"]
    assert ("tenant-a", "tenant-b", "denied") in who(a_view)
    plat_b = client.get("/api/v1/audit?tenant=tenant-b&limit=1000", headers=plat).json()["records"]
    assert ("tenant-a", "tenant-b", "denied") in who(plat_b)
    assert len(plat_b) == len(tail(audit.path, tenant_id="tenant-b", limit=1000)) > len(b_view)
    everything = client.get("/api/v1/audit?tenant=*&limit=1000", headers=plat).json()["records"]
    assert len(everything) == audit.count  # every record (this very read's included: the guard wrote it first)
    # B may not widen its view to another tenant
    assert client.get("/api/v1/audit?tenant=tenant-a", headers=b_admin).status_code == 403
