"""Times in API answers are ISO-8601 UTC strings (``hubcore.times.iso_s``) that read back to the stored instant:
API keys (create, list, revoke, with an expiry), dead letters, the compliance report's hours; ``hub keys list
--json`` prints the same strings as ``GET /api/v1/keys``; times in parameters read ISO and epoch alike."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.routers import correlations, dlq, keys
from api.security import guard
from api.state import SecurityContext
from hub.keys_cli import main as keys_main
from hubcore.dlq import DeadLetterQueue
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig

ISO_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$"


def seconds(text: Any) -> float:
    """An answer's time back to epoch seconds; it must be an ISO-8601 UTC string ending in Z."""
    assert isinstance(text, str) and re.match(ISO_RE, text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _keys_app(tmp_path: Path) -> tuple[TestClient, ApiKeyStore, dict[str, str]]:
    store = ApiKeyStore(tmp_path)
    security = SecurityContext(Authenticator(AuthConfig(enabled=True), store, None), enabled=True, key_store=store)
    app = FastAPI(dependencies=[Depends(guard)])
    app.state.hub = SimpleNamespace(security=security, default_tenant="default")
    install_error_handlers(app)
    app.include_router(keys.router)
    admin = {"Authorization": f"Bearer {store.create(tenant_id='acme', role='tenant_admin').key}"}
    return TestClient(app), store, admin


def test_key_times_are_iso_and_read_back_to_the_stored_instant(tmp_path: Path) -> None:
    client, store, admin = _keys_app(tmp_path)
    made = client.post("/api/v1/keys", json={"role": "ingest", "expires_in_seconds": 3600.5}, headers=admin)
    assert made.status_code == 201, made.text
    body = made.json()
    info = store.get(body["key_id"])
    assert info is not None and info.expires_at is not None
    assert seconds(body["created_at"]) == pytest.approx(info.created_at, abs=1e-6)
    assert seconds(body["expires_at"]) == pytest.approx(info.expires_at, abs=1e-6)
    assert body["revoked_at"] is None

    listed = {k["key_id"]: k for k in client.get("/api/v1/keys", headers=admin).json()["keys"]}
    row = listed[body["key_id"]]
    assert (row["created_at"], row["expires_at"], row["revoked_at"]) == (body["created_at"], body["expires_at"], None)

    assert client.delete(f"/api/v1/keys/{body['key_id']}", headers=admin).json() == {
        "key_id": body["key_id"], "revoked": True}  # fmt: skip
    revoked = store.get(body["key_id"])
    assert revoked is not None and revoked.revoked_at is not None
    row = {k["key_id"]: k for k in client.get("/api/v1/keys", headers=admin).json()["keys"]}[body["key_id"]]
    assert seconds(row["revoked_at"]) == pytest.approx(revoked.revoked_at, abs=1e-6)
    assert row["created_at"] == body["created_at"] and row["expires_at"] == body["expires_at"]
    # a key without expiry: null, not a string
    admin_row = next(k for k in listed.values() if k["role"] == "tenant_admin")
    assert admin_row["expires_at"] is None and isinstance(admin_row["created_at"], str)


def test_keys_cli_json_prints_the_api_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, _, admin = _keys_app(tmp_path)
    made = client.post("/api/v1/keys", json={"role": "ingest", "expires_in_seconds": 86400}, headers=admin).json()
    assert keys_main(["list", "--data-dir", str(tmp_path), "--tenant", "acme", "--json"]) == 0
    rows = {r["key_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    row = rows[made["key_id"]]
    assert (row["created"], row["expires"]) == (made["created_at"], made["expires_at"])


def _dlq_app(tmp_path: Path) -> tuple[TestClient, DeadLetterQueue]:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    app = FastAPI()
    app.state.hub = SimpleNamespace(security=SecurityContext.open("default"), default_tenant="default", dlq=queue)
    install_error_handlers(app)
    app.include_router(dlq.router)
    return TestClient(app), queue


def test_dead_letter_received_at_is_iso_and_reads_back(tmp_path: Path) -> None:
    client, queue = _dlq_app(tmp_path)
    queue.put(tenant_id="t1", receiver="rest", reason="bad payload", raw=b'{"x": 1}', index=0)
    queue.put(tenant_id="t1", receiver="rest", reason="bad schema", raw="{}", index=3)
    stored = {e["id"]: e["received_at"] for e in queue.list(tenant_id="t1")[0]}
    answer = client.get("/api/v1/dlq", headers={"X-Scope-OrgID": "t1"})
    assert answer.status_code == 200, answer.text
    entries = answer.json()["entries"]
    assert len(entries) == 2 and answer.json()["total"] == 2
    for e in entries:
        assert seconds(e["received_at"]) == pytest.approx(stored[e["id"]], abs=1e-6)
    # the queue's own file still holds epoch seconds (replay and the size bound read it)
    assert all(isinstance(v, float) for v in stored.values())


class _FakeStore:
    """What ``compliance_report`` reads: one row per (policy, hour µs); records the range it was asked for."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.params: list[Any] = []

    def read(self, sql: str, params: list[Any]) -> Any:
        self.params.append(params)
        return SimpleNamespace(fetchall=lambda: self.rows)


HOUR_US = 1_795_770_000_000_000  # 2026-11-27T09:00:00Z


def _compliance_app(rows: list[tuple[Any, ...]]) -> tuple[TestClient, _FakeStore]:
    store = _FakeStore(rows)
    app = FastAPI()
    app.state.hub = SimpleNamespace(security=SecurityContext.open("default"), default_tenant="default", store=store)
    install_error_handlers(app)
    app.include_router(correlations.router)
    return TestClient(app), store


def test_compliance_report_hours_are_iso_and_start_end_read_iso_or_epoch() -> None:
    client, store = _compliance_app([("pii", HOUR_US, 3, 2, 1, 0), ("pii", HOUR_US + 3_600_000_000, 1, 1, 0, 0)])
    iso = client.get("/api/v1/policy/compliance/report",
                     params={"start": "2026-11-27T08:30:00Z", "end": "2026-11-27T10:30:00.25Z"})  # fmt: skip
    assert iso.status_code == 200, iso.text
    report = iso.json()
    assert [h["hour"] for h in report["hourly"]] == ["2026-11-27T09:00:00Z", "2026-11-27T10:00:00Z"]
    assert seconds(report["hourly"][0]["hour"]) * 1e6 == HOUR_US
    assert (report["start"], report["end"]) == ("2026-11-27T08:30:00Z", "2026-11-27T10:30:00.250000Z")
    # the same range as epoch seconds reads the same instants and answers the same report
    epoch = client.get("/api/v1/policy/compliance/report", params={"start": "1795768200", "end": "1795775400.25"})
    assert epoch.json() == report and store.params[0] == store.params[1]
    bad = client.get("/api/v1/policy/compliance/report", params={"start": "09:00 yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_time"
