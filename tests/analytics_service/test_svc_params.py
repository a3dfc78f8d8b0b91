"""The analytics routes' query parameters and budget PUTs: a misspelled or repeated query parameter is a 422
(it was ignored: ``horizn=1h`` answered the default 7-day forecast, ``severty=high`` every severity), and
a PUT that leaves out a field the stored budget sets is a 422 (``{"amount": 200}`` made a team budget the
whole tenant's, named ``tenant``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from analytics.service import AnalyticsService
from tests.analytics_service.svc_data import two_team_cost_hub
from tests.helpers.hub import RunningHub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHub, AnalyticsService]]:
    with two_team_cost_hub(tmp_path_factory.mktemp("analytics-params")) as pair:
        yield pair


@pytest.fixture
def budget(hub: Any) -> Iterator[str]:
    h, _ = hub
    body = {"name": "search", "amount": 5000, "period": "monthly", "team": "search"}
    r = httpx.post(f"{h.api}/api/v1/budgets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    bid = str(r.json()["budget"]["id"])
    yield bid
    httpx.delete(f"{h.api}/api/v1/budgets/{bid}", timeout=60)


def _stored(h: RunningHub, bid: str) -> dict[str, Any]:
    r = httpx.get(f"{h.api}/api/v1/budgets/{bid}", timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json()["budget"])


_FULL = {"name": "search", "amount": 200, "period": "monthly", "team": "search"}
#: (method, path; {id}: a stored budget's, the query string, the JSON body, the misspelled parameter)
TYPOS = [
    ("get", "/api/v1/forecast", "query=cost_usd_hourly&horizn=1h&levl=50", None, "horizn"),
    ("get", "/api/v1/anomalies", "query=latency_p95&severty=high", None, "severty"),
    ("get", "/api/v1/analytics/series", "nme=budget_limit_usd", None, "nme"),
    ("get", "/api/v1/anomalies/feedback", "query=latency_p95&tem=search", None, "tem"),
    ("delete", "/api/v1/anomalies/feedback", "query=latency_p95&x=1", None, "x"),
    ("post", "/api/v1/anomalies/nope/feedback", "x=1", {"label": "false_positive"}, "x"),
    ("delete", "/api/v1/anomalies/nope/feedback", "x=1", None, "x"),
    ("post", "/api/v1/whatif", "x=1", {"scenario": [{"type": "scale_traffic", "factor": 2}]}, "x"),
    ("get", "/api/v1/budgets", "tem=x", None, "tem"),
    ("post", "/api/v1/budgets", "x=1", {"name": "typo", "amount": 5}, "x"),
    ("get", "/api/v1/budgets/{id}", "tenat=default", None, "tenat"),
    ("put", "/api/v1/budgets/{id}", "x=1", _FULL, "x"),
    ("delete", "/api/v1/budgets/{id}", "x=1", None, "x"),
]


@pytest.mark.parametrize(("method", "path", "qs", "body", "name"), TYPOS, ids=[f"{m} {p}" for m, p, *_ in TYPOS])
def test_a_misspelled_parameter_is_a_422_naming_it_and_changes_nothing(
    hub: Any, budget: str, method: str, path: str, qs: str, body: Any, name: str
) -> None:
    h, svc = hub
    url = f"{h.api}{path.replace('{id}', budget)}?{qs}"
    r = httpx.request(method.upper(), url, json=body, timeout=60)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_parameter" and error["message"].startswith(f"unknown query parameter {name!r}")
    assert "tenant, team" in error["message"], error  # the names it takes
    assert _stored(h, budget)["amount"] == 5000  # not replaced, not deleted
    assert [b.name for b in svc.budgets.list("default")] == ["search"]  # none created


@pytest.mark.parametrize(
    ("method", "path", "qs"),
    [
        ("get", "/api/v1/forecast", "query=cost_usd_hourly&horizon=1h&horizon=2h"),
        ("get", "/api/v1/anomalies", "severity=high&severity=low"),
        ("get", "/api/v1/analytics/series", "name=yhat&name=budget_limit_usd"),
        ("get", "/api/v1/budgets", "tenant=default&tenant=default"),
        ("put", "/api/v1/budgets/{id}", "team=search&team=search"),
    ],
)
def test_a_repeated_parameter_is_a_422(hub: Any, budget: str, method: str, path: str, qs: str) -> None:
    h, _ = hub
    body = _FULL if method == "put" else None
    r = httpx.request(method.upper(), f"{h.api}{path.replace('{id}', budget)}?{qs}", json=body, timeout=60)
    assert r.status_code == 422 and r.json()["error"]["code"] == "repeated_parameter", r.text
    assert _stored(h, budget)["amount"] == 5000


def test_the_parameters_spelled_right_still_work(hub: Any, budget: str) -> None:
    h, _ = hub
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": "cost_usd_hourly", "horizon": "6h", "level": 50,
                                                       "tenant": "default"}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 50 and r.json()["horizon_steps"] == 6
    params: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/anomalies", {"query": "cost_usd_hourly", "severity": "high", "start": "-1d", "limit": 5,
                               "alerts": "true", "team": "search"}),
        ("/api/v1/analytics/series", {"name": "budget_limit_usd", "start": "-1d", "end": "now", "limit": 10}),
        ("/api/v1/budgets", {"tenant": "default", "team": "search"}),
        (f"/api/v1/budgets/{budget}", {"tenant": "default"}),
        ("/api/v1/anomalies/feedback", {"query": "latency_p95", "tenant": "default"}),
    ]  # fmt: skip
    for path, query in params:
        r = httpx.get(f"{h.api}{path}", params=query, timeout=60)
        assert r.status_code == 200, (path, r.text)
    r = httpx.put(f"{h.api}/api/v1/budgets/{budget}", params={"tenant": "default"}, json=_FULL, timeout=60)
    assert r.status_code == 200, r.text


def test_a_partial_put_is_a_422_naming_what_it_leaves_out(hub: Any, budget: str) -> None:
    # it answered 200 with "name": "tenant", "team": null: the whole tenant's spend against the budget
    h, _ = hub
    before = _stored(h, budget)
    r = httpx.put(f"{h.api}/api/v1/budgets/{budget}", json={"amount": 200}, timeout=60)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_budget" and error["fields"] == ["name", "team"], error
    assert error["message"].startswith("name: PUT replaces the whole budget"), error
    assert "name (stored: 'search'), team (stored: 'search')" in error["message"]
    assert "send them again (or null to clear team)" in error["message"]
    assert _stored(h, budget) == before  # unchanged
    # the name alone is not enough: the team would go
    r = httpx.put(f"{h.api}/api/v1/budgets/{budget}", json={"name": "search", "amount": 200}, timeout=60)
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["team"], r.text
    assert _stored(h, budget) == before


def test_a_full_put_replaces_and_null_clears_the_team(hub: Any, budget: str) -> None:
    h, _ = hub
    r = httpx.put(f"{h.api}/api/v1/budgets/{budget}", json=_FULL, timeout=60)
    assert r.status_code == 200, r.text
    assert _stored(h, budget)["amount"] == 200 and _stored(h, budget)["team"] == "search"
    # period and alert_within_days hold their defaults: they may be left out; team is cleared explicitly
    r = httpx.put(f"{h.api}/api/v1/budgets/{budget}", json={"name": "search", "amount": 300, "team": None},
                  timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    stored = _stored(h, budget)
    assert stored["team"] is None and stored["name"] == "search" and stored["amount"] == 300


def test_a_partial_put_of_a_custom_budget_names_every_field_it_sets(hub: Any) -> None:
    h, _ = hub
    now = time.time()
    body = {"name": "q4", "amount": 60, "period": "custom", "start": now - 86_400, "end": now + 86_400,
            "project": "p1", "model": "gpt-4o", "alert_within_days": 1}  # fmt: skip
    r = httpx.post(f"{h.api}/api/v1/budgets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    bid = r.json()["budget"]["id"]
    try:
        r = httpx.put(f"{h.api}/api/v1/budgets/{bid}", json={"name": "q4", "amount": 70}, timeout=60)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"] == ["period", "project", "model", "start", "end", "alert_within_days"]
        assert "(or null to clear project, model)" in r.json()["error"]["message"]
        assert _stored(h, bid)["amount"] == 60
        r = httpx.put(f"{h.api}/api/v1/budgets/{bid}", json={**body, "amount": 70}, timeout=60)
        assert r.status_code == 200 and _stored(h, bid)["amount"] == 70, r.text
    finally:
        httpx.delete(f"{h.api}/api/v1/budgets/{bid}", timeout=60)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ('{"composite": "error_adjusted_throughput", "min_samples": 5, "step": "5m"}', "rate per second of the bucket"),
        ('{"composite": "error_rate", "min_samples": -2, "step": "5m"}', "must be a whole number of events"),
    ],
)
def test_a_bad_min_samples_on_an_ad_hoc_composite_is_a_422_naming_it(hub: Any, spec: str, needle: str) -> None:
    h, _ = hub
    r = httpx.get(f"{h.api}/api/v1/forecast", params={"query": spec, "horizon": "1h"}, timeout=60)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_parameter" and "query.min_samples" in error["message"], error
    assert needle in error["message"], error
