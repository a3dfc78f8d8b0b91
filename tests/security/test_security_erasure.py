"""GDPR erasure: per-table counts on the embedded store and the DLQ; a real VictoriaMetrics delete."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hubcore.config import NativeEventsConfig
from hubcore.dlq import DeadLetterQueue
from hubcore.errors import InvalidParameter
from hubcore.security.erasure import check_user_id, erase_tenant, erase_user, vm_delete_series_request
from hubcore.storage.embedded import EmbeddedStore
from processors.native_events import NativeEventsProcessor
from tests.helpers.events import make_event
from tests.helpers.procs import run_victoriametrics


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    yield s
    s.shutdown()


def ingest(store: EmbeddedStore, events: list[dict[str, object]], tenant: str) -> None:
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [json.dumps(e).encode() for e in events], tenant_id=tenant
    )
    assert not res.rejected, res.rejected
    store.append("events", res.columns)


def count(store: EmbeddedStore, table: str, tenant: str) -> int:
    return int(store.read(f"SELECT count(*) FROM {table} WHERE tenant_id = ?", [tenant]).fetchone()[0])  # type: ignore[index]


def seed(store: EmbeddedStore, dlq: DeadLetterQueue) -> None:
    u7 = [
        make_event("security", correlation_id="c1"),  # payload.user_id = u-7 (and no tag)
        make_event("cost", tags={"team": "ml", "user_id": "u-7"}, correlation_id="c1"),  # tags.user_id
        make_event("telemetry", payload={"dimensions": {"user_id": "u-7", "endpoint": "/chat"}}),  # dimensions
    ]
    others = [make_event("cost", tags={"user_id": "u-8"}), make_event("telemetry"),
              make_event("security", payload={"user_id": "u-8"})]  # fmt: skip
    ingest(store, u7 + others, "acme")
    ingest(store, [make_event("security"), make_event("cost", tags={"user_id": "u-7"})], "globex")
    now = int(time.time() * 1e6)
    store.append("logs", {"tenant_id": ["acme"] * 3, "ts": [now] * 3, "body": ["plain text", '{"user_id": "u-7"}', "x"],
                          "attributes": ['{"enduser.id": "u-7"}', None, '{"enduser.id": "u-8"}']})  # fmt: skip
    store.append("metric_points", {"tenant_id": ["acme"] * 2, "ts": [now] * 2, "name": ["m", "m"], "value": [1.0, 2.0],
                                   "attributes": ['{"user.id": "u-7"}', '{"user.id": "u-9"}']})  # fmt: skip
    store.append("spans", {"tenant_id": ["acme"] * 2, "start_ts": [now] * 2, "end_ts": [now] * 2, "name": ["a", "b"],
                           "resource": ['{"enduser.id": "u-7"}', "{}"]})  # fmt: skip
    assert store.flush(10)
    dlq.put(tenant_id="acme", receiver="rest", reason="bad", raw=json.dumps({"tags": {"user_id": "u-7"}, "x": 1}))
    dlq.put(tenant_id="acme", receiver="rest", reason="bad", raw='not json but "u-7" is here')
    dlq.put(tenant_id="acme", receiver="rest", reason="bad", raw=json.dumps([{"payload": {"user_id": "u-8"}}]))
    dlq.put(tenant_id="globex", receiver="rest", reason="bad", raw=json.dumps({"user_id": "u-7"}))


def test_erase_user_counts_per_table(store: EmbeddedStore, tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, fsync=False)
    seed(store, dlq)
    tables = ("events", "metric_points", "logs", "spans", "event_spans", "event_metric_points", "all_metric_points")
    before = {t: count(store, t, "acme") for t in tables}
    counts = erase_user(store, "acme", "u-7", dlq=dlq)
    # events: the 3 of u-7 (payload, tags, dimensions); OTLP spans/points: 1 each; logs: attributes + JSON body
    assert counts == {"spans": 1, "events": 3, "metric_points": 1, "logs": 2, "dlq": 2}
    after = {t: count(store, t, "acme") for t in tables}
    gone = {t: before[t] - after[t] for t in tables}
    assert {t: gone[t] for t in ("events", "metric_points", "logs", "spans")} == {
        k: v for k, v in counts.items() if k != "dlq"
    }
    # the OTel views over events follow: 2 spans (correlation c1) and their synthetic root; 5 points
    # (security +1, cost, telemetry duration + 2 token usages)
    assert (gone["event_spans"], gone["event_metric_points"]) == (3, 5)
    assert store.read("SELECT count(*) FROM all_metric_points WHERE attributes LIKE '%u-7%'").fetchone() == (0,)
    left = store.read("SELECT count(*) FROM events WHERE tenant_id = 'acme' AND (user_id = 'u-7' OR tags LIKE '%u-7%' "
                      "OR payload LIKE '%u-7%')").fetchone()  # fmt: skip
    assert left == (0,)
    assert count(store, "events", "globex") == 2  # other tenants untouched
    assert [e["tenant_id"] for e in dlq.list(tenant_id=None)[0]] == ["globex", "acme"]
    assert erase_user(store, "acme", "u-7", dlq=dlq) == {
        "spans": 0,
        "events": 0,
        "metric_points": 0,
        "logs": 0,
        "dlq": 0,
    }


@pytest.mark.parametrize("user_id", ["", " ", "\t\n", "*"])
def test_a_blank_or_star_user_id_is_refused_before_anything_is_erased(store: EmbeddedStore, user_id: str) -> None:
    with pytest.raises(InvalidParameter, match="user_id") as caught:
        erase_user(store, "acme", user_id)
    assert caught.value.reason == "bad_user_id"


def test_other_user_ids_are_taken_as_they_are() -> None:
    for user_id in ("u-7", "a*", "**", " u-7", "user@example.com", "名前"):
        assert check_user_id(user_id) == user_id


def test_erase_tenant(store: EmbeddedStore, tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path, fsync=False)
    seed(store, dlq)
    expected = {t: count(store, t, "acme") for t in ("events", "metric_points", "logs", "spans")}
    counts = erase_tenant(store, "acme", dlq=dlq)
    assert counts == {**expected, "dlq": 3}
    assert all(count(store, t, "acme") == 0 for t in (*expected, "all_metric_points", "all_spans"))
    assert count(store, "events", "globex") == 2 and dlq.count() == 1


def test_vm_delete_series_request_against_victoriametrics(tmp_path: Path) -> None:
    url, params = vm_delete_series_request("http://vm:8428/", 'we"ird')
    assert url == "http://vm:8428/api/v1/admin/tsdb/delete_series"
    assert params == {"match[]": '{tenant_id="we\\"ird"}'}
    with run_victoriametrics(tmp_path) as vm:
        now_ms = int(time.time() * 1000)
        lines = "\n".join(
            json.dumps({"metric": {"__name__": "llm_cost_usd_total", "tenant_id": t, "model": "gpt-4o"},
                        "values": [1.0, 2.0], "timestamps": [now_ms - 60_000, now_ms]})
            for t in ("acme", "globex")
        )  # fmt: skip
        httpx.post(f"{vm.url}/api/v1/import", content=lines, timeout=10).raise_for_status()
        vm.flush()

        def series(tenant: str) -> list[object]:
            r = httpx.get(f"{vm.url}/api/v1/series", params={"match[]": f'{{tenant_id="{tenant}"}}',
                                                             "start": str(now_ms // 1000 - 3600)}, timeout=10)  # fmt: skip
            return list(r.json()["data"])

        assert len(series("acme")) == 1 and len(series("globex")) == 1
        del_url, del_params = vm_delete_series_request(vm.url, "acme")
        resp = httpx.post(del_url, params=del_params, timeout=10)
        assert resp.status_code == 204, resp.text
        assert series("acme") == []
        q = httpx.get(f"{vm.url}/api/v1/query", params={"query": 'llm_cost_usd_total{tenant_id="acme"}'}, timeout=10)
        assert q.json()["data"]["result"] == []
        assert len(series("globex")) == 1
