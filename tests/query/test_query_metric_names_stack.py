"""A misspelt composite in the string form (``"metric": "error_rat"``) through the hub in stack mode, its unified
query answered by a real VictoriaMetrics: the 422 names the composite meant, as on the embedded store, while
composites and the contract's metric names in the string form still read the series VictoriaMetrics holds."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from hubcore.storage.readers import PromReader
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub
from tests.helpers.procs import require_binary, run_victoriametrics

DUR = "gen_ai.client.operation.duration"


def test_a_misspelt_composite_is_a_422_naming_it_on_victoriametrics(tmp_path: Path) -> None:
    require_binary("victoria-metrics")
    pipelines = {"events": {"receivers": ["native"], "processors": ["native_events"], "exporters": ["victoriametrics"]}}
    with run_victoriametrics(tmp_path / "vm") as vm, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.2}, service__pipelines=pipelines,
    ) as hub:  # fmt: skip
        headers = {"X-Scope-OrgID": "typo"}
        event = make_event("telemetry")
        assert event["payload"]["metric_name"] == DUR
        r = httpx.post(f"{hub.api}/api/v1/events", json=[event], headers=headers)
        assert r.status_code == 202, r.text
        reader = PromReader(vm.url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the exporter's flush, then VictoriaMetrics' own
            vm.flush()
            if len(reader.query('gen_ai_client_operation_duration_seconds_count{tenant_id="typo"}')):
                break
            time.sleep(0.2)

        def query(metric: object) -> httpx.Response:
            body = {"time_range": {"last": "1h"}, "metric": metric}
            return httpx.post(f"{hub.api}/api/v1/query", json=body, headers=headers)

        r = query("error_rat")
        assert r.status_code == 422, r.text  # had been "not expressible in PromQL: ... not in the metric contract"
        error = r.json()["error"]
        assert error["code"] == "invalid_query" and error["field"] == "metric"
        assert "did you mean 'error_rate'?" in error["message"]
        r = query("error_rate")  # the composite itself
        assert r.status_code == 200, r.text
        assert r.json()["metadata"]["backend"] == "victoriametrics" and list(r.json()["data"][0]) == ["error_rate"]
        r = query(DUR)  # a metric name of the contract, as a bare string: read as that metric
        assert r.status_code == 200, r.text
        assert r.json()["data"] == [{"count": 1.0}]
