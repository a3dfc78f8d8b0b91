"""``GET /api/v1/dlq`` cursors outlive the hub: a cursor from before a restart (a new queue and app on the same
data directory) resumes exactly, while entries arrive and replays remove some; it is a 422 ``bad_cursor`` only
when the queue was started afresh (its file removed, its numbering lost). A new process reads only what was
appended since the index was saved (``dlq.index``), and a saved index that no longer matches the file is not
trusted. (Cursors had been a 422 after any restart, and the first listing indexed the whole file.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

import hubcore.dlq as dlq_module
from hubcore.dlq import DeadLetterQueue
from hubcore.dlq_index import DeadLetterIndex
from tests.api.test_dlq_paging import T1, _all_pages, _app, _fill, _n


def _restart(tmp_path: Path) -> tuple[DeadLetterQueue, TestClient]:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    return queue, _app(queue)


def _lines_indexed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the lines the index reads from the file (not those the queue adds as it writes them)."""
    read: list[int] = []
    real = DeadLetterIndex._add_line

    def add_line(index: DeadLetterIndex, start: int, line: bytes) -> None:
        read.append(start)
        real(index, start, line)

    monkeypatch.setattr(DeadLetterIndex, "_add_line", add_line)
    return read


def _stale(client: TestClient, cursor: str) -> dict[str, Any]:
    r = client.get("/api/v1/dlq", params={"cursor": cursor}, headers=T1)
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "bad_cursor" and error["field"] == "cursor" and "list again" in error["message"]
    return error


def test_a_cursor_from_before_a_restart_resumes_exactly(tmp_path: Path) -> None:
    queue, client = _restart(tmp_path)
    _fill(queue, 40)
    first = client.get("/api/v1/dlq", params={"limit": 5}, headers=T1).json()
    assert [_n(e) for e in first["entries"]] == [38, 36, 34, 32, 30]
    reasoned = client.get("/api/v1/dlq", params={"limit": 2, "reason": "field 1"}, headers=T1).json()
    queue.close()
    queue, client = _restart(tmp_path)  # the hub restarted
    assert _all_pages(client, {"limit": 6, "cursor": first["next_cursor"]}) == list(range(28, -1, -2))
    expected = [n for n in range(38, -1, -2) if n % 3 == 1]
    assert _all_pages(client, {"limit": 2, "reason": "field 1", "cursor": reasoned["next_cursor"]}) == expected[2:]
    # entries arrive and a replay (after the restart) removes the last entry shown and some not shown yet
    _fill(queue, 6, start=100)
    gone = {30, 22, 4}
    queue.replay(lambda entries: [_n(e) in gone for e in entries], tenant_id="t1")
    queue, client = _restart(tmp_path)  # and it restarted again (its index saved by the replay? not needed)
    assert _all_pages(client, {"limit": 4, "cursor": first["next_cursor"]}) == [
        n for n in range(28, -1, -2) if n not in gone
    ]
    # a cursor of the listing as it is now, across one more restart without close (a crash)
    page = client.get("/api/v1/dlq", params={"limit": 3}, headers=T1).json()
    assert [_n(e) for e in page["entries"]] == [104, 102, 100]
    queue, client = _restart(tmp_path)
    assert _all_pages(client, {"limit": 50, "cursor": page["next_cursor"]})[:3] == [38, 36, 34]
    assert all("seq" not in e for e in client.get("/api/v1/dlq", headers=T1).json()["entries"])  # not shown


def test_numbers_of_replayed_entries_are_never_given_again(tmp_path: Path) -> None:
    queue, client = _restart(tmp_path)
    _fill(queue, 10, tenants=("t1",))
    page = client.get("/api/v1/dlq", params={"limit": 3}, headers=T1).json()  # 9, 8, 7: the cursor is before 7
    queue.replay(lambda entries: [_n(e) >= 5 for e in entries], tenant_id="t1")  # the newest 5 entries
    queue, client = _restart(tmp_path)
    _fill(queue, 4, tenants=("t1",), start=100)  # new entries: newer than every page of that listing
    assert _all_pages(client, {"limit": 2, "cursor": page["next_cursor"]}) == [4, 3, 2, 1, 0]
    assert _all_pages(client, {"limit": 100}) == [103, 102, 101, 100, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("lose", ["queue file", "numbering", "damaged numbering"])
def test_a_cursor_of_a_queue_started_afresh_is_a_422(tmp_path: Path, lose: str) -> None:
    queue, client = _restart(tmp_path)
    _fill(queue, 10, tenants=("t1",))
    page = client.get("/api/v1/dlq", params={"limit": 3}, headers=T1).json()
    queue.close()
    if lose == "queue file":  # rotated away by hand: the entries the cursor pointed into are gone
        queue.path.unlink()
    elif lose == "numbering":
        queue.numbering_path.unlink()
    else:
        queue.numbering_path.write_bytes(b'{"epoch": 7}')
    queue, client = _restart(tmp_path)
    if lose == "queue file":
        _fill(queue, 4, tenants=("t1",), start=100)
    _stale(client, page["next_cursor"])
    fresh = client.get("/api/v1/dlq", params={"limit": 3}, headers=T1).json()  # listing again works
    assert [_n(e) for e in fresh["entries"]] == ([103, 102, 101] if lose == "queue file" else [9, 8, 7])
    rest = _all_pages(client, {"limit": 100, "cursor": fresh["next_cursor"]})
    assert rest[:1] == [100 if lose == "queue file" else 6]


def test_a_new_process_reads_only_what_was_appended_since_the_index_was_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlq_module, "SAVE_INDEX_EVERY", 50)
    queue, client = _restart(tmp_path)
    _fill(queue, 200)
    read = _lines_indexed(monkeypatch)
    assert client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()["total"] == 100
    assert read == []  # indexed as written
    queue.close()  # the hub's stop saves the index
    queue, client = _restart(tmp_path)
    assert client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()["total"] == 100
    assert read == []  # nothing re-read: the index was saved at the stop
    _fill(queue, 30, start=200)  # 30 entries after the save, under the threshold: a crash now
    queue, client = _restart(tmp_path)
    page = client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()
    assert page["total"] == 115 and [_n(e) for e in page["entries"]] == [228, 226]
    assert len(read) == 30  # the 30 appended since
    _fill(queue, 60, start=300)  # past the threshold: saved as written, no stop needed
    read.clear()
    queue, client = _restart(tmp_path)
    assert client.get("/api/v1/dlq", params={"limit": 2}, headers=T1).json()["total"] == 145
    assert read == []


@pytest.mark.parametrize("damage", ["garbage", "another file", "truncated file", "same size other bytes"])
def test_a_saved_index_that_does_not_match_the_file_is_not_trusted(tmp_path: Path, damage: str) -> None:
    queue, client = _restart(tmp_path)
    _fill(queue, 20, tenants=("t1",))
    page = client.get("/api/v1/dlq", params={"limit": 4}, headers=T1).json()
    queue.close()
    assert queue.index_path.exists()
    lines = queue.path.read_bytes().splitlines(keepends=True)
    if damage == "garbage":
        queue.index_path.write_bytes(b"\x93not an index")
    elif damage == "another file":  # the same lines, rewritten by hand: another inode
        queue.path.unlink()
        queue.path.write_bytes(b"".join(lines))
    elif damage == "truncated file":
        queue.path.write_bytes(b"".join(lines[:15]))
    else:  # the same length, one entry's reason changed in place
        queue.path.write_bytes(queue.path.read_bytes().replace(b"bad field 1", b"bad field 2", 1))
    queue, client = _restart(tmp_path)
    listed = [_n(e) for e in queue.list(tenant_id="t1", limit=100)[0]]
    assert listed == list(range(14 if damage == "truncated file" else 19, -1, -1))
    assert _all_pages(client, {"limit": 3, "cursor": page["next_cursor"]}) == [
        n for n in listed if n < 16
    ]  # (the numbers are the file's own: the cursor still resumes)
    if damage == "same size other bytes":
        reasons = [e["reason"] for e in queue.list(tenant_id="t1", limit=100, reason_contains="field 1")[0]]
        assert len(reasons) == 6  # read from the file, not from the index saved before the edit


def test_a_file_written_before_entries_carried_numbers_pages_across_restarts(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    queue.directory.mkdir(parents=True, exist_ok=True)
    old = [{"id": f"id{i}", "received_at": 1.0, "tenant_id": "t1", "receiver": "rest", "reason": "bad",
            "index": i, "raw": json.dumps({"n": i})} for i in range(12)]  # fmt: skip
    queue.path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in old))  # an earlier release's file
    client = _app(queue)
    page = client.get("/api/v1/dlq", params={"limit": 4}, headers=T1).json()
    assert [_n(e) for e in page["entries"]] == [11, 10, 9, 8]
    queue, client = _restart(tmp_path)
    _fill(queue, 2, tenants=("t1",), start=100)
    assert _all_pages(client, {"limit": 5, "cursor": page["next_cursor"]}) == list(range(7, -1, -1))
    queue.replay(lambda entries: [_n(e) == 5 for e in entries], tenant_id="t1")  # the rewrite numbers every line
    assert all(b'"seq":' in line for line in queue.path.read_bytes().splitlines())
    queue, client = _restart(tmp_path)
    assert _all_pages(client, {"limit": 5, "cursor": page["next_cursor"]}) == [7, 6, 4, 3, 2, 1, 0]


def test_a_cursor_survives_a_restart_of_the_hub(tmp_path: Path) -> None:
    import httpx

    from tests.helpers.events import make_event
    from tests.helpers.hub import running_hub

    headers = {"X-Scope-OrgID": "t9"}
    bad = [make_event("cost", payload={"currency": "XYZ", "amount": float(i + 1)}) for i in range(5)]
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        assert httpx.post(f"{hub.api}/api/v1/events", json=bad, headers=headers).status_code == 422
        page = httpx.get(f"{hub.api}/api/v1/dlq", params={"limit": 2}, headers=headers).json()
        assert page["total"] == 5 and page["next_cursor"]
    assert (tmp_path / "dlq" / "dlq.index").exists()  # saved at the stop
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        r = httpx.get(f"{hub.api}/api/v1/dlq", params={"limit": 10, "cursor": page["next_cursor"]}, headers=headers)
        assert r.status_code == 200, r.text  # had been a 422 bad_cursor: "the hub restarted"
        shown = [json.loads(e["raw"])["payload"]["amount"] for e in page["entries"] + r.json()["entries"]]
        assert sorted(shown) == [1.0, 2.0, 3.0, 4.0, 5.0] and r.json()["next_cursor"] is None


def test_a_file_edited_by_hand_past_the_checks_of_its_saved_index_is_indexed_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = DeadLetterQueue(tmp_path, fsync=False)
    _fill(queue, 200, tenants=("t1",))
    queue.close()
    lines = queue.path.read_bytes().splitlines(keepends=True)
    assert sum(map(len, lines[:100])) > 4096 and sum(map(len, lines[102:])) > 4096  # past the 4 KiB checked
    # one line a byte longer, the next a byte shorter: the same size, the same first and last 4 KiB
    lines[100] = lines[100].replace(b'"reason":"bad field 1"', b'"reason":"bad field 1!"')
    lines[101] = lines[101].replace(b'"reason":"bad field 2"', b'"reason":"bad field "')
    edited = b"".join(lines)
    assert len(edited) == queue.path.stat().st_size and edited != queue.path.read_bytes()
    queue.path.write_bytes(edited)
    queue = DeadLetterQueue(tmp_path, fsync=False)
    listed = [_n(e) for e in queue.list(tenant_id="t1", limit=200)[0]]  # had read a line from the wrong byte
    assert listed == list(range(199, -1, -1))
    assert "its index did not match its file" in caplog.text
    assert [e["reason"] for e in queue.list(tenant_id="t1", limit=200, reason_contains="1!")[0]] == ["bad field 1!"]
