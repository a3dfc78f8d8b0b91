"""Incidents across a hub restart: the streaming engine's memory of recent incidents is rebuilt from the
stored ``incidents`` and ``correlations`` tables, so an incident found again after a restart keeps its id and
its earlier correlations (the new process had started with an empty memory and made a second incident, or
replaced the stored one with only what it saw since). Each test stores with one engine, closes the store,
opens the same data directory again and goes on with a new engine."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

import analytics.correlation.engine as engine_module
from analytics.correlation import CorrelationEngine, build_frame
from analytics.correlation.model import Correlation
from analytics.correlation.persist import CorrelationRepository
from analytics.correlation.scenarios import Dims, _Builder
from api.errors import install_error_handlers
from api.routers import correlations
from api.state import SecurityContext
from hubcore.storage.embedded import EmbeddedStore
from tests.correlation._data import T0, process

S = 1_000_000
MODEL = {"model": "m-1"}


def _events() -> tuple[pd.DataFrame, list[str]]:
    """Latency events of one model, one per second from T0 (ids in time order)."""
    b = _Builder(np.random.default_rng(1), Dims.pick(np.random.default_rng(1), 2))
    ids = [b.telemetry(T0 + k, 40_000.0 if k % 2 else 500.0, severity="warning" if k % 2 else None,
                       corr=f"req-{k}") for k in range(200)]  # fmt: skip
    return build_frame(process(b.events)), ids


DF, IDS = _events()


def _corr(ctype: str, first: int, last: int, dims: dict[str, str], key: str, tenant: str = "t1") -> Correlation:
    t0 = int(T0 * S)
    return Correlation.build(ctype, tenant, IDS[first : last + 1], ["llm-observatory"], 0.8, f"{ctype} {key}",
                             t0 + first * S, t0 + last * S, key=key, root_event_id=IDS[first], dimensions=dims)  # fmt: skip


@contextmanager
def _hub(data_dir: Path, monkeypatch: pytest.MonkeyPatch, windows: list[list[Correlation]]) -> Iterator[Any]:
    """A store over ``data_dir`` and an engine whose detectors find ``windows`` (one list per analysis)."""
    queue = list(windows)
    monkeypatch.setattr(engine_module, "detect_all", lambda *a, **k: [Correlation(**{
        f: getattr(c, f) for f in Correlation.__slots__}) for c in queue.pop(0)])  # fmt: skip
    store = EmbeddedStore(data_dir, wal_fsync=False, flush_interval=0.02)
    store.start()
    try:
        engine = CorrelationEngine(store, export=False)
        engine.start()
        yield engine
    finally:
        store.shutdown()


def _run(engine: CorrelationEngine, tenant: str = "t1") -> Any:
    return engine.analyze_frame(DF, tenant, store_results=True)


def _stored(engine: CorrelationEngine, tenant: str = "t1") -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """The tenant's stored incidents, and each stored correlation's incident id."""
    assert engine.repo is not None
    corrs = engine.repo.list_correlations(tenant, None, None, None)
    return engine.repo.list_incidents(tenant), {c["id"]: c["incident_id"] for c in corrs}


def test_an_earlier_rooted_correlation_joining_after_a_restart_keeps_the_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    trend = _corr("temporal", 5, 15, {}, "trend")  # the same degradation's trend, rooted earlier
    with _hub(tmp_path, monkeypatch, [[latency]]) as before:
        (first,) = _run(before).incidents
    with _hub(tmp_path, monkeypatch, [[latency, trend]]) as after:
        (again,) = _run(after).incidents
        # its id followed the earliest root: the restarted engine had renamed the incident
        assert again.id == first.id and sorted(again.types) == ["anomaly", "temporal"]
        incidents, owner = _stored(after)
        assert [i["id"] for i in incidents] == [first.id]
        assert owner == {latency.id: first.id, trend.id: first.id}


def test_the_degradation_found_again_after_a_restart_keeps_the_incident_and_its_correlations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    # after the restart, 20 s after the latency anomaly, the same model's cost signal: no shared event
    cost = _corr("performance_degradation", 40, 50, {**MODEL, "component": "llm-observatory"}, "cost")
    with _hub(tmp_path, monkeypatch, [[latency]]) as before:
        (first,) = _run(before).incidents
    with _hub(tmp_path, monkeypatch, [[cost], [cost]]) as after:
        res = _run(after)
        (again,) = res.incidents
        assert again.id == first.id  # it had been a new incident holding the cost correlation alone
        assert set(again.correlation_ids) == {latency.id, cost.id}
        assert set(IDS[10:21]) <= set(again.event_ids) and again.start_us == latency.start_us
        assert res.hypotheses[again.id]
        incidents, owner = _stored(after)
        assert [i["id"] for i in incidents] == [first.id]
        assert set(incidents[0]["correlation_ids"]) == {latency.id, cost.id}
        assert owner == {latency.id: first.id, cost.id: first.id}
        (still,) = _run(after).incidents  # and from then on, as within one run
        assert still.id == first.id and set(still.correlation_ids) == {latency.id, cost.id}


def test_a_new_correlation_of_the_same_root_does_not_replace_the_stored_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    pattern = _corr("pattern", 10, 14, {}, "retries")  # rooted at the same event: the same incident id
    with _hub(tmp_path, monkeypatch, [[latency]]) as before:
        (first,) = _run(before).incidents
    with _hub(tmp_path, monkeypatch, [[pattern]]) as after:
        (again,) = _run(after).incidents
        assert again.id == first.id and set(again.correlation_ids) == {latency.id, pattern.id}
        (stored,), _ = _stored(after)
        assert set(stored["correlation_ids"]) == {latency.id, pattern.id}  # it had held the pattern only


def test_tenants_are_kept_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _corr("anomaly", 10, 20, MODEL, "lat")
    theirs = _corr("performance_degradation", 40, 50, MODEL, "cost", tenant="t2")  # same model, just after
    with _hub(tmp_path, monkeypatch, [[mine]]) as before:
        (first,) = _run(before).incidents
    with _hub(tmp_path, monkeypatch, [[theirs]]) as after:
        (other,) = _run(after, "t2").incidents
        assert other.id != first.id and other.correlation_ids == [theirs.id]
        assert [i["id"] for i in _stored(after, "t2")[0]] == [other.id]
        assert _stored(after, "t1")[0][0]["correlation_ids"] == [mine.id]  # t1's incident untouched
        assert all(t == "t2" for t, _ in after._incidents)  # nothing of t1 read into memory


def test_what_is_read_back_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # four separate stored incidents (one model each, ending one after the other), all close to what comes next
    olds = [_corr("anomaly", 10 + 5 * k, 12 + 5 * k, {"model": f"m-{k}"}, f"old-{k}") for k in range(4)]
    with _hub(tmp_path, monkeypatch, [[c] for c in olds]) as before:
        firsts = [_run(before).incidents[0] for _ in olds]
    assert len({i.id for i in firsts}) == 4
    monkeypatch.setattr(engine_module, "MAX_RESTORED_INCIDENTS", 2)
    monkeypatch.setattr(engine_module, "MAX_RESTORED_CORRELATIONS", 1)  # of the latest ending first
    near_first = _corr("performance_degradation", 30, 33, {"model": "m-0"}, "cost-0")
    near_last = _corr("performance_degradation", 35, 38, {"model": "m-3"}, "cost-3")
    with _hub(tmp_path, monkeypatch, [[near_first, near_last]]) as after:
        res = _run(after)
        # only the two incidents that ended last were read back (one correlation of theirs): m-0's is not continued
        assert len(after._incidents) <= 2 + len(res.incidents) and set(after._recent) == {
            olds[3].id, near_first.id, near_last.id}  # fmt: skip
        by_model = {after._recent[i.correlation_ids[0]].dimensions["model"]: i for i in res.incidents}
        assert by_model["m-3"].id == firsts[3].id and set(by_model["m-3"].correlation_ids) == {olds[3].id, near_last.id}
        assert by_model["m-0"].id != firsts[0].id and by_model["m-0"].correlation_ids == [near_first.id]


def test_an_unreadable_stored_incident_is_logged_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    other = _corr("anomaly", 60, 65, {"model": "m-2"}, "other")  # another incident, stored next to it
    cost = _corr("performance_degradation", 40, 50, MODEL, "cost")
    with _hub(tmp_path, monkeypatch, [[latency], [other]]) as before:
        (first,) = _run(before).incidents
        (broken,) = _run(before).incidents
        assert broken.id != first.id
        cur = before.store.cursor()  # type: ignore[union-attr]
        cur.execute("UPDATE incidents SET correlation_ids = 'not json', impact = '{' WHERE id = ?", [broken.id])
    with _hub(tmp_path, monkeypatch, [[cost]]) as after, caplog.at_level(logging.WARNING):
        (again,) = _run(after).incidents  # no exception: the readable incident is continued
        assert again.id == first.id and set(again.correlation_ids) == {latency.id, cost.id}
        assert any(broken.id in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
        rows = after.store.read("SELECT id, correlation_ids FROM incidents WHERE tenant_id = 't1'").fetchall()  # type: ignore[union-attr]
        assert dict(rows)[broken.id] == "not json" and len(rows) == 2  # nothing deleted: the broken row is kept
        owner = {c["id"]: c["incident_id"] for c in after.repo.list_correlations("t1", None, None, None)}  # type: ignore[union-attr]
        assert owner == {latency.id: first.id, cost.id: first.id, other.id: broken.id}


def test_a_store_that_cannot_answer_is_logged_and_the_analysis_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    cost = _corr("performance_degradation", 40, 50, MODEL, "cost")
    with _hub(tmp_path, monkeypatch, [[latency]]) as before:
        _run(before)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise duckdb.IOException("IO Error: could not read block")

    monkeypatch.setattr(CorrelationRepository, "load_incidents", fail)
    with _hub(tmp_path, monkeypatch, [[cost]]) as after, caplog.at_level(logging.WARNING):
        (inc,) = _run(after).incidents  # analysed and stored as before this change: a new incident
        assert inc.correlation_ids == [cost.id]
        assert any("could not read back" in r.getMessage() for r in caplog.records)
        assert _stored(after)[1][cost.id] == inc.id


def test_incidents_stored_before_the_evidence_column_are_continued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data directory of a release before the correlations' ``evidence`` column (the one change to the tables)."""
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    cost = _corr("performance_degradation", 40, 50, MODEL, "cost")
    with _hub(tmp_path, monkeypatch, [[latency]]) as before:
        (first,) = _run(before).incidents
        cur = before.store.cursor()  # type: ignore[union-attr]
        cur.execute("ALTER TABLE correlations DROP COLUMN evidence")
    with _hub(tmp_path, monkeypatch, [[cost]]) as after:  # start() adds the column back, empty
        (again,) = _run(after).incidents
        assert again.id == first.id and set(again.correlation_ids) == {latency.id, cost.id}


def test_the_incidents_api_lists_the_earlier_incidents_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = _corr("anomaly", 10, 20, MODEL, "lat")
    cost = _corr("performance_degradation", 40, 50, MODEL, "cost")
    separate = _corr("anomaly", 150, 160, {"model": "m-9"}, "later")
    with _hub(tmp_path, monkeypatch, [[latency], [separate]]) as before:
        (first,) = _run(before).incidents
        (second,) = _run(before).incidents
    with _hub(tmp_path, monkeypatch, [[cost]]) as after:
        app = FastAPI()
        app.state.hub = SimpleNamespace(security=SecurityContext.open("t1"), default_tenant="t1", store=after.store,
                                        metrics=SimpleNamespace(registry=CollectorRegistry()))  # fmt: skip
        app.state.correlation_engine = after
        install_error_handlers(app)
        app.include_router(correlations.router)
        client = TestClient(app)
        listed = client.get("/api/v1/incidents").json()["incidents"]
        assert {i["id"] for i in listed} == {first.id, second.id}  # read from the store: there before the restart
        _run(after)
        listed = client.get("/api/v1/incidents").json()["incidents"]
        assert {i["id"]: sorted(i["correlation_ids"]) for i in listed} == {
            first.id: sorted([latency.id, cost.id]), second.id: [separate.id]}  # fmt: skip
        rca = client.get(f"/api/v1/incidents/{first.id}/rca")
        assert rca.status_code == 200 and rca.json()["hypotheses"]
        missing = client.get("/api/v1/incidents/0123456789abcdef")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
