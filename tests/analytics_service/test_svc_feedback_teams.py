"""Anomaly feedback per team: a team's false-positive mark retunes its own series only, a query-wide mark
(``scope="query"``, or a series naming no team) every series; undo per team; the per-query files of
earlier releases load as the query-wide state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.anomaly import FeedbackState
from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec
from analytics.service.feedback import FeedbackStore, mark_time_iso, state_answer
from analytics.service.models import run_anomaly
from analytics.service.series import Series
from hubcore.errors import InvalidParameter
from hubcore.security.rbac import ForbiddenError
from hubcore.storage.embedded import EmbeddedStore
from hubcore.times import iso_s

T0 = 1_700_000_100 // 3600 * 3600
HOURS = 24
NOW = float(T0 + HOURS * 3600)
SPIKE = float(T0 + 18 * 3600)  # the same spike in every team's series, six hours before NOW
QUERY = "latency_by_team"


def _config() -> AnalyticsConfig:
    return AnalyticsConfig(
        # one request per team and bucket: scored without a floor (a p95's default min_samples is 20)
        queries={QUERY: QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                                  aggregation="p95", group_by=["team"], step="5m", min_samples=0)},
        models={"anomaly": ModelSpec(model_class="anomaly", params={"detectors": ["robust"], "min_periods": 30})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="1d")},
    ).validate()  # fmt: skip


def _add_latency(store: EmbeddedStore, teams: tuple[str, ...]) -> None:
    """One request per team every 5 minutes for a day (~800 ms), and a 20 s spike at :data:`SPIKE`."""
    rng = np.random.default_rng(5)
    cols: dict[str, list[Any]] = {k: [] for k in ("tenant_id", "ts", "event_type", "name", "value", "status",
                                                  "team", "payload", "event_id")}  # fmt: skip
    for i in range(HOURS * 12):
        t = T0 + i * 300 + 60
        for team in teams:
            value = 20_000.0 if t - 60 == SPIKE else float(rng.normal(800, 20))
            for k, v in (("tenant_id", "default"), ("ts", int(t * 1e6)), ("event_type", "telemetry"),
                         ("name", "gen_ai.client.operation.duration"), ("value", value), ("status", "ok"),
                         ("team", team), ("payload", "{}"), ("event_id", f"{team}-{i}")):  # fmt: skip
                cols[k].append(v)
    store.append("events", cols)
    assert store.flush(10.0)


@contextmanager
def two_teams_service(tmp_path: Path) -> Iterator[AnalyticsService]:
    """A service over two teams' latency series (``ml``, ``search``) with one spike each, at ``NOW``."""
    store = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.01)
    store.start()
    try:
        _add_latency(store, ("ml", "search"))
        service = AnalyticsService(_config(), store, clock=lambda: NOW)
        yield service
        service.shutdown()
    finally:
        store.shutdown()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[AnalyticsService]:
    with two_teams_service(tmp_path) as service:
        yield service


def _scores(svc: AnalyticsService) -> dict[str, dict[float, tuple[float, bool]]]:
    """Per team, the anomalous points of the last run: ``{ts: (score, is_alert)}``."""
    out: dict[str, dict[float, tuple[float, bool]]] = {"ml": {}, "search": {}}
    for r in svc.repo.list_anomalies("default", start_s=T0, end_s=NOW + 1, query=QUERY, limit=10_000):
        ts = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
        out[r["labels"]["team"]][ts] = (round(r["anomaly_score"], 6), bool(r["is_alert"]))
    return out


def _spike_id(svc: AnalyticsService, team: str) -> str:
    rows = svc.repo.list_anomalies("default", start_s=SPIKE, end_s=SPIKE + 1, query=QUERY, limit=10)
    return next(r["id"] for r in rows if r["labels"]["team"] == team)


def test_a_teams_mark_leaves_the_other_teams_series_as_they_were(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    before = _scores(svc)
    assert SPIKE in before["ml"] and SPIKE in before["search"]  # both spikes are anomalies
    out = svc.mark_false_positive("default", _spike_id(svc, "ml"))
    assert (out["team"], out["scope"]) == ("ml", "team")
    after = _scores(svc)
    assert after["search"] == before["search"]  # team search's scores and alerts are untouched
    assert after["ml"].get(SPIKE, (0.0, False))[0] < before["ml"][SPIKE][0]  # team ml's spike is quieter
    assert svc.feedback.load("default", QUERY).history == [] and svc.feedback.teams("default", QUERY) == ["ml"]
    view = svc.feedback_state("default", QUERY)
    assert (view["team"], view["marks"], view["teams"]) == (None, 0, {"ml": 1})
    mine = svc.feedback_state("default", QUERY, "ml")
    assert (mine["team"], mine["marks"], mine["query_marks"]) == ("ml", 1, 0)
    assert mine["feedback"]["ensemble_threshold"] > 1 and svc.feedback_state("default", QUERY, "search")["marks"] == 0
    # the next scheduled pass scores each team with its own state too
    svc.run_once(NOW + 60, force=True)
    assert _scores(svc)["search"] == before["search"]


def test_a_query_wide_mark_still_teaches_every_team(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    before = _scores(svc)
    svc.mark_false_positive("default", _spike_id(svc, "search"))  # search's own state first
    out = svc.mark_false_positive("default", _spike_id(svc, "ml"), scope="query")
    assert (out["team"], out["scope"]) == (None, "query")
    assert len(svc.feedback.load("default", QUERY).history) == 1 and svc.feedback.teams("default", QUERY) == ["search"]
    after = _scores(svc)
    for team in ("ml", "search"):  # a team with marks of its own learns the query-wide ones too
        assert after[team].get(SPIKE, (0.0, False))[0] < before[team][SPIKE][0], team
    assert svc.feedback_state("default", QUERY, "search")["query_marks"] == 1


def test_undo_takes_back_one_teams_mark_only(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    before = _scores(svc)
    ml, search = _spike_id(svc, "ml"), _spike_id(svc, "search")
    svc.mark_false_positive("default", ml)
    svc.mark_false_positive("default", search)
    quieter = _scores(svc)
    undone = svc.undo_false_positive("default", ml, query_wide=False)
    assert (undone["team"], undone["removed_marks"], undone["feedback"]["history"]) == ("ml", 1, [])
    assert svc.feedback.teams("default", QUERY) == ["search"]  # ml's series fall back to the query-wide state
    after = _scores(svc)
    assert after["ml"] == before["ml"] and after["search"] == quieter["search"]
    with pytest.raises(Exception, match="no false-positive mark"):
        svc.undo_false_positive("default", ml)
    # a query-wide mark of a team's series is not undone by a caller limited to that team
    svc.mark_false_positive("default", ml, scope="query")
    with pytest.raises(ForbiddenError, match="query-wide"):
        svc.undo_false_positive("default", ml, query_wide=False)
    assert svc.undo_false_positive("default", ml)["removed_marks"] == 1
    assert svc.feedback.load("default", QUERY).history == []
    assert svc.reset_feedback("default", QUERY, "search") == {"query": QUERY, "team": "search", "removed_marks": 1}
    assert _scores(svc) == before


def test_feedback_answers_give_mark_times_in_iso_8601_utc(svc: AnalyticsService) -> None:
    # they were pandas' naive form ("2023-11-14 22:00:00"), unlike every other time the API answers
    svc.run_once(NOW, force=True)
    aid = _spike_id(svc, "ml")
    marked = svc.mark_false_positive("default", aid)
    assert [h["timestamp"] for h in marked["feedback"]["history"]] == [iso_s(SPIKE)]
    for view in (svc.feedback_state("default", QUERY, "ml"), svc.feedback_state("default", QUERY)):
        assert all(h["timestamp"].endswith("Z") for h in view["feedback"]["history"])
    [mark] = svc.feedback_state("default", QUERY, "ml")["marked"]
    assert mark["timestamp"] == iso_s(SPIKE) and aid in mark["anomaly_ids"].values()
    # the file keeps the form every release wrote (and reads), and undo still finds the mark by it
    saved = json.loads(svc.feedback.path("default", QUERY, "ml").read_text())
    assert [h["timestamp"] for h in saved["history"]] == ["2023-11-15 16:00:00"]
    assert svc.undo_false_positive("default", aid)["removed_marks"] == 1


def test_a_state_written_by_an_earlier_release_is_answered_in_iso_8601() -> None:
    state = FeedbackState()
    state.record_false_positive("2023-11-14 22:00:00", {"robust": 4.0}, 4.0, None, '{"team":"ml"}')
    loaded = FeedbackState.from_json(state.to_json())
    assert state_answer(loaded)["history"][0]["timestamp"] == "2023-11-14T22:00:00Z"
    assert loaded.history[0].timestamp == "2023-11-14 22:00:00"  # the state itself is left as it was stored
    assert mark_time_iso("2023-11-14T22:00:00.25+01:00") == "2023-11-14T21:00:00.250000Z"


def test_the_per_query_file_of_earlier_releases_loads_as_the_query_wide_state(tmp_path: Path) -> None:
    old = FeedbackState()
    old.record_false_positive("2023-11-14 22:00:00", {"robust": 4.0}, 4.0, None, '{"team":"ml"}')
    path = tmp_path / "analytics" / "feedback" / "acme" / f"{QUERY}.json"
    path.parent.mkdir(parents=True)
    # written as the releases with one state per query wrote it
    path.write_text(json.dumps({"detectors": {"robust": {"weight": 0.7, "threshold": 4.2, "false_positives": 1}},
                                "ensemble_threshold": 4.2, "history": [
                                    {"timestamp": "2023-11-14 22:00:00", "detector": None,
                                     "detector_scores": {"robust": 4.0}, "ensemble_score": 4.0,
                                     "series": '{"team":"ml"}'}]}))  # fmt: skip
    store = FeedbackStore(tmp_path)
    assert store.load("acme", QUERY) == old and store.teams("acme", QUERY) == []
    # every team's series is scored with it until a team marks its own
    assert store.effective("acme", QUERY, "search") == old and store.effective("acme", QUERY, None) == old
    ml = store.load("acme", QUERY, "ml")
    ml.record_false_positive("2023-11-14 23:00:00", {"robust": 2.0}, 2.0, None, '{"team":"ml"}')
    store.save("acme", QUERY, ml, "ml")
    assert path.is_file() and FeedbackState.from_json(path.read_text()) == old  # the old file is kept as it was
    mine = FeedbackStore(tmp_path).effective("acme", QUERY, "ml")  # read back from disk
    assert [h.timestamp for h in mine.history] == ["2023-11-14 22:00:00", "2023-11-14 23:00:00"]
    assert mine.ensemble_threshold > old.ensemble_threshold


def test_team_files_keep_unsafe_names_apart_and_an_empty_state_falls_back(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    for team in ("a/b", "a_b", "..", "ml"):
        state = FeedbackState()
        state.record_false_positive("t", {"robust": 2.0}, 2.0, None, team)
        store.save("acme", QUERY, state, team)
    assert store.teams("acme", QUERY) == ["..", "a/b", "a_b", "ml"]
    assert len({store.path("acme", QUERY, t) for t in ("a/b", "a_b", "..")}) == 3
    assert all(p.parent.name == f"{QUERY}.teams" for p in (store.path("acme", QUERY, t) for t in ("a/b", "..")))
    store.save("acme", QUERY, FeedbackState(), "ml")  # no marks left: the team's file goes
    assert not store.path("acme", QUERY, "ml").exists() and store.teams("acme", QUERY) == ["..", "a/b", "a_b"]
    again = FeedbackStore(tmp_path)  # read back from disk
    assert again.teams("acme", QUERY) == ["..", "a/b", "a_b"] and len(again.load("acme", QUERY, "a/b").history) == 1


def test_bad_scope_and_team_are_refused(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    aid = _spike_id(svc, "ml")
    with pytest.raises(InvalidParameter, match="scope: must be"):
        svc.mark_false_positive("default", aid, scope="everyone")
    for team, needle in (("", "team: must be"), ("x" * 201, "team: must be")):
        with pytest.raises(InvalidParameter, match=needle):
            svc.feedback_state("default", QUERY, team)
        with pytest.raises(InvalidParameter, match=needle):
            svc.reset_feedback("default", QUERY, team)
    assert svc.feedback.teams("default", QUERY) == [] and svc.feedback.load("default", QUERY).history == []
    # a team with no marks (yet) reads as the query-wide state; resetting it removes nothing
    assert svc.feedback_state("default", QUERY, "billing")["marks"] == 0
    assert svc.holds_team(QUERY, "billing", "default") and svc.holds_team("nope", "ml", "default")


def test_the_bulk_path_divides_each_series_by_its_own_threshold() -> None:
    rng = np.random.default_rng(3)
    step = 300
    t = T0 + step * np.arange(400, dtype=np.int64)
    values = rng.normal(800, 20, 400)
    values[-1] = 2_000.0
    ml, search = Series({"team": "ml"}, t, values.copy(), step), Series({"team": "search"}, t, values.copy(), step)
    spec = ModelSpec(model_class="anomaly", params={"detectors": ["robust"], "min_periods": 30})
    taught = FeedbackState(ensemble_threshold=5.0)
    run = lambda **kw: {r.labels["team"]: r.anomaly_score for r in  # noqa: E731
                        run_anomaly("t", "q", "a", spec, [ml, search], None, bulk_threshold=1, **kw)[1]
                        if r.ts == float(t[-1])}  # fmt: skip
    plain = run()
    mixed = run(series_feedback={ml.key: taught})
    assert mixed["search"] == plain["search"] and mixed.get("ml", 0.0) == pytest.approx(plain["ml"] / 5.0)


def test_feedback_is_saved_durably_and_a_leftover_tmp_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the state was written with write_text + rename and never synced: a mark could vanish in a power loss
    import analytics.service.feedback as feedback_mod
    import hubcore.files as files

    synced: list[Path] = []
    for module in (files, feedback_mod):  # the directory syncs (write_atomic syncs the file before)
        monkeypatch.setattr(module, "fsync_dir", lambda d: synced.append(Path(d)))
    store = FeedbackStore(tmp_path)
    state = FeedbackState()
    state.record_false_positive("t1", {"robust": 3.0}, 3.0, None, '{"team":"ml"}')
    store.save("acme", QUERY, state, "ml")
    assert synced == [store.path("acme", QUERY, "ml").parent]
    # a save a crash cut short before its rename: the old state is read, the .tmp is no team of its own
    team_file = store.path("acme", QUERY, "ml")
    (team_file.parent / "search.json.tmp").write_text('{"team": "search", "history": [')
    team_file.with_name(team_file.name + ".tmp").write_text("{")
    again = FeedbackStore(tmp_path)
    assert again.teams("acme", QUERY) == ["ml"] and again.load("acme", QUERY, "ml") == state
    synced.clear()
    again.save("acme", QUERY, FeedbackState(), "ml")  # the last mark undone: the removal is synced too
    assert not team_file.exists() and synced == [team_file.parent]
