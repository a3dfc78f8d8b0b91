"""The audit's target tenant where the API guard does not see it: audit records shipped to Loki reach the
tenant acted upon as well as the actor's (once per Loki tenant), and a unified query over every tenant
(``"tenant": "*"`` in the body) is audited with the target ``"*"``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.routers import query
from api.security import guard
from api.state import SecurityContext
from exporters.loki import LokiExporter, LokiExporterConfig
from exporters.loki.push import parse_labels
from exporters.queue.config import QueueConfig
from hub.service import _audit_to_loki
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import AuditLog, iter_records, verify
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig
from hubcore.security.principal import Principal

PLATFORM = Principal("root", "ops", frozenset({"platform_admin"}), cross_tenant=True)
BOB = Principal("bob", "tenant-b")
MALLORY = Principal("mallory", "tenant-a")


class SyncLoki(LokiExporter):
    """The real Loki exporter's per-tenant push (``process``), run at ``export`` time; nothing is sent:
    each push is kept as ``(X-Scope-OrgID, [(labels, line)])``."""

    def __init__(self, config: LokiExporterConfig) -> None:
        super().__init__(config)
        self.pushes: list[tuple[str | None, list[tuple[dict[str, str], dict[str, Any]]]]] = []
        outer = self

        class Delivery:
            def deliver(self, entries: list[Any], _encode: Any, *, url: str, headers: dict[str, str],
                        once: bool = False) -> None:
                outer.pushes.append((headers.get("X-Scope-OrgID"),
                                     [(parse_labels(labels), json.loads(line)) for labels, _ns, line in entries]))  # fmt: skip

        self._delivery = Delivery()  # type: ignore[assignment]

    def export(self, kind: str, columns: dict[str, list[Any]]) -> None:
        self.process([(0, {"kind": kind, "cols": columns})])

    def by_tenant(self) -> dict[str | None, list[int]]:
        """The audit records' ``seq`` per Loki tenant, in push order."""
        out: dict[str | None, list[int]] = {}
        for org, entries in self.pushes:
            for labels, line in entries:
                record = json.loads(line["body"])
                assert labels["service_name"] == "llm-analytics-hub-audit"
                if self.config.tenant_header and not self.config.org_id:  # one Loki tenant per tenant:
                    assert labels["tenant_id"] == org  # the stream's tenant label is the Loki tenant
                out.setdefault(org, []).append(record["seq"])
        return out


def _loki(tmp_path: Path, **kw: Any) -> SyncLoki:
    return SyncLoki(LokiExporterConfig(endpoint="http://loki:3100", sending_queue=QueueConfig(directory=str(tmp_path)),
                                       **kw))  # fmt: skip


def _write(log: AuditLog) -> None:
    log.record(PLATFORM, "data:erase", "tenant/tenant-b", target_tenant_id="tenant-b")  # 1: ops on B, allowed
    log.record(BOB, "budgets:write", "budgets/tenant-b")  # 2: B on B
    log.record(MALLORY, "events:write", "otlp_grpc/tenant-b", target_tenant_id="tenant-b", outcome="denied",
               reason="denied: cross-tenant")  # fmt: skip  # 3: A refused on B
    log.record(PLATFORM, "query:run", "query/ops", target_tenant_id="*")  # 4: ops on every tenant
    log.append(subject="?", tenant_id=None, action="auth", outcome="denied")  # 5: no tenant (bad credential)
    log.record(PLATFORM, "keys:manage", "keys/ops")  # 6: ops on ops


def test_audit_to_loki_ships_to_the_actor_and_the_target_tenant(tmp_path: Path) -> None:
    loki = _loki(tmp_path / "q")
    log = AuditLog(tmp_path, fsync=False)
    log.listeners.append(_audit_to_loki(loki))
    _write(log)
    # ops (actor) gets its admin's actions; B gets its own and the admin's erasure of its data, each once;
    # A's refused attempt on B stays with A (it names A's user, key and address), as GET /api/v1/audit shows
    # B; "*" is not fanned out to every tenant; a record without a tenant goes to "_hub"
    assert loki.by_tenant() == {"ops": [1, 4, 6], "tenant-b": [1, 2], "tenant-a": [3], "_hub": [5]}
    # the two rows of record 1 carry the very same record (both tenants named, hash included)
    rows = [line for _org, entries in loki.pushes for _labels, line in entries if json.loads(line["body"])["seq"] == 1]
    assert len(rows) == 2 and rows[0] == rows[1]
    body = json.loads(rows[0]["body"])
    assert (body["tenant_id"], body["target_tenant_id"]) == ("ops", "tenant-b")
    assert body == next(iter(iter_records(log.path)))
    assert verify(log.path).ok
    # a record written before target_tenant_id existed: its tenant only
    old = {"seq": 7, "subject": "carol", "tenant_id": "tenant-c", "action": "x", "resource": "y", "outcome": "allowed"}
    loki.pushes.clear()
    _audit_to_loki(loki)(old)
    assert loki.by_tenant() == {"tenant-c": [7]}


@pytest.mark.parametrize(("options", "org"), [({"org_id": "audit"}, "audit"), ({"tenant_header": False}, None)])
def test_audit_to_loki_one_loki_tenant_gets_each_record_once(tmp_path: Path, options: dict[str, Any],
                                                             org: str | None) -> None:  # fmt: skip
    loki = _loki(tmp_path / "q", **options)
    log = AuditLog(tmp_path, fsync=False)
    log.listeners.append(_audit_to_loki(loki))
    _write(log)
    assert loki.by_tenant() == {org: [1, 2, 3, 4, 5, 6]}


# --- POST /api/v1/query with "tenant": "*" ----------------------------------------------------------------


class FakeExecutor:
    def __init__(self) -> None:
        self.tenants: list[str] = []

    def execute(self, q: Any, *, timeout_s: float | None = None) -> dict[str, Any]:
        self.tenants.append(q.tenant)
        return {"data": [], "metadata": {"tenant": q.tenant}}


def test_query_over_every_tenant_is_audited_with_target_star(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path)
    audit = AuditLog(tmp_path, fsync=False)
    security = SecurityContext(Authenticator(AuthConfig(enabled=True), store, None), enabled=True, audit=audit,
                               key_store=store, log_reads=False)  # fmt: skip
    app = FastAPI(dependencies=[Depends(guard)])
    app.state.hub = SimpleNamespace(security=security, default_tenant="default")
    app.state.query_executor = executor = FakeExecutor()
    install_error_handlers(app)
    app.include_router(query.router)
    client = TestClient(app)
    plat = {"Authorization": f"Bearer {store.create(tenant_id='ops', role='platform_admin').key}"}
    a_admin = {"Authorization": f"Bearer {store.create(tenant_id='tenant-a', role='tenant_admin').key}"}
    body = {"tenant": "*", "time_range": {"last": "1h"}}

    seen = 0

    def new() -> list[tuple[str, str, str, str]]:
        nonlocal seen
        recs = list(iter_records(audit.path, after_seq=seen))
        seen = recs[-1]["seq"] if recs else seen
        return [(r["tenant_id"], r["target_tenant_id"], r["outcome"], r["resource"]) for r in recs]

    assert client.post("/api/v1/query", json=body, headers=plat).json()["metadata"] == {"tenant": "*"}
    # a query is a read: the guard (which saw the admin's own tenant) records nothing without log_reads;
    # the route records "*" (every tenant), since cross-tenant reads are always recorded
    assert new() == [("ops", "*", "allowed", "query/* POST /api/v1/query")]
    # a tenant admin may not: refused, and the refusal names "*"
    refused = client.post("/api/v1/query", json=body, headers=a_admin)
    assert refused.status_code == 403
    assert new() == [("tenant-a", "*", "denied", "query/* POST /api/v1/query")]
    assert executor.tenants == ["*"]
    # an export is always recorded (bulk extraction), and its refusal names "*"
    assert client.post("/api/v1/query/export?format=jsonl", json=body, headers=a_admin).status_code == 403
    assert [(t, tt, o) for t, tt, o, _ in new()] == [("tenant-a", "tenant-a", "allowed"), ("tenant-a", "*", "denied")]
    # a query of the caller's own tenant is a plain read: not recorded without log_reads
    assert client.post("/api/v1/query", json={"time_range": {"last": "1h"}}, headers=a_admin).status_code == 200
    assert new() == []
    # a platform admin's read of one other tenant is recorded although reads are not (log_reads off)
    assert client.post("/api/v1/query", json={"tenant": "tenant-b", "time_range": {"last": "1h"}},
                       headers=plat).status_code == 200  # fmt: skip
    assert [(t, tt, o) for t, tt, o, _ in new()] == [("ops", "tenant-b", "allowed")]
    # the platform admin's "*" query concerns every tenant: B's view (API, foreign denials left out) shows it
    b_view = [(r["tenant_id"], r["target_tenant_id"]) for r in iter_records(audit.path, tenant_id="tenant-b",
                                                                            foreign_denied=False)]  # fmt: skip
    assert b_view == [("ops", "*"), ("ops", "tenant-b")]
    assert verify(audit.path).ok
