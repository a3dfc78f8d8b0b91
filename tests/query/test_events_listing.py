"""The event listing (``GET /api/v1/events``, :mod:`hubcore.query.events`) pages in a total order: rows that
share a time — and an event id (the same event sent again after the de-duplication window, or one id in two
tenants of an every-tenant listing) — are neither repeated nor skipped at a page edge."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from hubcore.errors import InvalidParameter
from hubcore.query.events import EventListQuery, decode_cursor, encode_cursor, rows_to_events
from hubcore.storage.embedded import EmbeddedStore

TS_US = 1_800_000_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("listing"), wal_fsync=False)
    s.start()
    # 12 events at one instant and 3 a second earlier: ids e0..e3 in tenants a and b, e0 and e1 of tenant a
    # twice (sent again, received later), and one id at both instants
    rows = [(t, TS_US, f"e{i}", TS_US + 1) for t in ("a", "b") for i in range(4)]
    rows += [("a", TS_US, "e0", TS_US + 2), ("a", TS_US, "e1", TS_US + 2), ("a", TS_US, "e1", TS_US + 3)]
    rows += [
        ("a", TS_US, "e9", TS_US + 1),
        ("a", TS_US - 1_000_000, "e9", TS_US),
        ("a", TS_US - 1_000_000, "e9", TS_US + 5),
    ]
    rows += [("b", TS_US - 1_000_000, "e0", TS_US)]
    cur = s.cursor()
    cur.executemany(
        "INSERT INTO events (tenant_id, ts, received_at, event_id, source_module, event_type, schema_version, "
        "tags, payload) VALUES (?, make_timestamp(?), make_timestamp(?), ?, 'llm-costops', 'cost', '1.0.0', "
        "'{}', '{}')",
        [[t, ts, received, event_id] for t, ts, event_id, received in rows],
    )
    cur.close()
    yield s
    s.shutdown()


def _page(store: EmbeddedStore, tenant: str | None, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    sql, params = EventListQuery(tenant_id=tenant, limit=limit, cursor=cursor).to_sql()
    events, next_cursor = rows_to_events(store.read(sql, params).fetchall(), limit)
    return [(e["tenant_id"], e["timestamp"], e["event_id"], e["received_at"]) for e in events], next_cursor


@pytest.mark.parametrize("tenant", ["a", None])
@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_pages_of_rows_with_equal_times_and_ids_are_the_whole_listing(
    store: EmbeddedStore, tenant: str | None, limit: int
) -> None:
    whole, last = _page(store, tenant, 1000, None)
    assert last is None and len(whole) == (10 if tenant else 15) and len(set(whole)) == len(whole)
    assert [w[1] for w in whole] == sorted((w[1] for w in whole), reverse=True)  # newest first
    rows: list[Any] = []
    cursor = None
    while True:
        page, cursor = _page(store, tenant, limit, cursor)
        rows += page
        if cursor is None:
            break
    assert rows == whole


def _old_cursor(ts_us: int, event_id: str) -> str:
    """A cursor of a hub before the full key: ``[time, event id]``."""
    return base64.urlsafe_b64encode(msgspec.json.encode([ts_us, event_id])).decode().rstrip("=")


def test_a_cursor_of_an_earlier_hub_still_resumes_after_its_pair(store: EmbeddedStore) -> None:
    rest, _ = _page(store, "a", 1000, _old_cursor(TS_US, "e2"))
    assert [r[2] for r in rest] == ["e1", "e1", "e1", "e0", "e0", "e9", "e9"]


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(TS_US, "e", "a", -1)) == [TS_US, "e", "a", -1]
    assert decode_cursor(_old_cursor(TS_US, "e")) == [TS_US, "e"]
    assert decode_cursor(encode_cursor(TS_US, "e", "a", -1, "0123")) == [TS_US, "e", "a", -1, "0123"]


def test_a_cursor_resumes_only_the_listing_it_was_made_for(store: EmbeddedStore) -> None:
    q = EventListQuery(tenant_id="a", limit=2, window=("-1h", None))
    cursor = encode_cursor(TS_US, "e2", "a", -1, q.scope())
    EventListQuery(tenant_id="a", limit=5, cursor=cursor, window=("-1h", None)).to_sql()  # the page size may change
    for other in (EventListQuery(tenant_id="b", cursor=cursor, window=("-1h", None)),
                  EventListQuery(tenant_id="a", filters={"model": "m"}, cursor=cursor, window=("-1h", None)),
                  EventListQuery(tenant_id="a", tag_filters={"team": "x"}, cursor=cursor, window=("-1h", None)),
                  EventListQuery(tenant_id="a", payload_filters={"k": "v"}, cursor=cursor, window=("-1h", None)),
                  EventListQuery(tenant_id="a", cursor=cursor, window=("-2h", None))):  # fmt: skip
        with pytest.raises(InvalidParameter, match="cursor belongs to another listing") as info:
            other.to_sql()
        assert info.value.reason == "bad_cursor"


@pytest.mark.parametrize(
    "key",
    [[1, 2], ["1", "e"], [1, "e", "a"], [1, "e", 2, 1], [1, "e", "a", "1"], [2**63 - 1, "e"], {"ts": 1},
     [1, "e", "a", 1, 7], [1, "e", "a", 1, "s", "x"]],
)  # fmt: skip
def test_a_bad_cursor_is_refused(key: Any) -> None:
    raw = base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")
    for cursor in (raw, "garbage!!", ""):
        if cursor == "":
            continue  # an empty cursor is no cursor: the first page
        with pytest.raises(InvalidParameter, match="cursor is not valid"):
            EventListQuery(tenant_id="a", cursor=cursor).to_sql()
