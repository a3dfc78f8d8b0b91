"""The executor on its own: timeouts interrupt DuckDB, whatever the timing; metadata and paging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubcore.query.executor import EmbeddedBackend, QueryExecutor, QueryTimeout
from hubcore.query.model import parse_query
from hubcore.storage.embedded import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path, wal_fsync=False)
    s.start()
    yield s
    s.shutdown()


@pytest.mark.parametrize("timeout_s", [0.000001, 0.05])
def test_timeout_interrupts_even_before_the_query_starts(store: EmbeddedStore, timeout_s: float) -> None:
    backend = EmbeddedBackend(store)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="stopped after"):
        backend.run_sql("SELECT sum(i * i) FROM range(5000000000) t(i)", [], timeout_s=timeout_s)
    assert time.monotonic() - started < 5
    assert backend.run_sql("SELECT 42", [], timeout_s=5) == [(42,)]  # the store is fine afterwards


def test_executor_counts_timeouts(store: EmbeddedStore) -> None:
    store.cursor().execute(
        "INSERT INTO events (tenant_id, ts, event_type, value, payload) "
        "SELECT 't', now()::TIMESTAMP, 'telemetry', i, '{\"k\": ' || i || '}' FROM range(200000) t(i)"
    )
    ex = QueryExecutor(EmbeddedBackend(store))
    q = parse_query(
        {"time_range": {"last": "1h"}, "aggregation": {"functions": ["p99"], "group_by": ["payload.k"]}},
        tenant="t",
        now_us=time.time_ns() // 1000 + 60_000_000,
    )
    with pytest.raises(QueryTimeout):
        ex.execute(q, timeout_s=0.000001)
    assert ex.metrics.timeouts._value.get() == 1
    answer = ex.execute(q, timeout_s=30)
    assert answer["metadata"]["row_count"] == 1000 and answer["metadata"]["has_more"] is True
