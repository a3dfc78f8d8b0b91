"""Per-request work of the API routes: FastAPI runs a plain ``def`` dependency in the thread pool, a round trip
to a worker thread on every request. Only the guard, which may block (key store, JWKS, audit appends), is one;
the state dependency is ``async def``. The guard answers the same wherever it runs: auth, tenancy, quotas,
the audit record, the error shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi.dependencies.utils
import httpx
import pytest

from hubcore.security.audit import tail
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub


@pytest.fixture
def threadpool_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the dependencies FastAPI sends to the thread pool, in order."""
    calls: list[str] = []
    real = fastapi.dependencies.utils.run_in_threadpool

    async def recording(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", recording)
    return calls


def _error(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) >= {"error"} and isinstance(body["error"]["message"], str), body
    return str(body["error"]["code"])


def test_only_the_guard_leaves_the_event_loop_and_it_answers_as_before(
    tmp_path: Path, threadpool_calls: list[str]
) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store, audit = hub.service.security.key_store, hub.service.security.audit
        assert store is not None and audit is not None
        writer = {"Authorization": f"Bearer {store.create(tenant_id='ro-a', role='ingest').key}"}
        viewer = {"Authorization": f"Bearer {store.create(tenant_id='ro-a', role='analytics_viewer').key}"}
        with httpx.Client(base_url=hub.api, timeout=30) as client:
            r = client.post("/api/v1/events", json=[make_event("cost"), make_event("telemetry")], headers=writer)
            assert r.status_code == 202, r.text
            assert r.json() == {"accepted": 2, "rejected": [], "duplicates": 0}
            assert threadpool_calls == ["guard"]  # was get_state_conn, guard, get_state: three round trips

            threadpool_calls.clear()
            listed = client.get("/api/v1/events", headers=viewer)
            assert listed.status_code == 200, listed.text
            assert threadpool_calls == ["guard"]

            # refusals: the guard's, in the API's error shape
            threadpool_calls.clear()
            r = client.post("/api/v1/events", json=[make_event("cost")])
            assert (r.status_code, _error(r)) == (401, "missing_credentials")
            assert r.headers["www-authenticate"].startswith("Bearer realm=")
            r = client.post("/api/v1/events", json=[make_event("cost")], headers={"Authorization": "Bearer lah_0_x"})
            assert (r.status_code, _error(r)) == (401, "invalid_api_key")
            r = client.post("/api/v1/events", json=[make_event("cost")], headers=viewer)
            assert (r.status_code, _error(r)) == (403, "forbidden")
            assert "events:write" in r.json()["error"]["message"]
            r = client.post("/api/v1/events", json=[make_event("cost")], headers={**writer, "X-Scope-OrgID": "ro-b"})
            assert (r.status_code, _error(r)) == (403, "forbidden")
            r = client.post("/api/v1/events", json=[make_event("cost")], headers={**writer, "X-Scope-OrgID": "no t"})
            assert (r.status_code, _error(r)) == (400, "bad_tenant")
            r = client.get("/api/v1/events", headers=writer)  # an ingest key does not read
            assert (r.status_code, _error(r)) == (403, "forbidden")
            r = client.post("/api/v1/events?tennant=ro-a", json=[make_event("cost")], headers=writer)
            assert (r.status_code, _error(r)) == (422, "unknown_parameter")
            assert set(threadpool_calls) == {"guard"} and len(threadpool_calls) == 7

        assert hub.sql("SELECT tenant_id, count(*) FROM events GROUP BY 1") == [("ro-a", 2)]
        records = tail(audit.path, limit=100)
        writes = [(r["action"], r["outcome"], r["target_tenant_id"]) for r in records if r["action"] == "events:write"]
        # the accepted batch (and the refused query-parameter one: decided before the route) are recorded
        # as allowed; each refusal of a known principal as denied, the cross-tenant one naming ro-b
        assert writes.count(("events:write", "allowed", "ro-a")) == 2, writes
        assert ("events:write", "denied", "ro-b") in writes
        assert ("events:write", "denied", "ro-a") in writes  # the viewer's


def test_the_guards_rate_limit_still_answers_429(tmp_path: Path, threadpool_calls: list[str]) -> None:
    quotas = {"enabled": True, "api_calls_per_second": 0.001, "api_calls_burst": 1,
              "key_calls_per_second": 0.001, "key_calls_burst": 1}  # fmt: skip
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__quotas=quotas) as hub:
        with httpx.Client(base_url=hub.api, timeout=30) as client:
            assert client.post("/api/v1/events", json=[make_event("cost")]).status_code == 202
            r = client.post("/api/v1/events", json=[make_event("cost")])
            assert (r.status_code, _error(r)) == (429, "rate_limited")
            assert int(r.headers["retry-after"]) >= 1
        assert threadpool_calls == ["guard", "guard"]
        assert hub.sql("SELECT count(*) FROM events") == [(1,)]
