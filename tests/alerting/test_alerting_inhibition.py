"""Inhibition in the embedded alert engine, as Alertmanager's inhibit rule (critical → warning, labels equal):
a warning is inhibited while the critical of the same alertname, tenant and labels is open — marked
``inhibited_by``, left out of the default list, not sent to Alertmanager, not escalated — and released
(sent again) when that critical resolves while the warning still holds."""

from __future__ import annotations

import json
from typing import Any

from exporters.alertmanager import AlertmanagerExporter, AlertmanagerExporterConfig
from exporters.alertmanager.client import Alert
from hubcore.storage.embedded import EmbeddedStore
from processors.alerting import AlertingConfig, AlertingService
from processors.alerting.repository import _ADDED_COLUMNS, ALERT_COLUMNS
from tests.alerting.conftest import T0, FakeAlertmanager, add_events, latency


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def anomaly(store: EmbeddedStore, ts: float, score: float, tenant: str = "acme", **labels: str) -> None:
    """An ``anomaly_alert`` point (what the built-in LLMAnomalyDetected tiers read: > 0 warning, ≥ 4 critical)."""
    from analytics.service.derived import DerivedRepository, DerivedRow

    series = {"for": "error_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "gpt-4o", **labels}
    DerivedRepository(store).write([DerivedRow(tenant, ts, "anomaly_alert", score, series, "anomaly")])


def service(store: EmbeddedStore, am: FakeAlertmanager | None = None, clock: Clock | None = None,
            **cfg: Any) -> AlertingService:  # fmt: skip
    svc = AlertingService(AlertingConfig(enabled=False, **cfg), store, None, am, clock=clock or Clock(T0))
    svc.start()
    return svc


def key(alert: dict[str, Any] | Alert) -> tuple[str, str, str]:
    labels = alert.labels if isinstance(alert, Alert) else alert["labels"]
    return labels["for"], labels["gen_ai_request_model"], labels["severity"]


def by_key(alerts: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {key(a): a for a in alerts}
    assert len(out) == len(alerts), alerts
    return out


def test_a_critical_inhibits_only_the_warning_of_the_same_series(store: EmbeddedStore) -> None:
    anomaly(store, T0, 6.5)  # error_rate of gpt-4o: warning and critical
    anomaly(store, T0, 2.0, **{"for": "latency_p95"})  # another query of the same model: a warning only
    anomaly(store, T0, 2.0, gen_ai_request_model="claude")  # the same query, another model: a warning only
    anomaly(store, T0, 2.0, tenant="globex")  # the same labels in another tenant: a warning only
    am = FakeAlertmanager()
    svc = service(store, am)
    svc.evaluate_once(T0 + 30)
    alerts = by_key(svc.list_alerts("acme"))
    assert len(alerts) == 4
    crit, warn = alerts[("error_rate", "gpt-4o", "critical")], alerts[("error_rate", "gpt-4o", "warning")]
    assert warn["state"] == "firing" and warn["inhibited"] is True
    assert warn["inhibited_by"] == crit["fingerprint"] and warn["inhibited_by_id"] == crit["id"]
    assert warn["inhibited_at"] == warn["starts_at"] and warn["released_at"] is None
    assert not crit["inhibited"] and crit["inhibited_by"] is None
    # a critical of another series (query, model) or tenant inhibits nothing; a warning without one is active
    for other in (("latency_p95", "gpt-4o", "warning"), ("error_rate", "claude", "warning")):
        assert not alerts[other]["inhibited"] and alerts[other]["inhibited_by"] is None, other
    [globex] = svc.list_alerts("globex")
    assert globex["severity"] == "warning" and not globex["inhibited"]

    # the list: what to act on by default, the inhibited ones on request, counted either way
    assert {key(a) for a in svc.list_alerts("acme", inhibited=False)} == set(alerts) - {key(warn)}
    assert [a["id"] for a in svc.list_alerts("acme", inhibited=True)] == [warn["id"]]
    assert svc.count_inhibited("acme") == 1 and svc.count_inhibited("acme", state="firing") == 1
    assert svc.count_inhibited("acme", severity="critical") == 0 and svc.count_inhibited("globex") == 0
    assert svc.get_alert("acme", warn["id"])["inhibited_by_id"] == crit["id"]

    # Alertmanager never gets the inhibited warning; the others fire (globex's too)
    sent = {key(a) for a in am.fired if a.labels["tenant_id"] == "acme"}
    assert sent == set(alerts) - {key(warn)} and len(am.fired) == 4
    am.fired.clear()
    svc.evaluate_once(T0 + 90)  # still the same: re-asserted without it
    assert {key(a) for a in am.fired if a.labels["tenant_id"] == "acme"} == sent and len(am.fired) == 4
    assert svc.get_alert("acme", warn["id"])["inhibited_at"] == warn["inhibited_at"]  # one inhibition, not two


def test_critical_resolving_first_releases_the_warning_which_escalates_only_later(store: EmbeddedStore) -> None:
    for minute in range(30):  # 6.5 for 10 minutes, then a lower score: the warning holds once the critical ends
        anomaly(store, T0 + 60 * minute, 6.5 if minute < 10 else 2.0)
    am = FakeAlertmanager()
    svc = service(store, am, escalate_after="5m")
    svc.evaluate_once(T0 + 30)
    alerts = by_key(svc.list_alerts("acme"))
    warn = alerts[("error_rate", "gpt-4o", "warning")]
    assert warn["inhibited"]
    svc.evaluate_once(T0 + 60 * 8)  # inhibited for longer than escalate_after: not escalated (its critical pages)
    warn = svc.get_alert("acme", warn["id"])
    assert warn["inhibited"] and not warn["escalated"] and warn["severity"] == "warning"
    assert not any(key(a)[2] == "warning" for a in am.fired)

    svc.evaluate_once(T0 + 60 * 10 + 30)  # the newest score is 2.0: the critical resolves
    alerts = by_key(svc.list_alerts("acme"))
    crit = next(a for k, a in alerts.items() if k[2] == "critical")
    assert crit["state"] == "resolved" and crit["resolved_by"] == "auto"
    warn = svc.get_alert("acme", warn["id"])
    assert warn["state"] == "firing" and not warn["inhibited"] and warn["inhibited_by"] is None
    assert warn["inhibited_at"] is None and warn["released_at"] is not None
    assert am.fired[-1].labels["severity"] == "warning"  # sent now, with its original start
    assert am.fired[-1].annotations["hub_alert_id"] == warn["id"]
    assert [a["id"] for a in svc.list_alerts("acme", state="firing", inhibited=False)] == [warn["id"]]
    assert svc.count_inhibited("acme") == 0

    # escalate_after counts from the release, not from its start (12 minutes ago): no page right after
    # the critical ended
    svc.evaluate_once(T0 + 60 * 13)
    assert not svc.get_alert("acme", warn["id"])["escalated"]
    svc.evaluate_once(T0 + 60 * 16)  # 5.5 minutes after the release
    warn = svc.get_alert("acme", warn["id"])
    assert warn["escalated"] and warn["severity"] == "critical" and not warn["inhibited"]


LATENCY = "gen_ai.client.operation.duration"
# a pair with different conditions: the warning (2-minute average) ends before the critical (10-minute max)
PAIR = [
    {"name": "LatencyHigh", "severity": "warning", "for": 0, "labels": {"team": "search"},
     "condition": {"type": "threshold", "metric": LATENCY, "aggregation": "avg", "window": "2m",
                   "group_by": ["model"], "op": ">", "value": 100}},
    {"name": "LatencyHigh", "severity": "critical", "for": 0, "labels": {"team": "search"},
     "condition": {"type": "threshold", "metric": LATENCY, "aggregation": "max", "window": "10m",
                   "group_by": ["model"], "op": ">", "value": 1000}},
]  # fmt: skip


def test_warning_resolving_first_stays_inhibited_and_never_reaches_alertmanager(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0, 5000.0)] + [latency(T0 + 60 * i, 10.0) for i in range(1, 12)])
    am = FakeAlertmanager()
    svc = service(store, am, builtin_rules=False, rules=PAIR)
    svc.evaluate_once(T0 + 30)
    alerts = {a["severity"]: a for a in svc.list_alerts("acme")}
    assert alerts["warning"]["inhibited_by_id"] == alerts["critical"]["id"]
    assert alerts["warning"]["labels"] == {**alerts["critical"]["labels"], "severity": "warning"}
    svc.evaluate_once(T0 + 200)  # the 2-minute average is 10 now: the warning resolves, the critical holds
    warn = svc.get_alert("acme", alerts["warning"]["id"])
    assert warn["state"] == "resolved" and warn["resolved_by"] == "auto"
    assert warn["inhibited_by_id"] == alerts["critical"]["id"]  # resolved while inhibited: never to act on
    assert svc.get_alert("acme", alerts["critical"]["id"])["state"] == "firing"
    assert [a["id"] for a in svc.list_alerts("acme", inhibited=False)] == [alerts["critical"]["id"]]
    assert svc.count_inhibited("acme", state="resolved") == 1
    svc.evaluate_once(T0 + 700)  # the 5000 left the 10-minute window: the critical resolves, nothing to release
    assert {a["state"] for a in svc.list_alerts("acme", inhibited=None)} == {"resolved"}
    # inhibited from its first evaluation to its end: Alertmanager got neither its start nor its end
    assert all(a.labels["severity"] == "critical" for a in am.fired + am.resolved)
    assert [a.labels["severity"] for a in am.resolved] == ["critical"]


def test_warning_first_then_critical_withdraws_it_and_an_api_resolve_releases_it(store: EmbeddedStore) -> None:
    anomaly(store, T0, 2.0)
    am = FakeAlertmanager()
    clock = Clock(T0)
    svc = service(store, am, clock)
    svc.evaluate_once(T0 + 30)
    [warn] = svc.list_alerts("acme")
    assert warn["severity"] == "warning" and not warn["inhibited"]
    assert [key(a) for a in am.fired] == [key(warn)]  # active: sent

    anomaly(store, T0 + 60, 6.5)
    svc.evaluate_once(T0 + 90)
    crit = svc.list_alerts("acme", severity="critical")[0]
    warn = svc.get_alert("acme", warn["id"])
    assert warn["inhibited_by_id"] == crit["id"] and warn["inhibited_at"] == crit["starts_at"]
    assert [key(a) for a in am.withdrawn] == [key(warn)]  # no longer re-posted (not resolved: it still holds)
    assert not any(key(a) == key(warn) for a in am.resolved)
    am.fired.clear()
    svc.evaluate_once(T0 + 150)
    assert [key(a) for a in am.fired] == [key(crit)]

    clock.now = T0 + 160  # someone resolves the critical: its warning is active again at once
    svc.resolve("acme", crit["id"], by="alice")
    warn = svc.get_alert("acme", warn["id"])
    assert not warn["inhibited"] and warn["released_at"] is not None
    assert key(am.fired[-1]) == key(warn)
    svc.evaluate_once(T0 + 210)  # the critical's condition still holds but repeat_suppress keeps it closed
    assert not svc.get_alert("acme", warn["id"])["inhibited"]
    assert [a["severity"] for a in svc.list_alerts("acme", state="firing", inhibited=False)] == ["warning"]


def test_inhibit_false_keeps_both(store: EmbeddedStore) -> None:
    anomaly(store, T0, 6.5)
    am = FakeAlertmanager()
    svc = service(store, am, inhibit=False)
    svc.evaluate_once(T0 + 30)
    alerts = svc.list_alerts("acme", inhibited=False)
    assert sorted(a["severity"] for a in alerts) == ["critical", "warning"] and svc.count_inhibited("acme") == 0
    assert sorted(a.labels["severity"] for a in am.fired) == ["critical", "warning"] and am.withdrawn == []


def _webhook(*alerts: tuple[str, str, str]) -> bytes:
    """Alertmanager webhook (v4) with LLMComplianceRateLow alerts ``(status, severity, environment)``."""
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": status, "labels": {"alertname": "LLMComplianceRateLow", "severity": severity, "team": "compliance",
                                      "tenant_id": "acme", "environment": env},
         "startsAt": "2026-01-01T10:00:00Z", "endsAt": "2026-01-01T10:30:00Z" if status == "resolved" else "",
         "fingerprint": f"{severity}-{env}"}
        for status, severity, env in alerts]}).encode()  # fmt: skip


def test_alertmanager_alerts_recorded_by_the_webhook_are_inhibited_alike(store: EmbeddedStore) -> None:
    svc = service(store, builtin_rules=False)
    svc.receive_webhook(_webhook(("firing", "warning", "prod"), ("firing", "warning", "staging")))
    assert svc.count_inhibited("acme") == 0  # no critical yet: both warnings active
    svc.receive_webhook(_webhook(("firing", "critical", "prod")))
    alerts = {(a["labels"]["environment"], a["severity"]): a for a in svc.list_alerts("acme")}
    assert alerts[("prod", "warning")]["inhibited_by"] == "critical-prod"  # Alertmanager's fingerprint
    assert not alerts[("staging", "warning")]["inhibited"]  # another environment: another series
    assert svc.count_inhibited("acme") == 1
    svc.receive_webhook(_webhook(("resolved", "critical", "prod")))
    warn = svc.get_alert("acme", alerts[("prod", "warning")]["id"])
    assert warn["state"] == "firing" and not warn["inhibited"] and warn["released_at"] is not None


def test_an_alerts_table_of_an_older_hub_gets_the_new_columns(store: EmbeddedStore) -> None:
    old = {c: t for c, t in ALERT_COLUMNS.items() if c not in _ADDED_COLUMNS}
    cur = store.cursor()
    cur.execute(f"CREATE TABLE alerts ({', '.join(f'{c} {t}' for c, t in old.items())})")
    cur.execute("INSERT INTO alerts (id, tenant_id, source, alertname, fingerprint, state, severity, labels, "
                "annotations, starts_at) VALUES ('a1', 'acme', 'rule', 'X', 'f', 'firing', 'warning', "
                "'{\"alertname\": \"X\"}', '{}', make_timestamp(1700000000000000))")  # fmt: skip
    svc = service(store, builtin_rules=False)
    [alert] = svc.list_alerts("acme", inhibited=False)
    assert alert["id"] == "a1" and not alert["inhibited"] and alert["released_at"] is None
    svc.evaluate_once(T0)


def test_exporter_withdraw_stops_reposting_without_a_post(tmp_path: Any) -> None:
    am = AlertmanagerExporter(AlertmanagerExporterConfig(endpoint="http://127.0.0.1:9",
                                                         dead_letter_directory=str(tmp_path)))  # fmt: skip
    warn = Alert(labels={"alertname": "X", "severity": "warning"})
    crit = Alert(labels={"alertname": "X", "severity": "critical"})
    am.fire([warn, crit])
    am.withdraw([warn])
    assert [a.labels for a in am.firing] == [crit.labels]
    assert [a.labels["severity"] for a in am._outbox] == ["critical"]  # the queued first post is dropped too
    am.withdraw([{"alertname": "X", "severity": "critical"}])  # by label set, as resolve
    assert am.firing == [] and am._outbox == []
