"""RBAC rule 4 on the record itself: ``dlq:replay`` and ``anomalies:feedback`` are decided on the team the
dead letter or the anomaly names, not on the ``?team=`` a caller chose to send.

A caller limited to team ``ml`` cannot replay team ``search``'s dead letters nor mark team ``search``'s
anomalies (even with ``?team=ml``); records naming no team behave as before; callers with ``teams:all``
(tenant and platform admins) are unaffected. A team's marks teach its own feedback state, which a team
reads and resets; the query-wide state (``scope: query``) needs ``teams:all``. A bulk replay by a team-limited caller replays its own team's
entries and those naming no team, and counts the others as ``skipped_other_teams``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.service import AnalyticsConfig, AnalyticsService, AnomalyRecord, ModelSpec, QuerySpec, SchedulerSpec
from hubcore.dlq import entry_teams
from hubcore.security.audit import iter_records
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub

ROLES = {
    # dlq:replay is not in analytics_editor: a custom role grants it to a team's operator
    "dlq_operator": {"extends": "analytics_editor", "permissions": ["dlq:replay"]},
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("team-records"), grpc=False, otlp_http=False,
                     service__auth__enabled=True, service__audit__enabled=True,
                     service__auth__roles=ROLES) as h:  # fmt: skip
        yield h


@pytest.fixture(scope="module")
def key(hub: RunningHub) -> Any:
    store = hub.service.security.key_store
    assert store is not None

    def make(role: str, team: str | None = None, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {store.create(tenant_id=tenant, role=role, team=team).key}"}

    return make


def _denials(hub: RunningHub, needle: str) -> list[dict[str, Any]]:
    path = Path(hub.service.store.data_dir) / "audit" / "audit.jsonl"
    return [r for r in iter_records(path) if r["outcome"] == "denied" and needle in (r.get("reason") or "")]


# -- dead letters ------------------------------------------------------------------------------------------
def _bad_cost(tags: dict[str, str], **payload: Any) -> dict[str, Any]:
    """A cost event in an unknown currency: dead-lettered until the currency is configured."""
    return make_event("cost", payload={"currency": "XYZ", **payload}, tags=tags)


def test_entry_teams_reads_tags_payload_and_dimensions() -> None:
    def teams(ev: Any) -> list[str]:
        return sorted(entry_teams({"raw": ev if isinstance(ev, str) else json.dumps(ev)}))

    assert teams({"tags": {"team": "ml"}}) == ["ml"]
    assert teams({"tags": {"team": "ml"}, "payload": {"team": "search"}}) == ["ml", "search"]  # a cost event's
    assert teams({"payload": {"dimensions": {"team": "ads"}}}) == ["ads"]  # a telemetry event's
    assert teams({"tags": {"project": "x"}, "payload": {"team": ""}}) == []
    assert teams({"tags": {"team": 3}}) == []  # not a team name (the event was refused for it)
    assert teams("[1, 2]") == [] and teams("{not json") == [] and teams("") == []


def test_dlq_replay_is_scoped_by_each_entrys_team(hub: RunningHub, key: Any) -> None:
    ingest = key("ingest")
    events = {
        "ml": _bad_cost({"team": "ml"}),
        "search": _bad_cost({"team": "search"}),
        "mixed": _bad_cost({"team": "ml"}, team="search"),  # stored under payload.team: search's too
        "none": _bad_cost({"project": "assistant"}),
    }
    r = httpx.post(f"{hub.api}/api/v1/events", json=list(events.values()), headers=ingest)
    assert r.status_code == 422, r.text
    admin = key("tenant_admin")
    listed = httpx.get(f"{hub.api}/api/v1/dlq", headers=admin).json()["entries"]
    by_event = {json.loads(e["raw"])["event_id"]: e["id"] for e in listed}
    ids = {name: by_event[ev["event_id"]] for name, ev in events.items()}

    ml, ml_viewer, no_team = key("dlq_operator", "ml"), key("analytics_viewer", "ml"), key("dlq_operator")
    url = f"{hub.api}/api/v1/dlq/replay"
    assert httpx.post(url, json={"ids": [ids["ml"]]}, headers=ml_viewer).status_code == 403  # lacks dlq:replay
    # another team's entry by id: 403 naming the entry and the team, with or without ?team= of one's own
    for q in ("", "?team=ml"):
        r = httpx.post(url + q, json={"ids": [ids["ml"], ids["search"]]}, headers=ml)
        assert r.status_code == 403, r.text
        msg = r.json()["error"]["message"]
        assert f"dead-letter entry {ids['search']!r}" in msg and "team 'search'" in msg, msg
        assert httpx.post(url + q, json={"ids": [ids["mixed"]]}, headers=ml).status_code == 403
    assert _denials(hub, "dlq:replay on team 'search'"), "the refusal is audited"
    # the guard's ?team= check still applies
    assert httpx.post(f"{url}?team=search", json={"ids": [ids["ml"]]}, headers=ml).status_code == 403
    # nothing was replayed by the refused calls: all four are still there
    assert httpx.get(f"{hub.api}/api/v1/dlq", headers=admin).json()["total"] == 4

    # own team's and no team's entries by id: replayed (still rejected: the currency is unknown)
    r = httpx.post(url, json={"ids": [ids["ml"], "nope", ids["none"]]}, headers=ml)
    assert r.status_code == 200, r.text
    assert r.json() == {"replayed": 2, "accepted": 0, "still_rejected": 2, "skipped_other_teams": 0,
                        "not_found": ["nope"]}  # fmt: skip

    # bulk: a team-limited caller replays its team's and team-less entries and counts the others
    hub.service.pipeline.processor.config.exchange_rates["XYZ"] = 2.0  # the operator fixes the cause
    try:
        r = httpx.post(url, headers=no_team)  # a caller in no team: team-less entries only
        assert r.json() == {"replayed": 1, "accepted": 1, "still_rejected": 0, "skipped_other_teams": 3, "not_found": []}
        r = httpx.post(url, headers=ml)
        assert r.status_code == 200, r.text
        assert r.json() == {"replayed": 1, "accepted": 1, "still_rejected": 0, "skipped_other_teams": 2, "not_found": []}
        left = {e["id"] for e in httpx.get(f"{hub.api}/api/v1/dlq", headers=admin).json()["entries"]}
        assert left == {ids["search"], ids["mixed"]}
        assert httpx.post(url, headers=ml).json()["replayed"] == 0  # nothing of ml's left: not "every entry"
        # a tenant admin (teams:all) replays every team's, as before (and the answer has no skipped count)
        r = httpx.post(url, json={"ids": [ids["search"]]}, headers=admin)
        assert r.json() == {"replayed": 1, "accepted": 1, "still_rejected": 0, "not_found": []}
        # a platform admin of another tenant, asking for acme: every team's too
        r = httpx.post(f"{url}?tenant=acme", headers=key("platform_admin", tenant="ops"))
        assert r.json() == {"replayed": 1, "accepted": 1, "still_rejected": 0, "not_found": []}
    finally:
        del hub.service.pipeline.processor.config.exchange_rates["XYZ"]
    assert httpx.get(f"{hub.api}/api/v1/dlq", headers=admin).json()["total"] == 0
    stored = hub.sql("SELECT team FROM events WHERE event_id = ?", [events["mixed"]["event_id"]])
    assert stored == [("search",)]  # the team the entry was scoped by is the one it was stored under


def test_dlq_listing_shows_a_team_limited_caller_its_teams_entries_only(hub: RunningHub, key: Any) -> None:
    """GET /api/v1/dlq had listed every team's dead letters (their raw input) to a caller limited to team ml;
    it now shows such a caller its own team's entries and those naming no team (what a bulk replay of its
    would take), and counts the rest as hidden_other_teams."""
    events = {
        "ml": _bad_cost({"team": "ml"}),
        "search": _bad_cost({"team": "search"}),
        "mixed": _bad_cost({"team": "ml"}, team="search"),
        "none": _bad_cost({"project": "assistant"}),
    }
    tenant = "listing"
    r = httpx.post(f"{hub.api}/api/v1/events", json=list(events.values()), headers=key("ingest", tenant=tenant))
    assert r.status_code == 422, r.text

    def listing(headers: dict[str, str], query: str = "") -> dict[str, Any]:
        r = httpx.get(f"{hub.api}/api/v1/dlq{query}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        body["names"] = {name for e in body["entries"] for name, ev in events.items()
                         if json.loads(e["raw"])["event_id"] == ev["event_id"]}  # fmt: skip
        return body

    admin = listing(key("tenant_admin", tenant=tenant))
    assert admin["total"] == 4 and admin["names"] == set(events) and "hidden_other_teams" not in admin
    platform = listing(key("platform_admin", tenant="ops"), f"?tenant={tenant}")
    assert platform["total"] == 4 and "hidden_other_teams" not in platform
    for role in ("analytics_editor", "dlq_operator"):
        ml = listing(key(role, "ml", tenant=tenant))
        assert (ml["names"], ml["total"], ml["hidden_other_teams"]) == ({"ml", "none"}, 2, 2)
        assert listing(key(role, "ml", tenant=tenant), "?team=search")["names"] == {"ml", "none"}  # ?team= is no way in
    search = listing(key("analytics_editor", "search", tenant=tenant))
    assert (search["names"], search["hidden_other_teams"]) == ({"search", "none"}, 2)  # mixed names ml too
    no_team = listing(key("analytics_editor", tenant=tenant))
    assert (no_team["names"], no_team["total"], no_team["hidden_other_teams"]) == ({"none"}, 1, 3)
    # paging and the reason filter count the caller's entries only
    ml_key = key("analytics_editor", "ml", tenant=tenant)
    pages = [listing(ml_key, f"?limit=1&offset={i}") for i in range(3)]
    assert [len(p["entries"]) for p in pages] == [1, 1, 0] and {p["total"] for p in pages} == {2}
    assert pages[0]["names"] | pages[1]["names"] == {"ml", "none"}
    assert listing(ml_key, "?reason=no-such-reason") | {"names": None} == {
        "entries": [], "total": 0, "limit": 100, "offset": 0, "hidden_other_teams": 0, "next_cursor": None,
        "names": None}  # fmt: skip


# -- anomaly feedback --------------------------------------------------------------------------------------
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
        models={"anomaly": ModelSpec(model_class="anomaly", params={"detectors": ["robust"], "min_periods": 30})},
        schedulers={"periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="1d")},
    ).validate()  # fmt: skip


def _anomaly(aid: str, query: str, labels: dict[str, str], ts: float) -> AnomalyRecord:
    return AnomalyRecord(aid, "acme", query, "anomaly", labels, ts, 50.0, 3.0, "high", 0.9, ("bulk_robust",), 1.0, 0.5,
                         1.5, "above the expected range", True)  # fmt: skip


def test_anomaly_feedback_is_scoped_by_the_anomalys_team(hub: RunningHub, key: Any) -> None:
    svc = AnalyticsService(_config(), hub.service.store, None)
    hub.service.app.state.analytics = svc
    try:
        ts = (int(time.time()) // 3600 - 2) * 3600.0
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0,
                                   [_anomaly("a-search", "cost_by_team", {"owner": "search"}, ts),
                                    _anomaly("a-ml", "cost_by_team", {"owner": "ml"}, ts + 1)])  # fmt: skip
        svc.repo.replace_anomalies("acme", "search_cost", "anomaly", 0,
                                   [_anomaly("a-filtered", "search_cost", {"environment": "production"}, ts)])  # fmt: skip
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0,
                                   [_anomaly("a-none", "latency", {"gen_ai_request_model": "gpt-4o"}, ts)])  # fmt: skip

        def feedback(aid: str, headers: dict[str, str], query: str = "") -> httpx.Response:
            return httpx.post(f"{hub.api}/api/v1/anomalies/{aid}/feedback{query}", json={"label": "false_positive"},
                              headers=headers, timeout=60)  # fmt: skip

        ml, search = key("analytics_editor", "ml"), key("analytics_editor", "search")
        # another team's anomaly: by its series' team label (renamed to "owner"), or by the query's team filter
        for aid in ("a-search", "a-filtered"):
            for q in ("", "?team=ml"):
                r = feedback(aid, ml, q)
                assert r.status_code == 403, r.text
                msg = r.json()["error"]["message"]
                assert f"anomaly {aid!r}" in msg and "team 'search'" in msg, msg
        assert _denials(hub, "anomalies:feedback on team 'search'"), "the refusal is audited"
        assert svc.feedback.load("acme", "cost_by_team").history == []  # nothing was taught
        # one's own team's anomaly, and one naming no team (as before)
        assert feedback("a-ml", ml).json()["team"] == "ml"
        assert feedback("a-none", ml).json() | {"feedback": None} == {
            "anomaly": "a-none", "query": "latency", "model_alias": "anomaly", "team": None, "scope": "query",
            "feedback": None}  # fmt: skip
        assert feedback("a-search", search).status_code == 200
        assert feedback("a-missing", ml).status_code == 404  # unknown ids stay a 404
        # teams:all: a tenant admin, and a platform admin asking for the tenant, mark any team's
        assert feedback("a-filtered", key("tenant_admin")).json()["team"] == "search"  # the query's one team
        assert feedback("a-filtered", key("platform_admin", tenant="ops"), "?tenant=acme").status_code == 200
        # each team taught its own state: the query-wide one, which scores every team's series, is untouched
        assert svc.feedback.load("acme", "cost_by_team").history == []
        assert svc.feedback.teams("acme", "cost_by_team") == ["ml", "search"]
        assert [len(svc.feedback.load("acme", "cost_by_team", t).history) for t in ("ml", "search")] == [1, 1]
        assert len(svc.feedback.load("acme", "latency").history) == 1  # a series naming no team: query-wide
        assert len(svc.feedback.load("acme", "search_cost", "search").history) == 2
        # undoing a mark is decided the same way
        undo = httpx.delete(f"{hub.api}/api/v1/anomalies/a-search/feedback", headers=ml, timeout=60)
        assert undo.status_code == 403 and "team 'search'" in undo.json()["error"]["message"]
        assert httpx.delete(f"{hub.api}/api/v1/anomalies/a-search/feedback", headers=search, timeout=60).status_code == 200
        assert svc.feedback.teams("acme", "cost_by_team") == ["ml"]
        # a team resets its own team's state (the default for a team-limited caller), never another's
        reset = lambda h, **p: httpx.delete(f"{hub.api}/api/v1/anomalies/feedback",  # noqa: E731
                                            params={"query": "cost_by_team", **p}, headers=h, timeout=60)  # fmt: skip
        assert reset(search, team="ml").status_code == 403
        assert reset(search).json() == {"query": "cost_by_team", "team": "search", "removed_marks": 0}
        assert svc.feedback.teams("acme", "cost_by_team") == ["ml"]
        assert reset(ml).json() == {"query": "cost_by_team", "team": "ml", "removed_marks": 1}
        assert svc.feedback.teams("acme", "cost_by_team") == []
        # the query-wide state (every team's series) is taught and undone with teams:all only
        body = {"label": "false_positive", "scope": "query"}
        post = lambda h: httpx.post(f"{hub.api}/api/v1/anomalies/a-ml/feedback", json=body, headers=h, timeout=60)  # noqa: E731
        refused = post(ml)
        assert refused.status_code == 403 and "teams:all" in refused.json()["error"]["message"], refused.text
        assert svc.feedback.load("acme", "cost_by_team").history == []
        assert post(key("tenant_admin")).json()["scope"] == "query"
        assert len(svc.feedback.load("acme", "cost_by_team").history) == 1
        assert svc.feedback.teams("acme", "cost_by_team") == []
        undo = httpx.delete(f"{hub.api}/api/v1/anomalies/a-ml/feedback", headers=ml, timeout=60)
        assert undo.status_code == 403 and "query-wide" in undo.json()["error"]["message"], undo.text
        assert httpx.delete(f"{hub.api}/api/v1/anomalies/a-ml/feedback", headers=key("tenant_admin"),
                            timeout=60).json()["removed_marks"] == 1  # fmt: skip
        # a caller in no team resets nothing query-wide
        assert reset(key("analytics_editor")).status_code == 403
        assert feedback("a-ml", ml).status_code == 200  # ml's state again, for the reads below
        assert reset(key("tenant_admin"), team="search").json()["removed_marks"] == 0
        # reads: a team-limited caller sees its own team's state (another team's: 403); teams:all sees all
        get = lambda h, **p: httpx.get(f"{hub.api}/api/v1/anomalies/feedback", params={"query": "cost_by_team", **p},  # noqa: E731
                                       headers=h, timeout=30)  # fmt: skip
        viewer = key("analytics_viewer", "ml")
        mine = get(viewer).json()
        assert (mine["team"], mine["marks"], mine["query_marks"], len(mine["feedback"]["history"])) == ("ml", 1, 0, 1)
        assert get(viewer, team="ml").json() == mine
        assert get(viewer, team="search").status_code == 403
        assert get(key("analytics_viewer", "search")).json()["marks"] == 0
        everyone = get(key("tenant_admin")).json()
        assert (everyone["team"], everyone["marks"], everyone["teams"]) == (None, 0, {"ml": 1})
        assert reset(key("tenant_admin")).json() == {"query": "cost_by_team", "team": None, "removed_marks": 1,
                                                     "teams": {"ml": 1}}  # fmt: skip
        assert svc.feedback.teams("acme", "cost_by_team") == [] and get(viewer).json()["marks"] == 0
        # a query whose series name no team: a team-limited caller reads the query-wide state (no team counts)
        shared = httpx.get(f"{hub.api}/api/v1/anomalies/feedback", params={"query": "latency"}, headers=viewer,
                           timeout=30).json()  # fmt: skip
        assert (shared["team"], shared["marks"], "teams" in shared) == (None, 1, False)
    finally:
        svc.shutdown()
        del hub.service.app.state.analytics


def test_undoing_a_mark_that_silenced_its_point_is_scoped_by_its_team(hub: RunningHub, key: Any) -> None:
    """The rescoring after a mark deletes the record of a point that is no longer anomalous; the undo finds
    the point through the mark, and the team check must find it the same way (skipping it let another team
    undo the mark)."""
    from analytics.service.models import anomaly_id
    from analytics.service.series import labels_key

    svc = AnalyticsService(_config(), hub.service.store, None)
    hub.service.app.state.analytics = svc
    try:
        ts = (int(time.time()) // 3600 - 3) * 3600.0
        aid = anomaly_id("acme", "cost_by_team", "anomaly", labels_key({"owner": "search"}), ts)
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0,
                                   [_anomaly(aid, "cost_by_team", {"owner": "search"}, ts)])  # fmt: skip
        ml, search = key("analytics_editor", "ml"), key("analytics_editor", "search")
        r = httpx.post(f"{hub.api}/api/v1/anomalies/{aid}/feedback", json={"label": "false_positive"},
                       headers=search, timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0, [])  # as a rescoring that drops it
        assert svc.repo.get_anomaly("acme", aid) is None
        undo = httpx.delete(f"{hub.api}/api/v1/anomalies/{aid}/feedback", headers=ml, timeout=60)
        assert undo.status_code == 403 and "team 'search'" in undo.json()["error"]["message"], undo.text
        assert len(svc.feedback.load("acme", "cost_by_team", "search").history) == 1
        mark_again = httpx.post(f"{hub.api}/api/v1/anomalies/{aid}/feedback", json={"label": "false_positive"},
                                headers=search, timeout=60)  # fmt: skip
        assert mark_again.status_code == 404  # marking needs the anomaly itself
        undo = httpx.delete(f"{hub.api}/api/v1/anomalies/{aid}/feedback", headers=search, timeout=60)
        assert undo.status_code == 200 and undo.json()["removed_marks"] == 1, undo.text
        assert svc.feedback.load("acme", "cost_by_team", "search").history == []
    finally:
        svc.shutdown()
        del hub.service.app.state.analytics


def test_a_series_naming_no_team_in_a_query_of_teams_needs_teams_all(hub: RunningHub, key: Any, tmp_path: Path) -> None:
    """A series of ``cost_by_team`` without a team (events that name none) is scored with the query-wide
    state, which scores every team's series too: a caller limited to a team marked it (no team to check),
    retuning the other teams' series. Now marking it, or undoing its mark, needs teams:all; the other
    paths are as before, and the query-wide file of earlier releases (with such a mark) still loads."""
    from analytics.anomaly import FeedbackState

    svc = AnalyticsService(_config(), hub.service.store, None, data_dir=str(tmp_path))  # a feedback dir of its own
    hub.service.app.state.analytics = svc
    try:
        earlier = FeedbackState()  # a mark a team-limited caller could make before, as those releases wrote it
        earlier.record_false_positive("2023-11-14 22:00:00", {"bulk_robust": 3.0}, 3.0, None, '{"owner":""}')
        path = svc.feedback.path("acme", "cost_by_team")
        path.parent.mkdir(parents=True)
        path.write_text(earlier.to_json())
        ts = (int(time.time()) // 3600 - 2) * 3600.0
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0,
                                   [_anomaly("a-teamless", "cost_by_team", {"owner": ""}, ts),
                                    _anomaly("a-ml", "cost_by_team", {"owner": "ml"}, ts + 1)])  # fmt: skip
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0,
                                   [_anomaly("a-none", "latency", {"gen_ai_request_model": "gpt-4o"}, ts)])  # fmt: skip
        ml, admin = key("analytics_editor", "ml"), key("tenant_admin")
        url = f"{hub.api}/api/v1/anomalies"
        mark = lambda aid, h: httpx.post(f"{url}/{aid}/feedback", json={"label": "false_positive"}, headers=h,  # noqa: E731
                                         timeout=60)  # fmt: skip
        undo = lambda aid, h: httpx.delete(f"{url}/{aid}/feedback", headers=h, timeout=60)  # noqa: E731
        shared = lambda: len(svc.feedback.load("acme", "cost_by_team").history)  # noqa: E731
        state = httpx.get(f"{url}/feedback", params={"query": "cost_by_team"}, headers=admin, timeout=30)
        assert state.json()["marks"] == 1 and state.json()["marked"][0]["labels"] == {"owner": ""}, state.text
        refused = mark("a-teamless", ml)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
        msg = refused.json()["error"]["message"]
        assert msg.startswith("anomaly 'a-teamless': its series names no team") and "every team's series" in msg, msg
        assert msg.endswith("marking it needs teams:all"), msg
        assert _denials(hub, "anomaly 'a-teamless': its series names no team"), "the refusal is audited"
        assert shared() == 1 and svc.feedback.teams("acme", "cost_by_team") == []  # nothing was taught
        # allowed: one's own team's series, a query whose series name no team at all, and teams:all
        assert mark("a-ml", ml).json()["team"] == "ml"
        assert mark("a-none", ml).json()["scope"] == "query"
        taught = mark("a-teamless", admin)
        assert taught.status_code == 200 and (taught.json()["team"], taught.json()["scope"]) == (None, "query")
        assert shared() == 2
        refused = undo("a-teamless", ml)
        assert refused.status_code == 403 and refused.json()["error"]["message"].endswith("undoing it needs teams:all")
        assert shared() == 2
        assert undo("a-teamless", admin).json()["removed_marks"] == 1 and shared() == 1
    finally:
        svc.shutdown()
        del hub.service.app.state.analytics


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "needle"),
    [
        ("post", "/api/v1/anomalies/a-ml/feedback", {"json": {"label": "false_positive", "scope": "everyone"}}, 422,
         "scope: must be"),
        ("post", "/api/v1/anomalies/a-ml/feedback", {"json": {"label": "false_positive", "scope": 1}}, 422, "scope"),
        ("post", "/api/v1/anomalies/a-none/feedback", {"json": {"label": "false_positive", "scope": "team"}}, 422,
         "names no team"),
        ("get", "/api/v1/anomalies/feedback", {"params": {"query": "latency", "team": "ml"}}, 422, "has no team label"),
        ("delete", "/api/v1/anomalies/feedback", {"params": {"query": "latency", "team": "ml"}}, 422, "no team label"),
        ("get", "/api/v1/anomalies/feedback", {"params": {"query": "search_cost", "team": "ml"}}, 422,
         "unknown team 'ml'"),
        ("get", "/api/v1/anomalies/feedback", {"params": {"query": "cost_by_team", "team": " "}}, 422, "team: must be"),
        ("get", "/api/v1/anomalies/feedback", {"params": {"query": "nope", "team": "ml"}}, 422, "unknown query alias"),
    ],
)  # fmt: skip
def test_anomaly_feedback_scope_and_team_inputs(
    hub: RunningHub, key: Any, tmp_path: Path, method: str, path: str, kwargs: dict[str, Any], status: int, needle: str
) -> None:
    svc = AnalyticsService(_config(), hub.service.store, None, data_dir=str(tmp_path))  # a feedback dir of its own
    hub.service.app.state.analytics = svc
    try:
        ts = (int(time.time()) // 3600 - 2) * 3600.0
        svc.repo.replace_anomalies("acme", "cost_by_team", "anomaly", 0,
                                   [_anomaly("a-ml", "cost_by_team", {"owner": "ml"}, ts)])  # fmt: skip
        svc.repo.replace_anomalies("acme", "latency", "anomaly", 0,
                                   [_anomaly("a-none", "latency", {"gen_ai_request_model": "gpt-4o"}, ts)])  # fmt: skip
        r = httpx.request(method, f"{hub.api}{path}", headers=key("tenant_admin"), timeout=60, **kwargs)
        assert r.status_code == status, r.text
        assert needle in r.json()["error"]["message"], r.text
        assert svc.feedback.teams("acme", "cost_by_team") == [] and svc.feedback.load("acme", "latency").history == []
    finally:
        svc.shutdown()
        del hub.service.app.state.analytics


# -- the Alertmanager webhook (alerts:manage) is covered in tests/alerting/test_alerting_api.py -------------
