"""Forecasts kept warm survive a restart and can be configured from the start: the entries asked for through
the API are written to ``<data_dir>/analytics/forecast_warm.json`` (analytics.service.warm_file) and warmed
again by the first warm pass after a start; ``processors.analytics.forecast_warm.preload`` names forecasts
warmed after the scheduler's first pass and kept warm for good (analytics.service.warm_config). Asserted with
fit counts (forecast cache misses), not times."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import analytics.forecast.calibration as calibration
import analytics.service.handlers as handlers
from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig, ForecastWarmSpec, QuerySpec, SchedulerSpec, config_from_dict
from analytics.service.handlers import forecast
from analytics.service.warm import ForecastKey, WarmForecasts
from analytics.service.warm_config import MAX_PRELOAD, PreloadSpec
from analytics.service.warm_file import WarmFile
from hubcore.errors import ConfigError
from hubcore.storage.embedded import EmbeddedStore
from tests.analytics_service.test_svc_forecast_warm import HOURS, NOW, STEP, Clock, _rows

KEY = ForecastKey("acme", "reqs", "2h", 95.0)
LOG = "hub.analytics"


@pytest.fixture(autouse=True)
def _no_memo_left() -> Iterator[None]:
    """The exceedance memo is the process's: what these tests simulated must not answer another file's tests
    (test_svc_forecast_warm counts the simulations of the same data)."""
    yield
    calibration._exceedances.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    st = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    st.start()
    st.append("events", _rows("acme", NOW - HOURS * 3600, NOW, 1, 0))
    assert st.flush(10.0)
    yield st
    st.shutdown()


def _config(preload: list[dict[str, Any]] | None = None, **warm: Any) -> AnalyticsConfig:
    return AnalyticsConfig(
        queries={"reqs": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration",
                                   aggregation="count", group_by=["model"], step="5m")},
        models={},  # no scheduled model: the passes do nothing but the warm work
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="2d")},
        forecast_warm=ForecastWarmSpec(**{"settle": "30s", **warm,
                                          "preload": [PreloadSpec(**p) for p in preload or []]}),
    ).validate()  # fmt: skip


def _service(store: EmbeddedStore, clock: Clock, preload: list[dict[str, Any]] | None = None,
             **warm: Any) -> AnalyticsService:  # fmt: skip
    return AnalyticsService(_config(preload, **warm), store, CollectorRegistry(), clock=clock)


def _fits(svc: AnalyticsService) -> int:
    return svc.forecasts.misses


def _answer(svc: AnalyticsService, horizon: str = "2h") -> dict[str, Any]:
    return forecast(svc, "acme", "reqs", horizon=horizon)


def _file(store: EmbeddedStore) -> Path:
    return Path(store.data_dir) / "analytics" / "forecast_warm.json"


def _metrics(svc: AnalyticsService) -> str:
    return generate_latest(svc.registry).decode()


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG]


# -- the file: a restart warms what was asked before it ------------------------------------------------
def test_a_restart_warms_the_forecasts_asked_for_before_it(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOG)
    before = _service(store, Clock(NOW + 100))
    first = _answer(before)
    assert before.warm_forecasts() == "done" and _fits(before) == 2  # (the same bucket: nothing due)
    saved = json.loads(_file(store).read_text())
    assert saved == {"version": 1, "entries": [{"key": list(KEY), "step_s": STEP, "asked": NOW + 100}]}

    after = _service(store, Clock(NOW + 200))  # a new process: an empty forecast cache
    assert after.warm_forecasts() == "done" and _fits(after) == 2  # refitted at once, no new bucket needed
    assert after.warm.remembered() == [KEY] and "forecast restored warmed" in _messages(caplog)
    again = _answer(after)
    assert _fits(after) == 2 and after.forecasts.hits == 2  # the first call after the restart fits nothing
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    assert 'hub_analytics_forecast_warm_total{result="ok"} 1.0' in _metrics(after)
    assert "hub_analytics_forecast_warm_entries 1.0" in _metrics(after)


def test_restored_entries_keep_when_they_were_asked_and_the_bounds(store: EmbeddedStore) -> None:
    entries = [(KEY._replace(horizon=h), STEP, NOW - ago) for h, ago in (("1h", 1500), ("2h", 900), ("3h", 600),
                                                                          ("4h", 300))]  # fmt: skip
    WarmFile.in_dir(store.data_dir).save(entries)
    svc = _service(store, Clock(NOW), keep="20m", max_entries=2)
    assert svc.load_warm() == 2  # 1h: asked 25 minutes ago, gone; 2h: the least recently asked of three, out
    assert [k[2] for k in svc.warm.remembered()] == ["3h", "4h"]
    assert svc.load_warm() == 0  # once
    svc.clock.t = NOW + 600  # type: ignore[attr-defined]  # 20 minutes after 3h was asked: it expires
    assert [e.key[2] for e in svc.warm.due(NOW + 600)] == ["4h"]


def test_shutdown_writes_what_was_asked_since_the_last_pass(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock)
    svc.start()
    try:
        deadline = time.monotonic() + 30
        while not svc._warm_loaded and time.monotonic() < deadline:  # the scheduler's first warm pass
            time.sleep(0.01)
        assert svc._warm_loaded
        _answer(svc)
    finally:
        svc.shutdown()
    assert [e[0] for e in WarmFile.in_dir(store.data_dir).load()] == [KEY]


def test_a_service_never_started_writes_nothing(store: EmbeddedStore) -> None:
    svc = _service(store, Clock(NOW + 100))
    _answer(svc)
    svc.shutdown()  # (a hub refused at start: the data directory is not its own)
    assert not _file(store).exists()


@pytest.mark.parametrize("content", [
    b"not json", b"\xff\xfe\x00", b"[]", b'{"version": 1, "entries": 5}', b'{"version": 99, "entries": []}',
    b'{"version": 1}',
])  # fmt: skip
def test_a_corrupt_file_is_logged_and_ignored(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    _file(store).parent.mkdir(parents=True, exist_ok=True)
    _file(store).write_bytes(content)
    caplog.set_level(logging.INFO, logger=LOG)
    svc = _service(store, Clock(NOW + 100))
    assert svc.warm_forecasts() == "done" and svc.load_warm() == 0 and len(svc.warm) == 0
    assert "forecast warm file ignored" in _messages(caplog)
    _answer(svc)  # the service works as before, and the next pass writes a good file over it
    assert _fits(svc) == 2 and svc.warm_forecasts() == "done"
    assert [e[0] for e in WarmFile.in_dir(store.data_dir).load()] == [KEY]


def test_entries_that_are_not_forecast_keys_are_skipped(store: EmbeddedStore, caplog: pytest.LogCaptureFixture) -> None:
    good = {"key": list(KEY), "step_s": STEP, "asked": NOW}
    bad = [{"key": ["a b", *list(KEY)[1:]], "step_s": STEP, "asked": NOW},  # not a tenant
           {"key": list(KEY)[:5], "step_s": STEP, "asked": NOW}, {"key": list(KEY), "step_s": 0, "asked": NOW},
           {"key": list(KEY), "step_s": STEP, "asked": "now"}, {"key": [*list(KEY)[:3], "95", *list(KEY)[4:]]},
           "entry", {"key": list(KEY._replace(horizon="3h")), "step_s": True, "asked": NOW}]  # fmt: skip
    path = _file(store)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "entries": [*bad, good]}))
    path.with_name(path.name + ".tmp").write_bytes(b"half a fi")  # what a crash before the rename left
    caplog.set_level(logging.INFO, logger=LOG)
    svc = _service(store, Clock(NOW + 100))
    assert svc.load_warm() == 1 and svc.warm.remembered() == [KEY]
    record = next(r for r in caplog.records if r.getMessage() == "forecast warm file: entries ignored")
    assert record.ignored == len(bad)  # type: ignore[attr-defined]
    assert not path.with_name(path.name + ".tmp").exists()


# -- preload: configured forecasts, warm from the start ------------------------------------------------
def test_preload_is_warmed_in_the_scheduler_thread_and_the_first_call_fits_nothing(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    threads: list[str] = []
    real = handlers._forecast

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers, "_forecast", recorded)
    caplog.set_level(logging.INFO, logger=LOG)
    svc = _service(store, Clock(NOW + 100), [{"query": "reqs", "horizon": "2h", "tenant": "acme"}])
    assert len(svc.warm) == 0  # nothing at construction
    svc.start()
    try:
        deadline = time.monotonic() + 30
        while svc.m_warm.labels("ok")._value.get() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        svc.shutdown()
    assert threads == ["hub-analytics"] and _fits(svc) == 2
    record = next(r for r in caplog.records if r.getMessage() == "forecast preload warmed")
    assert (record.tenant, record.query, record.horizon, record.series) == ("acme", "reqs", "2h", 2)  # type: ignore[attr-defined]
    assert record.interval_level == 95.0 and record.levelname == "INFO"  # type: ignore[attr-defined]
    _answer(svc)  # the first API call: answered from the cache
    assert _fits(svc) == 2 and svc.forecasts.hits == 2
    text = _metrics(svc)
    assert 'hub_analytics_forecast_warm_total{result="ok"} 1.0' in text
    assert "hub_analytics_forecast_warm_entries 1.0" in text
    assert not _file(store).exists()  # (a preload never asked through the API is the config's, not the file's)


def test_preload_entries_stay_warm_unbounded_and_unexpired(store: EmbeddedStore) -> None:
    clock = Clock(NOW + 100)
    svc = _service(store, clock, [{"query": "reqs", "horizon": "2h", "tenant": "acme"}], keep="20m", max_entries=1)
    assert svc.warm_forecasts() == "done" and _fits(svc) == 2
    _answer(svc, "1h")
    _answer(svc, "3h")  # max_entries 1: 1h goes, the preload stays
    assert [k[2] for k in svc.warm.remembered()] == ["2h", "3h"] and _fits(svc) == 6
    assert [e[0] for e in svc.warm.snapshot()] == [KEY._replace(horizon="3h")]  # (the preload is not written)
    store.append("events", _rows("acme", NOW, NOW + STEP, 1, 0))
    assert store.flush(10.0)
    clock.t = NOW + 100 + 3600  # an hour later: the asked one expired, the preload did not and is refitted
    assert svc.warm_forecasts() == "done" and svc.warm.remembered() == [KEY] and _fits(svc) == 8
    _answer(svc)  # asked through the API too: still pinned when that ask is an hour old
    clock.t += 3600
    assert svc.warm_forecasts() == "done" and svc.warm.remembered() == [KEY]


def test_a_preload_refused_at_warm_time_stays_and_is_logged(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    svc = _service(store, Clock(NOW + 100), [{"query": "reqs", "horizon": "2h", "tenant": "acme"}])
    assert svc.load_warm() == 1
    svc.config.queries.pop("reqs")  # (the request would now be a 422)
    caplog.set_level(logging.INFO, logger=LOG)
    assert svc.warm_forecasts() == "done" and svc.warm.remembered() == [KEY]
    assert "forecast preload refused" in _messages(caplog)
    assert 'hub_analytics_forecast_warm_total{result="error"} 1.0' in _metrics(svc)
    assert svc.warm_forecasts() == "done"  # not again before the query's next bucket
    assert 'hub_analytics_forecast_warm_total{result="error"} 1.0' in _metrics(svc)


def test_disabled_reads_and_writes_no_file_and_warms_no_preload(store: EmbeddedStore) -> None:
    WarmFile.in_dir(store.data_dir).save([(KEY, STEP, NOW)])
    svc = _service(store, Clock(NOW + 100), [{"query": "reqs", "horizon": "2h", "tenant": "acme"}], enabled=False)
    assert svc.warm_forecasts() == "done" and len(svc.warm) == 0 and _fits(svc) == 0
    assert WarmFile.in_dir(store.data_dir).load() == [(KEY, STEP, NOW)]


def test_preload_defaults_and_the_key_of_the_same_api_call() -> None:
    cfg = config_from_dict({"forecast_warm": {"preload": [{"query": "requests_rate"},
                                                          {"query": "cost_usd_hourly", "horizon": 48, "step": "1h",
                                                           "level": 80, "tenant": "acme"}]}})  # fmt: skip
    keys = [p.key() for p in cfg.forecast_warm.preload]
    assert keys == [ForecastKey("default", "requests_rate", "7d", 95.0),
                    ForecastKey("acme", "cost_usd_hourly", "48", 80.0, step="1h")]  # fmt: skip
    # what handlers.forecast remembers a GET /forecast?query=requests_rate under (the route's defaults)
    assert keys[0] == ("default", "requests_rate", "7d", 95.0, None, None, None, None, None)


PRELOAD = "processors.analytics.forecast_warm.preload"


@pytest.mark.parametrize(("entry", "key", "words"), [
    ({"query": "nope", "horizon": "7d"}, f"{PRELOAD}.0.query", "unknown query 'nope'"),
    ({"query": "requests_rate", "horizon": "soon"}, f"{PRELOAD}.0.horizon", "must be a duration"),
    ({"query": "requests_rate", "horizon": "0"}, f"{PRELOAD}.0.horizon", "at least one step"),
    ({"query": "requests_rate", "horizon": "30s"}, f"{PRELOAD}.0.horizon", "shorter than one step"),
    ({"query": "cost_usd_hourly", "horizon": "90m"}, f"{PRELOAD}.0.horizon", "not a whole number of steps"),
    ({"query": "requests_rate", "horizon": "30d", "step": "1m"}, f"{PRELOAD}.0.horizon", "too long"),
    ({"query": "requests_rate", "step": "7m"}, f"{PRELOAD}.0.step", "must be one of 1m, 5m"),
    ({"query": "requests_rate", "tenant": "a b"}, f"{PRELOAD}.0.tenant", "letters, digits"),
    ({"query": "requests_rate", "tenant": "*"}, f"{PRELOAD}.0.tenant", "letters, digits"),
    ({"query": "requests_rate", "level": 100}, f"{PRELOAD}.0.level", "between 0 and 100"),
    ({"query": "requests_rate", "horizn": "7d"}, "processors.analytics", "unknown field `horizn`"),
    ({"horizon": "7d"}, "processors.analytics", "missing required field `query`"),
    ({"query": "requests_rate", "horizon": True}, "processors.analytics", "preload[0].horizon"),
])  # fmt: skip
def test_bad_preload_entries_name_their_key(entry: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"forecast_warm": {"preload": [entry]}})
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_preload_list_errors_name_their_key() -> None:
    same = [{"query": "requests_rate", "horizon": "7d"}, {"query": "requests_rate"}]
    with pytest.raises(
        ConfigError, match=r"the same forecast as processors\.analytics\.forecast_warm\.preload\.0"
    ) as err:
        config_from_dict({"forecast_warm": {"preload": same}})
    assert err.value.key == f"{PRELOAD}.1"
    many = [{"query": "requests_rate", "horizon": f"{h}h"} for h in range(1, MAX_PRELOAD + 2)]
    with pytest.raises(ConfigError, match=f"at most {MAX_PRELOAD} entries") as err:
        config_from_dict({"forecast_warm": {"preload": many}})
    assert err.value.key == PRELOAD
    with pytest.raises(ConfigError) as err:
        config_from_dict({"forecast_warm": {"preload": {"query": "requests_rate"}}})
    assert err.value.key == "processors.analytics" and "preload" in str(err.value)


def test_warm_forecasts_unit_pin_restore_snapshot() -> None:
    warm = WarmForecasts(keep_s=3600, max_entries=1, settle_s=30)
    warm.pin(("p",), 300, lambda: None)
    assert [e.key for e in warm.due(1000.0)] == [("p",)]  # due at once
    warm.computed(("p",), 1000.0)
    assert warm.due(1000.0) == [] and warm.snapshot() == []
    version = warm.version
    assert warm.restore([(("a",), 300, 900.0, lambda: None), (("b",), 300, 950.0, lambda: None),
                         (("c",), 300, -3000.0, lambda: None)], now=1000.0) == 1  # fmt: skip
    assert warm.remembered() == [("p",), ("b",)] and warm.version > version  # c expired; a beyond max_entries
    assert [e.key for e in warm.due(1000.0)] == [("b",)]  # restored: due at once
    warm.remember(("b",), 300, 1100.0, lambda: None)
    assert warm.restore([(("b",), 300, 950.0, lambda: None)], now=1100.0) == 0  # held: the later ask stays
    assert warm.snapshot() == [(("b",), 300, 1100.0)]
    with pytest.raises(ValueError, match="step_s"):
        warm.pin(("q",), 0, lambda: None)
