"""Sums and averages of floats read back the same bits on every read: DuckDB adds DOUBLEs in parallel in no
fixed order, so a team's spend or a what-if price differed in its last digits from read to read."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from hubcore.query.compile_duckdb import exact_sum_sql
from hubcore.query.executor import EmbeddedBackend, QueryExecutor
from hubcore.query.model import parse_query
from hubcore.storage.embedded import EmbeddedStore

NOW_US = 1_900_000_000_000_000
ROWS = 400_000  # several of DuckDB's row groups (122,880 rows): the threads add them in no fixed order
MODELS = ("m0", "m1", "m2")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("sums"), wal_fsync=False)
    s.start()
    # awkward values: tenths and thirds (no exact binary form), spanning ten orders of magnitude, half of them
    # USD costs, half request durations; every 7th request is an error
    s.cursor().execute(
        "INSERT INTO events (tenant_id, ts, received_at, event_id, event_type, name, value, model, status, tags, "
        "payload) "
        "SELECT 'x', make_timestamp(?) + (i % 3000) * INTERVAL 1 SECOND, make_timestamp(?), 'e' || i, "
        "CASE WHEN i % 2 = 0 THEN 'cost' ELSE 'telemetry' END, "
        "CASE WHEN i % 2 = 0 THEN 'token' ELSE 'gen_ai.client.operation.duration' END, "
        "((i % 997) * 0.1 + 1 / 3) * pow(10, i % 11 - 5), 'm' || (i % 3), "
        "CASE WHEN i % 7 = 0 THEN 'error' ELSE 'ok' END, '{}', '{}' FROM range(?) t(i)",
        [NOW_US - 3_600_000_000, NOW_US - 3_600_000_000, ROWS],
    )
    yield s
    s.shutdown()


def _read(ex: QueryExecutor, body: dict[str, Any]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ex.execute(parse_query({"time_range": {"last": "1h"}, **body}, tenant="x",
                                                        now_us=NOW_US))["data"]  # fmt: skip
    return data


@pytest.mark.parametrize(
    "body",
    [{"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum", "avg"], "group_by": ["model"]}},
     {"aggregation": {"functions": ["sum", "avg"]}},
     {"metric": {"event_type": "cost"}, "aggregation": {"time_bucket": "15m", "functions": ["sum"]},
      "sort": [{"field": "sum", "order": "desc"}]},
     {"metric": "cost_per_request", "aggregation": {"group_by": ["model"]}},
     {"metric": "cost_per_1k_tokens"}],
    ids=["sum_avg_by_model", "sum_avg", "sum_by_bucket_sorted", "cost_per_request", "cost_per_1k_tokens"],
)  # fmt: skip
def test_repeated_reads_of_float_sums_are_bit_identical(store: EmbeddedStore, body: dict[str, Any]) -> None:
    ex = QueryExecutor(EmbeddedBackend(store))  # no cache: every read runs in the store
    reads = {json.dumps(_read(ex, body)) for _ in range(6)}  # repr of a float: every bit
    assert len(reads) == 1, reads


def test_a_float_sum_is_within_one_unit_in_the_last_place_of_the_exact_sum(store: EmbeddedStore) -> None:
    ex = QueryExecutor(EmbeddedBackend(store))
    body = {"metric": {"event_type": "cost"}, "aggregation": {"functions": ["sum", "avg", "count"],
                                                               "group_by": ["model"]}}  # fmt: skip
    got = {r["model"]: r for r in _read(ex, body)}
    for model in MODELS:
        values = [v for (v,) in store.read("SELECT value FROM events WHERE event_type = 'cost' AND model = ?",
                                           [model]).fetchall()]  # fmt: skip
        exact = math.fsum(values)
        assert got[model]["count"] == len(values)
        assert abs(got[model]["sum"] - exact) <= math.ulp(exact), (model, got[model]["sum"], exact)
        assert abs(got[model]["avg"] - exact / len(values)) <= 2 * math.ulp(exact / len(values))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1e16, 1.0, -1e16], 1.0), ([0.1] * 10, 1.0), ([1e-30, 2.5], 2.5), ([3e-9, 3e-9], 6e-9),
     ([1e30, 1.0], 1e30), ([1e19, 0.5], 1e19), ([1e-15, 1e-15], 2e-15), ([float("inf"), 1.0], float("inf")), ([None], None), ([], None)],
)  # fmt: skip
def test_the_exact_sum_of_edge_values(store: EmbeddedStore, values: list[Any], expected: Any) -> None:
    """Cancellation, tenths, values too small or too large for the integer sums (2**-102, 2**63), infinity and
    no value at all (NULL, as sum)."""
    text, _ = exact_sum_sql("v")
    (got,) = store.read(f"SELECT {text} FROM (SELECT unnest(?::DOUBLE[]) AS v)", [values]).fetchone() or (None,)
    assert got == expected if expected is None or math.isinf(expected) else math.isclose(got, expected, rel_tol=1e-15)
    nan = store.read(f"SELECT {text} FROM (SELECT unnest(?::DOUBLE[]) AS v)", [[1.0, math.nan]]).fetchone()
    assert nan is not None and math.isnan(nan[0])
    # below 2**-50 a value is rounded to a multiple of 2**-102
    tiny = store.read(f"SELECT {text} FROM (SELECT unnest(?::DOUBLE[]) AS v)", [[1e-20, 1e-20]]).fetchone()
    assert tiny is not None and abs(tiny[0] - 2e-20) <= 2.0**-102
