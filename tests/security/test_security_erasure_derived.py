"""Erasure through a real hub covers what the hub derived and cached: correlations, incidents and their
root-cause hypotheses, and cached query results (found by probing the query API, 27 Nov 2026)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from tests.correlation.test_api import _incident_events, _post
from tests.helpers.hub import running_hub


def test_erasures_reach_derived_tables_and_the_query_cache(tmp_path: Path) -> None:
    now = time.time()
    events, _roots = _incident_events(now)
    a, b = {"X-Scope-OrgID": "tenant-a"}, {"X-Scope-OrgID": "tenant-b"}
    window = {"start": str(now - 300), "end": str(now + 60)}
    query = {"time_range": {"start": now - 300, "end": now + 60}}
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub, httpx.Client(base_url=hub.api, timeout=60) as c:
        _post(c, events, "tenant-a")
        _post(c, events[:50], "tenant-b")
        hub.flush()
        assert c.post("/api/v1/correlations/analyze", params=window, headers=a).status_code == 200
        corrs = c.get("/api/v1/correlations", params=window, headers=a).json()["correlations"]
        incidents = c.get("/api/v1/incidents", headers=a).json()["incidents"]
        assert corrs and incidents
        first = c.post("/api/v1/query", json=query, headers=a).json()
        assert first["data"][0]["count"] == len(events)
        assert c.post("/api/v1/query", json=query, headers=a).json()["metadata"]["cached"] is True

        # a user named by a root-cause hypothesis ("... user_id=user-x-12); ..."): the incidents naming it go
        hyps = [h for i in incidents for h in c.get(f"/api/v1/incidents/{i['id']}/rca", headers=a).json()["hypotheses"]]
        named = next(m.group(1) for h in hyps if (m := re.search(r"user_id=([\w.@-]+)", h["cause"])))
        r = c.delete(f"/api/v1/tenants/tenant-a/users/{named}/data")
        assert r.status_code == 200, r.text
        assert r.json()["deleted"]["incidents"] >= 1 and r.json()["deleted"]["events"] >= 1
        left = json.dumps(c.get("/api/v1/correlations", params=window, headers=a).json())
        left += json.dumps(c.get("/api/v1/incidents", headers=a).json())
        assert named not in left
        after_user = c.post("/api/v1/query", json=query, headers=a).json()
        assert after_user["metadata"]["cached"] is False and after_user["data"][0]["count"] < len(events)

        r = c.delete("/api/v1/tenants/tenant-a/data")
        assert r.status_code == 200 and r.json()["deleted"]["events"] > 0
        assert c.get("/api/v1/correlations", params=window, headers=a).json()["correlations"] == []
        assert c.get("/api/v1/incidents", headers=a).json()["incidents"] == []
        for inc in incidents:
            assert c.get(f"/api/v1/incidents/{inc['id']}/rca", headers=a).status_code == 404
        gone = c.post("/api/v1/query", json=query, headers=a).json()
        assert gone["data"] == [] or gone["data"][0]["count"] == 0  # before: the cached count, for 5 minutes
        # the streaming engine forgot the tenant: its next flush writes nothing back
        engine = hub.service.correlation
        if engine is not None:
            engine.flush_results()
        assert c.get("/api/v1/incidents", headers=a).json()["incidents"] == []
        # other tenants keep theirs
        assert c.post("/api/v1/query", json=query, headers=b).json()["data"][0]["count"] == 50
