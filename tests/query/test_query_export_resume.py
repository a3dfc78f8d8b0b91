"""Events and query exports are bounded in time (service.query.export_time_limit) and resumable: an export
stopped at its limit ends with a trailer the client can see, whose next_cursor continues right after the
last row sent, so that nothing is lost or sent twice. A client that stops reading does not hold the store's
result past the limit."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pyarrow.parquet as pq
import pytest

from hubcore.config import config_from_dict
from hubcore.errors import ConfigError
from hubcore.query.executor import EmbeddedBackend, QueryTimeout, _HeldResult
from hubcore.query.export import KeyTracker, QueryExportCursor, QueryKeyTracker, encode_query_cursor, export_scope
from tests.helpers.hub import RunningHub, running_hub

TIME_LIMIT = 2.0
N = 140_000  # three batches of the store's reader (65,536 rows)
N_OTHER = 3_000


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("resume"), grpc=False, otlp_http=False,
                     service__query__export_time_limit=TIME_LIMIT) as h:  # fmt: skip
        # ties everywhere: 4 rows per microsecond, each event id twice (the same event sent again after the
        # de-duplication window: same time and id, another receipt time, or none), payload i = the row
        insert = (
            "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, name, value, tags, payload) "
            "SELECT ?, make_timestamp(?) + (i // 4) * INTERVAL 1 MICROSECOND, "
            "CASE WHEN i % 2 = 0 THEN NULL ELSE make_timestamp(?) + i * INTERVAL 1 MICROSECOND END, "
            "'e' || lpad((i // 2)::VARCHAR, 7, '0'), 'telemetry', 'x', i, '{}', '{\"i\": ' || i || '}' FROM range(?) t(i)"
        )
        base_us = (time.time_ns() // 1000) - 600_000_000  # ten minutes ago, the same for both tenants
        cur = h.service.store.cursor()
        cur.execute(insert, ["resume", base_us, base_us + 60_000_000, N])
        cur.execute(insert, ["resume-b", base_us, base_us + 60_000_000, N_OTHER])
        cur.close()
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    # a connection per request: on a loaded machine, reading a large answer can outlast the server's keep-alive
    # (5 s), and a request sent on the connection it is closing is reset
    with httpx.Client(base_url=hub.api, timeout=60, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


#: a full export is 140,000 JSON lines, each with a JSON payload: msgspec reads them in a third of json.loads' time
_json = msgspec.json.Decoder()


def _parse(fmt: str, body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(rows, trailer or None) of one export answer."""
    if fmt == "jsonl":
        rows = [_json.decode(line) for line in body.splitlines()]
        if rows and "truncated" in rows[-1]:
            return rows[:-1], rows[-1]
        return rows, None
    if fmt == "csv":
        lines = body.decode().splitlines()
        trailer = json.loads(lines.pop()[1:]) if lines[-1].startswith("#") else None
        assert not any(line.startswith("#") for line in lines)
        return list(csv.DictReader(io.StringIO("\n".join(lines)))), trailer
    table = pq.read_table(io.BytesIO(body))
    meta = pq.read_metadata(io.BytesIO(body)).metadata or {}
    raw = meta.get(b"hub.export")
    return table.to_pylist(), json.loads(raw) if raw else None


@pytest.fixture
def slow_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first batch an export hands on takes longer than the time limit (whatever the socket buffers
    absorb: a small Parquet export would otherwise be written whole before a slow client's pause ends).
    The limit runs from the export's start, before its first batch: the sleep alone outlasts it."""
    slept: list[bool] = []
    key = KeyTracker._key

    def slow_key(self: KeyTracker, batch: Any) -> list[Any]:
        if not slept:
            slept.append(True)
            time.sleep(TIME_LIMIT + 0.1)
        return key(self, batch)

    monkeypatch.setattr(KeyTracker, "_key", slow_key)


def _export_all(
    client: httpx.Client, fmt: str, *, slow_client: bool = False, **params: str
) -> tuple[list[dict[str, Any]], int]:
    """Every row of an export, resuming after each stop; with ``slow_client`` the first answer is read
    slowly (a pause past the limit after its first chunk)."""
    rows: list[dict[str, Any]] = []
    cursor: dict[str, str] = {}
    for attempt in range(30):
        body = bytearray()
        with client.stream("GET", "/api/v1/events/export", params={"format": fmt, "last": "1h", **params, **cursor},
                           headers={} if "tenant" in params else {"X-Scope-OrgID": "resume"}) as r:  # fmt: skip
            assert r.status_code == 200, r.read()
            assert r.headers["x-export-time-limit"] == "2"
            for k, chunk in enumerate(r.iter_bytes()):
                body += chunk
                if slow_client and attempt == 0 and k == 0:
                    time.sleep(TIME_LIMIT + 0.2)  # the export (started before this chunk) reaches its limit meanwhile
        got, trailer = _parse(fmt, bytes(body))
        rows += got
        if trailer is None:
            return rows, attempt
        assert trailer["truncated"] is True and trailer["reason"] == "time_limit" and trailer["rows"] == len(got)
        assert "cursor=<next_cursor>" in trailer["message"]
        cursor = {"cursor": trailer["next_cursor"]}
    raise AssertionError("the export never finished")


def _payload_i(row: dict[str, Any]) -> int:
    return int(_json.decode(row["payload"])["i"])


# the export's order is (time, event id, receipt time): 4 rows per microsecond, ids in pairs whose first
# copy has no receipt time (NULL sorts first)
EXPECTED = sorted(range(N), key=lambda i: (i // 4, i // 2, -1 if i % 2 == 0 else i))


@pytest.mark.usefixtures("slow_first_batch")
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_stopped_at_its_time_limit_says_so_and_resumes_without_loss(client: httpx.Client, fmt: str) -> None:
    rows, resumed = _export_all(client, fmt)
    assert resumed >= 1, "the first answer should have been stopped at the time limit"
    assert [_payload_i(r) for r in rows] == EXPECTED  # every row exactly once across the answers, in order


def test_a_slow_client_reaches_the_limit_too(client: httpx.Client) -> None:
    rows, resumed = _export_all(client, "jsonl", slow_client=True)
    assert resumed >= 1 and [_payload_i(r) for r in rows] == EXPECTED


@pytest.mark.usefixtures("slow_first_batch")
def test_every_tenant_export_resumes_on_its_own_order(client: httpx.Client) -> None:
    rows, resumed = _export_all(client, "jsonl", tenant="*")
    assert resumed >= 1
    mine = [(r["tenant_id"], _payload_i(r)) for r in rows if r["tenant_id"] in ("resume", "resume-b")]

    def key(ti: tuple[str, int]) -> tuple[Any, ...]:
        t, i = ti
        return (i // 4, t, i // 2, -1 if i % 2 == 0 else i)

    assert mine == sorted([("resume", i) for i in range(N)] + [("resume-b", i) for i in range(N_OTHER)], key=key)


def test_a_finished_export_has_no_trailer(client: httpx.Client) -> None:
    r = client.get("/api/v1/events/export", params={"format": "jsonl", "last": "1h", "limit": "10"},
                   headers={"X-Scope-OrgID": "resume"})  # fmt: skip
    assert [_payload_i(json.loads(line)) for line in r.text.splitlines()] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


@pytest.mark.usefixtures("slow_first_batch")
def test_a_cursor_only_resumes_its_own_export(client: httpx.Client) -> None:
    org = {"X-Scope-OrgID": "resume"}
    r = client.get("/api/v1/events/export", params={"last": "1h", "cursor": "not-a-cursor"}, headers=org)
    assert r.status_code == 422 and r.json()["error"]["field"] == "cursor"
    _, trailer = _parse("jsonl", client.get("/api/v1/events/export", params={"format": "jsonl", "last": "1h"},
                                            headers=org).content)  # fmt: skip
    assert trailer is not None and trailer["rows"] == 65_536
    cursor = trailer["next_cursor"]
    others = [
        ({"last": "1h", "model": "x"}, org),
        ({"last": "2h"}, org),
        ({"last": "1h"}, {"X-Scope-OrgID": "resume-b"}),
    ]
    for params, headers in others:
        r = client.get("/api/v1/events/export", params={**params, "cursor": cursor}, headers=headers)
        assert r.status_code == 422 and "belongs to another export" in r.json()["error"]["message"], (params, headers)
    resumed, _ = _export_all(client, "jsonl", cursor=cursor)  # (on a loaded machine it may stop again)
    assert [_payload_i(r) for r in resumed] == EXPECTED[65_536:]


def test_an_export_that_cannot_start_in_time_is_a_504(hub: RunningHub) -> None:
    backend = EmbeddedBackend(hub.service.store)
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        backend.stream_sql("SELECT i FROM range(500000000) t(i) ORDER BY md5(i::VARCHAR)", [], ["i"], time_limit_s=0.2)
    assert time.monotonic() - started < 10


def test_the_time_limit_is_configurable_and_bounded() -> None:
    assert config_from_dict({}).service.query.export_time_limit == 300.0
    assert config_from_dict({"service": {"query": {"export_time_limit": 30}}}).service.query.export_time_limit == 30
    with pytest.raises(ConfigError, match=r"service\.query\.export_time_limit"):
        config_from_dict({"service": {"query": {"export_time_limit": 0}}})


# -- the unified query's export -----------------------------------------------------------------------------
QUERY = {"time_range": {"last": "1h"}, "metric": {"field": "payload.i"},
         "aggregation": {"functions": ["count", "sum"], "group_by": ["event_id"]}}  # fmt: skip
# one row per event id (two events each: rows 2k and 2k+1), in the order of the id
QUERY_EXPECTED = [(f"e{k:07d}", 2, 4.0 * k + 1) for k in range(N // 2)]


@pytest.fixture
def slow_first_query_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`slow_first_batch` for the query export's key tracker."""
    slept: list[bool] = []
    key = QueryKeyTracker._key

    def slow_key(self: QueryKeyTracker, batch: Any) -> list[Any]:
        if not slept:
            slept.append(True)
            time.sleep(TIME_LIMIT + 0.1)
        return key(self, batch)

    monkeypatch.setattr(QueryKeyTracker, "_key", slow_key)


def _query_all(
    client: httpx.Client, fmt: str, body: dict[str, Any], between: Any = None
) -> tuple[list[tuple[Any, ...]], int]:
    """Every row of a query export as (event_id, count, sum), resuming after each stop (``between`` runs
    after the first answer)."""
    rows: list[tuple[Any, ...]] = []
    params: dict[str, str] = {"format": fmt}
    for attempt in range(30):
        r = client.post("/api/v1/query/export", params=params, json=body, headers={"X-Scope-OrgID": "resume"})
        assert r.status_code == 200, r.text
        assert r.headers["x-export-time-limit"] == "2"
        got, trailer = _parse(fmt, r.content)
        rows += [(g["event_id"], int(g["count"]), float(g["sum"])) for g in got]
        if trailer is None:
            return rows, attempt
        assert trailer["truncated"] is True and trailer["reason"] == "time_limit" and trailer["rows"] == len(got)
        params["cursor"] = trailer["next_cursor"]
        if between is not None and attempt == 0:
            between()
    raise AssertionError("the export never finished")


@pytest.mark.usefixtures("slow_first_query_batch")
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_query_export_stopped_at_its_time_limit_resumes_without_loss(client: httpx.Client, fmt: str) -> None:
    rows, resumed = _query_all(client, fmt, QUERY)
    assert resumed >= 1, "the first answer should have been stopped at the time limit"
    assert rows == QUERY_EXPECTED


@pytest.mark.usefixtures("slow_first_query_batch")
def test_a_query_export_sorted_on_an_aggregate_resumes_on_its_order(client: httpx.Client) -> None:
    body = {**QUERY, "sort": [{"field": "sum", "order": "desc"}], "offset": 5}
    rows, resumed = _query_all(client, "jsonl", body)
    assert resumed >= 1 and rows == QUERY_EXPECTED[::-1][5:]  # the offset applies to the first answer only


@pytest.mark.usefixtures("slow_first_query_batch")
def test_a_resumed_query_export_reads_the_events_the_first_answer_read(client: httpx.Client, hub: RunningHub) -> None:
    late: list[int] = []

    def late_events() -> None:  # received after the first answer, inside its window: one new group, one changed
        now_us = time.time_ns() // 1000
        late.append(now_us)
        cur = hub.service.store.cursor()
        cur.execute("INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, value, tags, payload) "
                    "SELECT 'resume', make_timestamp(?), make_timestamp(?), id, 'telemetry', 0, '{}', '{\"i\": 0}' "
                    "FROM (VALUES ('e9999999'), (?)) t(id)", [now_us - 60_000_000, now_us, QUERY_EXPECTED[-1][0]])  # fmt: skip
        cur.close()

    try:
        rows, resumed = _query_all(client, "jsonl", QUERY, between=late_events)
        assert resumed >= 1 and rows == QUERY_EXPECTED
    finally:
        for received_us in late:
            hub.service.store.cursor().execute(
                "DELETE FROM events WHERE tenant_id = 'resume' AND received_at = make_timestamp(?)", [received_us]
            )


def test_a_query_export_cursor_only_resumes_its_own_query(client: httpx.Client) -> None:
    org = {"X-Scope-OrgID": "resume"}
    cursor = encode_query_cursor(QueryExportCursor(0, 1, 2, ["e0000005"], export_scope("query", "x")))
    for body, params in ((QUERY, {"cursor": "not-a-cursor"}), (QUERY, {"cursor": cursor})):
        r = client.post("/api/v1/query/export", params=params, json=body, headers=org)
        assert r.status_code == 422 and r.json()["error"]["field"] == "cursor", r.text
    finished = client.post("/api/v1/query/export", params={"format": "jsonl"}, json={**QUERY, "limit": 3}, headers=org)
    assert [json.loads(line)["event_id"] for line in finished.text.splitlines()] == ["e0000000", "e0000001", "e0000002"]


def test_a_client_that_stops_reading_does_not_hold_the_store(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's store result and cursor are released at the time limit while the client is not reading,
    not when it reads on; what it then reads ends with a trailer, and the export resumes without loss."""
    released: list[float] = []
    close = _HeldResult.close

    def recorded_close(self: _HeldResult) -> None:
        if not self.closed:
            released.append(time.monotonic())
        close(self)

    monkeypatch.setattr(_HeldResult, "close", recorded_close)
    body = bytearray()
    with client.stream("GET", "/api/v1/events/export", params={"format": "jsonl", "last": "1h"},
                       headers={"X-Scope-OrgID": "resume"}) as r:  # fmt: skip
        chunks = r.iter_bytes()
        body += next(chunks)
        stopped = time.monotonic()
        bound = TIME_LIMIT + 1.0  # (a release later than this fails the test whenever the client reads on)
        time.sleep(bound)  # the client reads nothing; the server's send is blocked
        # released before the client reads on (on a loaded machine even before its first chunk came)
        assert released and released[0] < stopped + bound, (stopped, released)
        for chunk in chunks:
            body += chunk
    rows, trailer = _parse("jsonl", bytes(body))
    assert trailer is not None and trailer["rows"] == len(rows) < N
    more, _ = _export_all(client, "jsonl", cursor=trailer["next_cursor"])
    assert [_payload_i(r) for r in rows + more] == EXPECTED
