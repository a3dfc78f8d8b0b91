"""The executor on its own: timeouts interrupt DuckDB whatever the timing; paging; the PromQL backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from hubcore.query.executor import EmbeddedBackend, LokiBackend, PromBackend, QueryExecutor, QueryTimeout
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


def test_total_tokens_near_int64_max_does_not_overflow(store: EmbeddedStore) -> None:
    """Two BIGINT counts of 2**62 add up past BIGINT: the sum is computed as HUGEINT (was a 500)."""
    store.cursor().execute(
        "INSERT INTO events (tenant_id, ts, event_type, input_tokens, output_tokens) VALUES "
        "('t', now()::TIMESTAMP, 'telemetry', 4611686018427387904, 4611686018427387904), "
        "('t', now()::TIMESTAMP, 'telemetry', 120, 40), ('t', now()::TIMESTAMP, 'telemetry', 5, NULL)"
    )
    ex = QueryExecutor(EmbeddedBackend(store))

    def total(fn: str) -> object:
        q = parse_query(
            {"time_range": {"last": "1h"}, "metric": {"event_type": "telemetry", "field": "total_tokens"},
             "aggregation": {"functions": [fn]}},
            tenant="t",
            now_us=time.time_ns() // 1000 + 60_000_000,
        )  # fmt: skip
        (row,) = ex.execute(q, timeout_s=30)["data"]
        return row[fn]

    assert total("sum") == 2**63 + 165
    assert total("min") == 5 and total("max") == 2**63


class FakePromReader:
    """Answers like ``PromReader``: one frame per query (timestamp, value, labels)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def query_range(self, expr: str, start: float, end: float, step: int) -> pd.DataFrame:
        self.calls.append((expr, (start, end, step)))
        ts = pd.to_datetime([start, start, start + step], unit="s", utc=True)
        value = [2.0, 3.0, 5.0] if "_count" in expr else [200.0, 300.0, float("nan")]
        return pd.DataFrame({"timestamp": ts, "value": value, "gen_ai_request_model": ["a", "b", "a"]})

    def query(self, expr: str, time: float) -> pd.DataFrame:
        self.calls.append((expr, time))
        return pd.DataFrame(
            {"timestamp": pd.to_datetime([time], unit="s", utc=True), "value": [7.0], "gen_ai_request_model": ["a"]}
        )


def test_prom_backend_merges_columns_into_rows_and_pages() -> None:
    reader = FakePromReader()
    ex = QueryExecutor(PromBackend(reader))
    body = {
        "time_range": {"start": 3600, "end": 3600 + 3 * 3600},
        "metric": {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"},
        "aggregation": {"time_bucket": "1h", "functions": ["count", "sum"], "group_by": ["model"]},
        "sort": [{"field": "count", "order": "desc"}],
        "limit": 2,
    }
    answer = ex.execute(parse_query(body, tenant="t", now_us=0))
    assert answer["metadata"]["backend"] == "victoriametrics" and answer["metadata"]["has_more"] is True
    assert answer["data"] == [
        {"bucket": "1970-01-01T02:00:00Z", "model": "a", "count": 5.0, "sum": None},
        {"bucket": "1970-01-01T01:00:00Z", "model": "b", "count": 3.0, "sum": 300.0},
    ]
    assert reader.calls[0][1] == (7200, 14400.0, 3600)  # first sample one step after the aligned start
    instant = ex.execute(parse_query({**body, "aggregation": {"functions": ["count"], "group_by": ["model"]},
                                      "sort": []}, tenant="t", now_us=0))  # fmt: skip
    assert instant["data"] == [{"model": "a", "count": 7.0}]


class FakeLokiReader:
    """Answers like ``LokiReader.query_range`` for metric queries: timestamp, value, labels (dict)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, str | None]] = []

    def query_range(
        self,
        expr: str,
        start: float,
        end: float,
        limit: int = 1000,
        direction: str = "backward",
        step: str | None = None,
    ) -> pd.DataFrame:
        self.calls.append((expr, start, end, step))
        return pd.DataFrame(
            {
                "timestamp": pd.to_datetime([end], unit="s", utc=True),
                "value": [4.0],
                "labels": [{"payload_source_ip": "10.0.0.1", "tenant_id": "t"}],
            }
        )


def test_loki_backend_runs_logql_for_raw_event_counts() -> None:
    reader = FakeLokiReader()
    ex = QueryExecutor(LokiBackend(reader))
    body = {
        "time_range": {"start": 0, "end": 300},
        "metric": {"event_type": "security"},
        "filters": [{"field": "payload.threat_type", "operator": "eq", "value": "prompt_injection"}],
        "aggregation": {"functions": ["count"], "group_by": ["payload.source_ip"]},
    }
    answer = ex.execute(parse_query(body, tenant="t", now_us=0))
    assert answer["data"] == [{"payload.source_ip": "10.0.0.1", "count": 4.0}]
    assert answer["metadata"]["backend"] == "loki"
    expr, start, end, step = reader.calls[0]
    assert expr == (
        'sum by (payload_source_ip) (count_over_time({tenant_id="t", event_type="security"} | json '
        '| payload_threat_type="prompt_injection" [5m]))'
    )
    assert (start, end, step) == (300.0, 300.0, "300s")
