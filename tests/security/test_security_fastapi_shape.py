"""The FastAPI dependency shape recommended in docs/security.md, exercised end to end (401/403/429, audit)."""

# no "from __future__ import annotations": FastAPI must resolve the closures in Depends() at runtime

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse, Response

from hubcore.security import (
    ApiKeyStore,
    AuditLog,
    AuthConfig,
    Authenticator,
    AuthError,
    ForbiddenError,
    Principal,
    Quotas,
    QuotasConfig,
    Resource,
    decide,
    iter_records,
    verify,
)


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


def build(tmp_path: Path) -> tuple[FastAPI, ApiKeyStore, AuditLog]:
    keys = ApiKeyStore(tmp_path)
    authn = Authenticator(AuthConfig(enabled=True), keys, None)
    quotas = Quotas(QuotasConfig(enabled=True, key_calls_per_second=0.001, key_calls_burst=3))
    audit = AuditLog(tmp_path, fsync=False)
    app = FastAPI()

    def principal(request: Request) -> Principal:  # sync: runs in the threadpool (SQLite, JWKS fetch)
        p = authn.authenticate(request.headers.get("authorization"))
        if (retry := quotas.check_request(p)) is not None:
            raise Throttled(retry)
        return p

    def authorize(action: str, resource_type: str) -> Callable[..., Principal]:
        def dep(request: Request, p: Annotated[Principal, Depends(principal)]) -> Principal:
            asked = request.headers.get("x-scope-orgid")
            resource = Resource(resource_type, asked or p.tenant_id, team=request.query_params.get("team"))
            d = decide(p, action, resource, cross_tenant=asked is not None and asked != p.tenant_id)
            if not d.allowed or not action.endswith(":read"):
                audit.record(p, action, f"{resource_type}/{resource.tenant_id}",
                             outcome="allowed" if d.allowed else "denied", reason=d.reason,
                             source_ip=request.client.host if request.client else None,
                             user_agent=request.headers.get("user-agent"))  # fmt: skip
            if not d.allowed:
                raise ForbiddenError(d.reason)
            return p

        return dep

    @app.exception_handler(AuthError)
    async def _401(_: Request, exc: AuthError) -> Response:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, 401,
                            headers={"WWW-Authenticate": exc.www_authenticate()})  # fmt: skip

    @app.exception_handler(ForbiddenError)
    async def _403(_: Request, exc: ForbiddenError) -> Response:
        return JSONResponse({"error": {"code": "forbidden", "message": exc.reason}}, 403)

    @app.exception_handler(Throttled)
    async def _429(_: Request, exc: Throttled) -> Response:
        return JSONResponse(
            {"error": {"code": "rate_limited"}}, 429, headers={"Retry-After": str(round(exc.retry_after))}
        )

    @app.post("/api/v1/budgets")
    def write_budget(p: Annotated[Principal, Depends(authorize("budgets:write", "budget"))]) -> dict[str, Any]:
        return {"tenant": p.tenant_id}

    return app, keys, audit


def test_dependency_shape(tmp_path: Path) -> None:
    app, keys, audit = build(tmp_path)
    client = TestClient(app)
    editor = keys.create(tenant_id="acme", role="analytics_editor", team="ml").key
    viewer = keys.create(tenant_id="acme", role="analytics_viewer").key

    r = client.post("/api/v1/budgets")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="llm-analytics-hub"'
    r = client.post("/api/v1/budgets", headers={"Authorization": "Bearer lah_bogus"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]

    h = {"Authorization": f"Bearer {editor}"}
    assert client.post("/api/v1/budgets?team=ml", headers=h).json() == {"tenant": "acme"}
    r = client.post("/api/v1/budgets?team=search", headers=h)
    assert r.status_code == 403 and "needs membership" in r.json()["error"]["message"]
    r = client.post("/api/v1/budgets", headers={**h, "X-Scope-OrgID": "globex"})
    assert r.status_code == 403 and "cross-tenant" in r.json()["error"]["message"]
    r = client.post("/api/v1/budgets", headers=h)  # 4th call of this key: burst of 3 spent
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    r = client.post("/api/v1/budgets", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403 and "lacks permission budgets:write" in r.json()["error"]["message"]

    assert verify(audit.path).ok
    outcomes = [(rec["outcome"], rec["action"]) for rec in iter_records(audit.path)]
    assert outcomes == [("allowed", "budgets:write"), ("denied", "budgets:write"), ("denied", "budgets:write"),
                        ("denied", "budgets:write")]  # fmt: skip
