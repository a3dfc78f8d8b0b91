"""Budget reads are pure: GET evaluates and writes nothing; the ``budget_*`` series are written by the
scheduler (``budget_every``) and by POST/PUT, and deleted with the budget. The forecast warm-up at start."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import analytics.forecast.warm as warm
from analytics.service import AnalyticsConfig, AnalyticsService
from analytics.service.budgets import BUDGET_SERIES, Budget
from analytics.service.config import config_from_dict, parse_duration
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore
from tests.analytics_service.svc_data import two_team_cost_hub
from tests.helpers.hub import RunningHub, hub_config, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHub, AnalyticsService]]:
    with two_team_cost_hub(tmp_path_factory.mktemp("budget-reads")) as pair:
        yield pair


def _body(name: str, amount: float = 60.0, team: str = "search") -> dict[str, Any]:
    return {"name": name, "amount": amount, "team": team, "period": "custom", "alert_within_days": 7,
            "start": time.time() - 48 * 3600, "end": time.time() + 10 * 86_400}  # fmt: skip


def _rows(h: RunningHub, budget_id: str) -> list[tuple[Any, ...]]:
    return h.sql("SELECT name, epoch_us(ts), value, labels FROM derived_series "
                 "WHERE json_extract_string(labels, '$.budget_id') = ? ORDER BY name, ts", [budget_id])  # fmt: skip


class _Writes:
    """Counts what reaches the derived-series store: rows written, series deleted."""

    def __init__(self, svc: AnalyticsService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows = self.deletes = 0
        write, delete_named = svc.repo.write, svc.repo.delete_named

        def counted_write(rows: Any) -> int:
            self.rows += len(rows)
            return write(rows)

        def counted_delete(*args: Any) -> None:
            self.deletes += 1
            delete_named(*args)

        monkeypatch.setattr(svc.repo, "write", counted_write)
        monkeypatch.setattr(svc.repo, "delete_named", counted_delete)


def test_a_budget_read_writes_nothing(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # every GET deleted and rewrote the budget's series: reads needed write capacity, two readers raced on
    # the same rows, and a viewer caused writes
    h, svc = hub
    r = httpx.post(f"{h.api}/api/v1/budgets", json=_body("reader"), timeout=60)
    assert r.status_code == 201, r.text
    bid = r.json()["budget"]["id"]
    before = _rows(h, bid)
    writes = _Writes(svc, monkeypatch)
    listed = httpx.get(f"{h.api}/api/v1/budgets", timeout=60)
    one = httpx.get(f"{h.api}/api/v1/budgets/{bid}", timeout=60)
    assert listed.status_code == 200 and one.status_code == 200, (listed.text, one.text)
    assert bid in [b["budget"]["id"] for b in listed.json()["budgets"]]
    # the answer is still the full evaluation
    assert one.json()["method"] == "forecast" and 47 <= one.json()["spent_to_date"] <= 49, one.json()
    assert one.json()["alert"] is True and one.json()["exhaustion_timestamp_seconds"] is not None
    missing = httpx.get(f"{h.api}/api/v1/budgets/no-such-budget", timeout=60)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", missing.text
    assert (writes.rows, writes.deletes) == (0, 0)
    assert _rows(h, bid) == before
    assert httpx.delete(f"{h.api}/api/v1/budgets/{bid}", timeout=60).status_code == 200


def test_post_and_put_write_the_series_at_once_and_delete_removes_them(hub: Any) -> None:
    h, _ = hub
    r = httpx.post(f"{h.api}/api/v1/budgets", json=_body("writer"), timeout=60)
    assert r.status_code == 201, r.text
    bid = r.json()["budget"]["id"]
    names = {row[0] for row in _rows(h, bid)}
    assert names == set(BUDGET_SERIES), names  # exhaustion predicted (~12 h left at 1 USD/h): all four
    r = httpx.put(f"{h.api}/api/v1/budgets/{bid}", json=_body("writer", amount=61.0), timeout=60)
    assert r.status_code == 200, r.text
    rows = _rows(h, bid)
    assert [v for n, _, v, _ in rows if n == "budget_limit_usd"][-1] == 61.0
    exhaustion = [row for row in rows if row[0] == "budget_exhaustion_timestamp_seconds"]
    assert len(exhaustion) == 1 and exhaustion[0][2] == pytest.approx(r.json()["exhaustion_timestamp_seconds"])
    # the DELETE removed only budget_exhaustion_timestamp_seconds: the limit, spend and alert series (the
    # built-in rule fires on budget_exhaustion_alert) outlived the budget
    assert httpx.delete(f"{h.api}/api/v1/budgets/{bid}", timeout=60).status_code == 200
    assert _rows(h, bid) == []
    again = httpx.delete(f"{h.api}/api/v1/budgets/{bid}", timeout=60)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found", again.text


def test_the_scheduler_writes_the_series_every_budget_every(hub: Any) -> None:
    h, svc = hub
    budget = Budget.from_body(_body("scheduled", team="ads"), "default")
    svc.budgets.create(budget)  # stored without an evaluation: no series yet
    assert _rows(h, budget.id) == []
    now = float(int(time.time()))  # (whole seconds: the stamps compare exactly)
    svc._last_budgets = float("-inf")  # (the fixture's service has not run yet; another test may have)
    assert svc.run_once(now)["budgets"] >= 1
    first = _rows(h, budget.id)
    assert {row[0] for row in first} == set(BUDGET_SERIES)
    every = parse_duration(svc.config.budget_every, "budget_every")
    assert svc.run_once(now + every / 2)["budgets"] == 0 and _rows(h, budget.id) == first  # not due yet
    assert svc.run_once(now + every)["budgets"] >= 1
    later = _rows(h, budget.id)
    stamps = sorted({ts for name, ts, _, _ in later if name == "budget_spend_usd"})
    assert stamps == [int(now * 1e6), int((now + every) * 1e6)]
    # the newest exhaustion time replaces the stored one
    assert [ts for name, ts, _, _ in later if name == "budget_exhaustion_timestamp_seconds"] == [
        int((now + every) * 1e6)
    ]
    assert svc.delete_budget("default", budget.id) and _rows(h, budget.id) == []


def test_a_pass_does_not_bring_back_a_deleted_budget_or_an_old_definition(hub: Any) -> None:
    # the pass lists the budgets, then evaluates each: one deleted or replaced meanwhile kept (or got
    # back) its series, with the old labels and amount
    h, svc = hub
    gone = Budget.from_body(_body("gone"), "default")
    svc.budgets.create(gone)
    assert svc.delete_budget("default", gone.id)
    assert svc.refresh_budget(gone)["budget"]["id"] == gone.id  # evaluated (a stale pass) ...
    assert _rows(h, gone.id) == []  # ... and nothing written
    old = Budget.from_body(_body("changed"), "default")
    svc.budgets.create(old)
    new = Budget.from_body(_body("changed", amount=500.0), "default", budget_id=old.id)
    assert svc.budgets.replace(new)
    svc.refresh_budget(old)
    assert _rows(h, old.id) == []
    svc.refresh_budget(new)
    assert {v for n, _, v, _ in _rows(h, old.id) if n == "budget_limit_usd"} == {500.0}
    assert svc.delete_budget("default", old.id) and not svc.delete_budget("default", old.id)


def test_the_default_budget_interval_keeps_the_prometheus_rules_fed() -> None:
    # the rules/prometheus budget alerts read budget_exhaustion_timestamp_seconds with an instant selector
    # (a 5-minute lookback in Prometheus) and `for: 15m`: written every 5 minutes plus the scheduler's tick,
    # the series went absent for seconds at a time and the pending alert started over (GETs had hidden it)
    assert 2 * parse_duration(AnalyticsConfig().budget_every, "budget_every") <= 300


# -- the forecast warm-up ----------------------------------------------------------------------------
def test_warm_up_forecasts_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warm, "_done", threading.Event())
    calls: list[int] = []
    from analytics.forecast.ensemble import EnsembleForecaster

    real = EnsembleForecaster.forecast

    def counted(self: EnsembleForecaster, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("h", 0))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(EnsembleForecaster, "forecast", counted)
    assert warm.warm_up() > 0 and calls == [24]
    assert warm.warm_up() == 0.0 and calls == [24]  # already warm: nothing runs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data", wal_fsync=False, flush_interval=0.01)
    s.start()
    yield s
    s.shutdown()


def test_start_warms_up_in_the_background_and_logs_when_done(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release, entered = threading.Event(), threading.Event()

    def slow_warm_up() -> float:
        entered.set()
        assert release.wait(30)
        return 0.25

    monkeypatch.setattr(warm, "warm_up", slow_warm_up)
    caplog.set_level(logging.INFO, logger="hub.analytics")
    # also with the scheduler off: the API still forecasts budgets
    svc = AnalyticsService({"enabled": False, "warm_up": True}, store)
    svc.start()  # returns while the warm-up is still running: start (and /readyz) does not wait for it
    assert entered.wait(30) and svc._warm_thread is not None and svc._warm_thread.is_alive()
    assert not svc.running
    release.set()
    svc._warm_thread.join(30)
    assert [r.getMessage() for r in caplog.records] == ["forecast warm-up done"]
    svc.start()  # once per service
    svc.shutdown()


def test_a_failed_warm_up_is_logged_and_warm_up_false_starts_none(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> float:
        raise RuntimeError("no forecasting today")

    monkeypatch.setattr(warm, "warm_up", broken)
    svc = AnalyticsService({"enabled": False}, store)  # on by default (`hub run`)
    svc.start()
    assert svc._warm_thread is not None
    svc._warm_thread.join(30)
    assert [r.getMessage() for r in caplog.records if r.name == "hub.analytics"] == ["forecast warm-up failed"]
    off = AnalyticsService({"enabled": False, "warm_up": False}, store)
    off.start()
    assert off._warm_thread is None


def test_warm_up_config() -> None:
    assert AnalyticsConfig().warm_up is True
    assert config_from_dict(hub_config(Path("unused")).processors.analytics or {}).warm_up is False  # test hubs
    with pytest.raises(ConfigError, match=r"processors\.analytics.*warm_up"):
        config_from_dict({"warm_up": [1]})


def _warm_hub(path: Path, warm_up: bool) -> Any:
    return running_hub(path, grpc=False, otlp_http=False, processors__analytics={"enabled": False, "warm_up": warm_up})


def test_a_hub_with_warm_up_builds_its_api_routes_in_the_background(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # FastAPI builds a router's routes on the first request reaching it: the first GET /budgets after a
    # start took 1.4 s with no budget at all (0.02 s after); the OpenAPI document builds them all
    caplog.set_level(logging.INFO)
    with _warm_hub(tmp_path / "on", True) as h:
        for thread in threading.enumerate():
            if thread.name in ("hub-api-warm-up", "hub-analytics-warm-up"):
                thread.join(60)
        assert h.service.app.openapi_schema is not None
        assert httpx.get(f"{h.api}/api/v1/budgets", timeout=60).json() == {"budgets": []}
    messages = {r.getMessage() for r in caplog.records}
    assert {"API warm-up done", "forecast warm-up done"} <= messages, messages
    with _warm_hub(tmp_path / "off", False) as h:  # the test hubs' default
        assert h.service.app.openapi_schema is None


class _Waits(threading.Event):
    """The scheduler's stop event: records each wait's timeout and stops the loop after ``n`` of them."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.timeouts = n, []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return len(self.timeouts) > self.n


def test_the_scheduler_waits_a_tick_between_passes_when_no_model_ran(store: EmbeddedStore) -> None:
    # with no data (no tenant in any fit window) no model ran, and the loop waited 0 between passes:
    # an idle hub spun a core (1.1 CPU-s in 3 s), and the budget pass ran far more often than budget_every
    svc = AnalyticsService({"warm_up": False}, store)
    passes: list[float] = []
    svc.run_once = lambda *a, **k: passes.append(1) or {}  # type: ignore[method-assign]
    svc._stop = _Waits(3)
    svc._loop()
    assert svc._stop.timeouts == [0.0, svc._tick(), svc._tick(), svc._tick()] and svc._tick() >= 1.0
    assert len(passes) == 3
