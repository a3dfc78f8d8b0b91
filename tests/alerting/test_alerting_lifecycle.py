"""Rule evaluation and the alert lifecycle over a real embedded store, with explicit evaluation times."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hubcore.storage.embedded import EmbeddedStore
from processors.alerting import AlertingConfig, AlertingService
from tests.alerting.conftest import T0, FakeAlertmanager, add_events, injection, latency

SLOW = {
    "name": "GPT4oSlow",
    "condition": {"type": "threshold", "metric": "gen_ai.client.operation.duration", "filters": {"model": "gpt-4o"},
                  "aggregation": "p95", "window": "5m", "group_by": ["model"], "op": ">", "value": 2000},
    "for": "2m", "severity": "warning", "labels": {"team": "search"},
    "annotations": {"summary": "p95 of {{ $labels.gen_ai_request_model }} is {{ $value }} ms",
                    "runbook_url": "docs/runbooks/LLMLatencyP95High.md"},
}  # fmt: skip


def service(store: EmbeddedStore, rules: list[dict[str, Any]], am: FakeAlertmanager | None = None,
            **cfg: Any) -> AlertingService:  # fmt: skip
    config = AlertingConfig(builtin_rules=False, rules=rules, enabled=False, **cfg)
    svc = AlertingService(config, store, None, am, clock=lambda: T0 + 10_000)
    svc.start()
    return svc


def test_threshold_fires_only_after_for_and_resolves_when_data_clears(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0 + i, 3000.0 + i) for i in range(0, 60, 2)])
    add_events(store, [latency(T0 + i, 100.0, model="claude") for i in range(0, 60, 2)])  # healthy model
    am = FakeAlertmanager()
    svc = service(store, [SLOW], am)
    svc.evaluate_once(T0 + 60)  # condition holds: pending
    assert svc.list_alerts("acme") == []
    svc.evaluate_once(T0 + 120)  # held 60 s < 120 s
    assert svc.list_alerts("acme") == []
    svc.evaluate_once(T0 + 180)  # held 120 s: firing
    [alert] = svc.list_alerts("acme")
    assert alert["state"] == "firing" and alert["alertname"] == "GPT4oSlow"
    assert alert["labels"] == {"alertname": "GPT4oSlow", "severity": "warning", "team": "search",
                               "tenant_id": "acme", "gen_ai_request_model": "gpt-4o"}  # fmt: skip
    assert alert["annotations"]["summary"].startswith("p95 of gpt-4o is 30")
    assert alert["generator_url"].endswith("/api/v1/alerts/rules/config-0")
    assert am.fired and am.fired[-1].labels["alertname"] == "GPT4oSlow"
    assert am.fired[-1].annotations["hub_alert_id"] == alert["id"]
    svc.evaluate_once(T0 + 240)  # still holding: the same alert, no second one
    assert len(svc.list_alerts("acme")) == 1
    svc.evaluate_once(T0 + 400)  # the events left the 5 m window: auto-resolved
    [alert] = svc.list_alerts("acme")
    assert alert["state"] == "resolved" and alert["resolved_by"] == "auto"
    assert alert["ends_at"] is not None and alert["ends_at"] > alert["starts_at"]
    assert am.resolved[-1].endsAt is not None
    assert svc.list_alerts("other-tenant") == []
    svc.shutdown()
    assert am.started == 1 and am.stopped == 1


def test_the_firing_log_line_tells_the_alerts_apart(store: EmbeddedStore, caplog: pytest.LogCaptureFixture) -> None:
    add_events(store, [latency(T0 + i, 3000.0) for i in range(0, 60, 2)])
    add_events(store, [latency(T0 + i, 3000.0, model="claude") for i in range(0, 60, 2)])
    critical = {**SLOW, "name": "GPT4oSlow", "severity": "critical", "condition": {**SLOW["condition"], "filters": {}},
                "for": "0"}  # fmt: skip
    warning = {**critical, "severity": "warning"}
    svc = service(store, [warning, critical])
    with caplog.at_level(logging.INFO, logger="processors.alerting.service"):
        svc.evaluate_once(T0 + 60)
    fired = [r for r in caplog.records if r.getMessage() == "alert firing"]
    assert len(fired) == 4  # two models x two severities, one line each
    seen = {(r.severity, r.labels["gen_ai_request_model"], r.fingerprint) for r in fired}  # type: ignore[attr-defined]
    assert len(seen) == 4 and {s for s, _, _ in seen} == {"warning", "critical"}
    svc.shutdown()


def test_a_condition_that_breaks_before_for_never_fires(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0 + i, 3000.0) for i in range(0, 30, 2)])
    svc = service(store, [{**SLOW, "condition": {**SLOW["condition"], "window": "1m"}}])
    svc.evaluate_once(T0 + 30)
    svc.evaluate_once(T0 + 100)  # out of the 1 m window: pending is dropped
    svc.evaluate_once(T0 + 200)
    assert svc.list_alerts("acme") == []


def test_composite_and_or(store: EmbeddedStore) -> None:
    slow = {"type": "threshold", "metric": "gen_ai.client.operation.duration", "aggregation": "p95",
            "window": "5m", "group_by": ["model"], "op": ">", "value": 2000}  # fmt: skip
    errors = {"type": "threshold", "metric": "gen_ai.client.operation.duration", "aggregation": "ratio",
              "match": {"status": "error"}, "window": "5m", "group_by": ["model"], "op": ">", "value": 0.2}  # fmt: skip
    # gpt-4o: slow and failing; claude: slow only; mistral: failing only
    add_events(store, [latency(T0 + i, 3000.0, status="error" if i % 2 else "ok") for i in range(20)])
    add_events(store, [latency(T0 + i, 3000.0, model="claude") for i in range(20)])
    add_events(store, [latency(T0 + i, 100.0, model="mistral", status="error") for i in range(20)])
    both = {"name": "SlowAndFailing", "condition": {"type": "composite", "op": "and", "conditions": [slow, errors]}}
    either = {"name": "SlowOrFailing", "condition": {"type": "composite", "op": "or", "conditions": [slow, errors]}}
    svc = service(store, [both, either])
    svc.evaluate_once(T0 + 30)
    fired = {(a["alertname"], a["labels"]["gen_ai_request_model"]) for a in svc.list_alerts("acme")}
    assert fired == {("SlowAndFailing", "gpt-4o"), ("SlowOrFailing", "gpt-4o"), ("SlowOrFailing", "claude"),
                     ("SlowOrFailing", "mistral")}  # fmt: skip


def test_duplicate_suppression_after_resolve(store: EmbeddedStore) -> None:
    add_events(store, [injection(T0 + i, "10.0.0.9") for i in range(12)])
    burst = {"name": "Burst", "severity": "critical", "condition": {
        "type": "threshold", "event_type": "security", "metric": "prompt_injection", "aggregation": "count",
        "window": "5m", "group_by": ["source_ip"], "op": ">=", "value": 10}}  # fmt: skip
    svc = service(store, [burst], repeat_suppress="10m")
    svc.evaluate_once(T0 + 20)
    svc.evaluate_once(T0 + 40)
    [alert] = svc.list_alerts("acme")
    assert alert["labels"]["payload_source_ip"] == "10.0.0.9" and alert["severity"] == "critical"
    svc.clock = lambda: T0 + 50
    svc.resolve("acme", alert["id"], by="alice")  # resolved by hand while the burst still shows
    for t in (60, 120, 200):
        svc.evaluate_once(T0 + t)
    [alert] = svc.list_alerts("acme")  # no new alert for the same rule + labels within repeat_suppress
    assert alert["state"] == "resolved" and alert["resolved_by"] == "alice" and alert["suppressed"] == 3
    add_events(store, [injection(T0 + 700 + i, "10.0.0.9") for i in range(12)])
    svc.evaluate_once(T0 + 720)  # past repeat_suppress: a new alert
    states = sorted(a["state"] for a in svc.list_alerts("acme"))
    assert states == ["firing", "resolved"]


def test_escalation_when_unacknowledged(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0 + i, 3000.0) for i in range(0, 300, 5)])
    am = FakeAlertmanager()
    svc = service(store, [{**SLOW, "for": 0}, {**SLOW, "name": "Acked", "for": 0}], am, escalate_after="1m")
    svc.evaluate_once(T0 + 10)
    acked = next(a for a in svc.list_alerts("acme") if a["alertname"] == "Acked")
    svc.acknowledge("acme", acked["id"], by="bob", comment="on it")
    svc.evaluate_once(T0 + 50)
    assert all(not a["escalated"] for a in svc.list_alerts("acme"))
    svc.evaluate_once(T0 + 75)
    alerts = {a["alertname"]: a for a in svc.list_alerts("acme")}
    esc = alerts["GPT4oSlow"]
    assert esc["escalated"] and esc["severity"] == "critical" and esc["state"] == "firing"
    assert esc["labels"]["escalated"] == "true" and esc["labels"]["severity"] == "critical"
    assert alerts["Acked"]["state"] == "acknowledged" and not alerts["Acked"]["escalated"]
    assert alerts["Acked"]["acknowledged_by"] == "bob" and alerts["Acked"]["ack_comment"] == "on it"
    # Alertmanager: the warning label set ended, the escalated one fires
    assert any(a.labels["alertname"] == "GPT4oSlow" and a.labels["severity"] == "warning" for a in am.resolved)
    assert any(a.labels.get("escalated") == "true" and a.labels["severity"] == "critical" for a in am.fired)
    svc.evaluate_once(T0 + 90)  # escalated once only
    assert svc.list_alerts("acme", severity="critical")[0]["escalated_at"] == esc["escalated_at"]


def test_anomaly_rule_reports_no_data_without_derived_series(store: EmbeddedStore) -> None:
    rule = {"name": "Anomalous", "condition": {"type": "anomaly", "window": "5m"}}
    svc = service(store, [rule])
    svc.evaluate_once(T0)
    [r] = svc.rules("acme")
    assert r["health"]["health"] == "nodata" and svc.list_alerts("acme") == []
    cur = store.cursor()
    cur.execute(
        "CREATE TABLE derived_series (tenant_id VARCHAR, ts TIMESTAMP, name VARCHAR, value DOUBLE, labels VARCHAR)"
    )
    cur.execute("INSERT INTO derived_series VALUES ('acme', make_timestamp(?), 'anomaly_score', 2.5, ?), "
                "('acme', make_timestamp(?), 'anomaly_score', 0.3, ?)",
                [int((T0 - 10) * 1e6), '{"for": "cost_usd_hourly", "team": "finops"}',
                 int((T0 - 10) * 1e6), '{"for": "requests_rate", "team": "search"}'])  # fmt: skip
    svc.evaluate_once(T0)
    [alert] = svc.list_alerts("acme")
    assert alert["labels"]["for"] == "cost_usd_hourly" and alert["labels"]["team"] == "finops"
    assert svc.rules("acme")[0]["health"]["health"] == "ok"


def test_custom_rules_are_tenant_scoped_and_persist(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0 + i, 3000.0, tenant_id=t) for i in range(10) for t in ("acme", "globex")])
    svc = service(store, [])
    created = svc.create_rule("acme", {**SLOW, "for": "0s"})
    assert created["tenant_id"] == "acme" and created["id"].startswith("r-")
    svc.evaluate_once(T0 + 20)
    assert len(svc.list_alerts("acme")) == 1 and svc.list_alerts("globex") == []
    assert [r["id"] for r in svc.rules("globex")] == []
    svc.shutdown()
    again = service(store, [])  # loaded back from the alert_rules table
    assert [r["name"] for r in again.rules("acme")] == ["GPT4oSlow"]
    again.delete_rule("acme", created["id"])
    assert again.list_alerts("acme")[0]["state"] == "resolved"
    assert again.rules("acme") == []


def test_builtin_rules_on_default_config(store: EmbeddedStore) -> None:
    add_events(store, [injection(T0 + i, "10.9.9.9", tenant="acme") for i in range(10)])
    add_events(store, [injection(T0 + i, "10.9.9.8", tenant="acme") for i in range(9)])  # under the threshold
    add_events(store, [latency(T0 + i, 100.0, status="error" if i % 20 == 0 else "ok") for i in range(0, 400, 5)])
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    names = {r["name"] for r in svc.rules("acme")}
    assert names == {"LLMErrorRateHigh", "LLMLatencyP95High", "LLMPromptInjectionBurstFromIP",
                     "LLMAnomalyDetected", "LLMBudgetExhaustionPredicted"}  # fmt: skip
    svc.evaluate_once(T0 + 40)
    [burst] = svc.list_alerts("acme")  # the error rate needs 5 minutes of `for` first
    assert burst["alertname"] == "LLMPromptInjectionBurstFromIP" and burst["labels"]["team"] == "security"
    assert burst["labels"]["payload_source_ip"] == "10.9.9.9" and burst["severity"] == "critical"
    assert burst["annotations"]["runbook_url"] == "docs/runbooks/LLMPromptInjectionBurstFromIP.md"
    assert burst["annotations"]["summary"] == "10 prompt injections from 10.9.9.9 in 5 minutes"
    svc.evaluate_once(T0 + 200)
    svc.evaluate_once(T0 + 345)
    [err] = svc.list_alerts("acme", state="firing")
    assert err["alertname"] == "LLMErrorRateHigh" and 0.2 < err["value"] < 0.3
    assert err["labels"]["team"] == "search" and err["labels"]["gen_ai_request_model"] == "gpt-4o"
    assert svc.get_alert("acme", burst["id"])["state"] == "resolved"


def test_alerts_of_a_removed_config_rule_resolve(store: EmbeddedStore) -> None:
    add_events(store, [latency(T0 + i, 3000.0) for i in range(10)])
    svc = service(store, [{**SLOW, "for": 0}])
    svc.evaluate_once(T0 + 20)
    assert svc.list_alerts("acme")[0]["state"] == "firing"
    svc.shutdown()
    again = service(store, [])  # restarted without the rule
    again.evaluate_once(T0 + 30)
    [alert] = again.list_alerts("acme")
    assert alert["state"] == "resolved" and alert["resolved_by"] == "rule removed"


def test_builtin_budget_rule_fires_on_the_budget_series_and_resolves(store: EmbeddedStore) -> None:
    from analytics.service.budgets import Budget, budget_rows
    from analytics.service.derived import DerivedRepository

    repo = DerivedRepository(store)
    budget = Budget(id="b-1", tenant_id="acme", name="search", amount=100.0, team="search", alert_within_days=3)
    soon = {"spent_to_date": 60.0, "exhaustion_timestamp_seconds": T0 + 86_400, "alert": True}
    later = {"spent_to_date": 10.0, "exhaustion_timestamp_seconds": None, "alert": False}
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    svc.evaluate_once(T0)
    assert svc.list_alerts("acme") == []  # no budget evaluated yet: no data, no alert
    repo.write(budget_rows(budget, soon, T0))
    svc.evaluate_once(T0 + 10)
    [alert] = svc.list_alerts("acme")
    assert alert["alertname"] == "LLMBudgetExhaustionPredicted" and alert["state"] == "firing"
    assert alert["labels"]["budget_id"] == "b-1" and alert["labels"]["team"] == "search"  # the budget's team
    assert "project" not in alert["labels"]  # empty labels are dropped
    assert alert["annotations"]["summary"] == "Budget b-1 is predicted to run out within its alert window"
    svc.evaluate_once(T0 + 310)  # the next evaluation is late (no new sample): the last one stands
    assert svc.list_alerts("acme")[0]["state"] == "firing"
    repo.write(budget_rows(budget, later, T0 + 320))  # re-evaluated: no longer within the alert window
    svc.evaluate_once(T0 + 330)  # resolved by that evaluation, not when the first sample leaves the window
    [alert] = svc.list_alerts("acme")
    assert alert["state"] == "resolved" and alert["resolved_by"] == "auto"
    assert svc.list_alerts("globex") == []


def test_builtin_anomaly_rule_fires_while_the_model_reports_an_announced_anomaly(store: EmbeddedStore) -> None:
    from analytics.service.derived import DerivedRepository, DerivedRow

    repo = DerivedRepository(store)
    latency = {"for": "latency_p95", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "gpt-4o"}
    quiet = {"for": "requests_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "gpt-4o"}
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    svc.evaluate_once(T0)
    assert svc.list_alerts("acme") == []  # the analytics service has not run yet: no data, no alert
    for minute in range(60):  # one run a minute: announced from minute 10 to 19, 0 otherwise
        value = 3.2 if 10 <= minute < 20 else 0.0
        repo.write([DerivedRow("acme", T0 + 60 * minute, "anomaly_alert", value, latency, "anomaly"),
                    DerivedRow("acme", T0 + 60 * minute, "anomaly_alert", 0.0, quiet, "anomaly")])  # fmt: skip
        svc.evaluate_once(T0 + 60 * minute + 30)
        firing = svc.list_alerts("acme", state="firing")
        assert len(firing) == (1 if 10 <= minute < 20 else 0), minute  # resolved by the run that writes 0
    [alert] = svc.list_alerts("acme")  # a score of 3.2 is below the critical tier (4)
    assert alert["alertname"] == "LLMAnomalyDetected" and alert["severity"] == "warning"
    assert alert["labels"]["for"] == "latency_p95" and alert["labels"]["team"] == "llm-platform"
    assert alert["annotations"]["summary"] == "Anomalous latency_p95 (model anomaly_ensemble, tenant acme)"
    assert "score 3.2" in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/LLMAnomalyDetected.md"
    assert alert["state"] == "resolved" and alert["resolved_by"] == "auto"
    assert svc.list_alerts("globex") == []


def test_builtin_anomaly_rule_resolves_on_the_withdrawing_run_and_rides_out_a_late_run(store: EmbeddedStore) -> None:
    """A stale run's announcement (110.9, critical) withdrawn by the next run (0) resolves both tiers at the
    next evaluation, not 10 minutes later; a series whose announcement stands keeps firing through a run
    that is 6 minutes late (no new point), and resolves only when its point leaves the 10-minute window."""
    from analytics.service.derived import DerivedRepository, DerivedRow

    repo = DerivedRepository(store)
    burst = {"for": "requests_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "claude"}
    slow = {"for": "latency_p95", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "gpt-4o"}
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    repo.write([DerivedRow("acme", T0, "anomaly_alert", 110.9, burst, "anomaly"),
                DerivedRow("acme", T0, "anomaly_alert", 2.5, slow, "anomaly")])  # fmt: skip
    svc.evaluate_once(T0 + 30)
    firing = {(a["labels"]["for"], a["severity"]) for a in svc.list_alerts("acme", state="firing")}
    assert firing == {("requests_rate", "warning"), ("requests_rate", "critical"), ("latency_p95", "warning")}
    repo.write([DerivedRow("acme", T0 + 60, "anomaly_alert", 0.0, burst, "anomaly")])  # the next run withdraws it
    for minute in (1, 3, 7):  # the latency run is late: its last point (2.5) stands
        svc.evaluate_once(T0 + 60 * minute + 30)
        firing = {(a["labels"]["for"], a["severity"]) for a in svc.list_alerts("acme", state="firing")}
        assert firing == {("latency_p95", "warning")}, minute
    resolved = [a for a in svc.list_alerts("acme") if a["labels"]["for"] == "requests_rate"]
    assert {a["state"] for a in resolved} == {"resolved"} and len(resolved) == 2
    svc.evaluate_once(T0 + 60 * 11)  # no point of it in the last 10 minutes: resolved
    assert svc.list_alerts("acme", state="firing") == []


def test_builtin_anomaly_rule_pages_at_the_critical_severity(store: EmbeddedStore) -> None:
    from analytics.service.derived import DerivedRepository, DerivedRow

    repo = DerivedRepository(store)
    labels = {"for": "error_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "gpt-4o"}
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    repo.write([DerivedRow("acme", T0, "anomaly_alert", 6.5, labels, "anomaly")])
    svc.evaluate_once(T0 + 30)
    alerts = {a["severity"]: a for a in svc.list_alerts("acme", state="firing")}
    assert set(alerts) == {"warning", "critical"}
    # inhibited like Alertmanager does (same alert and labels): listed only on request, never sent
    assert (
        alerts["warning"]["inhibited_by"] == alerts["critical"]["fingerprint"] and not alerts["critical"]["inhibited"]
    )
    assert [a["severity"] for a in svc.list_alerts("acme", state="firing", inhibited=False)] == ["critical"]
    critical = alerts["critical"]
    assert critical["alertname"] == "LLMAnomalyDetected" and critical["labels"]["for"] == "error_rate"
    assert critical["annotations"]["summary"] == "Critical anomaly of error_rate (model anomaly_ensemble, tenant acme)"
    assert {r["id"] for r in svc.rules("acme") if r["name"] == "LLMAnomalyDetected"} == {
        "builtin-LLMAnomalyDetected-warning", "builtin-LLMAnomalyDetected-critical"}  # fmt: skip


def test_an_open_alerts_description_follows_its_value_and_its_resolution_is_logged(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The description was rendered once, when the alert fired: a walkthrough saw "(score 19.76)" beside a
    value of 6.58. It is re-rendered at each evaluation (as Prometheus does); a resolution logs a line."""
    from analytics.service.derived import DerivedRepository, DerivedRow

    repo = DerivedRepository(store)
    labels = {"for": "requests_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "claude"}
    svc = AlertingService(AlertingConfig(enabled=False), store, None)
    repo.write([DerivedRow("acme", T0, "anomaly_alert", 19.76, labels, "anomaly")])
    svc.evaluate_once(T0 + 30)
    repo.write([DerivedRow("acme", T0 + 60, "anomaly_alert", 2.5, labels, "anomaly")])
    svc.evaluate_once(T0 + 90)
    [alert] = svc.list_alerts("acme", state="firing")  # the critical tier resolved (2.5 < 4)
    assert alert["severity"] == "warning" and alert["value"] == 2.5
    assert alert["annotations"]["description"].endswith("(score 2.5).")
    repo.write([DerivedRow("acme", T0 + 120, "anomaly_alert", 0.0, labels, "anomaly")])
    with caplog.at_level(logging.INFO, logger="processors.alerting.service"):
        svc.evaluate_once(T0 + 150)
    resolved = [r for r in caplog.records if r.getMessage() == "alert resolved"]
    assert [(r.severity, r.resolved_by) for r in resolved] == [("warning", "auto")]  # type: ignore[attr-defined]
    assert resolved[0].labels["for"] == "requests_rate"  # type: ignore[attr-defined]


def test_deleting_a_built_in_or_configured_rule_says_which_key_removes_it(store: EmbeddedStore) -> None:
    # the 409 said "disable it in processors.alerting", a section without a key of that name
    from processors.alerting.service import AlertConflict

    svc = AlertingService(AlertingConfig(enabled=False, rules=[SLOW]), store, None)
    with pytest.raises(AlertConflict) as built_in:
        svc.delete_rule("acme", "builtin-LLMLatencyP95High")
    assert str(built_in.value) == (
        "rule 'builtin-LLMLatencyP95High' is built in: processors.alerting.builtin_rules: false turns off every "
        "built-in rule (for every tenant); a rule of your own can replace it"
    )
    with pytest.raises(AlertConflict) as configured:
        svc.delete_rule("acme", "config-0")
    assert str(configured.value) == (
        "rule 'config-0' is configured: remove it from processors.alerting.rules (the entry named GPT4oSlow) "
        "and restart the hub"
    )
    assert {"builtin-LLMLatencyP95High", "config-0"} <= {r["id"] for r in svc.rules("acme")}
