"""A composite's samples (the events of its denominator) as a second column of the same scan: what the
analytics service's ``min_samples`` counts for ``error_rate`` and the cost ratios."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubcore.query.compile_duckdb import compile_query
from hubcore.query.executor import EmbeddedBackend
from hubcore.query.model import Query, QueryError, parse_query, with_samples
from hubcore.storage.embedded import EmbeddedStore

NOW_US = 1_900_000_000_000_000
HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """Per 5-minute bucket of the last hour: model a 3 requests (1 an error, 100 tokens each), model b 40
    requests (4 errors); 0.5 USD of cost events per model and bucket; other telemetry (not requests)."""
    s = EmbeddedStore(tmp_path_factory.mktemp("samples"), wal_fsync=False)
    s.start()
    cur = s.cursor()
    for model, n, errors in (("a", 3, 1), ("b", 40, 4)):
        cur.execute(
            "INSERT INTO events (tenant_id, ts, event_id, event_type, name, value, model, status, input_tokens, "
            "output_tokens, tags, payload) "
            "SELECT 'x', make_timestamp(?) + (i // ?) * INTERVAL 5 MINUTE + (i % ?) * INTERVAL 1 SECOND, "
            "? || i, 'telemetry', 'gen_ai.client.operation.duration', 900.0, ?, "
            "CASE WHEN i % ? < ? THEN 'error' ELSE 'ok' END, 60, 40, '{}', '{}' FROM range(?) t(i)",
            [NOW_US - HOUR_US, n, n, f"r{model}", model, n, errors, 12 * n],
        )
        cur.execute(
            "INSERT INTO events (tenant_id, ts, event_id, event_type, name, value, model, status, tags, payload) "
            "SELECT 'x', make_timestamp(?) + i * INTERVAL 5 MINUTE, ? || i, 'cost', 'token', 0.5, ?, 'ok', '{}', "
            "'{}' FROM range(12) t(i)",
            [NOW_US - HOUR_US, f"c{model}", model],
        )
        cur.execute(  # telemetry that is no request: no sample of any composite
            "INSERT INTO events (tenant_id, ts, event_id, event_type, name, value, model, status, tags, payload) "
            "SELECT 'x', make_timestamp(?) + i * INTERVAL 5 MINUTE, ? || i, 'telemetry', 'gen_ai.client.token.usage', "
            "7.0, ?, 'error', '{}', '{}' FROM range(12) t(i)",
            [NOW_US - HOUR_US, f"t{model}", model],
        )
    yield s
    s.shutdown()


def _query(metric: str) -> Query:
    return parse_query({"time_range": {"last": "1h"}, "metric": metric,
                        "aggregation": {"time_bucket": "5m", "group_by": ["model"]}},
                       tenant="x", now_us=NOW_US, paged=False)  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "values"),
    [
        ("error_rate", {"a": (1 / 3, 3), "b": (4 / 40, 40)}),
        ("cost_per_request", {"a": (0.5 / 3, 3), "b": (0.5 / 40, 40)}),
        ("cost_per_1k_tokens", {"a": (0.5 * 1000 / 300, 3), "b": (0.5 * 1000 / 4000, 40)}),
    ],
)
def test_samples_are_the_denominators_events_and_the_value_is_unchanged(
    store: EmbeddedStore, metric: str, values: dict[str, tuple[float, int]]
) -> None:
    plain = _query(metric)
    counted = with_samples(plain)
    assert counted.output_columns == ["bucket", "model", metric, "samples"]
    backend = EmbeddedBackend(store)
    rows = backend.run(counted, timeout_s=10).rows
    assert len(rows) == 24 and len(compile_query(counted).sql.split("SELECT")) == 3  # one scan (and its subquery)
    for _, model, value, samples in rows:
        assert (value, samples) == (pytest.approx(values[model][0]), values[model][1])
    # the composite's own column is the same bits as without the samples
    assert [r[:3] for r in rows] == backend.run(plain, timeout_s=10).rows


def test_the_samples_change_the_fingerprint() -> None:
    plain = _query("error_rate")
    assert with_samples(plain).fingerprint() != plain.fingerprint()


def test_a_query_without_samples_is_refused() -> None:
    with pytest.raises(QueryError) as err:
        with_samples(_query("error_adjusted_throughput"))
    assert err.value.field == "metric" and "'error_adjusted_throughput' has no samples" in str(err.value)
    with pytest.raises(QueryError) as err:
        with_samples(_query("gen_ai.client.operation.duration"))
    assert err.value.field == "metric" and "not a composite's" in str(err.value)


def test_a_request_body_cannot_ask_for_samples() -> None:
    with pytest.raises(QueryError) as err:
        parse_query({"metric": "error_rate", "samples": True}, tenant="x", now_us=NOW_US)
    assert err.value.field == "samples"
