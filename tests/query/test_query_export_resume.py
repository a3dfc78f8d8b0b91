"""Events exports are bounded in time (service.query.export_time_limit) and resumable: an export stopped
at its limit ends with a trailer the client can see, whose next_cursor continues right after the last row
sent, so that nothing is lost or sent twice."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from hubcore.config import config_from_dict
from hubcore.errors import ConfigError
from hubcore.query.executor import EmbeddedBackend, QueryTimeout
from hubcore.query.export import KeyTracker
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
    with httpx.Client(base_url=hub.api, timeout=60) as c:
        yield c


def _parse(fmt: str, body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(rows, trailer or None) of one export answer."""
    if fmt == "jsonl":
        rows = [json.loads(line) for line in body.splitlines()]
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
    absorb: a small Parquet export would otherwise be written whole before a slow client's pause ends)."""
    slept: list[bool] = []
    key = KeyTracker._key

    def slow_key(self: KeyTracker, batch: Any) -> list[Any]:
        if not slept:
            slept.append(True)
            time.sleep(TIME_LIMIT + 0.5)
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
                    time.sleep(TIME_LIMIT + 1.0)  # the export reaches its limit while the client dawdles
        got, trailer = _parse(fmt, bytes(body))
        rows += got
        if trailer is None:
            return rows, attempt
        assert trailer["truncated"] is True and trailer["reason"] == "time_limit" and trailer["rows"] == len(got)
        assert "cursor=<next_cursor>" in trailer["message"]
        cursor = {"cursor": trailer["next_cursor"]}
    raise AssertionError("the export never finished")


def _payload_i(row: dict[str, Any]) -> int:
    return int(json.loads(row["payload"])["i"])


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
    resumed = client.get(
        "/api/v1/events/export", params={"format": "jsonl", "last": "1h", "cursor": cursor}, headers=org
    )
    assert [_payload_i(json.loads(line)) for line in resumed.text.splitlines()] == EXPECTED[65_536:]


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
