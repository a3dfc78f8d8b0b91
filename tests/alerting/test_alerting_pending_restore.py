"""Pending ``for`` timers survive a restart (table ``alert_pending``), within ``pending_restore_grace``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore
from processors.alerting import AlertingConfig, AlertingService
from processors.alerting.repository import AlertRepository, iso
from tests.alerting.conftest import T0, add_events, latency

SLOW = {
    "name": "GPT4oSlow",
    "condition": {"type": "threshold", "metric": "gen_ai.client.operation.duration", "filters": {"model": "gpt-4o"},
                  "aggregation": "p95", "window": "5m", "group_by": ["model"], "op": ">", "value": 2000},
    "for": "10m", "severity": "warning",
}  # fmt: skip


def service(store: EmbeddedStore, rules: list[dict[str, Any]], **cfg: Any) -> AlertingService:
    config = AlertingConfig(builtin_rules=False, rules=rules, enabled=False, **cfg)
    svc = AlertingService(config, store, None, clock=lambda: T0 + 10_000)
    svc.start()
    return svc


def pending(store: EmbeddedStore) -> dict[tuple[str, str], float]:
    """``(rule_id, tenant_id) -> since`` of the stored pending entries (read from the table itself)."""
    return {(r, t): since for r, t, _fp, _labels, since in AlertRepository(store).pending()}


def slow_events(store: EmbeddedStore, start: float, end: float, tenant: str = "acme") -> None:
    add_events(store, [latency(T0 + t, 3000.0, tenant_id=tenant) for t in range(int(start), int(end), 10)])


def firing(svc: AlertingService, tenant: str = "acme") -> list[str]:
    return [a["alertname"] for a in svc.list_alerts(tenant, state="firing")]


def test_a_restart_keeps_the_pending_timer_and_fires_after_the_remainder(store: EmbeddedStore, tmp_path: Path) -> None:
    slow_events(store, 0, 1200)
    svc = service(store, [SLOW])
    svc.evaluate_once(T0 + 60)  # pending since T0+60
    svc.evaluate_once(T0 + 300)  # held 4 of its 10 minutes
    [row] = AlertRepository(store).pending()
    assert row[:2] == ("config-0", "acme") and row[4] == T0 + 60
    assert row[3]["alertname"] == "GPT4oSlow" and row[3]["gen_ai_request_model"] == "gpt-4o"
    svc.shutdown()
    store.shutdown()  # the whole hub restarts: a new store on the same data directory, a new service

    reopened = EmbeddedStore(tmp_path / "data", wal_fsync=False, flush_interval=0.01)
    reopened.start()
    try:
        again = service(reopened, [SLOW])
        assert again.evaluate_once(T0 + 420)["pending"] == 1  # 2 minutes later: restored, held 6 minutes
        assert firing(again) == []
        assert pending(reopened) == {("config-0", "acme"): T0 + 60}  # the original start, not T0+420
        again.evaluate_once(T0 + 660)  # 10 minutes after T0+60: fires (a reset timer would wait to T0+1020)
        [alert] = again.list_alerts("acme")
        assert alert["state"] == "firing" and alert["starts_at"] == iso(T0 + 660)
        assert pending(reopened) == {("config-0", "acme"): T0 + 60}  # kept while the condition holds
        again.shutdown()
    finally:
        reopened.shutdown()


def test_a_restart_after_a_gap_longer_than_the_grace_starts_the_timer_again(store: EmbeddedStore) -> None:
    slow_events(store, 0, 1000)
    svc = service(store, [SLOW], pending_restore_grace="3m")
    svc.evaluate_once(T0 + 60)
    svc.evaluate_once(T0 + 120)
    svc.shutdown()
    again = service(store, [SLOW], pending_restore_grace="3m")
    again.evaluate_once(T0 + 400)  # 280 s since the last evaluation > 3 m: not observed meanwhile, dropped
    assert pending(store) == {("config-0", "acme"): T0 + 400}
    again.evaluate_once(T0 + 700)  # 10 minutes after T0+60, but only 5 after the new start
    assert firing(again) == []
    again.evaluate_once(T0 + 1000)  # a full `for` after the restart
    assert firing(again) == ["GPT4oSlow"]


def test_a_grace_of_zero_never_restores(store: EmbeddedStore) -> None:
    slow_events(store, 0, 300)
    svc = service(store, [SLOW], pending_restore_grace=0)
    svc.evaluate_once(T0 + 60)
    svc.shutdown()
    again = service(store, [SLOW], pending_restore_grace=0)
    again.evaluate_once(T0 + 90)
    assert pending(store) == {("config-0", "acme"): T0 + 90}


def test_the_stored_entry_goes_when_the_condition_clears(store: EmbeddedStore, monkeypatch: Any) -> None:
    slow_events(store, 0, 30)
    svc = service(store, [{**SLOW, "condition": {**SLOW["condition"], "window": "1m"}}])
    writes: list[str] = []
    for name in ("add_pending", "remove_pending"):
        real = getattr(svc.repo, name)

        def record(entries: list[Any], real: Any = real, name: str = name) -> None:
            if entries:
                writes.append(name)
            real(entries)

        monkeypatch.setattr(svc.repo, name, record)
    for t in (30, 40, 50, 60):  # the same pending entry in every round: written once
        svc.evaluate_once(T0 + t)
    assert writes == ["add_pending"] and pending(store) == {("config-0", "acme"): T0 + 30}
    svc.evaluate_once(T0 + 100)  # out of the 1 m window: no longer holding
    assert writes == ["add_pending", "remove_pending"] and pending(store) == {}
    svc.shutdown()
    again = service(store, [{**SLOW, "condition": {**SLOW["condition"], "window": "1m"}}])
    assert again.evaluate_once(T0 + 110)["pending"] == 0


def test_for_zero_rules_store_nothing(store: EmbeddedStore) -> None:
    slow_events(store, 0, 60)
    svc = service(store, [{**SLOW, "for": 0}])
    svc.evaluate_once(T0 + 30)
    assert firing(svc) == ["GPT4oSlow"] and pending(store) == {}


def test_entries_of_a_deleted_or_removed_rule_are_not_restored(store: EmbeddedStore) -> None:
    slow_events(store, 0, 300)
    svc = service(store, [SLOW])
    custom = svc.create_rule("acme", {**SLOW, "name": "Custom"})["id"]
    svc.evaluate_once(T0 + 60)
    assert set(pending(store)) == {("config-0", "acme"), (custom, "acme")}
    svc.delete_rule("acme", custom)  # deleted through the API: its entry goes at once
    assert set(pending(store)) == {("config-0", "acme")}
    svc.shutdown()
    again = service(store, [])  # restarted without the configured rule
    assert pending(store) == {}  # dropped when loading, before any evaluation
    assert again.evaluate_once(T0 + 90)["pending"] == 0
    assert again.list_alerts("acme") == []


@pytest.mark.parametrize("restart", [True, False])
def test_pending_timers_keep_tenants_apart(store: EmbeddedStore, restart: bool) -> None:
    slow_events(store, 0, 900, tenant="acme")
    slow_events(store, 120, 900, tenant="globex")
    svc = service(store, [{**SLOW, "for": "5m"}])
    acme = svc.create_rule("acme", {**SLOW, "name": "AcmeOwn", "for": "5m"})["id"]
    globex = svc.create_rule("globex", {**SLOW, "name": "GlobexOwn", "for": "5m"})["id"]
    svc.evaluate_once(T0 + 60)  # acme pending (config rule and its own rule)
    svc.evaluate_once(T0 + 180)  # globex pending too, 2 minutes later
    assert pending(store) == {("config-0", "acme"): T0 + 60, (acme, "acme"): T0 + 60,
                              ("config-0", "globex"): T0 + 180, (globex, "globex"): T0 + 180}  # fmt: skip
    with pytest.raises(LookupError):
        svc.delete_rule("globex", acme)  # another tenant's rule: not found, its entry stays
    svc.delete_rule("acme", acme)
    assert (acme, "acme") not in pending(store) and (globex, "globex") in pending(store)
    if restart:
        svc.shutdown()
        svc = service(store, [{**SLOW, "for": "5m"}])
    svc.evaluate_once(T0 + 360)  # acme held 5 minutes, globex 3
    assert firing(svc, "acme") == ["GPT4oSlow"] and firing(svc, "globex") == []
    svc.evaluate_once(T0 + 480)
    assert sorted(firing(svc, "globex")) == ["GPT4oSlow", "GlobexOwn"] and firing(svc, "acme") == ["GPT4oSlow"]
    assert {a["tenant_id"] for a in svc.list_alerts("globex")} == {"globex"}


def test_pending_restore_grace_config() -> None:
    assert AlertingConfig().validate().pending_restore_grace_s == 600.0
    assert AlertingConfig(pending_restore_grace="2h").validate().pending_restore_grace_s == 7200.0
    with pytest.raises(ConfigError) as err:
        AlertingConfig(pending_restore_grace="soon").validate()
    assert str(err.value).startswith("processors.alerting.pending_restore_grace")
