"""``GET /api/v1/anomalies`` pages (``truncated``, ``next_cursor``), ``team=`` filters it and ``GET
/api/v1/budgets``, feedback naming a detector that did not flag the point is refused, and body errors show
JSON values (``got null``, not Python's ``got None``).

Before: the listing answered ``{"anomalies": [...]}`` only, cut at ``limit`` without saying so, and took no
``cursor`` (a 422 ``unknown_parameter``); ``team=`` answered every team's records; a mark naming a detector
that had not flagged the point was taken and raised that detector's threshold.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from analytics.service import AnalyticsConfig, AnalyticsService, AnomalyRecord, ModelSpec, QuerySpec, SchedulerSpec
from api.cursors import encode_cursor, listing_scope
from tests.helpers.hub import RunningHub, running_hub

HOUR = 3600.0
T0 = (int(time.time()) // 3600 - 20) * HOUR  # 20 hours ago, on the hour


def _config() -> AnalyticsConfig:
    return AnalyticsConfig(
        queries={
            "latency": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                                 aggregation="p95", group_by=["model"], step="5m"),
            "cost_by_team": QuerySpec(event_type="cost", field="value", group_by=["tags.team"], step="1h",
                                      labels={"tags.team": "owner"}),
            "search_cost": QuerySpec(event_type="cost", field="value", group_by=["environment"], step="1h",
                                     filters=[{"field": "team", "operator": "eq", "value": "search"}]),
        },
        models={"anomaly": ModelSpec(model_class="anomaly",
                                     params={"detectors": ["robust", "seasonal"], "min_periods": 30})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1h", fit_window="1d")},
    ).validate()  # fmt: skip


def _record(aid: str, query: str, labels: dict[str, str], ts: float, score: float = 3.0,
            detected_by: tuple[str, ...] = ("robust",), severity: str = "high") -> AnomalyRecord:  # fmt: skip
    return AnomalyRecord(aid, "acme", query, "anomaly", labels, ts, 50.0, score, severity, 0.9, detected_by, 1.0, 0.5,
                         1.5, "above the expected range", False)  # fmt: skip


def _latency(scores: dict[str, float] | None = None) -> list[AnomalyRecord]:
    """21 anomalies of the latency query: 7 times, one with 7 series (more than the pages' limit), the
    others with 1 to 3; ``scores`` overrides some ids' scores (a rescore)."""
    out = []
    for i, n in enumerate((2, 1, 7, 3, 1, 2, 5)):
        for j in range(n):
            aid = f"lat-{i}-{j}"
            out.append(_record(aid, "latency", {"gen_ai_request_model": f"m{j}"}, T0 + i * HOUR,
                               score=(scores or {}).get(aid, 2.0 + j * 0.5 + (j % 2) * 3)))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHub, AnalyticsService]]:
    with running_hub(tmp_path_factory.mktemp("anomaly-pages"), grpc=False, otlp_http=False,
                     processors__analytics={"enabled": False}) as h:  # fmt: skip
        svc = AnalyticsService(_config(), h.service.store, None)
        h.service.app.state.analytics = svc
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0, _latency())
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0, [
            _record("a-search", "cost_by_team", {"owner": "search"}, T0 + 2 * HOUR),
            _record("a-ml", "cost_by_team", {"owner": "ml"}, T0 + 3 * HOUR, detected_by=("bulk_robust",)),
        ])  # fmt: skip
        svc.repo.replace_anomalies("acme", "search_cost", "anomaly", 0, [
            _record("a-filtered", "search_cost", {"environment": "production"}, T0 + 4 * HOUR)])  # fmt: skip
        yield h, svc
        svc.shutdown()


A = {"X-Scope-OrgID": "acme"}


def _get(h: RunningHub, path: str = "/api/v1/anomalies", **params: Any) -> httpx.Response:
    return httpx.get(f"{h.api}{path}", params={"start": "-2d", **params} if path.endswith("anomalies") else params,
                     headers=A, timeout=30)  # fmt: skip


def _pages(h: RunningHub, **params: Any) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        r = _get(h, **params, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        pages.append(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def test_a_listing_cut_at_limit_says_so_and_pages_on_exactly(hub: Any) -> None:
    h, _ = hub
    whole = _get(h, query="latency").json()
    assert whole["truncated"] is False and whole["next_cursor"] is None and len(whole["anomalies"]) == 21
    # the old answer's order: newest first, one time's anomalies the highest score first
    keys = [(r["timestamp"], r["anomaly_score"]) for r in whole["anomalies"]]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1]), reverse=True)
    for limit in (1, 3, 4, 6, 20):
        pages = _pages(h, query="latency", limit=limit)
        rows = [row for p in pages for row in p["anomalies"]]
        assert sorted(_ids(rows)) == sorted(_ids(whole["anomalies"])), limit  # none lost, none repeated
        assert [p["truncated"] for p in pages] == [True] * (len(pages) - 1) + [False]
        for p in pages:
            assert 1 <= len(p["anomalies"]) <= limit
        if limit >= 7:  # every time's anomalies fit a page: no page splits one
            times = [{r["timestamp"] for r in p["anomalies"]} for p in pages]
            assert all(not (a & b) for k, a in enumerate(times) for b in times[k + 1 :]), limit
            assert [row for p in pages for row in p["anomalies"]] == whole["anomalies"]
    # a page ends at a time's end where it can: 6 would take the newest time's 5 and 1 of the next one's 2
    first = _get(h, query="latency", limit=6).json()
    assert _ids(first["anomalies"]) == [f"lat-6-{j}" for j in (3, 1, 4, 2, 0)] and first["truncated"] is True
    # and splits one only when it holds more than limit (by id; shown the highest score first)
    first = _get(h, query="latency", limit=4).json()
    assert _ids(first["anomalies"]) == ["lat-6-3", "lat-6-1", "lat-6-2", "lat-6-0"]


def test_a_cursor_resumes_exactly_after_rescores_and_new_anomalies(hub: Any) -> None:
    h, svc = hub
    first = _get(h, query="latency", limit=5).json()  # the newest time's 5 (their scores decide nothing)
    seen = _ids(first["anomalies"])
    try:
        # meanwhile: every score of the query changes (a refit), one point stops being anomalous, a newer
        # anomaly and one at an old time appear
        rescored = {r.id: 9.0 - r.anomaly_score / 3 for r in _latency()}
        records = [r for r in _latency(rescored) if r.id != "lat-3-1"]
        records += [_record("lat-new", "latency", {"gen_ai_request_model": "m9"}, T0 + 7 * HOUR),
                    _record("lat-old", "latency", {"gen_ai_request_model": "m9"}, T0)]  # fmt: skip
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0, records)
        rest, cursor = [], first["next_cursor"]
        while cursor:
            body = _get(h, query="latency", limit=5, cursor=cursor).json()
            rest += _ids(body["anomalies"])
            cursor = body["next_cursor"]
        # each of the others once, the one that is gone left out, the old-time one found; the newer one is
        # before the cursor (a new listing shows it)
        expected = {r.id for r in _latency()} - set(seen) - {"lat-3-1"} | {"lat-old"}
        assert sorted(rest) == sorted(expected)
        assert "lat-new" in _ids(_get(h, query="latency", limit=5).json()["anomalies"])
    finally:
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0, _latency())


def _cursor(h: RunningHub, **params: Any) -> str:
    body = _get(h, limit=1, **params).json()
    assert body["next_cursor"], body
    return str(body["next_cursor"])


def test_a_cursor_of_another_listing_or_a_damaged_one_is_a_422(hub: Any) -> None:
    h, _ = hub
    mine = _cursor(h, query="latency")
    # of this listing's scope, but with a key of the wrong shape; and one with no scope at all
    scope = listing_scope("acme", "-2d", None, "latency", None, None, None)
    forged = encode_cursor("anomalies", {"k": ["1", 2], "a": 0}, scope)
    unbound = base64.urlsafe_b64encode(json.dumps({"x": "anomalies", "k": [1, "a"], "a": 0}).encode()).decode()
    series = httpx.get(f"{h.api}/api/v1/analytics/series", params={"limit": 1}, headers=A, timeout=30).json()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"query": "cost_by_team", "cursor": mine}, "belongs to another listing"),  # other filters
        ({"query": "latency", "severity": "critical", "cursor": mine}, "belongs to another listing"),
        ({"query": "latency", "alerts": "true", "cursor": mine}, "belongs to another listing"),
        ({"query": "latency", "start": "-3d", "cursor": mine}, "belongs to another listing"),
        ({"cursor": mine}, "belongs to another listing"),
        ({"query": "latency", "cursor": "%%%"}, "not a cursor of this API"),
        ({"query": "latency", "cursor": mine[:-3]}, "not a cursor of this API"),
        ({"query": "latency", "cursor": forged}, "not a cursor of this API"),
        ({"query": "latency", "cursor": unbound}, "not a cursor of this API"),
    ]
    if series.get("next_cursor"):  # (the derived series' cursors are of another kind)
        cases.append(({"query": "latency", "cursor": series["next_cursor"]}, "not a cursor of this API"))
    for params, needle in cases:
        r = _get(h, **params)
        assert r.status_code == 422, (params, r.text)
        err = r.json()["error"]
        assert err["code"] == "bad_cursor" and err["field"] == "cursor" and needle in err["message"], (params, err)
    # another tenant's cursor
    other = httpx.get(f"{h.api}/api/v1/anomalies", params={"query": "latency", "start": "-2d", "cursor": mine},
                      headers={"X-Scope-OrgID": "other"}, timeout=30)  # fmt: skip
    assert other.status_code == 422 and other.json()["error"]["code"] == "bad_cursor", other.text
    assert _get(h, query="latency", cursor=mine).status_code == 200


def test_team_filters_the_anomalies_to_that_teams_series(hub: Any) -> None:
    h, _ = hub
    assert sorted(_ids(_get(h).json()["anomalies"])) == sorted(
        [r.id for r in _latency()] + ["a-search", "a-ml", "a-filtered"])  # fmt: skip
    # by its series' team label (renamed owner), or by the query's team filter; never a series naming none
    assert sorted(_ids(_get(h, team="search").json()["anomalies"])) == ["a-filtered", "a-search"]
    assert _ids(_get(h, team="ml").json()["anomalies"]) == ["a-ml"]
    assert _ids(_get(h, team="search", query="search_cost").json()["anomalies"]) == ["a-filtered"]
    assert _get(h, team="ads").json()["anomalies"] == []  # a team that has none (the query groups by team)
    # pages of a team: its cursor is bound to the team
    pages = _pages(h, team="search", limit=1)
    assert [_ids(p["anomalies"]) for p in pages] == [["a-filtered"], ["a-search"]]
    cursor = _cursor(h, team="search")
    r = _get(h, team="ml", cursor=cursor)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_cursor", r.text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"team": ""}, "team: must be a team name (1 to 200 characters), got ''"),
        ({"team": "  "}, "team: must be a team name"),
        ({"team": "x" * 201}, "team: must be a team name"),
        ({"team": "ml", "query": "latency"}, "team: query 'latency' has no team label; its anomalies are no team's"),
        ({"team": "ml", "query": "search_cost"}, "team: unknown team 'ml' for query 'search_cost'"),
    ],
)
def test_a_bad_team_is_a_422(hub: Any, params: dict[str, Any], needle: str) -> None:
    h, _ = hub
    r = _get(h, **params)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "team" and err["message"].startswith(needle), err


def test_team_with_no_query_of_teams_series_is_a_422(tmp_path: Any) -> None:
    config = AnalyticsConfig(queries={"latency": _config().queries["latency"]},
                             models={"anomaly": ModelSpec(model_class="anomaly", params={"detectors": ["robust"]})},
                             schedulers=_config().schedulers).validate()  # fmt: skip
    from api.routers.analytics_listing import anomaly_team_places
    from hubcore.query.model import QueryError

    with pytest.raises(
        QueryError, match=r"no configured query's series can belong to team 'ml' .*none filters on a team"
    ):
        anomaly_team_places(config, "acme", "ml", None)
    places = anomaly_team_places(_config(), "acme", "search", None)
    assert places == [("cost_by_team", ("team", "owner"), False), ("search_cost", ("team",), True),
                      (None, ("team",), False)]  # fmt: skip


def test_team_filters_the_budgets(hub: Any) -> None:
    h, _ = hub
    made = []
    for body in ({"name": "search budget", "amount": 100, "team": "search"}, {"amount": 50, "team": "ml"},
                 {"name": "everyone", "amount": 1000}):  # fmt: skip
        r = httpx.post(f"{h.api}/api/v1/budgets", json=body, headers=A, timeout=60)
        assert r.status_code == 201, r.text
        made.append(r.json()["budget"]["id"])
    try:
        names = lambda **p: sorted(b["budget"]["name"] for b in _get(h, "/api/v1/budgets", **p).json()["budgets"])  # noqa: E731
        assert names() == ["everyone", "ml", "search budget"]
        assert names(team="search") == ["search budget"] and names(team="ml") == ["ml"]
        assert names(team="ads") == []
        for bad in ("", " ", "y" * 201):
            r = _get(h, "/api/v1/budgets", team=bad)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == "team" and "team: must be a team name" in r.json()["error"]["message"]
    finally:
        for bid in made:
            httpx.delete(f"{h.api}/api/v1/budgets/{bid}", headers=A, timeout=30)


def _feedback(h: RunningHub, aid: str, body: Any) -> httpx.Response:
    return httpx.post(f"{h.api}/api/v1/anomalies/{aid}/feedback", json=body, headers=A, timeout=60)


def test_feedback_naming_a_detector_that_did_not_flag_the_point_is_a_422(hub: Any) -> None:
    h, svc = hub
    r = _feedback(h, "lat-0-0", {"label": "false_positive", "detector": "seasonal"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err == {"code": "invalid_feedback", "field": "detector", "message": (
        "detector: seasonal did not flag anomaly 'lat-0-0'; it was flagged by robust: name one of those, or leave "
        "detector out to blame the detectors that flagged it")}  # fmt: skip
    # a detector the model does not have, and one on a point of the bulk path (its one detector: bulk_robust)
    r = _feedback(h, "lat-0-0", {"label": "false_positive", "detector": "nope"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_detector", r.text
    assert "unknown detector 'nope'" in r.json()["error"]["message"]
    r = _feedback(h, "a-ml", {"label": "false_positive", "detector": "robust"})
    assert r.status_code == 422 and "it was flagged by bulk_robust" in r.json()["error"]["message"], r.text
    # nothing was learned
    assert svc.feedback.load("acme", "latency").history == [] and svc.feedback.teams("acme", "cost_by_team") == []
    # the detector that flagged it is taken
    r = _feedback(h, "a-ml", {"label": "false_positive", "detector": "bulk_robust"})
    assert r.status_code == 200, r.text
    assert svc.feedback.load("acme", "cost_by_team", "ml").history[-1].ensemble_score == 3.0


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        (
            "/api/v1/anomalies/nope/feedback",
            {"label": None},
            'label: must be "false_positive" (the only feedback taught), got null',
        ),
        ("/api/v1/anomalies/nope/feedback", {"label": True}, "got true"),
        ("/api/v1/anomalies/nope/feedback", {"label": "true_positive"}, 'got "true_positive"'),
        ("/api/v1/anomalies/nope/feedback", {"label": "false_positive", "scope": False}, "or null, got false"),
        (
            "/api/v1/anomalies/nope/feedback",
            {"label": "false_positive", "detector": 5},
            "detector: must be a detector name or null, got 5",
        ),
        ("/api/v1/budgets", {"amount": None}, "amount: must be a positive number of USD, got null"),
        ("/api/v1/budgets", {"amount": True}, "amount: must be a positive number of USD, got true"),
        ("/api/v1/budgets", {"amount": 5, "period": None}, "period: must be one of"),
        (
            "/api/v1/budgets",
            {"amount": 5, "alert_within_days": None},
            "alert_within_days: must be a number of days between 0 and 366, got null",
        ),
        (
            "/api/v1/budgets",
            {"amount": 5, "period": "custom", "start": True, "end": "2026-01-01"},
            "start: not an ISO-8601 time: true",
        ),
    ],
)
def test_body_errors_show_json_values(hub: Any, path: str, body: dict[str, Any], needle: str) -> None:
    h, _ = hub
    r = httpx.post(f"{h.api}{path}", json=body, headers=A, timeout=30)
    assert r.status_code == 422, r.text
    msg = r.json()["error"]["message"]
    assert needle in msg and "None" not in msg and "True" not in msg and "False" not in msg, msg
    if body.get("period", "") is None:
        assert msg.endswith("got null"), msg


def test_json_text_examples_hold() -> None:
    import doctest

    from analytics.service import errors

    assert doctest.testmod(errors).failed == 0


def test_a_team_limited_reader_may_filter_on_any_team(tmp_path: Any) -> None:
    # GET /anomalies and /budgets are reads, which are not team-scoped (docs/security.md): team= filters and
    # the guard neither grants nor refuses on it
    with running_hub(tmp_path, grpc=False, otlp_http=False, processors__analytics={"enabled": False},
                     service__auth__enabled=True) as h:  # fmt: skip
        svc = AnalyticsService(_config(), h.service.store, None)
        h.service.app.state.analytics = svc
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0, [
            _record("a-search", "cost_by_team", {"owner": "search"}, T0),
            _record("a-ml", "cost_by_team", {"owner": "ml"}, T0)])  # fmt: skip
        store = h.service.security.key_store
        assert store is not None
        ml = {"Authorization": f"Bearer {store.create(tenant_id='acme', role='analytics_viewer', team='ml').key}"}
        for team, ids in (("search", ["a-search"]), ("ml", ["a-ml"]), (None, ["a-ml", "a-search"])):
            r = httpx.get(f"{h.api}/api/v1/anomalies", params={"start": "-2d", **({"team": team} if team else {})},
                          headers=ml, timeout=30)  # fmt: skip
            assert r.status_code == 200, r.text
            assert sorted(_ids(r.json()["anomalies"])) == ids
        r = httpx.get(f"{h.api}/api/v1/budgets", params={"team": "search"}, headers=ml, timeout=30)
        assert r.status_code == 200 and r.json() == {"budgets": []}, r.text
        svc.shutdown()
