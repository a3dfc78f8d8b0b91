"""Paging ``POST /api/v1/query`` with ``limit`` + ``cursor``: the pages, concatenated, are the unpaged answer
— no row twice, none left out — when sorted on an aggregate (ties, NULL and NaN aggregates, float sums that
depend on the order of the additions), when the relative window moves on between pages and when events are
written between two page reads; bad cursors are a 422 on ``cursor``."""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hubcore.query.cache import QueryCache
from hubcore.query.compile_duckdb import compile_export
from hubcore.query.executor import EmbeddedBackend, PromBackend, QueryExecutor
from hubcore.query.export import QueryExportCursor, encode_query_cursor, export_scope
from hubcore.query.model import parse_query
from hubcore.storage.embedded import EmbeddedStore
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub
from tests.query.dataset import DUR, query
from tests.query.test_query_executor import FakePromReader

NOW_US = 1_900_000_000_000_000
BASE_US = NOW_US - 3_600_000_000
TENANT = "p"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("paging"), wal_fsync=False)
    s.start()
    cur = s.cursor()
    # 1,200 events over 50 minutes, received at BASE_US: 30 models and a NULL one, teams x/y/none; sums tie
    # (model i's values add up to i % 4) and hold 1e16, 1 and -1e16, whose sum is 0 or 1 by addition order;
    # one model has a NaN value (a NaN sum and avg)
    cur.execute(
        "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, name, value, model, tags, payload) "
        "SELECT 'p', make_timestamp(?) + (i % 50) * INTERVAL 1 MINUTE, make_timestamp(?), 'e' || i, 'telemetry', "
        "'d', CASE WHEN i = 7 THEN 'nan'::DOUBLE WHEN i % 40 = 1 THEN 1e16 WHEN i % 40 = 2 THEN -1e16 "
        "WHEN i % 40 = 3 THEN 1.0 ELSE (i % 31 % 4) / 36.0 + 0.1 END, "
        "CASE WHEN i % 31 = 30 THEN NULL ELSE 'm' || lpad((i % 31)::VARCHAR, 2, '0') END, "
        "CASE i % 3 WHEN 0 THEN '{}' WHEN 1 THEN '{\"team\": \"x\"}' ELSE '{\"team\": \"y\"}' END, '{}' "
        "FROM range(1200) t(i)",
        [BASE_US, BASE_US],
    )
    cur.close()
    yield s
    s.shutdown()


SORTS: list[dict[str, Any]] = [
    {"aggregation": {"functions": ["sum", "count"], "group_by": ["model"]}, "sort": [{"field": "sum", "order": "desc"}]},
    {"aggregation": {"functions": ["avg"], "group_by": ["model"]}, "sort": [{"field": "avg"}]},
    {"aggregation": {"time_bucket": "15m", "functions": ["sum"], "group_by": ["model"]}, "sort": [{"field": "sum"}]},
    {"aggregation": {"functions": ["count"], "group_by": ["model", "tags.team"]},
     "sort": [{"field": "count", "order": "desc"}]},
    {"aggregation": {"functions": ["avg", "sum"], "group_by": ["tags.team", "model"]},
     "sort": [{"field": "avg", "order": "desc"}, {"field": "sum"}]},
]  # fmt: skip


def _same(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as a tuple, NaN (None in JSON) as a marker, so that rows compare."""
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row.values())


def _pages(ex: QueryExecutor, body: dict[str, Any], *, now_us: int = NOW_US, between: Any = None) -> list[Any]:
    """Every page of ``body``, the first at ``now_us``, each next one a minute later (``between()`` runs
    after the first page)."""
    rows: list[Any] = []
    cursor = None
    offsets = []
    while True:
        page_body = body if cursor is None else {**body, "cursor": cursor}
        q = parse_query(page_body, tenant=TENANT, now_us=now_us, received_by_us=now_us)
        answer = ex.execute(q)
        offsets.append(answer["metadata"]["offset"])
        rows += [_same(r) for r in answer["data"]]
        cursor = answer["metadata"]["next_cursor"]
        if cursor is None:
            assert offsets == list(range(0, len(rows), body["limit"]))[: len(offsets)]
            return rows
        if between is not None and len(offsets) == 1:
            between()
        now_us += 60_000_000


def _unpaged(ex: QueryExecutor, body: dict[str, Any], now_us: int = NOW_US, received_by_us: int = NOW_US) -> list[Any]:
    q = parse_query({**body, "limit": 10_000}, tenant=TENANT, now_us=now_us, received_by_us=received_by_us)
    answer = ex.execute(q)
    assert answer["metadata"]["has_more"] is False
    return [_same(r) for r in answer["data"]]


@pytest.mark.parametrize("limit", [1, 4, 7])
@pytest.mark.parametrize("body", SORTS, ids=range(len(SORTS)))
def test_pages_concatenated_are_the_unpaged_answer(store: EmbeddedStore, body: dict[str, Any], limit: int) -> None:
    ex = QueryExecutor(EmbeddedBackend(store), QueryCache())
    body = {"time_range": {"last": "1h"}, "metric": {"event_type": "telemetry"}, **body, "limit": limit}
    whole = _unpaged(ex, body)
    assert len(whole) > 2 * limit and len(set(whole)) == len(whole)
    assert _pages(ex, body) == whole


def test_a_float_sum_sorted_on_is_exact_whatever_the_order_of_the_additions(store: EmbeddedStore) -> None:
    """1e16 + 1 - 1e16 is 0 or 1 by the order of the additions, which DuckDB's threads do not fix: a row
    whose sum moved between two page reads could cross the cursor. The sum is exact (the same bits in any
    order) without adding the rows in a fixed order."""
    ex = QueryExecutor(EmbeddedBackend(store))
    body = {"time_range": {"last": "1h"}, **SORTS[0], "limit": 3}
    answer = ex.execute(parse_query(body, tenant=TENANT, now_us=NOW_US, received_by_us=NOW_US))
    assert "ORDER BY v)" not in answer["metadata"]["compiled_query"]["sql"]
    values = [v for (v,) in store.read("SELECT value FROM events WHERE model = 'm01'").fetchall()]
    assert 1e16 in values and -1e16 in values and 1.0 in values
    (m01,) = [r["sum"] for r in _unpaged_rows(ex, body) if r["model"] == "m01"]
    assert m01 == math.fsum(values)


def _unpaged_rows(ex: QueryExecutor, body: dict[str, Any]) -> list[dict[str, Any]]:
    q = parse_query({**body, "limit": 10_000}, tenant=TENANT, now_us=NOW_US, received_by_us=NOW_US)
    data: list[dict[str, Any]] = ex.execute(q)["data"]
    return data


def test_a_relative_window_does_not_slide_between_pages(store: EmbeddedStore) -> None:
    """The pages after the first read the first page's window, however much later they are asked for."""
    ex = QueryExecutor(EmbeddedBackend(store))
    body = {"time_range": {"last": "1h"}, **SORTS[0], "limit": 4}
    whole = _unpaged(ex, body)
    later = NOW_US + 1_200_000_000
    assert _unpaged(ex, body, now_us=later, received_by_us=later) != whole  # 20 minutes on, the answer differs
    assert _pages(ex, body) == whole


def test_events_written_between_two_pages_do_not_repeat_or_skip_rows(store: EmbeddedStore) -> None:
    """A new group sorting first, a group of a later page raised to the top and one of the first page
    lowered: offset paging repeated and skipped rows; the pages read the first page's events."""
    ex = QueryExecutor(EmbeddedBackend(store))
    body = {"time_range": {"last": "1h"}, "metric": {"event_type": "telemetry"}, **SORTS[0], "limit": 5}
    whole = _unpaged(ex, body)
    models = [r[0] for r in whole if r[0] is not None]
    first_page_model, later_model = models[1], models[-3]

    def write() -> None:
        store.cursor().execute(
            "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, value, model, tags, payload) "
            "SELECT 'p', make_timestamp(?), make_timestamp(?), 'late' || i, 'telemetry', v, m, '{}', '{}' "
            "FROM (VALUES (1, 1e6, 'a-new'), (2, 1e5, ?), (3, -1e5, ?)) t(i, v, m)",
            [BASE_US + 1_800_000_000, NOW_US + 1, later_model, first_page_model],
        )

    try:
        paged = _pages(ex, body, between=write)
        assert _unpaged(ex, body, received_by_us=NOW_US + 1) != whole  # the write shows in a new query...
    finally:
        store.cursor().execute("DELETE FROM events WHERE event_id LIKE 'late%'")
    models = [r[0] for r in paged]
    assert len(set(models)) == len(models)  # ...not in the pages of the one begun before it
    assert paged == whole


def test_prom_backend_pages_in_the_same_total_order() -> None:
    """The stack backends sort and page in Python, in the embedded backend's order (NULLs last, also in a
    descending sort) and resume after the cursor's key."""
    ex = QueryExecutor(PromBackend(FakePromReader()))
    body = {
        "time_range": {"start": 3600, "end": 3600 + 3 * 3600},
        "metric": {"event_type": "telemetry", "name": DUR},
        "aggregation": {"time_bucket": "1h", "functions": ["count", "sum"], "group_by": ["model"]},
        "sort": [{"field": "sum", "order": "desc"}],
    }
    whole = ex.execute(parse_query(body, tenant="t", now_us=0))["data"]
    assert [r["sum"] for r in whole] == [300.0, 200.0, None]
    rows, cursor = [], None
    while True:
        page = {**body, "limit": 1, **({"cursor": cursor} if cursor else {})}
        answer = ex.execute(parse_query(page, tenant="t", now_us=0))
        rows += answer["data"]
        cursor = answer["metadata"]["next_cursor"]
        if cursor is None:
            break
    assert rows == whole


# -- through the API -------------------------------------------------------------------------------------

API_TENANT = "paging"
API_BODY: dict[str, Any] = {
    "time_range": {"last": "3h"},
    "metric": {"event_type": "telemetry", "name": DUR},
    "aggregation": {"functions": ["sum", "avg"], "group_by": ["model"]},
    "sort": [{"field": "sum", "order": "desc"}],
    "limit": 3,
}


def _events(models_values: list[tuple[str, float]]) -> list[dict[str, Any]]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
    return [
        make_event("telemetry", timestamp=ts,
                   payload={"metric_name": DUR, "value": v, "unit": "ms", "model": m, "status": "ok"})
        for m, v in models_values
    ]  # fmt: skip


def _post(client: httpx.Client, hub: RunningHub, events: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/events", json=events, headers={"X-Scope-OrgID": API_TENANT})
    assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text
    hub.flush()


@pytest.fixture(scope="module")
def paging_tenant(hub: RunningHub) -> None:
    # 12 models; sums tie in fours (0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1, which floats add up differently)
    values = [(f"m{i:02d}", v) for i in range(12) for v in ((0.1, 0.2, 0.3) if i % 2 else (0.3, 0.2, 0.1))]
    values += [(f"m{i:02d}", float(i % 3)) for i in range(12)]
    with httpx.Client(base_url=hub.api, timeout=30) as c:
        _post(c, hub, _events(values))


def _api_pages(client: httpx.Client, body: dict[str, Any], between: Any = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = query(client, body if cursor is None else {**body, "cursor": cursor}, tenant=API_TENANT)
        assert r.status_code == 200, r.text
        rows += r.json()["data"]
        cursor = r.json()["metadata"]["next_cursor"]
        if cursor is None:
            return rows
        if between is not None and len(rows) == body["limit"]:
            between()


@pytest.mark.usefixtures("paging_tenant")
def test_api_pages_are_the_unpaged_answer_despite_a_write_between_them(client: httpx.Client, hub: RunningHub) -> None:
    whole = query(client, {**API_BODY, "limit": 100}, tenant=API_TENANT).json()["data"]
    assert len(whole) == 12

    def write() -> None:  # a new model that sorts first and a raise for the last one
        _post(client, hub, _events([("a-new", 1000.0), (whole[-1]["model"], 500.0)]))

    paged = _api_pages(client, API_BODY, between=write)
    assert [r["model"] for r in paged] == [r["model"] for r in whole]
    assert paged == whole
    after = query(client, {**API_BODY, "limit": 100}, tenant=API_TENANT).json()["data"]
    assert after[0]["model"] == "a-new" and len(after) == 13  # a new query sees the write


def _cursor_of(client: httpx.Client, body: dict[str, Any], tenant: str = API_TENANT) -> str:
    r = query(client, body, tenant=tenant)
    assert r.status_code == 200 and r.json()["metadata"]["next_cursor"], r.text
    cursor: str = r.json()["metadata"]["next_cursor"]
    return cursor


def _decoded(cursor: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return data


def _encoded(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _refused(client: httpx.Client, body: dict[str, Any], cursor: Any, words: str, tenant: str = API_TENANT) -> None:
    r = query(client, {**body, "cursor": cursor}, tenant=tenant)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_query" and err["field"] == "cursor", err
    assert err["message"].startswith("cursor: ") and words in err["message"], err


@pytest.mark.usefixtures("paging_tenant")
@pytest.mark.parametrize("cursor", ["garbage!", "", "bm90IGEgY3Vyc29y", 5, ["x"], {"k": []}, _encoded([1, 2]),
                                    _encoded({"x": "page"})])  # fmt: skip
def test_a_garbage_cursor_is_a_422_on_cursor(client: httpx.Client, cursor: Any) -> None:
    _refused(client, API_BODY, cursor, "not a cursor from this API; pass metadata.next_cursor unchanged")


@pytest.mark.usefixtures("paging_tenant")
def test_a_cursor_of_another_query_or_tenant_is_a_422(client: httpx.Client) -> None:
    cursor = _cursor_of(client, API_BODY)
    another = "belongs to another query: send the same body (and tenant) with its metadata.next_cursor"
    _refused(client, {**API_BODY, "sort": [{"field": "sum"}]}, cursor, another)
    _refused(client, {**API_BODY, "filters": [{"field": "model", "operator": "ne", "value": "m00"}]}, cursor, another)
    _refused(client, API_BODY, cursor, another, tenant="acme")
    _refused(client, {**API_BODY, "tenant": "*"}, cursor, another, tenant="acme")
    # the page size may change from page to page: the cursor is the query's, not the page's
    assert query(client, {**API_BODY, "limit": 2, "cursor": cursor}, tenant=API_TENANT).status_code == 200


@pytest.mark.usefixtures("paging_tenant")
def test_a_tampered_or_foreign_cursor_is_a_422(client: httpx.Client) -> None:
    cursor = _cursor_of(client, API_BODY)
    real = _decoded(cursor)
    assert query(client, {**API_BODY, "cursor": _encoded(real)}, tenant=API_TENANT).status_code == 200
    not_one = "not a cursor from this API"
    tampered = [
        {**real, "k": [str(real["k"][0]), real["k"][1]]},  # a sum as text
        {**real, "k": [real["k"][0], 7]},  # a model as a number
        {**real, "k": real["k"][:1]},  # a key too short
        {**real, "k": None},  # no key: a page cursor always has one
        {**real, "w": [real["w"][0], real["w"][1] + 3_600_000_000]},  # a longer window than "last": "3h"
        {**real, "w": [real["w"][1], real["w"][0]]},
        {**real, "w": [0, 2**63 - 1]},  # out of the store's timestamps (was a 500 for an export)
        {**real, "r": 2**63 - 1},
        {**real, "r": "now"},
        {**real, "n": -1},
        {**real, "x": "query"},  # an export's cursor
    ]
    for data in tampered:
        _refused(client, API_BODY, _encoded(data), not_one)
    export = QueryExportCursor(real["w"][0], real["w"][1], real["r"], real["k"], export_scope("query", "x"))
    _refused(client, API_BODY, encode_query_cursor(export), not_one)


@pytest.mark.usefixtures("paging_tenant")
def test_an_absolute_window_must_be_the_bodys(client: httpx.Client) -> None:
    now = int(time.time())
    body = {**API_BODY, "time_range": {"start": now - 3 * 3600, "end": now}}
    real = _decoded(_cursor_of(client, body))
    shifted = {**real, "w": [real["w"][0] - 60_000_000, real["w"][1] - 60_000_000]}
    _refused(client, body, _encoded(shifted), "not a cursor from this API")


@pytest.mark.usefixtures("paging_tenant")
def test_an_offset_cursor_of_an_earlier_hub_still_resumes(client: httpx.Client) -> None:
    """``{"o": offset, "q": hash}`` (next_cursor before keyset paging) continues at that offset, and its
    answer's next_cursor is a keyset one."""
    fingerprint = parse_query(API_BODY, tenant=API_TENANT, now_us=0).fingerprint(with_page=False)[:12]
    r = query(client, {**API_BODY, "cursor": _encoded({"o": 3, "q": fingerprint})}, tenant=API_TENANT)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == query(client, {**API_BODY, "offset": 3}, tenant=API_TENANT).json()["data"]
    assert r.json()["metadata"]["offset"] == 3 and _decoded(r.json()["metadata"]["next_cursor"])["x"] == "page"
    _refused(client, API_BODY, _encoded({"o": 3, "q": "0" * 12}), "belongs to another query")


@pytest.mark.usefixtures("paging_tenant")
def test_a_bad_cursor_in_a_batch_fails_its_entry_only(client: httpx.Client) -> None:
    cursor = _cursor_of(client, API_BODY)
    r = client.post("/api/v1/query/batch", headers={"X-Scope-OrgID": API_TENANT},
                    json={"queries": [{**API_BODY, "cursor": cursor}, {**API_BODY, "cursor": "garbage!"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    good, bad = r.json()["results"]
    assert good["status"] == 200 and good["metadata"]["offset"] == 3
    assert bad["status"] == 422 and bad["error"]["field"] == "queries.1.cursor"


# Sums and averages of far-apart and of tying float values: the pages, concatenated, are the export's answer
# to the bit (a sum is the same bits in any order of addition), with no page sorting the rows it adds.

SEPARATE_TENANT = "s"


@pytest.fixture(scope="module")
def separate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """30 models whose sums and averages are far apart (model i: 40 values near (i + 1) * 0.37, and token
    counts), a model without values (NULL sum and avg) and two models whose sums tie (t1, t2: the same
    values, whose plain sums may differ in their last bits by the order they are added in)."""
    s = EmbeddedStore(tmp_path_factory.mktemp("separate"), wal_fsync=False)
    s.start()
    s.cursor().execute(
        "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, name, value, model, input_tokens, "
        "tags, payload) "
        "SELECT 's', make_timestamp(?) + (i % 50) * INTERVAL 1 MINUTE, make_timestamp(?), 's' || i, 'telemetry', "
        "'d', CASE WHEN i < 1200 THEN (i % 30 + 1) * 0.37 + (i // 30) * 0.001 WHEN i < 1240 THEN NULL "
        "ELSE 0.1 * (i // 2 % 7) + 0.01 END, "
        "CASE WHEN i < 1200 THEN 'm' || lpad((i % 30)::VARCHAR, 2, '0') WHEN i < 1240 THEN 'none' "
        "ELSE 't' || (i % 2 + 1) END, (i % 30) * 10 + i // 30, '{}', '{}' "
        "FROM range(1280) t(i)",
        [BASE_US, BASE_US],
    )
    yield s
    s.shutdown()


def _export_order(store: EmbeddedStore, body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of ``body`` in the export's total order."""
    q = parse_query({**body, "limit": 10_000}, tenant=SEPARATE_TENANT, now_us=NOW_US)
    compiled = compile_export(q, received_by_us=NOW_US)
    assert "ORDER BY v)" not in compiled.sql
    return [tuple(r) for r in store.read(compiled.sql, compiled.params).fetchall()]


def _separate_pages(ex: QueryExecutor, body: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Every page of ``body`` (rows as tuples) and the SQL of each."""
    rows: list[tuple[Any, ...]] = []
    sqls: list[str] = []
    cursor = None
    while True:
        page_body = body if cursor is None else {**body, "cursor": cursor}
        answer = ex.execute(parse_query(page_body, tenant=SEPARATE_TENANT, now_us=NOW_US, received_by_us=NOW_US))
        rows += [tuple(r.values()) for r in answer["data"]]
        sqls.append(answer["metadata"]["compiled_query"]["sql"])
        cursor = answer["metadata"]["next_cursor"]
        if cursor is None:
            return rows, sqls


SEPARATE_SORTS: list[dict[str, Any]] = [
    {"aggregation": {"functions": ["sum", "count"], "group_by": ["model"]}, "sort": [{"field": "sum", "order": "desc"}]},
    {"aggregation": {"functions": ["sum"], "group_by": ["model"]}, "sort": [{"field": "sum"}]},
    {"aggregation": {"functions": ["avg", "sum"], "group_by": ["model"]},
     "sort": [{"field": "avg", "order": "desc"}, {"field": "sum"}]},
]  # fmt: skip


@pytest.mark.parametrize("limit", [1, 4, 29, 30])
@pytest.mark.parametrize("body", SEPARATE_SORTS, ids=range(len(SEPARATE_SORTS)))
def test_pages_of_float_sums_are_the_export_to_the_bit(separate: EmbeddedStore, body: dict[str, Any], limit: int) -> None:
    """Every page resumes right after the one before, also where the NULL sum comes next (limit 30);
    concatenated, they are the export's answer, to the last bit of every value."""
    ex = QueryExecutor(EmbeddedBackend(separate), QueryCache())
    body = {"time_range": {"last": "1h"}, "filters": [{"field": "model", "operator": "not_in", "value": ["t1", "t2"]}],
            **body, "limit": limit}  # fmt: skip
    rows, sqls = _separate_pages(ex, body)
    assert len(sqls) == math.ceil(31 / limit)
    assert not any("ORDER BY v)" in sql for sql in sqls)
    assert rows == _export_order(separate, body)


def test_float_sums_that_tie_are_told_apart_by_the_groups(separate: EmbeddedStore) -> None:
    """t1 and t2 sum the same values: their sums are the same bits (had the order of addition decided, either
    could have come first, or crossed a cursor), so the model orders them, on every page cut."""
    ex = QueryExecutor(EmbeddedBackend(separate))
    for limit in (100, 32, 31, 30, 15):
        body = {"time_range": {"last": "1h"}, **SEPARATE_SORTS[0], "limit": limit}
        rows, _ = _separate_pages(ex, body)
        assert rows == _export_order(separate, body), limit
        assert rows[30][0] == "t1" and rows[31][0] == "t2" and rows[30][1:] == rows[31][1:]


def test_a_sum_of_whole_numbers_is_never_sorted_first(separate: EmbeddedStore) -> None:
    """Token sums are exact (HUGEINT) in any order: no page sorts the rows it adds."""
    ex = QueryExecutor(EmbeddedBackend(separate))
    body = {"time_range": {"last": "1h"}, "metric": {"event_type": "telemetry", "field": "input_tokens"},
            "aggregation": {"functions": ["sum", "avg"], "group_by": ["model"]},
            "sort": [{"field": "avg"}, {"field": "sum", "order": "desc"}], "limit": 7}  # fmt: skip
    rows, sqls = _separate_pages(ex, body)
    assert len(sqls) == 5 and not any("ORDER BY v)" in sql for sql in sqls)
    assert rows == _export_order(separate, body)
