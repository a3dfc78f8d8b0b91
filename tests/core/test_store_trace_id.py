"""The store keeps the first 32 bits of each native event's trace id in ``events.trace_key`` (derived as rows are
inserted), a trace's events are read by it, and a database of an earlier hub gets that column, filled in for the
events it holds, when the store starts."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from hubcore.mapping import EVENTS_TO_SPANS_SQL, event_trace_id, root_span_id, run_mapping, trace_key
from hubcore.query.otlp import span_dicts, trace_sql
from hubcore.storage.embedded import EmbeddedStore
from hubcore.storage.tables import EVENTS

TP_TRACE, TP_PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def _events(ids: list[str], tenant: str = "acme") -> dict[str, list[object]]:
    n = len(ids)
    return {
        "tenant_id": [tenant] * n, "ts": [1_000_000 * (i + 1) for i in range(n)], "event_id": ids,
        "event_type": ["cost"] * n, "source_module": ["llm-costops"] * n, "correlation_id": ["req-1"] * (n - 1) + [None],
        "tags": ["{}"] * (n - 1) + [json.dumps({"traceparent": f"00-{TP_TRACE.upper()}-{TP_PARENT}-01"})],
        "payload": ["{}"] * n,
    }  # fmt: skip


def test_inserted_events_carry_their_trace_key(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        cols = _events(["e1", "e2", "e3"])
        cols["tags"][0] = '{"traceparent": "00-' + "0" * 32 + '-' + TP_PARENT + '-01"}'  # all-zero id: not valid
        store.append("events", cols)
        store.append("events", {"tenant_id": ["acme"], "ts": [5], "event_id": ["e4"], "tags": ["not json"]})
        assert store.flush(10)
        rows = store.read("SELECT event_id, trace_key FROM events ORDER BY event_id").fetchall()
        chain = trace_key(event_trace_id("acme", "req-1"))
        assert rows == [("e1", chain), ("e2", chain), ("e3", trace_key(TP_TRACE)), ("e4", None)]
    finally:
        store.shutdown()


def test_a_database_of_an_earlier_hub_gets_the_column_filled_in(tmp_path: Path) -> None:
    old = [c for c in EVENTS.columns if c.name != "trace_key"]
    con = duckdb.connect(str(tmp_path / "hub.duckdb"))
    con.execute(f"CREATE TABLE events ({', '.join(f'{c.name} {c.sql}' for c in old)})")
    cols = _events(["e1", "e2", "e3"])
    values = [[cols.get(c.name, [None] * 3)[i] for c in old] for i in range(3)]
    marks = ", ".join("make_timestamp(?)" if c.sql == "TIMESTAMP" else "?" for c in old)
    for row in values:
        con.execute(f"INSERT INTO events VALUES ({marks})", row)
    con.close()
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        assert store.read("SELECT count(*) FROM events WHERE trace_key IS NULL").fetchone() == (0,)
        store.append("events", _events(["e5", "e6"]))  # new rows still line up with the columns
        assert store.flush(10)
        sql, params = trace_sql("acme", event_trace_id("acme", "req-1"))
        spans = span_dicts(store.read(sql, params).fetchall())
        root = root_span_id("acme", "req-1")
        assert spans[0]["span_id"] == root and spans[0]["event_id"] is None  # the root comes first
        assert sorted(s["event_id"] for s in spans[1:]) == ["e1", "e2", "e5"]
        assert {s["parent_span_id"] for s in spans[1:]} == {root}
        sql, params = trace_sql("acme", TP_TRACE)
        under = span_dicts(store.read(sql, params).fetchall())
        assert sorted((s["event_id"], s["parent_span_id"]) for s in under) == [("e3", TP_PARENT), ("e6", TP_PARENT)]
    finally:
        store.shutdown()


def test_events_of_another_trace_with_the_same_key_are_left_out(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()
    try:
        ids = ["4bf92f35" + "0" * 24, "4bf92f35" + "1" * 24]  # the same first 32 bits
        store.append("events", {
            "tenant_id": ["acme", "acme"], "ts": [1_000_000, 2_000_000], "event_id": ["e1", "e2"],
            "event_type": ["cost", "cost"], "source_module": ["llm-costops"] * 2, "payload": ["{}"] * 2,
            "tags": [json.dumps({"traceparent": f"00-{t}-{TP_PARENT}-01"}) for t in ids],
        })  # fmt: skip
        assert store.flush(10)
        for tid, event in zip(ids, ("e1", "e2"), strict=True):
            sql, params = trace_sql("acme", tid)
            assert [(s["trace_id"], s["event_id"]) for s in span_dicts(store.read(sql, params).fetchall())] == [
                (tid, event)
            ]
    finally:
        store.shutdown()


_TP = f"{TP_TRACE}-{TP_PARENT}"


@pytest.mark.parametrize(
    ("tags", "joins"),
    [
        ({"traceparent": f"00-{_TP}-01"}, True),
        ({"traceparent": f"00-{_TP.upper()}-01", "team": "search"}, True),  # any case, read lowercased
        ({"traceparent": f"01-{_TP}-01-more-fields"}, True),  # a later version may add fields
        ({"traceparent": f"ff-{_TP}-01"}, False),  # version ff is invalid
        ({"traceparent": f"00-{'0' * 32}-{TP_PARENT}-01"}, False),
        ({"traceparent": f"00-{TP_TRACE}-{'0' * 16}-01"}, False),
        ({"traceparent": f"00-{TP_TRACE}-{TP_PARENT}"}, False),  # no flags
        ({"note": f'"traceparent": "00-{_TP}-01"'}, False),  # inside another tag's value
        ({}, False),
    ],
)
def test_which_traceparent_tags_put_an_event_in_that_trace(tags: dict[str, str], joins: bool) -> None:
    cols = {"tenant_id": ["acme"], "ts": [1_000_000], "event_id": ["e1"], "event_type": ["cost"],
            "source_module": ["llm-costops"], "correlation_id": ["req-1"], "tags": [json.dumps(tags)],
            "payload": ["{}"]}  # fmt: skip
    with duckdb.connect() as con:
        spans = run_mapping(con, EVENTS_TO_SPANS_SQL, cols)
    rows = sorted(zip(spans["source"], spans["trace_id"], spans["span_id"], spans["parent_span_id"], strict=True))
    if joins:  # under the traceparent's span, no root
        assert rows == [("event", TP_TRACE, rows[0][2], TP_PARENT)]
    else:  # under the correlation id's root
        chain, root = event_trace_id("acme", "req-1"), root_span_id("acme", "req-1")
        assert rows == [("event", chain, rows[0][2], root), ("event_root", chain, root, None)]
