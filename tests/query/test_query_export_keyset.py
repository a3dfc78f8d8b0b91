"""The total order of a query export and its resume key (``compile_export``): resuming after any row gives
exactly the rows after it, whatever the sort (ascending, descending, on groups or aggregates), with NULL
groups, NULL and NaN aggregates and ties; aggregates sorted on do not vary between runs."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hubcore.query.compile_duckdb import compile_export, export_key
from hubcore.query.executor import EmbeddedBackend
from hubcore.query.export import QueryExportCursor, QueryKeyTracker, decode_query_cursor, encode_query_cursor
from hubcore.query.model import QueryError, parse_query
from hubcore.storage.embedded import EmbeddedStore

NOW_US = 1_900_000_000_000_000
BASE_US = NOW_US - 3_600_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("keyset"), wal_fsync=False)
    s.start()
    cur = s.cursor()
    # 3,000 events over 50 minutes: models a/b/c/none, teams x/y/none, values with ties, NULLs and NaNs
    cur.execute(
        "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, name, status, value, model, tags, "
        "payload) SELECT 'k', make_timestamp(?) + (i % 50) * INTERVAL 1 MINUTE, make_timestamp(?), 'e' || i, "
        "'telemetry', 'gen_ai.client.operation.duration', CASE WHEN i % 7 = 0 THEN 'error' ELSE 'ok' END, "
        "CASE WHEN i % 97 = 0 THEN NULL WHEN i % 89 = 0 THEN 'nan'::DOUBLE ELSE (i % 13) / 7.0 END, "
        "CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'a' WHEN 2 THEN 'b' ELSE 'c' END, "
        'CASE i % 3 WHEN 0 THEN \'{}\' WHEN 1 THEN \'{"team": "x"}\' ELSE \'{"team": "y"}\' END, '
        "'{\"n\": ' || (i % 5) || '}' FROM range(3000) t(i)",
        [BASE_US, BASE_US],
    )
    cur.close()
    yield s
    s.shutdown()


def _rows(store: EmbeddedStore, q: Any, after: list[Any] | None = None, received_by_us: int | None = None) -> Any:
    stream = EmbeddedBackend(store).stream(q, batch_rows=97, after=after, received_by_us=received_by_us)
    tracker = QueryKeyTracker(stream.batches, export_key(q))
    rows: list[tuple[Any, ...]] = []
    keys: list[list[Any]] = []
    for batch in tracker:
        table = pa.Table.from_batches([batch])
        for i in range(batch.num_rows):
            rows.append(tuple(_same(v) for v in table.slice(i, 1).to_pylist()[0].values()))
            keys.append(QueryKeyTracker(iter([batch.slice(i, 1)]), export_key(q))._key(batch.slice(i, 1)))
    return rows, keys


def _same(v: Any) -> Any:
    """NaN equal to itself, so that rows compare."""
    return "NaN" if isinstance(v, float) and math.isnan(v) else v


SORTS: list[dict[str, Any]] = [
    {"aggregation": {"time_bucket": "5m", "functions": ["count", "sum"], "group_by": ["model", "tags.team"]}},
    {"aggregation": {"functions": ["sum", "count"], "group_by": ["model", "tags.team"]},
     "sort": [{"field": "sum", "order": "desc"}]},
    {"aggregation": {"functions": ["avg", "stddev", "p95"], "group_by": ["tags.team", "model"]},
     "sort": [{"field": "stddev"}, {"field": "model", "order": "desc"}]},
    {"aggregation": {"time_bucket": "15m", "functions": ["count"], "group_by": ["tags.team"]},
     "sort": [{"field": "count", "order": "desc"}, {"field": "bucket", "order": "desc"}]},
    {"aggregation": {"time_bucket": "1m", "functions": ["max", "min"], "group_by": ["payload.n"]},
     "sort": [{"field": "max"}]},
    {"metric": "error_rate", "aggregation": {"time_bucket": "5m", "group_by": ["model"]},
     "sort": [{"field": "error_rate", "order": "desc"}]},
    {"metric": "cost_per_request", "aggregation": {"group_by": ["model"]}, "sort": [{"field": "cost_per_request"}]},
]  # fmt: skip


@pytest.mark.parametrize("body", SORTS, ids=range(len(SORTS)))
def test_resuming_after_any_row_gives_exactly_the_rows_after_it(store: EmbeddedStore, body: dict[str, Any]) -> None:
    q = parse_query({"time_range": {"last": "2h"}, **body}, tenant="k", now_us=NOW_US, paged=False)
    rows, keys = _rows(store, q)
    assert len(rows) > 3 and len(set(rows)) == len(rows)
    for cut in range(len(rows)):
        rest, _ = _rows(store, q, after=keys[cut])
        assert rest == rows[cut + 1 :], (cut, keys[cut])


def test_a_query_without_groups_has_one_row_and_an_empty_key(store: EmbeddedStore) -> None:
    q = parse_query({"time_range": {"last": "2h"}, "aggregation": {"functions": ["sum"]}}, tenant="k", now_us=NOW_US)
    assert export_key(q) == []
    rows, keys = _rows(store, q)
    assert len(rows) == 1 and keys == [[]]
    assert _rows(store, q, after=[])[0] == []


def test_sorted_aggregates_are_the_same_in_every_run(store: EmbeddedStore) -> None:
    """DuckDB adds up DOUBLEs in no fixed order (threads): an export sorted on a stddev computes it in a fixed
    one; a sum is the same bits in any order (exact_sum_sql) and needs none."""
    q = parse_query({"time_range": {"last": "2h"}, **SORTS[2]}, tenant="k", now_us=NOW_US, paged=False)
    assert "stddev_samp(v ORDER BY v)" in compile_export(q).sql
    by_sum = parse_query({"time_range": {"last": "2h"}, **SORTS[1]}, tenant="k", now_us=NOW_US, paged=False)
    assert "ORDER BY v)" not in compile_export(by_sum).sql
    for query in (q, by_sum):
        assert len({tuple(_rows(store, query)[0]) for _ in range(3)}) == 1


def test_events_received_after_the_first_answer_are_left_out(store: EmbeddedStore) -> None:
    q = parse_query({"time_range": {"last": "2h"}, **SORTS[0]}, tenant="k", now_us=NOW_US, paged=False)
    before, _ = _rows(store, q, received_by_us=BASE_US)
    cur = store.cursor()
    cur.execute("INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, value, model, tags, payload) "
                "VALUES ('k', make_timestamp(?), make_timestamp(?), 'late', 'telemetry', 1, 'zz', '{}', '{}')",
                [BASE_US, BASE_US + 1])  # fmt: skip
    cur.close()
    try:
        assert _rows(store, q, received_by_us=BASE_US)[0] == before
        assert len(_rows(store, q)[0]) == len(before) + 1
    finally:
        store.cursor().execute("DELETE FROM events WHERE event_id = 'late'")


def test_the_cursor_round_trips_and_is_checked() -> None:
    kinds = ["value", "bucket", "group"]
    for after in ([float("inf"), 5, None], [-1.5, 5, "m"], [3, 0, ""], None):
        c = QueryExportCursor(1, 2, 3, after, "s")
        assert decode_query_cursor(encode_query_cursor(c), "s", kinds) == c
    nan = decode_query_cursor(encode_query_cursor(QueryExportCursor(1, 2, 3, [math.nan, 1, "a"], "s")), "s", kinds)
    assert nan.after is not None and math.isnan(nan.after[0])
    good = encode_query_cursor(QueryExportCursor(1, 2, 3, [1.0, 5, "m"], "s"))
    with pytest.raises(QueryError, match="belongs to another export"):
        decode_query_cursor(good, "other", kinds)
    for bad_after, bad_kinds in (([1.0, "5", "m"], kinds), ([1.0, 5, 7], kinds), (["x", 5, "m"], kinds),
                                 ([1.0, 5], kinds), ([1.0, 5, "m"], kinds[:2]), ([True, 5, "m"], kinds)):  # fmt: skip
        raw = encode_query_cursor(QueryExportCursor(1, 2, 3, bad_after, "s"))
        with pytest.raises(QueryError, match="not a cursor"):
            decode_query_cursor(raw, "s", bad_kinds)
    with pytest.raises(QueryError, match="not a cursor"):
        decode_query_cursor("bm90IGEgY3Vyc29y", "s", kinds)


def test_a_stream_of_a_client_that_stops_reading_releases_the_store_at_its_limit(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    """What holds the store is the Arrow reader (the whole sorted result, here hundreds of MB); closing the
    cursor alone frees nothing. A stream suspended between batches has both closed at its time limit."""

    def mem() -> int:
        return int(store.read("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0] or 0)

    idle = mem()
    limit_s = 6.0
    started = time.monotonic()
    stream = EmbeddedBackend(store).stream_sql(
        "SELECT i, md5(i::VARCHAR) AS s FROM range(600000) t(i) ORDER BY s", [], ["i", "s"], time_limit_s=limit_s
    )
    first = next(stream.batches)  # the client takes one batch, then stops reading
    assert mem() > idle + 15_000_000, "the sorted result is held while the stream is open"
    time.sleep(max(0.0, started + limit_s + 0.5 - time.monotonic()))
    assert mem() < idle + 5_000_000, "released at the time limit while the stream waited on its client"
    assert first.column(1)[0].as_py() and list(stream.batches) == [] and stream.truncated
