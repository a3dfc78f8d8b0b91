"""The alerts API on a real hub with auth on: list/ack/resolve, rules (422s), the Alertmanager webhook,
and tenant isolation (tenant B can neither see nor acknowledge tenant A's alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.security import ROUTE_PERMISSIONS
from processors.alerting import AlertingConfig, AlertingService
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("alerts"), grpc=False, otlp_http=False,
                     service__auth__enabled=True) as h:  # fmt: skip
        svc = AlertingService(AlertingConfig(enabled=False), h.service.store, None, default_tenant="default")
        svc.start()
        h.service.app.state.alerting = svc
        yield h
        svc.shutdown()


@pytest.fixture(scope="module")
def keys(hub: RunningHub) -> dict[str, dict[str, str]]:
    store = hub.service.security.key_store
    assert store is not None

    def key(tenant: str, role: str, team: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role, team=team).key}"}

    # the prompt-injection rule labels its alerts team=security: its editor acts on them, team ml's cannot
    return {"a_ingest": key("tenant-a", "ingest"), "a_viewer": key("tenant-a", "analytics_viewer"),
            "a_editor": key("tenant-a", "analytics_editor", "security"),
            "a_editor_ml": key("tenant-a", "analytics_editor", "ml"), "b_admin": key("tenant-b", "tenant_admin"),
            "platform": key("ops", "platform_admin")}  # fmt: skip


def subject(headers: dict[str, str]) -> str:
    """The principal subject of a key header (``apikey:<key id>``)."""
    return "apikey:" + headers["Authorization"].removeprefix("Bearer lah_").split("_")[0]


def svc(hub: RunningHub) -> AlertingService:
    s: AlertingService = hub.service.app.state.alerting
    return s


def _injections(n: int, ip: str) -> list[dict[str, Any]]:
    return [make_event("security", payload={"threat_type": "prompt_injection", "source_ip": ip}) for _ in range(n)]


@pytest.fixture(scope="module")
def a_alert(hub: RunningHub, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    r = httpx.post(f"{hub.api}/api/v1/events", json=_injections(12, "203.0.113.5"), headers=keys["a_ingest"])
    assert r.status_code == 202, r.text
    hub.flush()
    svc(hub).evaluate_once()
    r = httpx.get(f"{hub.api}/api/v1/alerts", headers=keys["a_viewer"])
    assert r.status_code == 200
    [alert] = r.json()["alerts"]
    return dict(alert)


def test_routes_have_alert_permissions() -> None:
    mine = {k: v for k, v in ROUTE_PERMISSIONS.items() if k[1].startswith("/api/v1/alerts")}
    assert len(mine) == 9 and {p for p, _ in mine.values()} == {"alerts:read", "alerts:ack", "alerts:manage"}


def test_tenant_isolation(hub: RunningHub, keys: dict[str, dict[str, str]], a_alert: dict[str, Any]) -> None:
    assert a_alert["alertname"] == "LLMPromptInjectionBurstFromIP" and a_alert["tenant_id"] == "tenant-a"
    api = hub.api
    assert httpx.get(f"{api}/api/v1/alerts", headers=keys["b_admin"]).json() == {"alerts": [], "inhibited_count": 0}
    assert httpx.get(f"{api}/api/v1/alerts/{a_alert['id']}", headers=keys["b_admin"]).status_code == 404
    r = httpx.post(f"{api}/api/v1/alerts/{a_alert['id']}/acknowledge", headers=keys["b_admin"], json={})
    assert r.status_code == 404
    r = httpx.post(f"{api}/api/v1/alerts/{a_alert['id']}/resolve?tenant=tenant-a", headers=keys["b_admin"])
    assert r.status_code == 403
    r = httpx.get(f"{api}/api/v1/alerts?tenant=tenant-a", headers=keys["b_admin"])
    assert r.status_code == 403
    assert httpx.get(f"{api}/api/v1/alerts", headers={}).status_code == 401
    # a platform admin may look across tenants when it asks
    r = httpx.get(f"{api}/api/v1/alerts?tenant=tenant-a", headers=keys["platform"])
    assert [a["id"] for a in r.json()["alerts"]] == [a_alert["id"]]
    assert svc(hub).get_alert("tenant-a", a_alert["id"])["state"] == "firing"


def test_acknowledge_then_resolve(hub: RunningHub, keys: dict[str, dict[str, str]], a_alert: dict[str, Any]) -> None:
    api, aid = hub.api, a_alert["id"]
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/acknowledge", headers=keys["a_viewer"], json={})
    assert r.status_code == 403  # a viewer lacks alerts:ack
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/acknowledge", headers=keys["a_editor_ml"], json={})
    assert r.status_code == 403 and "team 'security'" in r.text  # the alert's labels.team, rule 4
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/resolve", headers=keys["a_editor_ml"])
    assert r.status_code == 403
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/acknowledge", headers=keys["a_editor"],
                   json={"by": "alice", "comment": "blocking the IP"})  # fmt: skip
    assert r.status_code == 200, r.text
    alert = r.json()["alert"]
    # with a credential, who acted is the credential: the body's "by" cannot name someone else
    assert alert["state"] == "acknowledged" and alert["acknowledged_by"] == subject(keys["a_editor"])
    assert alert["ack_comment"] == "blocking the IP" and alert["acknowledged_at"].endswith("Z")
    r = httpx.get(f"{api}/api/v1/alerts?state=acknowledged&severity=critical", headers=keys["a_viewer"])
    assert [a["id"] for a in r.json()["alerts"]] == [aid]
    assert httpx.get(f"{api}/api/v1/alerts?state=firing", headers=keys["a_viewer"]).json()["alerts"] == []
    bad = httpx.get(f"{api}/api/v1/alerts?state=bogus", headers=keys["a_viewer"])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"
    assert bad.json()["error"]["code"] == "invalid_parameter"  # (it had been bad_state)
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/acknowledge", headers=keys["a_editor"], json={"by": 3})
    assert r.status_code == 422
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/resolve", headers=keys["a_editor"], json={"by": "mallory"})
    assert r.status_code == 200 and r.json()["alert"]["state"] == "resolved"
    assert r.json()["alert"]["resolved_by"] == subject(keys["a_editor"])
    assert r.json()["alert"]["ends_at"] is not None
    r = httpx.post(f"{api}/api/v1/alerts/{aid}/acknowledge", headers=keys["a_editor"], json={})
    assert r.status_code == 409
    svc(hub).evaluate_once()  # the burst still shows, but repeat_suppress keeps it from re-opening
    assert httpx.get(f"{api}/api/v1/alerts?state=firing", headers=keys["a_viewer"]).json()["alerts"] == []


BAD_RULES: list[tuple[dict[str, Any], str]] = [
    ({"condition": {}}, "name"),
    ({"name": "has space", "condition": {"type": "anomaly"}}, "name"),
    ({"name": "X", "condition": {"type": "sql"}}, "condition.type"),
    ({"name": "X", "condition": {"type": "threshold", "aggregation": "p95", "window": "5 minutes", "value": 1}},
     "condition.window"),
    ({"name": "X", "condition": {"type": "threshold", "aggregation": "p95", "window": "5m", "value": "high"}},
     "condition.value"),
    ({"name": "X", "condition": {"type": "threshold", "aggregation": "p95", "window": "5m", "value": 1,
                                 "group_by": ["model", "colour"]}}, "condition.group_by.1"),
    ({"name": "X", "condition": {"type": "threshold", "aggregation": "ratio", "window": "5m", "value": 1}},
     "condition.match"),
    ({"name": "X", "condition": {"type": "threshold", "aggregation": "count", "window": "5m", "value": 1,
                                 "filters": {"model'; DROP TABLE events; --": "x"}}}, "condition.filters.model'; DROP TABLE events; --"),
    ({"name": "X", "condition": {"type": "composite", "op": "xor", "conditions": []}}, "condition.op"),
    ({"name": "X", "condition": {"type": "composite", "op": "and", "conditions": [{"type": "anomaly"}]}},
     "condition.conditions"),
    ({"name": "X", "condition": {"type": "anomaly", "aggregation": "p95"}}, "condition.aggregation"),
    ({"name": "X", "condition": {"type": "anomaly"}, "severity": "page-me"}, "severity"),
    ({"name": "X", "condition": {"type": "anomaly"}, "for": -5}, "for"),
    ({"name": "X", "condition": {"type": "anomaly"}, "labels": {"tenant_id": "tenant-b"}}, "labels.tenant_id"),
    ({"name": "X", "condition": {"type": "anomaly"}, "annotations": {"summary": 1}}, "annotations.summary"),
    ({"name": "X", "condition": {"type": "anomaly"}, "query": "SELECT 1"}, "query"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "field"), BAD_RULES)
def test_bad_rules_are_422_naming_the_key(
    hub: RunningHub, keys: dict[str, dict[str, str]], rule: dict[str, Any], field: str
) -> None:
    r = httpx.post(f"{hub.api}/api/v1/alerts/rules", json=rule, headers=keys["a_editor"])
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_rule" and err["field"] == field and err["message"].startswith(field)


def test_rules_crud_is_tenant_scoped(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    api = hub.api
    r = httpx.get(f"{api}/api/v1/alerts/rules", headers=keys["a_viewer"])
    builtin = {x["name"] for x in r.json()["rules"] if x["builtin"]}
    assert {"LLMErrorRateHigh", "LLMLatencyP95High", "LLMPromptInjectionBurstFromIP"} <= builtin
    rule = {"name": "CostlyCalls", "for": "1m", "severity": "info", "labels": {"team": "finops"},
            "condition": {"type": "threshold", "event_type": "cost", "aggregation": "sum", "window": "1h",
                          "op": ">", "value": 100}}  # fmt: skip
    assert httpx.post(f"{api}/api/v1/alerts/rules", json=rule, headers=keys["a_viewer"]).status_code == 403
    # a rule for team finops is team finops' (or a tenant admin's) to create: rule 4 on labels.team
    r = httpx.post(f"{api}/api/v1/alerts/rules", json=rule, headers=keys["a_editor"])
    assert r.status_code == 403 and "team 'finops'" in r.text
    rule["labels"] = {"team": "security"}
    r = httpx.post(f"{api}/api/v1/alerts/rules", json=rule, headers=keys["a_editor"])
    assert r.status_code == 201, r.text
    created = r.json()["rule"]
    assert created["tenant_id"] == "tenant-a" and created["name"] == "CostlyCalls" and not created["builtin"]
    names_b = [x["name"] for x in httpx.get(f"{api}/api/v1/alerts/rules", headers=keys["b_admin"]).json()["rules"]]
    assert "CostlyCalls" not in names_b
    # one rule by id (it had been a 405): the caller's own or a built-in one; another tenant's is a 404
    one = f"{api}/api/v1/alerts/rules/{created['id']}"
    r = httpx.get(one, headers=keys["a_viewer"])
    assert r.status_code == 200 and r.json()["rule"]["id"] == created["id"], r.text
    assert r.json()["rule"]["name"] == "CostlyCalls" and "health" in r.json()["rule"]
    r = httpx.get(f"{api}/api/v1/alerts/rules/builtin-LLMErrorRateHigh", headers=keys["b_admin"])
    assert r.status_code == 200 and r.json()["rule"]["builtin"], r.text
    for who in ("b_admin", "a_viewer"):
        url = one if who == "b_admin" else f"{api}/api/v1/alerts/rules/r-nope"
        r = httpx.get(url, headers=keys[who])
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (who, r.text)
    listing = httpx.get(f"{api}/api/v1/alerts/rules", headers=keys["a_ingest"]).status_code
    assert httpx.get(one, headers=keys["a_ingest"]).status_code == listing  # the permission of the listing
    assert httpx.get(one, params={"colour": "x"}, headers=keys["a_viewer"]).json()["error"]["code"] == (
        "unknown_parameter"
    )
    assert httpx.delete(f"{api}/api/v1/alerts/rules/{created['id']}", headers=keys["b_admin"]).status_code == 404
    r = httpx.delete(f"{api}/api/v1/alerts/rules/builtin-LLMErrorRateHigh", headers=keys["a_editor"])
    assert r.status_code == 409
    # team ml may not delete team security's rule
    assert httpx.delete(f"{api}/api/v1/alerts/rules/{created['id']}", headers=keys["a_editor_ml"]).status_code == 403
    assert httpx.delete(f"{api}/api/v1/alerts/rules/{created['id']}", headers=keys["a_editor"]).status_code == 204
    assert httpx.delete(f"{api}/api/v1/alerts/rules/{created['id']}", headers=keys["a_editor"]).status_code == 404


def _am_alert(status: str, tenant: str, name: str = "LLMErrorRateHigh", team: str = "security",
              **extra: Any) -> dict[str, Any]:  # fmt: skip
    # team security: a_editor's team (the webhook is team-scoped by each alert's labels.team, rule 4)
    return {"status": status, "labels": {"alertname": name, "severity": "critical", "team": team,
                                         "tenant_id": tenant, "gen_ai_request_model": "gpt-4o"},
            "annotations": {"summary": "error rate 12%"}, "startsAt": "2026-01-01T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://vmalert/x", "fingerprint": f"fp-{tenant}-{name}",
            **extra}  # fmt: skip


def test_alertmanager_webhook(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    url = f"{hub.api}/api/v1/alerts/alertmanager"
    body = {"version": "4", "status": "firing", "receiver": "hub-webhook", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "alerts": [_am_alert("firing", "tenant-a"), _am_alert("firing", "tenant-b"),
                       _am_alert("firing", "tenant-a", "Own", annotations={"hub_alert_id": "x"})]}  # fmt: skip
    assert httpx.post(url, json=body, headers=keys["a_viewer"]).status_code == 403  # needs alerts:manage
    r = httpx.post(url, json=body, headers=keys["a_editor"])
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and r.json()["skipped_forbidden"] == 1 and r.json()["skipped_own"] == 1
    r = httpx.get(f"{hub.api}/api/v1/alerts?state=firing", headers=keys["a_viewer"])
    [ext] = [a for a in r.json()["alerts"] if a["source"] == "alertmanager"]
    assert ext["alertname"] == "LLMErrorRateHigh" and ext["severity"] == "critical"
    assert ext["starts_at"] == "2026-01-01T10:00:00.123Z"
    assert httpx.post(url, json=body, headers=keys["a_editor"]).json()["updated"] == 1  # no duplicate
    resolved = {**body, "status": "resolved",
                "alerts": [_am_alert("resolved", "tenant-a", endsAt="2026-01-01T10:05:00Z")]}  # fmt: skip
    assert httpx.post(url, json=resolved, headers=keys["a_editor"]).json()["resolved"] == 1
    ext = svc(hub).get_alert("tenant-a", ext["id"])
    assert ext["state"] == "resolved" and ext["ends_at"] == "2026-01-01T10:05:00.000Z"
    assert httpx.get(f"{hub.api}/api/v1/alerts", headers=keys["b_admin"]).json() == {"alerts": [], "inhibited_count": 0}
    # a platform admin's webhook credential may record every tenant's alerts
    r = httpx.post(url, json={**body, "alerts": [_am_alert("firing", "tenant-b", "Other")]}, headers=keys["platform"])
    assert r.json()["created"] == 1
    for bad, field in (({**body, "version": "3"}, "version"), ({"version": "4"}, ""),
                       ({**body, "alerts": [{**_am_alert("firing", "tenant-a"), "status": "maybe"}]}, "alerts.0.status"),
                       ({**body, "alerts": [{**_am_alert("firing", "tenant-a"), "startsAt": "yesterday"}]},
                        "alerts.0.startsAt")):  # fmt: skip
        r = httpx.post(url, json=bad, headers=keys["a_editor"])
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    assert httpx.post(url, content=b"{not json", headers=keys["a_editor"]).status_code == 422


def test_inhibited_alerts_are_listed_on_request(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    """A warning inhibited by the critical of the same alert and labels: not in the default list (counted in
    ``inhibited_count``), listed with ``?inhibited=true`` or ``any``; released when the critical resolves."""
    url, platform = f"{hub.api}/api/v1/alerts", keys["platform"]

    def hook(status: str, severity: str, model: str) -> dict[str, Any]:
        a = _am_alert(
            status,
            "tenant-c",
            "LLMComplianceRateLow",
            fingerprint=f"c-{severity}-{model}",
            endsAt="2026-01-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        )
        a["labels"].update(severity=severity, gen_ai_request_model=model)
        return a

    body = {"version": "4", "status": "firing", "alerts": [hook("firing", "critical", "gpt-4o"),
                                                            hook("firing", "warning", "gpt-4o"),
                                                            hook("firing", "warning", "claude")]}  # fmt: skip
    assert httpx.post(f"{url}/alertmanager", json=body, headers=platform).json()["created"] == 3

    def listed(query: str = "") -> tuple[list[tuple[str, str]], int]:
        r = httpx.get(f"{url}?tenant=tenant-c{query}", headers=platform)
        assert r.status_code == 200, r.text
        alerts = r.json()["alerts"]
        return sorted((a["labels"]["gen_ai_request_model"], a["severity"]) for a in alerts), r.json()["inhibited_count"]

    assert listed() == ([("claude", "warning"), ("gpt-4o", "critical")], 1)
    assert listed("&inhibited=false&severity=warning") == ([("claude", "warning")], 1)
    assert listed("&inhibited=true") == ([("gpt-4o", "warning")], 1)
    assert listed("&inhibited=any")[0] == [("claude", "warning"), ("gpt-4o", "critical"), ("gpt-4o", "warning")]
    assert listed("&severity=critical") == ([("gpt-4o", "critical")], 0)
    r = httpx.get(f"{url}?tenant=tenant-c&inhibited=maybe", headers=platform)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameter"
    assert r.json()["error"]["field"] == "inhibited"
    [warn] = httpx.get(f"{url}?tenant=tenant-c&inhibited=true", headers=platform).json()["alerts"]
    one = httpx.get(f"{url}/{warn['id']}?tenant=tenant-c", headers=platform).json()["alert"]
    assert one["inhibited"] and one["inhibited_by"] == "c-critical-gpt-4o" and one["inhibited_by_id"]
    # the critical resolves: its warning is to act on again
    r = httpx.post(f"{url}/alertmanager", json={**body, "alerts": [hook("resolved", "critical", "gpt-4o")]},
                   headers=platform)  # fmt: skip
    assert r.json()["resolved"] == 1
    assert listed("&state=firing") == ([("claude", "warning"), ("gpt-4o", "warning")], 0)


def test_alertmanager_webhook_is_team_scoped(hub: RunningHub, keys: dict[str, dict[str, str]]) -> None:
    """alerts:manage is team-scoped (rule 4) on each webhook alert's labels.team, and on the team of the open
    alert it would update or resolve, not on ?team=: another team's alerts are ``skipped_forbidden``."""
    url = f"{hub.api}/api/v1/alerts/alertmanager"

    def post(headers: dict[str, str], *alerts: dict[str, Any], query: str = "") -> dict[str, int]:
        body = {"version": "4", "status": "firing", "receiver": "hub-webhook", "groupKey": "{}:{}", "alerts": alerts}
        r = httpx.post(url + query, json=body, headers=headers)
        assert r.status_code == 200, r.text
        counts: dict[str, int] = r.json()
        return counts

    ml, security = keys["a_editor_ml"], keys["a_editor"]
    # team ml may not record team security's alert, whatever ?team= it sends
    for q in ("", "?team=ml"):
        out = post(ml, _am_alert("firing", "tenant-a", "TeamScoped"), query=q)
        assert out["created"] == 0 and out["skipped_forbidden"] == 1, out
    assert post(security, _am_alert("firing", "tenant-a", "TeamScoped"))["created"] == 1
    [ext] = [a for a in svc(hub).list_alerts("tenant-a", state="firing") if a["alertname"] == "TeamScoped"]
    # nor resolve it, nor take it over by relabelling it as its own (the open alert's team counts too)
    for status in ("resolved", "firing"):
        out = post(ml, _am_alert(status, "tenant-a", "TeamScoped", team="ml", endsAt="2026-01-01T10:05:00Z"))
        assert out["skipped_forbidden"] == 1 and out["resolved"] == out["updated"] == 0, out
    ext = svc(hub).get_alert("tenant-a", ext["id"])
    assert ext["state"] == "firing" and ext["labels"]["team"] == "security"
    # its own team's alerts, and alerts naming no team, as before
    no_team = _am_alert("firing", "tenant-a", "NoTeam")
    del no_team["labels"]["team"]
    out = post(ml, _am_alert("firing", "tenant-a", "MlOwn", team="ml"), no_team)
    assert out["created"] == 2 and out["skipped_forbidden"] == 0, out
    # teams:all (a platform admin's credential) resolves any team's
    out = post(keys["platform"], *(_am_alert("resolved", "tenant-a", n, team=t, endsAt="2026-01-01T10:05:00Z")
                                   for n, t in (("TeamScoped", "security"), ("MlOwn", "ml"))))  # fmt: skip
    assert out["resolved"] == 2, out
    out = post(ml, {**no_team, "status": "resolved", "endsAt": "2026-01-01T10:05:00Z"})
    assert out["resolved"] == 1, out
