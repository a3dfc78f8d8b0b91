"""The VictoriaMetrics exporter against a real VictoriaMetrics: what goes in comes back through PromQL."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from exporters.victoriametrics import VictoriaMetricsExporter, VictoriaMetricsExporterConfig
from hubcore.config import NativeEventsConfig
from hubcore.storage.readers import PromReader
from processors.native_events import NativeEventsProcessor
from tests.exporters._util import FAST_RETRY, queue_in, wait_for
from tests.helpers.events import make_event
from tests.helpers.procs import VMHandle, _run_process, free_port, require_binary, run_victoriametrics

pytestmark = pytest.mark.real_backend


def event_columns(events: list[dict[str, Any]], tenant: str = "t1") -> dict[str, list[Any]]:
    result = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], tenant_id=tenant
    )
    assert not result.rejected, result.rejected
    return result.columns


@contextlib.contextmanager
def exporter(tmp_path: Path, url: str, **kw: Any) -> Iterator[VictoriaMetricsExporter]:
    cfg = VictoriaMetricsExporterConfig(
        endpoint=url, flush_interval=0.1, sending_queue=queue_in(tmp_path / "queue"), retry_on_failure=FAST_RETRY, **kw
    )
    ex = VictoriaMetricsExporter(cfg)
    ex.start()
    try:
        yield ex
    finally:
        ex.shutdown(5.0)


def scalar(reader: PromReader, query: str) -> float | None:
    df = reader.query(query)
    return None if df.empty else float(df["value"].sum())


def settle(reader: PromReader, query: str, expected: float, timeout: float = 15.0) -> float | None:
    return wait_for(lambda: scalar(reader, query), lambda v: v is not None and abs(v - expected) < 1e-9, timeout)


def test_native_events_become_contract_series(tmp_path: Path) -> None:
    durations_ms = [5.0, 30.0, 850.0, 850.0, 3000.0]
    events = [make_event("telemetry", payload={"value": d}) for d in durations_ms]
    events.append(make_event("telemetry", payload={"value": 100.0, "error_type": "timeout"}, severity="error"))
    events[-1]["payload"]["status"] = "error"
    events += [make_event("cost", payload={"amount": a}) for a in (0.5, 0.25, 1.0)]
    events += [make_event("security") for _ in range(4)] + [
        make_event("security", payload={"threat_type": "jailbreak"})
    ]
    events += [make_event("governance"), make_event("policy"), make_event("policy", payload={"result": "fail"})]
    events.append(make_event("metadata"))
    with run_victoriametrics(tmp_path) as vm, PromReader(vm.url) as reader, exporter(tmp_path, vm.url) as ex:
        ex.export("events", event_columns(events))
        assert ex.flush(10)
        vm.flush()
        base = 'tenant_id="t1",job="llm-observatory",gen_ai_request_model="gpt-4o",environment="production"'
        assert settle(reader, f"sum(gen_ai_client_operation_duration_seconds_count{{{base}}})", 6) == 6
        total = scalar(reader, f"sum(gen_ai_client_operation_duration_seconds_sum{{{base}}})")
        assert total == pytest.approx((sum(durations_ms) + 100.0) / 1000)
        buckets = reader.query(f'gen_ai_client_operation_duration_seconds_bucket{{{base},error_type=""}}')
        by_le = {row["le"]: row["value"] for _, row in buckets.iterrows()}
        assert by_le["0.01"] == 1 and by_le["0.04"] == 2 and by_le["0.64"] == 2 and by_le["1.28"] == 4
        assert by_le["5.12"] == 5 and by_le["+Inf"] == 5 and len(by_le) == 15
        assert scalar(reader, 'sum(gen_ai_client_operation_duration_seconds_count{error_type="timeout"})') == 1
        tokens = reader.query('gen_ai_client_token_usage_sum{gen_ai_token_type="input"}')
        assert float(tokens["value"].sum()) == 120 * 6 and set(tokens["gen_ai_operation_name"]) == {"chat"}
        cost = reader.query('llm_cost_usd_total{tenant_id="t1"}')
        assert float(cost["value"].sum()) == pytest.approx(1.75)
        assert list(cost["cost_type"]) == ["token"] and list(cost["job"]) == ["llm-costops"]
        assert list(cost["team"]) == ["search"] and list(cost["project"]) == ["assistant"]
        threats = reader.query("llm_security_threats_total")
        got = {(r["threat_type"], r["threat_level"], r["action"]): r["value"] for _, r in threats.iterrows()}
        assert got == {("prompt_injection", "high", "blocked"): 4, ("jailbreak", "high", "blocked"): 1}
        assert scalar(reader, 'llm_governance_violations_total{policy_id="pii-retention",regulation="GDPR"}') == 1
        evals = reader.query("llm_policy_evaluations_total")
        assert {r["result"]: r["value"] for _, r in evals.iterrows()} == {"pass": 1, "fail": 1}
        info = reader.query("llm_registry_asset_info")
        row = info.iloc[0]
        assert (row["asset_id"], row["asset_type"], row["name"], row["version"], row["value"]) == (
            "asset-gpt4o",
            "model",
            "gpt-4o",
            "2024-08-06",
            1.0,
        )
        # bounded cardinality: payload dimensions (endpoint) and ids are not labels
        names = set(reader.query('{__name__=~"gen_ai.*"}').columns)
        assert "endpoint" not in names and "event_id" not in names
        assert not ex.dead_letter.entries()


def test_counters_accumulate_across_flushes_and_restarts(tmp_path: Path) -> None:
    with run_victoriametrics(tmp_path) as vm, PromReader(vm.url) as reader:
        for round_ in range(3):  # a restart between rounds must not reset the running total
            with exporter(tmp_path, vm.url) as ex:
                ex.export("events", event_columns([make_event("cost", payload={"amount": 1.0}) for _ in range(2)]))
                assert ex.flush(10)
            vm.flush()  # a new series is searchable now, not at VictoriaMetrics' own index update (~10 s)
            expected = 2.0 * (round_ + 1)
            assert settle(reader, "max_over_time(llm_cost_usd_total[1h])", expected) == expected
        # counter never went down: no resets seen by PromQL
        assert scalar(reader, "resets(llm_cost_usd_total[1h])") == 0


def otlp_rows(now_us: int) -> dict[str, list[Any]]:
    rows: list[dict[str, Any]] = [
        {"name": "gen_ai.server.time_to_first_token", "kind": "histogram", "temporality": "cumulative",
         "bounds": [0.1, 0.5, 1.0], "bucket_counts": [2, 3, 1, 1], "count": 7, "sum": 3.5, "unit": "s"},
        {"name": "process.memory.usage", "kind": "gauge", "value": 1234.0, "unit": "By"},
        {"name": "system.cpu.utilization", "kind": "gauge", "value": 0.25, "unit": "1"},
        {"name": "http.server.requests", "kind": "sum", "temporality": "cumulative", "monotonic": True,
         "value": 42.0, "unit": "{request}"},
        {"name": "queue.items", "kind": "sum", "temporality": "delta", "monotonic": False, "value": 3.0, "unit": ""},
        {"name": "queue.items", "kind": "sum", "temporality": "delta", "monotonic": False, "value": 4.0, "unit": ""},
    ]  # fmt: skip
    cols: dict[str, list[Any]] = {}
    keys = ["tenant_id", "ts", "name", "kind", "temporality", "monotonic", "value", "count", "sum", "bounds",
            "bucket_counts", "unit", "service_name", "model", "attributes", "source"]  # fmt: skip
    for i, r in enumerate(rows):
        full = {"tenant_id": "t2", "ts": now_us + i, "service_name": "chat-api", "model": "claude",
                "attributes": '{"cost_type": "api", "http.route": "/x"}', "source": "otlp", **r}  # fmt: skip
        for k in keys:
            cols.setdefault(k, []).append(full.get(k))
    return cols


def test_otlp_points_keep_their_shape(tmp_path: Path) -> None:
    now_us = int(time.time() * 1e6)
    with run_victoriametrics(tmp_path) as vm, PromReader(vm.url) as reader, exporter(tmp_path, vm.url) as ex:
        ex.export("metric_points", otlp_rows(now_us))
        assert ex.flush(10)
        vm.flush()
        assert settle(reader, "sum(gen_ai_server_time_to_first_token_seconds_count)", 7) == 7
        b = reader.query("gen_ai_server_time_to_first_token_seconds_bucket")
        assert {r["le"]: r["value"] for _, r in b.iterrows()} == {"0.1": 2, "0.5": 5, "1": 6, "+Inf": 7}
        assert set(b["job"]) == {"chat-api"} and set(b["gen_ai_request_model"]) == {"claude"}
        assert scalar(reader, "gen_ai_server_time_to_first_token_seconds_sum") == 3.5
        assert scalar(reader, 'process_memory_usage_bytes{tenant_id="t2"}') == 1234
        assert scalar(reader, "system_cpu_utilization_ratio") == 0.25
        assert scalar(reader, 'http_server_requests_total{cost_type="api"}') == 42
        assert scalar(reader, "queue_items") == 7  # two deltas accumulated into one running value
        assert "http_route" not in reader.query("http_server_requests_total").columns


class _VMProcess:
    """VictoriaMetrics on a fixed port and data directory, so it can be stopped and started again."""

    def __init__(self, tmp_path: Path) -> None:
        self.binary = require_binary("victoria-metrics")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "vm-data"
        self.tmp_path = tmp_path
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> VMHandle:
        argv = [
            self.binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN",
            "-dedup.minScrapeInterval=1ms",
        ]  # fmt: skip
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(_run_process(argv, f"{self.url}/health", self.tmp_path / "vm.log", 15.0))
        return VMHandle(url=self.url, data_dir=self.data_dir, log_path=self.tmp_path / "vm.log")

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@pytest.mark.parametrize("outage_s", [float(os.environ.get("HUB_TEST_OUTAGE_S", "2"))])
def test_outage_loses_nothing_and_resends_change_nothing(tmp_path: Path, outage_s: float) -> None:
    vm = _VMProcess(tmp_path)
    handle = vm.start()
    amounts = [0.5] * 40
    posted: list[tuple[str, bytes, dict[str, str]]] = []
    try:
        with exporter(tmp_path, vm.url) as ex, PromReader(vm.url, retries=5) as reader:
            post_once = ex.delivery.post_once

            def recording(url: str, body: bytes, headers: Any) -> Any:
                attempt = post_once(url, body, headers)
                if attempt.outcome.value == "ok":
                    posted.append((url, body, dict(headers)))
                return attempt

            ex.delivery.post_once = recording  # type: ignore[method-assign]
            for i, amount in enumerate(amounts):
                if i == 10:
                    vm.stop()  # the backend goes away mid-stream
                    stopped = time.monotonic()
                if i == 30:
                    time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
                    assert ex.queue_depth > 0 and ex.delivery.stats.retries > 0
                    handle = vm.start()  # same port, same data
                ex.export("events", event_columns([make_event("cost", payload={"amount": amount})]))
                ex.export("events", event_columns([make_event("telemetry", payload={"value": 200.0})]))
                time.sleep(0.02)
            assert ex.flush(20)
            handle.flush()
            want_cost = sum(amounts)
            queries = {
                "max_over_time(llm_cost_usd_total[1h])": want_cost,
                "max_over_time(gen_ai_client_operation_duration_seconds_count[1h])": 40,
                "max_over_time(gen_ai_client_operation_duration_seconds_sum[1h])": 40 * 0.2,
                "increase(llm_cost_usd_total[1h])": None,
                "count_over_time(llm_cost_usd_total[1h])": None,
            }
            for q, want in queries.items():
                if want is not None:
                    assert settle(reader, q, want) == pytest.approx(want), q
            handle.flush()  # every sample delivered is searchable: these answers are final
            before = {q: scalar(reader, q) for q in queries}
            assert not ex.dead_letter.entries() and len(posted) >= 2
            # an outage's resend: post every accepted request again; answers must not change
            import httpx

            for url, body, headers in posted:
                assert httpx.post(url, content=body, headers=headers).status_code == 204
            handle.flush()  # the resent samples are searchable: a duplicate counted twice would show now
            after = {q: scalar(reader, q) for q in queries}
            assert after == pytest.approx(before)
            assert scalar(reader, "resets(llm_cost_usd_total[1h])") == 0
    finally:
        vm.stop()


def test_a_forgotten_counter_restarts_from_zero_and_promql_increase_stays_right(tmp_path: Path) -> None:
    """A counter idle past ``series_ttl`` is forgotten; when it comes back its 0 sample makes the drop a
    reset whatever the values: without it VictoriaMetrics counts 1 → (forgotten) → 1 as no increase, and
    8 → 7.5 as jitter (a drop of less than an eighth), not as 7.5 new."""
    from tests.helpers.events import now_iso

    clock = [time.time() - 2 * 3600]

    def cost(tenant: str, amount: float) -> dict[str, list[Any]]:
        offset = clock[0] - time.time() - 1  # the event is a second older than the exporter's "now"
        return event_columns([make_event("cost", payload={"amount": amount}, timestamp=now_iso(offset))], tenant)

    with (
        run_victoriametrics(tmp_path) as vm,
        PromReader(vm.url) as reader,
        exporter(tmp_path, vm.url, series_ttl="30m") as ex,
    ):
        ex.converter.clock = lambda: clock[0]
        ex.export("events", cost("small", 1.0))
        ex.export("events", cost("partial", 8.0))
        assert ex.flush(10)
        clock[0] = time.time() - 600  # 1 h 50 min later: both idle past the TTL
        ex.export("events", cost("other", 1.0))  # a flush: the sweep forgets them
        assert ex.flush(10)
        assert ex.series_stats.expired == 2 and ex.series_stats.tracked == 1
        ex.export("events", cost("small", 1.0))
        ex.export("events", cost("partial", 7.5))
        assert ex.flush(10)
        assert ex.series_stats.tracked == 3
        vm.flush()
        for tenant, want, last in (("small", 2.0, 1.0), ("partial", 15.5, 7.5)):
            q = f'increase(llm_cost_usd_total{{tenant_id="{tenant}"}}[3h])'
            assert settle(reader, q, want) == pytest.approx(want), q
            assert scalar(reader, f'resets(llm_cost_usd_total{{tenant_id="{tenant}"}}[3h])') == 1
            assert scalar(reader, f'last_over_time(llm_cost_usd_total{{tenant_id="{tenant}"}}[1h])') == last
        assert not ex.dead_letter.entries()
