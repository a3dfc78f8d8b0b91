"""evaluate_budget: one bucket convention end to end (start-labelled hours, an exclusive period end, the
current hour counted once) and an overspent budget's forecast and historic exhaustion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.forecast.cache import ForecastCache
from analytics.service.budgets import Budget, evaluate_budget
from hubcore.storage.embedded import EmbeddedStore
from tests.alerting.conftest import add_events


def _t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


START = _t("2026-11-24T10:00:00")  # 72 hours of 1 USD (one event at each half hour) up to 11-27 10:00
NOW = _t("2026-11-27T10:15:00")  # and 0.25 USD at 10:05, in the current, incomplete hour


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data", wal_fsync=False, flush_interval=0.01)
    s.start()
    rows = [{"ts": START + h * 3600 + 1800, "event_type": "cost", "name": "usage", "value": 1.0} for h in range(72)]
    rows.append({"ts": NOW - 600, "event_type": "cost", "name": "usage", "value": 0.25})
    add_events(s, rows)
    yield s
    s.shutdown()


def _budget(amount: float, end: str = "2026-11-27T20:00:00Z", start: float = START) -> Budget:
    body = {"name": "b", "amount": amount, "period": "custom", "team": "search", "start": start, "end": end,
            "alert_within_days": 1}  # fmt: skip
    return Budget.from_body(body, "acme")


def test_the_forecast_covers_the_time_left_and_the_crossing_is_not_an_hour_early(store: EmbeddedStore) -> None:
    st = evaluate_budget(store, _budget(80.0), now_s=NOW)
    assert st["method"] == "forecast" and st["spent_to_date"] == pytest.approx(72.25)
    # 9.75 h left at 1 USD/h: 82.0 (it was 83.25: 11 whole hours 10:00..20:00 on top of the 0.25 spent)
    assert st["forecast_total"] == pytest.approx(82.0, abs=0.05)
    assert st["forecast_total_lower"] <= st["forecast_total"] <= st["forecast_total_upper"]
    # 7.75 USD left at 10:15: spent at 18:00 (it was reported at 17:00)
    assert abs(st["exhaustion_timestamp_seconds"] - _t("2026-11-27T18:00:00")) < 120, st["exhaustion"]
    assert st["exhausted"] is False and st["alert"] is True


def test_an_overspent_budget_forecasts_the_overrun_and_keeps_its_exhaustion_time(store: EmbeddedStore) -> None:
    budget = _budget(50.0)
    first = evaluate_budget(store, budget, now_s=NOW)
    later = evaluate_budget(store, budget, now_s=NOW + 600)
    for st in (first, later):
        assert st["exhausted"] is True and st["method"] == "forecast", st
        # the 50th hour (11-26 11:00 .. 12:00) brought the total to 50
        assert st["exhaustion"] == "2026-11-26T12:00:00Z"
        assert st["exhaustion_earliest"] == st["exhaustion_latest"] == st["exhaustion"]
        assert st["probability_exhausted"] == 1.0 and st["alert"] is True
    # the overrun is forecast to the period end (it was frozen at the 72.25 spent)
    assert first["forecast_total"] == pytest.approx(82.0, abs=0.05)
    assert later["forecast_total"] == pytest.approx(72.25 + 9.58, abs=0.05)


def test_an_overspent_budget_with_a_few_hours_of_spend_is_extrapolated(store: EmbeddedStore) -> None:
    # 10 hours into the data (too few for the forecast): the straight line, and the historic exhaustion
    now = START + 10 * 3600 + 900
    budget = _budget(5.0, end="2026-11-26T10:00:00Z")
    for t in (now, now + 600):
        st = evaluate_budget(store, budget, now_s=t)
        assert st["method"] == "linear" and st["exhausted"] is True and st["spent_to_date"] == pytest.approx(10.0)
        assert st["exhaustion"] == "2026-11-24T15:00:00Z"  # the end of the fifth hour, 14:00 .. 15:00
        assert st["forecast_total"] > 40.0  # about 1 USD/h to the period end, not frozen at the 10 spent


def test_a_cached_forecast_gives_the_same_answer_until_the_spend_changes(store: EmbeddedStore) -> None:
    # each evaluation fitted the ensemble again (~40 ms a budget, every GET): within the hour, with no new
    # spend in a complete hour, the hourly series, horizon and config are the same
    budget = _budget(80.0)
    cache = ForecastCache()
    for t in (NOW, NOW + 600):  # two times in the same hour: the answer moves with the time, not the cache
        plain = evaluate_budget(store, budget, now_s=t)
        assert evaluate_budget(store, budget, now_s=t, cache=cache) == plain
        assert evaluate_budget(store, budget, now_s=t, cache=cache) == plain
    assert cache.stats()["misses"] == 1 and cache.stats()["hits"] == 3
    add_events(store, [{"ts": START + 5 * 3600 + 60, "event_type": "cost", "name": "usage", "value": 3.0}])  # late
    changed = evaluate_budget(store, budget, now_s=NOW, cache=cache)
    assert changed == evaluate_budget(store, budget, now_s=NOW) and cache.stats()["misses"] == 2
    assert changed["spent_to_date"] == pytest.approx(75.25)
