"""The receivers' guard (:mod:`receivers.auth`) audits a refused cross-tenant write, and an admitted one (a
platform admin's), with both tenants: the caller's (``tenant_id``) and the one it asked to write into with
``X-Scope-OrgID`` (``target_tenant_id``), so the attempt is found when filtering by either tenant. OTLP/gRPC (interceptor) and OTLP/HTTP
(middleware), with the real servicers behind them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from starlette.testclient import TestClient

from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import AuditLog, iter_records, verify
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig
from receivers.auth import GrpcAuthInterceptor, HttpAuthMiddleware, ReceiverGuard, Refused, grpc_receiver_name
from receivers.otlp.grpc_service import add_otlp_servicers
from receivers.otlp.http_app import create_otlp_http_app
from tests.receivers.test_otlp_support import LoopThread

METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


class Rows:
    """A consumer that keeps the tenants of the rows it was given."""

    def __init__(self) -> None:
        self.tenants: list[str] = []

    def consume_rows(self, kind: Any, columns: dict[str, list[Any]], *, receiver: str) -> None:
        self.tenants.extend(columns["tenant_id"])


def metrics_request() -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "audit-client"
    # a resource attribute naming a tenant does not change the tenant of an authenticated write
    rm.resource.attributes.add(key="tenant.id").value.string_value = "tenant-b"
    m = rm.scope_metrics.add().metrics.add(name="audit.requests", unit="1")
    m.sum.aggregation_temporality = 2
    m.sum.is_monotonic = True
    m.sum.data_points.add(time_unix_nano=time.time_ns(), as_int=1)
    return req.SerializeToString()


@pytest.fixture
def guard(tmp_path: Path) -> tuple[ReceiverGuard, ApiKeyStore, AuditLog]:
    store = ApiKeyStore(tmp_path)
    audit = AuditLog(tmp_path, fsync=False)
    return ReceiverGuard(Authenticator(AuthConfig(enabled=True), store, None), None, audit), store, audit


def _who(recs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(r["tenant_id"], r["target_tenant_id"], r["outcome"], r["resource"]) for r in recs]


def test_admit_refusal_names_the_requested_tenant(guard: tuple[ReceiverGuard, ApiKeyStore, AuditLog]) -> None:
    g, store, audit = guard
    a_key = f"Bearer {store.create(tenant_id='tenant-a', role='ingest').key}"
    plat_key = f"Bearer {store.create(tenant_id='ops', role='platform_admin').key}"
    with pytest.raises(Refused) as refused:
        g.admit(a_key, "tenant-b", receiver="otlp_grpc", source_ip="10.0.0.7")
    assert refused.value.status == 403
    # its own tenant and a platform admin's cross-tenant write are admitted; only the latter is audited
    assert g.admit(a_key, None, receiver="otlp_grpc").tenant_id == "tenant-a"
    assert g.admit(plat_key, "tenant-b", receiver="otlp_grpc").tenant_id == "ops"
    recs = list(iter_records(audit.path))
    assert _who(recs) == [("tenant-a", "tenant-b", "denied", "otlp_grpc/tenant-b"),
                          ("ops", "tenant-b", "allowed", "otlp_grpc/tenant-b")]  # fmt: skip
    plat_rec = recs.pop()
    assert plat_rec["action"] == "events:write"
    assert recs[0]["action"] == "events:write" and recs[0]["source_ip"] == "10.0.0.7"
    # found by either tenant; the tenant-facing view of B leaves out A's refused attempt (A's user and key)
    assert [r["seq"] for r in iter_records(audit.path, tenant_id="tenant-b")] == [1, 2]
    assert [r["seq"] for r in iter_records(audit.path, tenant_id="tenant-a")] == [1]
    # B's own view shows the platform admin's write into it, not A's refused attempt
    assert [r["seq"] for r in iter_records(audit.path, tenant_id="tenant-b", foreign_denied=False)] == [2]
    assert [r["seq"] for r in iter_records(audit.path, tenant_id="ops")] == [2]
    assert verify(audit.path).ok


@pytest.fixture
def grpc_target(guard: tuple[ReceiverGuard, ApiKeyStore, AuditLog]) -> Iterator[tuple[str, Rows]]:
    lt = LoopThread()
    rows = Rows()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(interceptors=[GrpcAuthInterceptor(guard[0], grpc_receiver_name)])
        add_otlp_servicers(server, rows, default_tenant="default")
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = lt.run(start())
    try:
        yield f"127.0.0.1:{port}", rows
    finally:
        lt.run(server.stop(None))
        lt.close()


def test_otlp_grpc_refused_cross_tenant_write_is_audited_with_its_target(
    guard: tuple[ReceiverGuard, ApiKeyStore, AuditLog], grpc_target: tuple[str, Rows]
) -> None:
    _g, store, audit = guard
    target, rows = grpc_target
    key = store.create(tenant_id="tenant-a", role="ingest").key
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METRICS_EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as err:
            call(metrics_request(), timeout=10,
                 metadata=(("authorization", f"Bearer {key}"), ("x-scope-orgid", "tenant-b")))  # fmt: skip
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # the same key without the header writes to its own tenant (the resource's tenant.id is ignored)
        call(metrics_request(), timeout=10, metadata=(("authorization", f"Bearer {key}"),))
    assert rows.tenants == ["tenant-a"]
    recs = list(iter_records(audit.path))
    assert _who(recs) == [("tenant-a", "tenant-b", "denied", "otlp_grpc/tenant-b")]
    assert [r["seq"] for r in iter_records(audit.path, tenant_id="tenant-b")] == [recs[0]["seq"]]
    assert verify(audit.path).ok


def test_otlp_http_refused_cross_tenant_write_is_audited_with_its_target(
    guard: tuple[ReceiverGuard, ApiKeyStore, AuditLog],
) -> None:
    g, store, audit = guard
    rows = Rows()
    app: Any = HttpAuthMiddleware(create_otlp_http_app(rows, default_tenant="default", max_body_bytes=1 << 20), g)
    key = store.create(tenant_id="tenant-a", role="ingest").key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    with TestClient(app) as client:
        refused = client.post(
            "/v1/metrics", content=metrics_request(), headers={**headers, "X-Scope-OrgID": "tenant-b"}
        )
        assert refused.status_code == 403
        assert client.post("/v1/metrics", content=metrics_request(), headers=headers).status_code == 200
    assert rows.tenants == ["tenant-a"]
    assert _who(list(iter_records(audit.path, tenant_id="tenant-b"))) == [
        ("tenant-a", "tenant-b", "denied", "otlp_http/tenant-b")
    ]
