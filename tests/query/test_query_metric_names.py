"""A metric name given as a bare string that is close to a composite's: a typo (422, naming the composite)
unless the tenant has stored events of that name (:func:`hubcore.query.catalog.stored_name_probe`); on
VictoriaMetrics unless it is a metric of the contract, on Loki always (it reads a name only with its event type).
tests/query/test_query_metric_names_stack.py runs the hub against a real VictoriaMetrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubcore.query.cache import QueryCache
from hubcore.query.executor import EmbeddedBackend, LokiBackend, PromBackend, QueryExecutor
from hubcore.query.model import ALL_TENANTS, QueryError, parse_query
from hubcore.storage.embedded import EmbeddedStore

NOW_US = 1_900_000_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("names"), wal_fsync=False)
    s.start()
    # tenant "ratios" sends a metric named like a composite, long before the window queried
    s.cursor().execute(
        "INSERT INTO events (tenant_id, ts, event_id, event_type, name, value, tags, payload) VALUES "
        "('ratios', make_timestamp(?), 'r1', 'telemetry', 'error_ratio', 0.25, '{}', '{}'), "
        "('ratios', make_timestamp(?), 'r2', 'telemetry', 'error_ratio', 0.5, '{}', '{}')",
        [NOW_US - 10 * 86_400_000_000, NOW_US - 60_000_000],
    )
    yield s
    s.shutdown()


def _run(store: EmbeddedStore, body: dict[str, object], tenant: str) -> list[dict[str, object]]:
    ex = QueryExecutor(EmbeddedBackend(store), QueryCache())
    q = parse_query({"time_range": {"last": "1h"}, **body}, tenant=tenant, now_us=NOW_US)
    data: list[dict[str, object]] = ex.execute(q)["data"]
    return data


def test_a_stored_name_close_to_a_composite_is_read_as_that_metric(store: EmbeddedStore) -> None:
    body = {"metric": "error_ratio", "aggregation": {"functions": ["sum", "count"]}}
    assert _run(store, body, "ratios") == [{"sum": 0.5, "count": 1}]
    assert _run(store, body, ALL_TENANTS) == [{"sum": 0.5, "count": 1}]
    # stored before the window: a name the tenant has, with no data in this hour (not a typo)
    assert _run(store, {**body, "time_range": {"last": "2h"}}, "ratios") == [{"sum": 0.5, "count": 1}]


@pytest.mark.parametrize(("tenant", "name", "meant"),
                         [("other", "error_ratio", "error_rate"), ("ratios", "error_rat", "error_rate"),
                          ("ratios", "cost_per_1k_token", "cost_per_1k_tokens")])  # fmt: skip
def test_a_name_close_to_a_composite_that_the_tenant_never_stored_is_a_422(
    store: EmbeddedStore, tenant: str, name: str, meant: str
) -> None:
    with pytest.raises(QueryError) as info:  # another tenant's name does not count
        _run(store, {"metric": name}, tenant)
    assert info.value.field == "metric" and info.value.status == 422
    assert f"did you mean {meant!r}?" in str(info.value) and f'{{"name": "{name}"}}' in str(info.value)


def test_the_object_form_and_names_far_from_every_composite_are_never_refused(store: EmbeddedStore) -> None:
    assert _run(store, {"metric": {"name": "error_rat"}}, "other") == [{"count": 0}]
    assert _run(store, {"metric": "gen_ai.client.token.usage"}, "other") == [{"count": 0}]
    assert _run(store, {"metric": "error_rate"}, "other") == [{"error_rate": None}]


def test_a_cached_answer_of_the_object_form_does_not_answer_the_string_form(store: EmbeddedStore) -> None:
    ex = QueryExecutor(EmbeddedBackend(store), QueryCache())
    obj = parse_query({"time_range": {"last": "1h"}, "metric": {"name": "error_ratio"}}, tenant="other", now_us=NOW_US)
    assert ex.execute(obj)["data"] == [{"count": 0}]
    string = parse_query({"time_range": {"last": "1h"}, "metric": "error_ratio"}, tenant="other", now_us=NOW_US)
    with pytest.raises(QueryError, match="did you mean 'error_rate'"):
        ex.execute(string)


class _NoReader:
    """A PromReader/LokiReader that must not be asked: a typo is refused before any request."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the backend was asked ({name}) for a query it should have refused")


@pytest.mark.parametrize("backend", [PromBackend(_NoReader()), LokiBackend(_NoReader())], ids=lambda b: b.name)
@pytest.mark.parametrize(("name", "meant"), [("error_rat", "error_rate"), ("Cost_Per_Reqest", "cost_per_request"),
                                             ("error_ratio", "error_rate")])  # fmt: skip
def test_a_name_close_to_a_composite_is_a_422_naming_it_on_the_stack_backends(
    backend: PromBackend | LokiBackend, name: str, meant: str
) -> None:
    ex = QueryExecutor(backend, QueryCache())
    q = parse_query({"time_range": {"last": "1h"}, "metric": name}, tenant="t", now_us=NOW_US)
    with pytest.raises(QueryError) as info:  # had been a 422 on metric.name: "not in the metric contract",
        ex.execute(q)  # or "needs metric.event_type", without the composite meant
    assert info.value.field == "metric" and info.value.status == 422 and info.value.reason == "invalid_query"
    assert f"{name!r} is neither a composite metric nor " in str(info.value)
    assert f"did you mean {meant!r}?" in str(info.value)
    with pytest.raises(QueryError, match=f"did you mean {meant!r}"):  # an export too
        ex.stream(q)
