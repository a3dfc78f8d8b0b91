"""``POST /api/v1/keys`` takes the CLI's and the query body's names too (``tenant``, ``expires_in`` as a
duration such as ``"90m"``) beside ``tenant_id`` and ``expires_in_seconds``; a body error is a 422 whose
``field`` names the culprit and whose message lists the fields taken (an unknown ``{"tenant": ...}`` had
been "body: Object contains unknown field `tenant`", with no field and no list)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.routers import keys
from api.security import guard
from api.state import SecurityContext
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, ApiKeyStore, dict[str, str], dict[str, str]]:
    store = ApiKeyStore(tmp_path)
    security = SecurityContext(Authenticator(AuthConfig(enabled=True), store, None), enabled=True, key_store=store)
    application = FastAPI(dependencies=[Depends(guard)])
    application.state.hub = SimpleNamespace(security=security, default_tenant="default")
    install_error_handlers(application)
    application.include_router(keys.router)
    admin = {"Authorization": f"Bearer {store.create(tenant_id='acme', role='tenant_admin').key}"}
    platform = {"Authorization": f"Bearer {store.create(tenant_id='ops', role='platform_admin').key}"}
    return TestClient(application), store, admin, platform


def test_tenant_and_a_duration_are_taken_as_the_cli_names_them(app: Any) -> None:
    client, store, admin, platform = app
    made = client.post("/api/v1/keys", json={"role": "ingest", "tenant": "globex", "expires_in": "90m"},
                       headers=platform)  # fmt: skip
    assert made.status_code == 201, made.text
    info = store.get(made.json()["key_id"])
    assert info is not None and info.tenant_id == "globex" and info.expires_at is not None
    assert info.expires_at - info.created_at == pytest.approx(5400, abs=1e-3)
    # the old names still work; a number in expires_in is seconds
    old = client.post("/api/v1/keys", json={"role": "ingest", "tenant_id": "acme", "expires_in_seconds": 60},
                      headers=admin)  # fmt: skip
    assert old.status_code == 201, old.text
    seconds = client.post("/api/v1/keys", json={"role": "ingest", "expires_in": 120}, headers=admin)
    info = store.get(seconds.json()["key_id"])
    assert seconds.status_code == 201 and info is not None and info.expires_at is not None
    assert info.expires_at - info.created_at == pytest.approx(120, abs=1e-3)
    # tenant is checked as tenant_id is: a tenant admin cannot name another tenant
    assert client.post("/api/v1/keys", json={"role": "ingest", "tenant": "globex"}, headers=admin).status_code == 403


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"role": "ingest", "tenantid": "acme"}, "tenantid", ["unknown field (did you mean tenant_id?)", "tenant_id (or tenant)"]),
        ({"role": "ingest", "expires": "1d"}, "expires", ["unknown field", "expires_in_seconds (or expires_in"]),
        ({"role": "ingest", "owner": "me"}, "owner", ["unknown field;", "the body takes role,"]),
        ({"tenant": "acme"}, "role", ["role: missing", "the body takes"]),
        ({"role": 7}, "role", ["role: Expected `str`, got `int`"]),
        ({"role": "ingest", "tenant": "acme", "tenant_id": "acme"}, "tenant", ["give one of them"]),
        ({"role": "ingest", "expires_in": "1d", "expires_in_seconds": 60}, "expires_in", ["give one of them"]),
        ({"role": "ingest", "expires_in": "90 minutes"}, "expires_in", ["expires_in: must be a duration such as"]),
        ({"role": "ingest", "expires_in": "0s"}, "expires_in", ["expires_in:"]),
        ({"role": "ingest", "expires_in": "11y"}, "expires_in", ["between 1 and 315,360,000 seconds"]),
        ({"role": "ingest", "expires_in": True}, "expires_in", ["expires_in:"]),
        ({"role": "ingest", "expires_in_seconds": 0}, "expires_in_seconds", ["between 1 and 315,360,000 seconds"]),
    ],
)  # fmt: skip
def test_body_errors_name_the_field_and_what_is_taken(
    app: Any, body: dict[str, Any], field: str, words: list[str]
) -> None:
    client, store, admin, _ = app
    before = len(store.list(tenant_id="acme"))
    r = client.post("/api/v1/keys", json=body, headers=admin)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field, error
    for w in words:
        assert w in error["message"], error
    assert len(store.list(tenant_id="acme")) == before  # no key made


def test_an_unreadable_body_is_a_422_saying_what_the_body_is(app: Any) -> None:
    client, _, admin, _ = app
    r = client.post("/api/v1/keys", content=b"{nope", headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 422 and "the body is a JSON object of role" in r.json()["error"]["message"], r.text


def test_a_refusal_of_the_key_store_names_its_field(app: Any) -> None:
    # an unknown role had been a 422 with no field, unlike the body's other errors
    client, _, admin, _ = app
    r = client.post("/api/v1/keys", json={"role": "root"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["field"] == "role", r.text
    assert r.json()["error"]["message"].startswith("unknown role 'root' (known: ")
    r = client.post("/api/v1/keys", json={"role": "ingest", "team": ""}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["field"] == "team", r.text
