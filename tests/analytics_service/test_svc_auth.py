"""Budgets are team resources: budgets:write on a team's budget needs that team (or teams:all)."""

from __future__ import annotations

from pathlib import Path

import httpx

from analytics.service import AnalyticsService
from tests.analytics_service.svc_data import svc_config
from tests.helpers.hub import running_hub


def test_team_budgets_need_the_callers_team(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        svc = AnalyticsService(svc_config(), hub.service.store, None)
        hub.service.app.state.analytics = svc
        keys = hub.service.security.key_store
        assert keys is not None

        def auth(role: str, team: str | None = None, tenant: str = "acme") -> dict[str, str]:
            return {"Authorization": f"Bearer {keys.create(tenant_id=tenant, role=role, team=team).key}"}

        search, ads = auth("analytics_editor", "search"), auth("analytics_editor", "ads")
        viewer, admin = auth("analytics_viewer", "search"), auth("tenant_admin")
        other_tenant = auth("tenant_admin", tenant="globex")
        url = f"{hub.api}/api/v1/budgets"
        body = {"name": "search monthly", "amount": 500, "period": "monthly", "team": "search"}

        assert httpx.post(url, json=body).status_code == 401
        r = httpx.post(url, json=body, headers=viewer)
        assert r.status_code == 403 and "budgets:write" in r.json()["error"]["message"]
        r = httpx.post(url, json=body, headers=ads)
        assert r.status_code == 403 and "team 'search'" in r.json()["error"]["message"]
        r = httpx.post(url, json=body, headers=search, timeout=30)
        assert r.status_code == 201, r.text
        bid = r.json()["budget"]["id"]
        assert r.json()["budget"]["tenant_id"] == "acme" and r.json()["spent_to_date"] == 0

        assert httpx.put(f"{url}/{bid}", json={**body, "amount": 600}, headers=ads).status_code == 403
        assert httpx.put(f"{url}/{bid}", json={**body, "team": "ads"}, headers=ads).status_code == 403
        assert httpx.delete(f"{url}/{bid}", headers=ads).status_code == 403
        assert httpx.get(f"{url}/{bid}", headers=viewer, timeout=30).status_code == 200
        assert [b["budget"]["id"] for b in httpx.get(url, headers=ads, timeout=30).json()["budgets"]] == [bid]
        assert httpx.get(url, headers=other_tenant, timeout=30).json()["budgets"] == []
        assert httpx.get(f"{url}/{bid}", headers=other_tenant).status_code == 404
        r = httpx.get(url, headers={**other_tenant, "X-Scope-OrgID": "acme"})
        assert r.status_code == 403  # no cross-tenant reads for a tenant admin
        assert httpx.put(f"{url}/{bid}", json={**body, "amount": 700}, headers=admin, timeout=30).status_code == 200
        assert httpx.delete(f"{url}/{bid}", headers=search).status_code == 200
        # anomalies and forecasts: readable by a viewer, feedback needs anomalies:feedback
        assert httpx.get(f"{hub.api}/api/v1/anomalies", headers=viewer).status_code == 200
        r = httpx.post(f"{hub.api}/api/v1/anomalies/x/feedback", json={"label": "false_positive"}, headers=viewer)
        assert r.status_code == 403
        r = httpx.post(f"{hub.api}/api/v1/whatif", json={}, headers=viewer)
        assert r.status_code == 403
        svc.shutdown()
