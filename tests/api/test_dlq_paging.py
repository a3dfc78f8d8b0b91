"""``GET /api/v1/dlq`` reads only its page (it had decoded the whole dead-letter file on each call) and its
``next_cursor`` pages exactly: no entry lost or repeated when a replay removes entries (the last one shown
included) or new ones arrive between pages; filters, order and totals as before; bad cursors are a 422."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import hubcore.dlq as dlq_module
from api.errors import install_error_handlers
from api.routers import dlq
from api.state import SecurityContext
from hubcore.dlq import DeadLetterQueue, StalePosition
from hubcore.dlq_index import DeadLetterIndex

T1 = {"X-Scope-OrgID": "t1"}


def _app(queue: DeadLetterQueue) -> TestClient:
    app = FastAPI()
    app.state.hub = SimpleNamespace(security=SecurityContext.open("default"), default_tenant="default", dlq=queue)
    install_error_handlers(app)
    app.include_router(dlq.router)
    return TestClient(app)


def _fill(queue: DeadLetterQueue, n: int, tenants: tuple[str, ...] = ("t1", "t2"), start: int = 0) -> None:
    queue.put_many([(tenants[i % len(tenants)], "rest", f"bad field {i % 3}", json.dumps({"n": i}), i)
                    for i in range(start, start + n)])  # fmt: skip


def _n(entry: dict[str, Any]) -> int:
    return int(json.loads(entry["raw"])["n"])


def _all_pages(client: TestClient, params: dict[str, Any], headers: dict[str, str] = T1) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        r = client.get("/api/v1/dlq", params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert r.status_code == 200, r.text
        seen += [_n(e) for e in r.json()["entries"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen


def test_pages_match_the_whole_listing_with_filters(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 50)
    client = _app(queue)
    expected = [n for n in range(49, -1, -1) if n % 2 == 0]  # t1's, newest first
    assert _all_pages(client, {"limit": 7}) == expected
    assert client.get("/api/v1/dlq", params={"limit": 1000}, headers=T1).json()["total"] == 25
    with_reason = [n for n in expected if n % 3 == 1]
    assert _all_pages(client, {"limit": 2, "reason": "field 1"}) == with_reason
    # offset paging as before
    r = client.get("/api/v1/dlq", params={"limit": 5, "offset": 20}, headers=T1).json()
    assert [_n(e) for e in r["entries"]] == expected[20:25] and r["total"] == 25 and r["next_cursor"] is None
    assert client.get("/api/v1/dlq", params={"offset": 25}, headers=T1).json()["entries"] == []


def test_a_listing_decodes_only_its_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 400)
    queue.list(tenant_id="t1", limit=1)  # (the index: built once, from the entries' heads)
    decoded: list[int] = []
    real = dlq_module._dec

    class Counting:
        def decode(self, data: Any) -> Any:
            decoded.append(1)
            return real.decode(data)

    monkeypatch.setattr(dlq_module, "_dec", Counting())
    entries, total = queue.list(tenant_id="t1", limit=10, offset=100)
    assert total == 200 and [json.loads(e["raw"])["n"] for e in entries] == list(range(198, 178, -2))[:10]
    assert len(decoded) == 10  # the page's lines, not the 400 of the file
    _fill(queue, 4)  # appended by this queue: indexed as written, nothing re-read
    decoded.clear()
    assert queue.list(tenant_id="t1", limit=2)[1] == 202 and len(decoded) == 2


def test_paging_stays_exact_across_a_replay_and_new_entries(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 30, tenants=("t1",))
    client = _app(queue)
    first = client.get("/api/v1/dlq", params={"limit": 5}, headers=T1).json()
    assert [_n(e) for e in first["entries"]] == [29, 28, 27, 26, 25]
    # a replay accepts the last entry shown, one shown before it and some not shown yet; new entries arrive
    gone = {25, 27, 24, 20, 11}
    queue.replay(lambda entries: [_n(e) in gone for e in entries], tenant_id="t1")
    _fill(queue, 3, tenants=("t1",), start=100)
    rest = _all_pages(client, {"limit": 4, "cursor": first["next_cursor"]})
    assert rest == [n for n in range(24, -1, -1) if n not in gone]  # nothing lost, nothing repeated
    # the size bound's rewrite (the oldest half dropped) keeps positions too
    second = client.get("/api/v1/dlq", params={"limit": 3}, headers=T1).json()
    queue.max_bytes = queue.path.stat().st_size - 1
    _fill(queue, 1, tenants=("t1",), start=200)
    after = _all_pages(client, {"limit": 3, "cursor": second["next_cursor"]})
    left = [_n(e) for e in queue.list(tenant_id="t1", limit=1000)[0]]
    assert after == [n for n in left if left.index(n) > left.index(_n(second["entries"][-1]))] and after


def test_entries_written_by_another_process_are_listed(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 4, tenants=("t1",))
    client = _app(queue)
    page = client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()
    other = DeadLetterQueue(tmp_path, fsync=False)  # e.g. a second process on the data directory
    other.put(tenant_id="t1", receiver="rest", reason="late", raw='{"n": 100}')
    with open(queue.path, "ab") as fh:
        fh.write(b'{"torn": ')  # a line cut short by a crash: skipped, and the next line still read
    other.put(tenant_id="t1", receiver="rest", reason="later", raw='{"n": 101}')
    listed = client.get("/api/v1/dlq", headers=T1).json()
    assert [_n(e) for e in listed["entries"]] == [100, 3, 2, 1, 0] and listed["total"] == 5  # (101: torn line)
    assert _all_pages(client, {"limit": 2, "cursor": page["next_cursor"]}) == [1, 0]
    # another process rewrote the file (its replay): the lines keep their numbers, the cursor stays exact
    other.replay(lambda entries: [True] * len(entries), tenant_id="t1", ids=[listed["entries"][3]["id"]])
    assert _all_pages(client, {"limit": 2, "cursor": page["next_cursor"]}) == [0]  # (1 was replayed)
    assert [_n(e) for e in client.get("/api/v1/dlq", headers=T1).json()["entries"]] == [100, 3, 2, 0]
    for damaged in ("nope:1", f"{queue._index.epoch}:²", f"{queue._index.epoch}:{'9' * 5000}", "", ":"):
        with pytest.raises(StalePosition):
            queue.list_visible(tenant_id="t1", before=damaged)


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"cursor": "%%%"}, T1, "cursor"),
        ({"cursor": "eyJ4IjoxfQ"}, T1, "cursor"),  # {"x":1}
        ({"cursor": "OTHER"}, {"X-Scope-OrgID": "t2"}, "cursor"),  # t1's cursor, asked for t2
        ({"cursor": "OTHER", "reason": "field 1"}, T1, "cursor"),  # another filter
        ({"cursor": "OTHER", "offset": "0"}, T1, "offset"),
    ],
)
def test_bad_cursors_are_a_422_naming_the_field(
    tmp_path: Path, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 10)
    client = _app(queue)
    good = client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()["next_cursor"]
    assert good
    r = client.get("/api/v1/dlq", params={k: good if v == "OTHER" else v for k, v in params.items()},
                   headers=headers)  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "bad_cursor" and r.json()["error"]["field"] == field


def test_an_empty_queue_lists_nothing(tmp_path: Path) -> None:
    r = _app(DeadLetterQueue(tmp_path, fsync=False)).get("/api/v1/dlq", headers=T1).json()
    assert r["entries"] == [] and r["total"] == 0 and r["next_cursor"] is None


def test_teams_are_read_once_and_a_first_listing_does_not_hold_writers_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(DeadLetterQueue(tmp_path, fsync=False), 40)
    queue = DeadLetterQueue(tmp_path, fsync=False)  # a new process: nothing indexed yet
    real_sync = DeadLetterIndex.sync
    held: list[bool] = []

    def sync(index: DeadLetterIndex, path: Path) -> None:
        held.append(queue._lock.locked())
        real_sync(index, path)
        if len(held) == 1:  # a rejected event arrives while the file is first indexed
            queue.put(tenant_id="t1", receiver="rest", reason="meanwhile", raw='{"n": 99}')

    monkeypatch.setattr(DeadLetterIndex, "sync", sync)
    entries, total = queue.list(tenant_id="t1", limit=3)
    assert held[0] is False  # the bulk of the first read ran outside the lock
    assert total == 21 and [_n(e) for e in entries] == [99, 38, 36]
    monkeypatch.undo()
    decoded: list[int] = []
    real = dlq_module._dec

    class Counting:
        def decode(self, data: Any) -> Any:
            decoded.append(1)
            return real.decode(data)

    monkeypatch.setattr(dlq_module, "_dec", Counting())
    mine = queue.list_visible(tenant_id="t1", visible=lambda teams: not teams, limit=2)
    assert mine.total == 21 and len(decoded) == 21 * 2 + 2  # each entry and its raw once, then the page
    decoded.clear()
    assert queue.list_visible(tenant_id="t1", visible=lambda teams: not teams, limit=2).total == 21
    assert len(decoded) == 2  # the teams were kept: only the page is read
