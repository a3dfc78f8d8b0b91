"""The analytics service end to end: events in through the API, scheduler pass, endpoints out."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.service import AnalyticsService, DerivedRow
from hubcore.times import parse_time_s
from tests.analytics_service.svc_data import SPIKE_AGO_S, events, ingest, now_s, svc_config
from tests.helpers.hub import RunningHub, running_hub

B = {"X-Scope-OrgID": "tenant-b"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHub, AnalyticsService, list[DerivedRow]]]:
    with running_hub(
        tmp_path_factory.mktemp("svc"), grpc=False, otlp_http=False, processors__analytics={"enabled": False}
    ) as h:  # this test runs its own service
        now = now_s()
        ingest(h.api, events(now))
        ingest(h.api, events(now, spike=False)[:50], headers=B)  # tenant B: a little data, no spike
        h.flush()
        seen: list[DerivedRow] = []
        svc = AnalyticsService(svc_config(), h.service.store, None, on_series=seen.extend)
        h.service.app.state.analytics = svc
        svc.run_once(force=True)
        yield h, svc, seen
        svc.shutdown()


def _anomalies(h: RunningHub, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{h.api}/api/v1/anomalies", params={"start": "-3d", **params}, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["anomalies"])


def _spike(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in rows if a["value"] >= 10_000]


def test_scheduler_writes_derived_series(hub: Any) -> None:
    h, _, seen = hub
    names = dict(h.sql("SELECT name, count(*) FROM derived_series WHERE tenant_id = 'default' GROUP BY name"))
    assert {"anomaly_score", "yhat", "yhat_lower", "yhat_upper", "anomaly_alert"} <= set(names)
    # anomaly_alert is stamped with the time of a run of this hub, not with a bucket of the history
    [(first, last)] = h.sql("SELECT min(epoch(ts)), max(epoch(ts)) FROM derived_series WHERE name = 'anomaly_alert'")
    assert time.time() - 900 < first <= last <= time.time() + 1
    labels = [json.loads(r[0]) for r in h.sql(
        "SELECT DISTINCT labels FROM derived_series WHERE name = 'anomaly_score' AND tenant_id = 'default'")]  # fmt: skip
    assert {"for": "latency", "model_alias": "anomaly", "gen_ai_request_model": "gpt-4o"} in labels
    future = h.sql("SELECT count(*) FROM derived_series WHERE name = 'yhat' AND labels LIKE '%cost_usd_hourly%' "
                   "AND ts > now()::TIMESTAMP")[0][0]  # fmt: skip
    assert future >= 5  # a 6-hour forecast of hourly cost
    assert seen and {r.name for r in seen} >= {"anomaly_score", "yhat"}  # the on_series hook got them


def test_derived_series_pages_without_losing_or_repeating_a_row(hub: Any) -> None:
    # The endpoint had no limit of its own: it read every row and answered the newest 50,000, silently.
    h, _, _ = hub
    params = {"name": "anomaly_score", "query": "latency", "start": "-3d"}
    whole = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, "limit": 50_000}, timeout=30).json()
    assert whole["truncated"] is False and whole["next_start"] is None
    assert len(whole["series"]) > 300 and {r["name"] for r in whole["series"]} == {"anomaly_score"}
    pages, start, calls = [], "-3d", 0
    while True:
        r = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, "start": start, "limit": 97}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["series"]) <= 97
        pages += body["series"]
        calls += 1
        if not body["truncated"]:
            break
        assert body["series"][-1]["ts"] < parse_time_s(body["next_start"], "next_start")
        start = body["next_start"]
    assert calls > 3
    key = lambda row: (row["ts"], json.dumps(row["labels"], sort_keys=True))  # noqa: E731
    assert sorted(map(key, pages)) == sorted(map(key, whole["series"]))


def test_anomalies_can_be_listed_as_alerts_only(hub: Any) -> None:
    """Every anomalous point of an incident is listed; ``alerts=true`` keeps the points that announced one."""
    h, _, _ = hub
    # The fixture's spike is one point, and whether the scoring also finds a point that is anomalous but
    # announces nothing depends on the time of day the test runs (its sine follows the clock): a stored
    # follow-up point of the spike's event (anomalous, is_alert false) makes the filter's work certain.
    follow_up = "test-follow-up-point"
    cur = h.service.store.cursor()
    try:
        cur.execute("INSERT INTO analytics_anomalies SELECT * REPLACE (? AS id, ts + INTERVAL 5 MINUTE AS ts, "
                    "false AS is_alert) FROM analytics_anomalies WHERE tenant_id = 'default' AND is_alert AND "
                    "value >= 10000", [follow_up])  # fmt: skip
        every, alerts = _anomalies(h), _anomalies(h, alerts="true")
    finally:
        cur.execute("DELETE FROM analytics_anomalies WHERE id = ?", [follow_up])
        cur.close()
    assert alerts and all(a["is_alert"] for a in alerts)
    assert {a["id"] for a in alerts} == {a["id"] for a in every if a["is_alert"]}
    assert follow_up in {a["id"] for a in every} and follow_up not in {a["id"] for a in alerts}
    assert _spike(alerts)  # the spike announced its event
    r = httpx.get(f"{h.api}/api/v1/anomalies", params={"alerts": "maybe"}, timeout=30)
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"name": "anomaly_scor"}, "name: unknown derived series 'anomaly_scor'; the service writes anomaly_score"),
        ({"query": "latncy"}, "query: unknown query alias 'latncy'; configured: cost_usd_hourly, latency"),
        ({"limit": 0}, "request parameters are invalid"),
        ({"limit": 50_001}, "request parameters are invalid"),
        ({"start": "yesterday"}, "start"),
        ({"cursor": "%%%"}, "cursor: not a cursor of this API; pass next_cursor unchanged"),
        ({"cursor": "eyJ4Ijoic2VyaWVzIiwiayI6WzEsMl0sIm4iOjEsInMiOiJ4In0"}, "cursor: "),  # a damaged key
    ],
)
def test_derived_series_bad_parameters(hub: Any, params: dict[str, Any], needle: str) -> None:
    h, _, _ = hub
    r = httpx.get(f"{h.api}/api/v1/analytics/series", params=params, timeout=30)
    assert r.status_code == 422 and needle in r.json()["error"]["message"], r.text


def _series_pages(h: RunningHub, params: dict[str, Any], headers: dict[str, str] | None = None) -> list[Any]:
    """Every page of a derived-series listing, following next_cursor."""
    pages, cursor = [], None
    while True:
        r = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, **({"cursor": cursor} if cursor else {})},
                      headers=headers, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["series"]) <= params["limit"]
        pages.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            assert body["truncated"] is False
            return pages


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["ts"], row["name"], json.dumps(row["labels"], sort_keys=True), row["value"]


def test_a_limit_below_one_timestamps_rows_pages_inside_it(hub: Any) -> None:
    # limit=1 had been a 422 ("82 rows share the timestamp ...; raise limit to 82"), surprising on a first call
    h, _, _ = hub
    params: dict[str, Any] = {"start": "-2h", "query": "latency"}  # anomaly_score, yhat*: one time, many rows
    whole = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, "limit": 50_000}, timeout=30).json()
    assert whole["truncated"] is False and whole["next_cursor"] is None
    for limit in (1, 3):
        pages = _series_pages(h, {**params, "limit": limit})
        rows = [row for p in pages for row in p["series"]]
        assert [_row_key(r) for r in rows] == [_row_key(r) for r in whole["series"]]  # nothing lost or repeated
        split = [p for p in pages if p["truncated"] and p["next_start"] is None]
        assert split, "a page inside one timestamp says so: no next_start"
        for p in pages[:-1]:  # a page that ends at a timestamp's end says where the next one starts
            if p["next_start"] is not None:
                assert parse_time_s(p["next_start"], "next_start") > p["series"][-1]["ts"]


def test_series_pages_are_exact_with_rows_that_share_everything(hub: Any) -> None:
    """Rows can share time, name, model and labels (written before a write replaced the row of its key: the
    table has no key constraint): the cursor counts those it sent."""
    h, svc, _ = hub
    tenant, t0 = "tenant-pages", time.time() - 600
    rows = [DerivedRow(tenant, t0, "anomaly_alert", float(i), {"for": "latency", "k": f"v{i}"}, "anomaly")
            for i in range(7)]  # fmt: skip
    rows += [DerivedRow(tenant, t0 + 60, "anomaly_score", float(i), {"for": "latency", "k": f"s{i}"}, "anomaly")
             for i in range(3)]  # fmt: skip
    svc.repo.write(rows)
    svc.store.cursor().execute(
        "INSERT INTO derived_series SELECT ?, make_timestamp(CAST(? AS BIGINT)), 'anomaly_alert', 1.0, ?, 'anomaly', "
        "now() FROM range(5)", [tenant, round(t0 * 1e6), json.dumps({"for": "latency", "k": "same"})],
    )  # fmt: skip
    headers = {"X-Scope-OrgID": tenant}
    params: dict[str, Any] = {"start": "-1h"}
    whole = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, "limit": 100}, headers=headers).json()
    assert len(whole["series"]) == 15
    for limit in (1, 2, 3, 4, 6):
        got = [row for p in _series_pages(h, {**params, "limit": limit}, headers) for row in p["series"]]
        assert sorted(map(_row_key, got)) == sorted(map(_row_key, whole["series"])), limit
    # a cursor resumes only its own listing
    first = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, "limit": 2}, headers=headers).json()
    for other, other_headers in (({"name": "anomaly_alert"}, headers), ({}, None)):
        r = httpx.get(f"{h.api}/api/v1/analytics/series", params={**params, **other, "cursor": first["next_cursor"]},
                      headers=other_headers, timeout=30)  # fmt: skip
        error = r.json()["error"]
        assert r.status_code == 422 and error["code"] == "bad_cursor" and error["field"] == "cursor", r.text
        assert "belongs to another listing" in error["message"]


def test_a_rescored_point_reads_as_its_newest_score(hub: Any) -> None:
    """A bucket written again (a later pass rescored it) replaces its row: the series and its records agree."""
    h, svc, _ = hub
    tenant, t0 = "tenant-rescored", float(int(time.time()) - 900)
    labels = {"for": "requests_rate", "model_alias": "anomaly_ensemble", "gen_ai_request_model": "claude"}
    other = {**labels, "gen_ai_request_model": "gpt-4o"}
    svc.repo.write([DerivedRow(tenant, t0, "anomaly_score", 88.65, labels, "anomaly"),
                    DerivedRow(tenant, t0, "yhat_upper", 0.2, labels, "anomaly"),
                    DerivedRow(tenant, t0, "anomaly_score", 3.0, other, "anomaly")])  # fmt: skip
    svc.repo.write([DerivedRow(tenant, t0, "anomaly_score", 38.45, labels, "anomaly"),
                    DerivedRow(tenant, t0, "yhat_upper", 0.479, labels, "anomaly"),
                    DerivedRow(tenant, t0 + 300, "anomaly_score", 0.5, labels, "anomaly"),
                    DerivedRow(tenant, t0 + 300, "anomaly_score", 0.7, labels, "anomaly")])  # fmt: skip
    r = httpx.get(f"{h.api}/api/v1/analytics/series", params={"start": "-1h"}, headers={"X-Scope-OrgID": tenant})
    assert r.status_code == 200, r.text
    got = [(row["ts"] - t0, row["name"], row["labels"]["gen_ai_request_model"], row["value"])
           for row in r.json()["series"]]  # fmt: skip
    assert got == [(0, "anomaly_score", "claude", 38.45), (0, "anomaly_score", "gpt-4o", 3.0),
                   (0, "yhat_upper", "claude", 0.479), (300, "anomaly_score", "claude", 0.7)]  # fmt: skip


#: the spike the test below marks (its id, and its score once marked: 1.0 when no longer anomalous)
MARKED: dict[str, Any] = {}


def test_anomalies_endpoint_finds_the_spike_and_feedback_silences_it(hub: Any) -> None:
    h, _, _ = hub
    spikes = _spike(_anomalies(h))
    assert len(spikes) == 1, spikes
    a = spikes[0]
    assert a["labels"] == {"gen_ai_request_model": "gpt-4o"} and a["query"] == "latency"
    assert a["anomaly_score"] > 1 and a["severity"] in ("high", "critical") and 0 < a["confidence"] <= 1
    assert a["expected_range"][1] < 10_000 and "above the expected range" in a["explanation"]
    assert abs(now_s() - SPIKE_AGO_S - __import__("datetime").datetime.fromisoformat(
        a["timestamp"].replace("Z", "+00:00")).timestamp()) < 600  # fmt: skip
    assert _spike(_anomalies(h, severity="high"))
    r = httpx.post(f"{h.api}/api/v1/anomalies/{a['id']}/feedback", json={"label": "false_positive"}, timeout=60)
    assert r.status_code == 200, r.text
    taught = r.json()["feedback"]
    assert taught["ensemble_threshold"] > 1 and taught["detectors"]["robust"]["false_positives"] == 1
    # rescored with what feedback taught (thresholds raised up to 5x each): far less anomalous, or not at all
    after = _spike(_anomalies(h))
    assert not after or (after[0]["id"] == a["id"] and after[0]["anomaly_score"] < a["anomaly_score"] / 10
                         and after[0]["severity"] != a["severity"])  # fmt: skip
    MARKED.update(id=a["id"], score=after[0]["anomaly_score"] if after else 1.0)
    saved = Path(h.service.store.data_dir) / "analytics" / "feedback" / "default" / "latency.json"
    assert json.loads(saved.read_text())["history"]


def test_a_false_positive_mark_can_be_seen_undone_and_reset(hub: Any) -> None:
    """One mark could silence every series of a query, real incidents included, and only deleting a file
    under the data dir undid it."""
    h, _, _ = hub
    api = f"{h.api}/api/v1/anomalies"
    learned = httpx.get(f"{api}/feedback", params={"query": "latency"}, timeout=30).json()
    assert learned["marks"] == 1 and learned["feedback"]["ensemble_threshold"] > 1  # (the test above marked it)
    [mark] = learned["marked"]  # where a user finds the id of a point the mark silenced
    # times in ISO-8601 UTC, as every answer gives them (they were "2026-11-27 15:45:00")
    assert mark["timestamp"].endswith("Z") and [h["timestamp"] for h in learned["feedback"]["history"]] == [
        mark["timestamp"]]  # fmt: skip
    assert MARKED["id"] in mark["anomaly_ids"].values() and mark["labels"] == {"gen_ai_request_model": "gpt-4o"}
    # the marked spike is listed far less anomalous, or (marked points may score below 1) not at all: its
    # record is then gone after the rescoring, and undoing by the id it was marked with had been a 404
    assert [a["id"] for a in _spike(_anomalies(h))] in ([], [MARKED["id"]])
    cur = h.service.store.cursor()
    try:
        cur.execute("DELETE FROM analytics_anomalies WHERE id = ?", [MARKED["id"]])
    finally:
        cur.close()
    assert not h.sql("SELECT 1 FROM analytics_anomalies WHERE id = ?", [MARKED["id"]])
    r = httpx.delete(f"{api}/{MARKED['id']}/feedback", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["removed_marks"] == 1 and r.json()["feedback"]["ensemble_threshold"] == 1.0
    [back] = _spike(_anomalies(h))
    assert back["id"] == MARKED["id"]
    assert back["anomaly_score"] > 10 * MARKED["score"] and back["severity"] in ("high", "critical")
    assert httpx.get(f"{api}/feedback", params={"query": "latency"}).json()["marks"] == 0
    again = httpx.delete(f"{api}/{MARKED['id']}/feedback", timeout=60)
    assert again.status_code == 404 and "no false-positive mark" in again.json()["error"]["message"]
    # mark it again, then forget every mark of the query at once
    assert httpx.post(f"{api}/{back['id']}/feedback", json={"label": "false_positive"}, timeout=60).status_code == 200
    reset = httpx.delete(f"{api}/feedback", params={"query": "latency"}, timeout=60)
    assert reset.status_code == 200 and reset.json() == {"query": "latency", "team": None, "removed_marks": 1, "teams": {}}
    assert _spike(_anomalies(h))[0]["anomaly_score"] == back["anomaly_score"]
    for method in ("get", "delete"):
        bad = httpx.request(method, f"{api}/feedback", params={"query": "latncy"}, timeout=30)
        assert bad.status_code == 422 and "unknown query alias 'latncy'" in bad.json()["error"]["message"]
    assert httpx.delete(f"{api}/nope/feedback", timeout=30).status_code == 404
    # leave the mark the test above made, for the tests after this one
    assert httpx.post(f"{api}/{back['id']}/feedback", json={"label": "false_positive"}, timeout=60).status_code == 200


def test_forecast_endpoint_returns_intervals(hub: Any) -> None:
    h, _, _ = hub
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": "latency", "horizon": "6h", "level": 90}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["horizon_steps"] == 72 and body["level"] == 90
    [s] = body["series"]
    assert s["labels"] == {"gen_ai_request_model": "gpt-4o"} and s["model"]
    pts = s["points"]
    assert len(pts) == 72 and all(p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"] for p in pts)
    assert 500 < pts[0]["yhat"] < 1100
    assert 0.0 <= s["anomaly_probability"]["probability"] <= 1.0
    spec = json.dumps({"event_type": "cost", "field": "value", "aggregation": "sum", "step": "1h"})
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": spec, "horizon": "1d", "threshold": 5}, timeout=60)
    assert r.status_code == 200, r.text
    [cost] = r.json()["series"]
    assert len(cost["points"]) == 24 and abs(cost["points"][0]["yhat"] - 1.0) < 0.2
    assert cost["anomaly_probability"]["probability"] < 0.05  # 5 USD in an hour is far from 1 USD/h


def test_forecast_step_is_coarsened_to_fit_a_long_horizon_or_chosen(hub: Any) -> None:
    h, _, _ = hub
    minute = json.dumps({"event_type": "cost", "field": "value", "aggregation": "sum", "step": "1m"})
    # 7 days of 1-minute steps (10,080) exceed the limit: the finest bucket that fits is used, and said
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": minute, "horizon": "7d"}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["step"] == "5m" and body["horizon_steps"] == 2016
    assert "forecast on 5m steps instead" in body["note"]
    assert body["series"] and len(body["series"][0]["points"]) == 2016
    # a day ahead on 1-minute steps: the 1,008 points the models fit are 17 hours, no daily cycle in them
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": minute, "horizon": "1d"}, timeout=120)
    body = r.json()
    assert body["step"] == "5m" and body["horizon_steps"] == 288 and "daily cycle" in body["note"], body
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": minute, "horizon": "1d", "step": "1m"}, timeout=120)
    assert r.json()["step"] == "1m" and r.json()["horizon_steps"] == 1440 and r.json()["note"] is None
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": minute, "horizon": "6h"}, timeout=120)
    assert r.json()["step"] == "1m" and r.json()["note"] is None  # under a day: as the query is
    # an explicit step re-buckets the query
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": "latency", "horizon": "1d", "step": "1h"}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["step"] == "1h" and body["horizon_steps"] == 24 and body["note"] is None
    assert len(body["series"][0]["points"]) == 24


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"step": "2h"}, "step: must be one of 1m, 5m, 15m, 1h, 6h, 1d"),
        ({"step": "1m", "horizon": "30d"}, "43200 steps of 1m is too long"),  # explicit: never changed silently
        ({"horizon": "20000"}, "pass a coarser step"),  # a number of steps is taken as given
    ],
)
def test_forecast_step_errors(hub: Any, params: dict[str, str], needle: str) -> None:
    h, _, _ = hub
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": "latency", **params}, timeout=30)
    assert r.status_code == 422 and needle in r.text, r.text


def test_budget_exhaustion_on_a_linear_spend(hub: Any) -> None:
    h, _, _ = hub
    now = now_s()
    body = {"name": "search", "amount": 100, "period": "custom", "team": "search", "alert_within_days": 3,
            "start": now - 48 * 3600, "end": now + 10 * 86_400}  # fmt: skip
    r = httpx.post(f"{h.api}/api/v1/budgets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    st = r.json()
    assert 47 <= st["spent_to_date"] <= 48.5
    # 1 USD/h: the remaining ~52 USD last ~52 hours
    left_h = (st["exhaustion_timestamp_seconds"] - now) / 3600
    assert 49 <= left_h <= 55, st
    assert st["alert"] is True and st["forecast_total_lower"] <= st["forecast_total_upper"]
    # ~1 USD/h to the period end; the path interval (analytics.budget) may sit slightly off the central path
    assert 270 <= st["forecast_total"] <= 320 and st["method"] == "forecast"
    bid = st["budget"]["id"]
    assert [b["budget"]["id"] for b in httpx.get(f"{h.api}/api/v1/budgets").json()["budgets"]] == [bid]
    assert h.sql("SELECT value FROM derived_series WHERE name = 'budget_exhaustion_timestamp_seconds' "
                 "AND json_extract_string(labels, '$.budget_id') = ?", [bid])  # fmt: skip
    alerting = h.sql("SELECT DISTINCT value FROM derived_series WHERE name = 'budget_exhaustion_alert' "
                     "AND json_extract_string(labels, '$.budget_id') = ?", [bid])  # fmt: skip
    assert alerting == [(1.0,)]  # feeds the built-in LLMBudgetExhaustionPredicted rule
    r = httpx.put(f"{h.api}/api/v1/budgets/{bid}", json={**body, "amount": 1000, "alert_within_days": 1}, timeout=60)
    assert r.status_code == 200 and r.json()["exhaustion"] is None and r.json()["alert"] is False
    assert httpx.get(f"{h.api}/api/v1/budgets", headers=B).json()["budgets"] == []  # tenant isolation
    assert httpx.get(f"{h.api}/api/v1/budgets/{bid}", headers=B).status_code == 404
    assert httpx.delete(f"{h.api}/api/v1/budgets/{bid}", headers=B).status_code == 404
    assert httpx.delete(f"{h.api}/api/v1/budgets/{bid}").status_code == 200
    assert httpx.get(f"{h.api}/api/v1/budgets/{bid}").status_code == 404


def test_a_budget_that_just_began_is_forecast_from_the_weeks_before(hub: Any) -> None:
    # Two hours into the period, two hourly points alone are too few to forecast (a run rate from them
    # was all there was); the spend of the days before the period teaches the forecast, only the
    # period's own is spent.
    h, _, _ = hub
    now = now_s()
    body = {"name": "fresh", "amount": 1000, "period": "custom", "team": "search",
            "start": now - 2 * 3600, "end": now + 10 * 86_400}  # fmt: skip
    r = httpx.post(f"{h.api}/api/v1/budgets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    st = r.json()
    assert st["method"] == "forecast" and 1 <= st["spent_to_date"] <= 2.5, st
    # ~1 USD/h for the 240 hours left
    assert 200 <= st["forecast_total"] <= 290, st
    assert st["spent_to_date"] <= st["forecast_total_lower"] <= st["forecast_total"] <= st["forecast_total_upper"]
    assert httpx.delete(f"{h.api}/api/v1/budgets/{st['budget']['id']}").status_code == 200


def test_whatif_traffic_times_two_doubles_cost(hub: Any) -> None:
    h, _, _ = hub
    body = {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "1d", "history": "3d",
            "fleet": {"gpt-4o": {"instances": 1, "service_rate": 1.0}}}  # fmt: skip
    r = httpx.post(f"{h.api}/api/v1/whatif", json=body, timeout=60)
    assert r.status_code == 200, r.text
    rows = {(s["model"], s["metric"]): s for s in r.json()["summary"]}
    total = rows[("*", "cost")]
    assert total["baseline"] > 0 and total["scenario"] == pytest.approx(2 * total["baseline"], rel=1e-6)
    assert total["diff"] == pytest.approx(total["baseline"], rel=1e-6)
    assert 0 < total["diff_lower"] <= total["diff_upper"]
    lat = rows[("gpt-4o", "latency_s")]
    assert lat["scenario"] > lat["baseline"] > 0 and rows[("gpt-4o", "capacity_rps")]["baseline"] == 1.0
    # 3 days asked of a hub with 2 days of data: answered, and said (it had been answered without a word)
    assert r.json()["note"].startswith("history: 3d asked, the request data covers 2.0 d of it (from "), r.text


def test_anomaly_probability_of_a_future_window(hub: Any) -> None:
    # "+2h" (or a bare "2h": an unencoded "+" arrives as a space) is a time ahead of now; the window's
    # buckets are those that meet it
    h, _, _ = hub
    params = {"query": "latency", "horizon": "6h", "threshold": "0", "window_start": "+2h", "window_end": "+3h"}
    r = httpx.get(f"{h.api}/api/v1/forecast", params=params, timeout=60)
    assert r.status_code == 200, r.text
    p = r.json()["series"][0]["anomaly_probability"]
    ahead = (parse_time_s(p["window_start"], "t") - now_s()) / 3600
    assert 1.9 <= ahead <= 2.1 and p["probability"] == 1.0, p
    assert parse_time_s(p["window_end"], "t") - parse_time_s(p["window_start"], "t") == pytest.approx(3600, abs=301)
    r = httpx.get(f"{h.api}/api/v1/forecast", params={**params, "window_start": " 2h", "threshold": "1e9"}, timeout=60)
    assert r.status_code == 200 and r.json()["series"][0]["anomaly_probability"]["probability"] < 0.01, r.text


def test_a_budget_that_has_not_begun_is_forecast_from_the_spend_before_it(hub: Any) -> None:
    # it was 0 USD with no alert, though 1 USD/h exhausts it 30 hours after it begins
    h, _, _ = hub
    now = now_s()
    body = {"name": "next", "amount": 30, "period": "custom", "team": "search", "alert_within_days": 7,
            "start": now + 2 * 86_400, "end": now + 12 * 86_400}  # fmt: skip
    r = httpx.post(f"{h.api}/api/v1/budgets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    st = r.json()
    assert st["spent_to_date"] == 0 and 200 <= st["forecast_total"] <= 290, st
    assert 26 <= (st["exhaustion_timestamp_seconds"] - body["start"]) / 3600 <= 34 and st["alert"] is True, st
    assert httpx.delete(f"{h.api}/api/v1/budgets/{st['budget']['id']}").status_code == 200


def test_a_budget_name_is_used_once(hub: Any) -> None:
    # a POST retried after a timeout made a second budget of the same name (and a second page per alert)
    h, _, _ = hub
    url = f"{h.api}/api/v1/budgets"
    body = {"name": "dup", "amount": 10, "period": "monthly", "team": "search"}
    first = httpx.post(url, json=body, timeout=60)
    assert first.status_code == 201, first.text
    bid = first.json()["budget"]["id"]
    r = httpx.post(url, json=body, timeout=60)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict", r.text
    assert r.json()["error"]["message"].startswith(f"name: a budget named 'dup' already exists (id {bid})")
    other = httpx.post(url, json={**body, "name": "dup2"}, timeout=60).json()["budget"]["id"]
    assert httpx.put(f"{url}/{other}", json=body, timeout=60).status_code == 409
    assert httpx.put(f"{url}/{bid}", json={**body, "amount": 20}, timeout=60).status_code == 200  # its own name
    r = httpx.post(url, json=body, headers=B, timeout=60)  # names are per tenant
    assert r.status_code == 201, r.text
    for budget_id, headers in ((bid, {}), (other, {}), (r.json()["budget"]["id"], B)):
        assert httpx.delete(f"{url}/{budget_id}", headers=headers).status_code == 200


def _racing_name_checks(monkeypatch: pytest.MonkeyPatch, svc: AnalyticsService, parties: int) -> None:
    """Hold each budget name check until ``parties`` requests have made theirs (a check-then-write that is
    not atomic lets them all pass); where the check and the write are one step the first check waits out
    the barrier's timeout alone, and the others find it broken."""
    barrier = threading.Barrier(parties, timeout=1.0)
    real = svc.budgets.same_name

    def racing(budget: Any) -> Any:
        other = real(budget)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return other

    monkeypatch.setattr(svc.budgets, "same_name", racing)


def _concurrently(calls: list[Any]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_concurrent_creations_and_renames_onto_one_name_make_one_budget(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the name check read the budgets, then the write came: two POSTs of one name both passed it
    h, svc, _ = hub
    url = f"{h.api}/api/v1/budgets"
    body = {"name": "race", "amount": 10, "period": "monthly", "team": "search"}
    n = 5
    _racing_name_checks(monkeypatch, svc, n)
    answers = _concurrently([lambda: httpx.post(url, json=body, timeout=60)] * n)
    assert sorted(r.status_code for r in answers) == [201] + [409] * (n - 1), [r.text for r in answers]
    [winner] = [r.json()["budget"]["id"] for r in answers if r.status_code == 201]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "conflict" and r.json()["error"]["message"].startswith(
                f"name: a budget named 'race' already exists (id {winner})"), r.text
    assert [b.id for b in svc.budgets.list("default") if b.name == "race"] == [winner]
    # a rename onto a name (PUT) is decided the same way
    monkeypatch.undo()
    ids = [httpx.post(url, json={**body, "name": f"race-{i}"}, timeout=60).json()["budget"]["id"] for i in range(n)]
    _racing_name_checks(monkeypatch, svc, n)
    renamed = {**body, "name": "renamed"}
    answers = _concurrently([lambda bid=bid: httpx.put(f"{url}/{bid}", json=renamed, timeout=60) for bid in ids])
    assert sorted(r.status_code for r in answers) == [200] + [409] * (n - 1), [r.text for r in answers]
    assert len([b for b in svc.budgets.list("default") if b.name == "renamed"]) == 1
    monkeypatch.undo()
    for budget_id in [winner, *ids]:
        assert httpx.delete(f"{url}/{budget_id}", timeout=60).status_code == 200


def test_a_put_does_not_bring_back_a_budget_deleted_meanwhile(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # PUT read the budget, then wrote it unconditionally: a DELETE in between was undone
    h, svc, _ = hub
    url = f"{h.api}/api/v1/budgets"
    body = {"name": "short-lived", "amount": 10, "period": "monthly"}
    bid = httpx.post(url, json=body, timeout=60).json()["budget"]["id"]
    real_get = svc.budgets.get
    deleted: list[str] = []

    def get_then_delete(tenant: str, budget_id: str) -> Any:
        found = real_get(tenant, budget_id)
        if not deleted:  # the route's read; a DELETE of another request lands right after it
            deleted.append(budget_id)
            svc.budgets.delete(tenant, budget_id)
        return found

    monkeypatch.setattr(svc.budgets, "get", get_then_delete)
    r = httpx.put(f"{url}/{bid}", json={**body, "amount": 20}, timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert f"budget {bid!r} does not exist" in r.json()["error"]["message"]
    monkeypatch.undo()
    assert svc.budgets.get("default", bid) is None


def test_whatif_says_when_a_model_has_no_price(hub: Any) -> None:
    h, _, _ = hub
    body = {"scenario": [{"type": "price_change", "percent": 10}], "horizon": "6h", "history": "2d"}
    r = httpx.post(f"{h.api}/api/v1/whatif", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["note"] is None, r.text
    # tenant B has requests and no cost events: its price is 0, and a price change changes nothing
    body = {**body, "horizon": "1h", "step": "5m"}
    r = httpx.post(f"{h.api}/api/v1/whatif", json=body, headers=B, timeout=60)
    assert r.status_code == 200 and "no cost events for gpt-4o in the history" in r.json()["note"], r.text
    r = httpx.post(f"{h.api}/api/v1/whatif", json={**body, "prices": {"gpt-4o": 0.01}}, headers=B, timeout=60)
    assert r.status_code == 200 and r.json()["note"] is None, r.text


def test_whatif_refuses_a_simulation_too_large_for_memory(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # 10,000 hourly steps for 6 models held 5.6 GB with 500 paths; the paths now shrink with the horizon
    # and a clear 422 comes where even 100 would not fit
    import analytics.service.handlers as handlers

    h, _, _ = hub
    monkeypatch.setattr(handlers, "MAX_PATH_VALUES", 100 * 48 * 3 - 1)  # one model: requests, cost, total
    body = {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "48h", "step": "1h"}
    r = httpx.post(f"{h.api}/api/v1/whatif", json=body, timeout=60)
    assert r.status_code == 422 and "horizon: 48 steps for 1 model is too much to simulate" in r.text, r.text
    monkeypatch.setattr(handlers, "MAX_PATH_VALUES", 100 * 48 * 3)
    assert httpx.post(f"{h.api}/api/v1/whatif", json=body, timeout=60).status_code == 200


def test_tenant_b_sees_nothing_of_a(hub: Any) -> None:
    h, svc, _ = hub
    r = httpx.get(f"{h.api}/api/v1/anomalies", params={"start": "-3d"}, headers=B)
    assert r.status_code == 200
    # B's own few points may hold an anomaly of their own (the daily swing depends on the hour the
    # test runs); none of A's (its spike, its ids) may show
    mine = r.json()["anomalies"]
    assert all(a["tenant_id"] == "tenant-b" for a in mine) and not _spike(mine)
    assert not {a["id"] for a in mine} & {a["id"] for a in _anomalies(h)}
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": "latency", "horizon": "6h"}, headers=B)
    assert r.status_code == 200
    assert all(len(s["points"]) == 72 for s in r.json()["series"])
    a_ids = {a["id"] for a in _anomalies(h)}
    for aid in a_ids:
        assert httpx.post(f"{h.api}/api/v1/anomalies/{aid}/feedback", json={"label": "false_positive"},
                          headers=B).status_code == 404  # fmt: skip
    stored = svc.repo.list_anomalies("tenant-b", start_s=0, end_s=now_s() + 1)
    assert all(a["tenant_id"] == "tenant-b" and a["value"] < 10_000 for a in stored)
    assert not {a["id"] for a in stored} & a_ids


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "needle"),
    [
        ("get", "/api/v1/forecast", {"params": {"query": "nope"}}, 422, "unknown query alias 'nope'"),
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "level": 150}}, 422, "level"),
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "threshold": "nan"}}, 422,
         "threshold: must be a finite number, got nan"),  # was a probability of 0
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "horizon": "soon"}}, 422, "horizon"),
        ("get", "/api/v1/forecast", {"params": {"query": '{"step": "2h"}'}}, 422, "step"),
        ("get", "/api/v1/anomalies", {"params": {"severity": "huge"}}, 422, "severity"),
        ("get", "/api/v1/anomalies", {"params": {"start": "yesterday"}}, 422, "start"),
        ("post", "/api/v1/anomalies/nope/feedback", {"json": {"label": "false_positive"}}, 404, "does not exist"),
        ("post", "/api/v1/anomalies/nope/feedback", {"json": {"label": "true_positive"}}, 422, "label"),
        # a misspelled key had been 'label: must be "false_positive"'
        ("post", "/api/v1/anomalies/nope/feedback", {"json": {"lable": "false_positive"}}, 422,
         "lable: unknown field (did you mean label?); the body takes label, detector, scope"),
        ("post", "/api/v1/anomalies/nope/feedback", {"json": {}}, 422, "label: missing; the body takes label"),
        ("post", "/api/v1/anomalies/nope/feedback", {"json": ["false_positive"]}, 422, "body: must be a JSON object"),
        ("post", "/api/v1/budgets", {"json": {"amout": 5}}, 422, "amout: unknown field; a budget takes"),
        ("post", "/api/v1/budgets", {"json": {"name": "x"}}, 422, "amount: must be a positive number of USD, got null"),
        # every what-if transform error names scenario[i].<field> and what the field takes
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic"}]}}, 422,
         "scenario[0].factor: missing; scale_traffic takes factor (a number >= 0 (the traffic multiplier)), "
         "model (a model name, or null for every model)"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"factor": 2}]}}, 422,
         "scenario[0].type: missing; one of scale_traffic, price_change, move_traffic, add_instances"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "teleport"}]}}, 422,
         "scenario[0].type: must be one of scale_traffic, price_change, move_traffic, add_instances, got 'teleport'"),
        ("post", "/api/v1/whatif", {"json": {"scenario": ["scale_traffic"]}}, 422, "scenario[0]: must be an object"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2, "modle": "x"}]}},
         422, "scenario[0].modle: unknown field; scale_traffic takes factor"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "move_traffic", "source": "gpt-4o", "target": "b",
                                                           "share": 1.5}]}}, 422,
         "scenario[0].share: must be a number from 0 to 1 (the share of source's traffic moved), got 1.5"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "move_traffic", "source": "gpt-4o",
                                                           "share": 0.5}]}}, 422, "scenario[0].target: missing"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "add_instances", "model": "m", "count": True}]}},
         422, "scenario[0].count: must be a whole number of instances to add"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 1},
                                                          {"type": "move_traffic", "source": "gpt-4o", "target": "gpt-5",
                                                           "share": 0.5}], "horizon": "6h", "history": "2d"}}, 422,
         "scenario[1].target: unknown model 'gpt-5'; models with a price: gpt-4o"),  # was "no price for target model"
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "move_traffic", "source": "gpt-5", "target": "gpt-4o",
                                                          "share": 0.5}], "horizon": "6h", "history": "2d"}}, 422,
         "scenario[0].source: unknown model 'gpt-5'; models with traffic: gpt-4o"),  # was "unknown source model"
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "add_instances", "model": "gpt-4o", "count": 1}],
                                             "horizon": "6h", "history": "2d"}}, 422,
         "scenario[0].model: model 'gpt-4o' has no fleet (no model has a fleet)"),
        ("post", "/api/v1/budgets", {"json": {"amount": -5}}, 422, "amount"),
        ("post", "/api/v1/budgets", {"json": {"amount": 5, "period": "weekly"}}, 422, "period"),
        ("post", "/api/v1/budgets", {"json": {"amount": 5, "period": "custom"}}, 422, "start"),
        ("post", "/api/v1/budgets", {"content": b"{not json"}, 400, "JSON"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "teleport"}]}}, 422, "scenario[0].type"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": "x"}]}}, 422,
         "scenario[0].factor"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "add_instances", "model": "m", "count": 1.5}]}},
         422, "scenario[0].count"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "prices": "x"}},
         422, "prices"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": 10**9}},
         422, "horizon"),
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "history": "-5"}}, 422, "history"),
        ("get", "/api/v1/forecast", {"params": {"query": '{"query": {"aggregation": "x"}}'}}, 422, "query"),
        ("get", "/api/v1/anomalies", {"params": {"start": "-99999999w"}}, 422, "start"),
        ("post", "/api/v1/budgets", {"json": {"amount": 5, "period": "custom", "start": 0, "end": 1e20}}, 422, "end"),
        ("post", "/api/v1/budgets", {"json": {"amount": 5, "period": "custom", "start": "2026-01-01",
                                              "end": "2028-01-01"}}, 422, "a custom period spans at most 400 days"),
        # an unbounded history was read in full: `history=99999d` on a 1-minute query killed the hub (OOM)
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "history": "99999d"}}, 422,
         "history: 28,799,712 steps of 300 s (at most 200,000)"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}],
                                             "history": "99999d"}}, 422, "history: 2,399,976 steps"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "step": "7m"}},
         422, "step"),
        # forecast one step ahead, without a word, for a horizon of 0 or under one step
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "horizon": "0"}}, 422,
         "horizon: must be at least one step, got '0'"),
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "horizon": "1s"}}, 422,
         "horizon: '1s' is shorter than one step (300 s)"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "90m"}},
         422, "horizon: '90m' is not a whole number of steps of 3600 s"),
        # a window outside the forecast had an anomaly probability of 0
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "horizon": "1h", "window_start": "-3d",
                                                "window_end": "-2d"}}, 422, "window_start: the window"),
        ("get", "/api/v1/forecast", {"params": {"query": "latency", "horizon": "1h", "window_start": "+30m",
                                                "window_end": "+10m"}}, 422, "window_end: "),
        # negative traffic and prices gave negative costs; unknown models and moves to itself changed nothing
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": -2}]}}, 422,
         "scenario[0].factor: must be a number >= 0 (the traffic multiplier), got -2"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "price_change", "percent": -150}]}}, 422,
         "scenario[0].percent: must be a number >= -100 (the price change in percent), got -150"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "move_traffic", "source": "gpt-4o",
                                                           "target": "gpt-4o", "share": 0.5}]}}, 422,
         "scenario[0].target: must be a model name other than source (a model with a price), got 'gpt-4o'"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2, "model": "nope"}],
                                             "horizon": "6h", "history": "2d"}}, 422,
         "scenario[0].model: unknown model 'nope'; models with traffic: gpt-4o"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "add_instances", "model": "gpt-4o", "count": -2}],
                                             "horizon": "6h", "history": "2d",
                                             "fleet": {"gpt-4o": {"instances": 2, "service_rate": 1}}}}, 422,
         "scenario[0].count: 'gpt-4o' has 2 instance(s)"),  # was "history: instances must be at least 1"
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "6h",
                                             "fleet": {"gpt-4o": {"instances": 2.7, "service_rate": 1}}}}, 422,
         "fleet.gpt-4o: must be"),  # 2.7 instances were 2
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "6h",
                                             "fleet": {"gpt-4o": 3}}}, 422, "fleet.gpt-4o: must be"),
        ("post", "/api/v1/whatif", {"json": {"scenario": [{"type": "scale_traffic", "factor": 2}],
                                             "history": "soon"}}, 422, "history: "),
    ],
)  # fmt: skip
def test_bad_inputs_get_clear_4xx(hub: Any, method: str, path: str, kwargs: dict[str, Any], status: int,
                                  needle: str) -> None:  # fmt: skip
    h, _, _ = hub
    r = getattr(httpx, method)(f"{h.api}{path}", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"], r.text
    if path == "/api/v1/anomalies" and needle == "start":  # one code for bad times on every endpoint
        assert r.json()["error"]["code"] == "bad_time", r.text
