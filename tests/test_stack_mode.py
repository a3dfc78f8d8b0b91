"""Stack mode through the whole hub: events and OTLP reach a real VictoriaMetrics (and Loki/Tempo at
the wire level), with embedded + stack together or stack only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubcore.storage.readers import PromReader
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub
from tests.helpers.procs import run_victoriametrics


class _Capture(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def capture() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    handler = type("Capture", (_Capture,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.received
    server.shutdown()


def _pipelines(*exporters: str) -> dict[str, Any]:
    return {
        "events": {"receivers": ["native"], "processors": ["native_events"], "exporters": list(exporters)},
        "otlp": {"receivers": ["otlp"], "exporters": list(exporters)},
    }


def _wait(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_events_reach_victoriametrics_and_loki(tmp_path: Path, capture: tuple[str, list[Any]]) -> None:
    loki_url, loki_received = capture
    with run_victoriametrics(tmp_path / "vm") as vm, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.2},
        exporters__loki={"endpoint": loki_url, "encoding": "json"},
        service__pipelines=_pipelines("embedded", "victoriametrics", "loki"),
    ) as hub:  # fmt: skip
        costs = [0.25, 0.5, 1.25]
        events = [make_event("cost", payload={"amount": c}) for c in costs]
        events += [make_event("telemetry", payload={"value": v, "unit": "ms"}) for v in (120.0, 900.0, 4000.0)]
        r = httpx.post(f"{hub.api}/api/v1/events", json=events, headers={"X-Scope-OrgID": "stack-t"})
        assert r.status_code == 202 and r.json()["accepted"] == 6
        reader = PromReader(vm.url)

        def cost_total() -> float:
            vm.flush()
            df = reader.query('sum(llm_cost_usd_total{tenant_id="stack-t"})')
            return float(df["value"].iloc[0]) if len(df) else 0.0

        assert _wait(lambda: abs(cost_total() - sum(costs)) < 1e-9) or cost_total() == pytest.approx(sum(costs))
        count = reader.query('sum(gen_ai_client_operation_duration_seconds_count{tenant_id="stack-t"})')
        assert float(count["value"].iloc[0]) == 3
        le1 = reader.query('sum(gen_ai_client_operation_duration_seconds_bucket{tenant_id="stack-t", le="1.28"})')
        assert float(le1["value"].iloc[0]) == 2  # 120 ms and 900 ms
        assert hub.sql("SELECT count(*) FROM events WHERE tenant_id = 'stack-t'") == [(6,)]

        def event_pushes() -> list[Any]:
            # the hub's own audit records travel to Loki too, sometimes in the same push as the events
            # (one push per tenant): pick the pushes that carry event streams
            return [r for r in loki_received if r[0] == "/loki/api/v1/push"
                    and any("source_module" in st["stream"] for st in json.loads(r[2])["streams"])]  # fmt: skip

        pushes = _wait(event_pushes)
        assert pushes, f"no events pushed to Loki; pushes: {[r[2][:200] for r in loki_received]}"
        _path, headers, body = pushes[0]
        assert headers["x-scope-orgid"] == "stack-t"
        streams = [st for st in json.loads(body)["streams"] if "source_module" in st["stream"]]
        labels = {k for s in streams for k in s["stream"]}
        assert {"tenant_id", "source_module", "event_type", "severity", "environment"} <= labels
        assert all(len(v[0]) == 19 for s in streams for v in s["values"])  # nanosecond timestamps


def test_stack_only_keeps_no_raw_events(tmp_path: Path) -> None:
    with run_victoriametrics(tmp_path / "vm") as vm, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.2},
        service__pipelines=_pipelines("victoriametrics"),
    ) as hub:  # fmt: skip
        r = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("security")], headers={"X-Scope-OrgID": "only"})
        assert r.status_code == 202
        reader = PromReader(vm.url)

        def threats() -> float:
            vm.flush()
            df = reader.query('sum(llm_security_threats_total{tenant_id="only"})')
            return float(df["value"].iloc[0]) if len(df) else 0.0

        assert _wait(lambda: threats() == 1.0)
        assert hub.sql("SELECT count(*) FROM events") == [(0,)]
        metrics = httpx.get(f"{hub.api}/metrics").text  # the running totals the exporter keeps in memory
        tracked = [line for line in metrics.splitlines() if line.startswith("hub_export_tracked_series{")]
        assert tracked and tracked[0].startswith('hub_export_tracked_series{exporter="victoriametrics"}')
        assert float(tracked[0].split()[-1]) >= 1
        assert 'hub_export_series_forgotten_total{exporter="victoriametrics",reason="limit"} 0.0' in metrics
        # with no raw events kept locally, the unified query is answered by VictoriaMetrics (PromQL)
        q = {"time_range": {"last": "1h"}, "metric": {"event_type": "security"},
             "aggregation": {"functions": ["count"]}}  # fmt: skip
        r = httpx.post(f"{hub.api}/api/v1/query", json=q, headers={"X-Scope-OrgID": "only"})
        assert r.status_code == 200, r.text
        meta = r.json()["metadata"]
        assert meta["backend"] != "embedded" and "llm_security_threats_total" in str(meta["compiled_query"])


def test_a_backend_outage_loses_nothing(tmp_path: Path) -> None:
    """VictoriaMetrics is down while events arrive; they are queued on disk and arrive after it is back."""
    vm_dir = tmp_path / "vm"
    with run_victoriametrics(vm_dir) as vm:
        url = vm.url
    # VictoriaMetrics is stopped now: the hub acknowledges, queues, retries
    with running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": url, "flush_interval": 0.2,
                                    "retry_on_failure": {"initial_interval": 0.2, "max_interval": 1.0}},
        service__pipelines=_pipelines("embedded", "victoriametrics"),
    ) as hub:  # fmt: skip
        events = [make_event("cost", payload={"amount": 1.0}) for _ in range(20)]
        assert httpx.post(f"{hub.api}/api/v1/events", json=events, headers={"X-Scope-OrgID": "out"}).status_code == 202

        def exported(counter: str) -> float:
            for line in httpx.get(f"{hub.api}/metrics").text.splitlines():
                if line.startswith(f'hub_export_{counter}_total{{exporter="victoriametrics"}}'):
                    return float(line.rsplit(" ", 1)[1])
            return -1.0

        # the outage shows on /metrics: retries grow, nothing is accepted yet
        assert _wait(lambda: exported("retries") >= 2, timeout=15), exported("retries")
        assert exported("records") == 0.0 and exported("dead_lettered") == 0.0
        port = int(url.rsplit(":", 1)[1])
        with run_victoriametrics(vm_dir, port=port) as vm2:
            reader = PromReader(vm2.url)

            def total() -> float:
                vm2.flush()
                df = reader.query('sum(llm_cost_usd_total{tenant_id="out"})')
                return float(df["value"].iloc[0]) if len(df) else 0.0

            assert _wait(lambda: total() == 20.0, timeout=45), total()
        assert exported("records") > 0 and exported("requests") > 0


def test_kill_9_mid_export_then_restart_drains_the_queue(tmp_path: Path) -> None:
    import signal

    from tests.helpers.hub import start_hub_process

    vm_dir = tmp_path / "vm"
    with run_victoriametrics(vm_dir) as vm:
        url = vm.url
    port = int(url.rsplit(":", 1)[1])
    data = tmp_path / "data"
    hp = start_hub_process(data, "--victoriametrics-url", url, "--log-level", "warning")
    try:  # VictoriaMetrics is down: acknowledged events wait in the on-disk export queue
        for _ in range(5):
            batch = [make_event("cost", payload={"amount": 2.0}) for _ in range(10)]
            r = httpx.post(f"{hp.api}/api/v1/events", json=batch, headers={"X-Scope-OrgID": "k9"})
            assert r.status_code == 202
    finally:
        hp.proc.send_signal(signal.SIGKILL)
        hp.proc.wait(10)
    # restarted on the same data directory (in-process: the configuration `--victoriametrics-url` makes), the
    # hub sends what the killed one had queued
    with run_victoriametrics(vm_dir, port=port) as vm2, running_hub(
        data, grpc=False, otlp_http=False, exporters__victoriametrics={"endpoint": url},
        service__pipelines=_pipelines("embedded", "victoriametrics"),
    ):  # fmt: skip
        reader = PromReader(vm2.url)

        def total() -> float:
            vm2.flush()
            df = reader.query('sum(llm_cost_usd_total{tenant_id="k9"})')
            return float(df["value"].iloc[0]) if len(df) else 0.0

        assert _wait(lambda: total() == 100.0, timeout=60), total()


def test_derived_series_reach_victoriametrics(tmp_path: Path) -> None:
    from analytics.service.derived import DerivedRow

    with run_victoriametrics(tmp_path / "vm") as vm, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.2},
        service__pipelines=_pipelines("embedded", "victoriametrics"),
    ) as hub:  # fmt: skip
        now = time.time()
        labels = {"for": "latency_p95", "model_alias": "ensemble", "gen_ai_request_model": "gpt-4o"}
        rows = [DerivedRow("d-t", now, "anomaly_score", 2.5, labels, "anomaly"),
                DerivedRow("d-t", now, "anomaly_alert", 2.5, labels, "anomaly")]  # fmt: skip
        for listener in hub.service.analytics._listeners:  # what the scheduler calls after each pass
            listener(rows)
        reader = PromReader(vm.url)

        def score() -> Any:
            vm.flush()
            return reader.query('anomaly_score{tenant_id="d-t", for="latency_p95"}')

        assert _wait(lambda: len(score()) > 0)
        df = score()
        assert float(df["value"].iloc[0]) == 2.5
        assert df["gen_ai_request_model"].iloc[0] == "gpt-4o" and df["model_alias"].iloc[0] == "ensemble"
        # the series the LLMAnomalyDetected vmalert rule reads, under the same labels
        alert = reader.query('last_over_time(anomaly_alert{tenant_id="d-t", for="latency_p95"}[10m]) > 0')
        assert len(alert) == 1 and float(alert["value"].iloc[0]) == 2.5


def test_erasure_reaches_the_backends_and_audit_reaches_loki(tmp_path: Path, capture: tuple[str, list[Any]]) -> None:
    loki_url, loki_received = capture
    with run_victoriametrics(tmp_path / "vm") as vm, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.2},
        exporters__loki={"endpoint": loki_url, "encoding": "json"},
        service__pipelines=_pipelines("embedded", "victoriametrics", "loki"),
    ) as hub:  # fmt: skip
        r = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers={"X-Scope-OrgID": "gdpr"})
        assert r.status_code == 202
        reader = PromReader(vm.url)

        def series() -> int:
            vm.flush()
            return len(reader.query('llm_cost_usd_total{tenant_id="gdpr"}'))

        assert _wait(lambda: series() > 0)
        out = httpx.delete(f"{hub.api}/api/v1/tenants/gdpr/data")
        assert out.status_code == 200, out.text
        body = out.json()
        assert body["deleted"]["events"] == 1 and body["backends"]["victoriametrics"] == "deleted"
        assert series() == 0
        assert any(p == "/loki/api/v1/delete" or p.startswith("/loki/api/v1/delete?") for p, _h, _b in loki_received)
        audit_pushes = [b for p, _h, b in loki_received if p == "/loki/api/v1/push" and b"llm-analytics-hub-audit" in b]
        assert _wait(lambda: audit_pushes or [b for p, _h, b in loki_received
                                              if p == "/loki/api/v1/push" and b"llm-analytics-hub-audit" in b])  # fmt: skip
