"""The Alertmanager client against a real Alertmanager routing to a local webhook receiver."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from exporters.alertmanager import Alert, AlertmanagerExporter, AlertmanagerExporterConfig
from tests.exporters._server import RecordingServer
from tests.exporters._util import FAST_RETRY
from tests.helpers.procs import run_alertmanager

pytestmark = pytest.mark.real_backend

CONFIG = """
route:
  receiver: hub-webhook
  group_by: [alertname, tenant_id]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hub-webhook
    webhook_configs:
      - url: {url}/hook
        send_resolved: true
"""


def _notifications(srv: RecordingServer) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in srv.accepted if r.path == "/hook"]


def _wait(srv: RecordingServer, status: str, timeout: float = 15.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in _notifications(srv):
            if n["status"] == status:
                return n
        time.sleep(0.1)
    raise AssertionError(f"no {status} notification; got {_notifications(srv)}")


def test_alert_fires_and_resolves_through_alertmanager(tmp_path: Path) -> None:
    with RecordingServer(status=200) as hook:
        cfg_path = tmp_path / "am.yml"
        cfg_path.write_text(CONFIG.format(url=hook.url))
        with run_alertmanager(tmp_path, cfg_path) as am:
            exporter = AlertmanagerExporter(
                AlertmanagerExporterConfig(
                    endpoint=am.url,
                    resend_interval=0.5,
                    retry_on_failure=FAST_RETRY,
                    dead_letter_directory=str(tmp_path / "dl"),
                )
            )
            AlertmanagerExporter(AlertmanagerExporterConfig(endpoint=am.url)).shutdown()  # safe without start
            exporter.start()
            labels = {"alertname": "LLMAnomalyDetected", "tenant_id": "acme", "severity": "warning", "team": "finops"}
            exporter.fire([Alert(labels=labels, annotations={"summary": "cost anomaly"}, generatorURL="http://hub/x")])
            firing = _wait(hook, "firing")
            alert = firing["alerts"][0]  # type: ignore[index]
            assert alert["labels"] == labels and alert["annotations"]["summary"] == "cost anomaly"
            assert alert["generatorURL"] == "http://hub/x"
            time.sleep(1.2)  # a few re-posts: still one alert, still firing
            assert exporter.posted >= 2 and len(exporter.firing) == 1
            exporter.resolve([labels])
            resolved = _wait(hook, "resolved")
            assert resolved["alerts"][0]["labels"] == labels  # type: ignore[index]
            exporter.shutdown(5)
            exporter.shutdown(5)  # idempotent
            assert not exporter.dead_letter.entries()


def test_post_retries_server_errors_then_dead_letters_bad_alerts(tmp_path: Path) -> None:
    with RecordingServer(fail=[(503, {"Retry-After": "0"}), (400, {})], status=200) as srv:
        exporter = AlertmanagerExporter(
            AlertmanagerExporterConfig(
                endpoint=srv.url,
                resend_interval=30,
                retry_on_failure=FAST_RETRY,
                dead_letter_directory=str(tmp_path / "dl"),
            )
        )
        exporter.start()
        exporter.fire([Alert(labels={"alertname": "A"})])
        deadline = time.monotonic() + 10
        while not exporter.dead_letter.entries() and time.monotonic() < deadline:
            time.sleep(0.05)
        exporter.fire([Alert(labels={"alertname": "B"})])
        while len(srv.accepted) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        exporter.shutdown(5)
    assert [r.path for r in srv.requests][:3] == ["/api/v2/alerts"] * 3
    assert exporter.dead_letter.entries()[0]["status"] == 400
    body = json.loads(srv.accepted[0].body)
    assert body[0]["labels"] == {"alertname": "B"} and body[0]["endsAt"] > body[0]["startsAt"]
