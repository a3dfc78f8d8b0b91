"""End to end with a real Alertmanager: events posted to the hub → the hub's rule fires → Alertmanager →
a webhook receiver (http.server in this test). Quiet traffic pages no one. Alertmanager also sends
to the hub's own webhook endpoint, which records nothing twice (its own alerts come back marked)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from exporters.alertmanager import AlertmanagerExporter, AlertmanagerExporterConfig
from processors.alerting import AlertingConfig, AlertingService
from tests.helpers.events import make_event
from tests.helpers.hub import RunningHub, running_hub
from tests.helpers.procs import run_alertmanager

pytestmark = pytest.mark.real_backend


class Receiver:
    """A webhook receiver: every JSON body Alertmanager posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        return [a for b in self.bodies for a in b["alerts"]]


def wait_for(cond: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[RunningHub, Receiver, Any]]:
    with _stack(tmp_path, AlertingConfig()) as running:
        yield running


@contextlib.contextmanager
def _stack(tmp_path: Path, config: AlertingConfig) -> Iterator[tuple[RunningHub, Receiver, Any]]:
    """A hub whose alerting (``config``, evaluated every 0.2 s) sends to a real Alertmanager with no
    inhibit rule, which notifies a :class:`Receiver` (and the hub's webhook)."""
    receiver = Receiver()
    with running_hub(tmp_path / "hub", grpc=False, otlp_http=False) as hub:
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(
            "route:\n"
            "  receiver: test\n"
            "  group_by: [alertname, tenant_id, payload_source_ip]\n"
            "  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\n"
            "  routes:\n"
            "    - receiver: hub\n      continue: true\n"
            "    - receiver: test\n"
            "receivers:\n"
            f"  - name: test\n    webhook_configs: [{{url: '{receiver.url}', send_resolved: true}}]\n"
            f"  - name: hub\n    webhook_configs: [{{url: '{hub.api}/api/v1/alerts/alertmanager', send_resolved: true}}]\n"
        )
        with run_alertmanager(tmp_path, am_config) as am:
            client = AlertmanagerExporter(AlertmanagerExporterConfig(
                endpoint=am.url, resend_interval=2.0, dead_letter_directory=str(tmp_path / "am-dlq")))  # fmt: skip
            config = msgspec.structs.replace(config, interval=0.2, external_url=hub.api)
            svc = AlertingService(config, hub.service.store, hub.service.metrics.registry, client)
            hub.service.app.state.alerting = svc
            svc.start()
            try:
                yield hub, receiver, am
            finally:
                svc.shutdown(5.0)
    receiver.server.shutdown()


def post(hub: RunningHub, tenant: str, events: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{hub.api}/api/v1/events", json=events, headers={"X-Scope-OrgID": tenant})
    assert r.status_code == 202, r.text


def injections(n: int, ip: str) -> list[dict[str, Any]]:
    return [make_event("security", payload={"threat_type": "prompt_injection", "source_ip": ip}) for _ in range(n)]


def test_incident_reaches_the_webhook_and_quiet_traffic_does_not(stack: tuple[RunningHub, Receiver, Any]) -> None:
    hub, receiver, am = stack
    # quiet traffic: healthy requests and a few injections from one IP (under the burst threshold)
    post(hub, "acme", [make_event("telemetry") for _ in range(50)] + injections(4, "192.0.2.1"))
    post(hub, "globex", injections(9, "192.0.2.2"))
    time.sleep(2.0)  # ten evaluations
    assert receiver.bodies == []
    assert httpx.get(f"{am.url}/api/v2/alerts").json() == []
    no_alerts = {"alerts": [], "inhibited_count": 0}
    assert httpx.get(f"{hub.api}/api/v1/alerts", headers={"X-Scope-OrgID": "acme"}).json() == no_alerts

    # the incident: a burst of prompt injections from one address
    post(hub, "acme", injections(12, "198.51.100.7"))
    [alert] = wait_for(lambda: [a for a in receiver.alerts() if a["status"] == "firing"])
    labels = alert["labels"]
    assert labels == {"alertname": "LLMPromptInjectionBurstFromIP", "severity": "critical", "team": "security",
                      "tenant_id": "acme", "payload_source_ip": "198.51.100.7"}  # fmt: skip
    assert alert["annotations"]["summary"] == "12 prompt injections from 198.51.100.7 in 5 minutes"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/LLMPromptInjectionBurstFromIP.md"
    assert alert["generatorURL"] == f"{hub.api}/api/v1/alerts/rules/builtin-LLMPromptInjectionBurstFromIP"
    assert alert["startsAt"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))

    # the hub shows it once (Alertmanager's copy to the hub webhook is recognised as the hub's own)
    svc: AlertingService = hub.service.app.state.alerting
    wait_for(lambda: svc.webhook_totals.get("skipped_own"))
    hub_alerts = httpx.get(f"{hub.api}/api/v1/alerts", headers={"X-Scope-OrgID": "acme"}).json()["alerts"]
    assert [(a["alertname"], a["state"], a["source"]) for a in hub_alerts] == [
        ("LLMPromptInjectionBurstFromIP", "firing", "rule")
    ]
    assert httpx.get(f"{hub.api}/api/v1/alerts", headers={"X-Scope-OrgID": "globex"}).json() == no_alerts

    # resolving it in the hub sends endsAt; Alertmanager notifies the resolution
    r = httpx.post(f"{hub.api}/api/v1/alerts/{hub_alerts[0]['id']}/resolve", headers={"X-Scope-OrgID": "acme"})
    assert r.status_code == 200 and r.json()["alert"]["state"] == "resolved"
    [done] = wait_for(lambda: [a for a in receiver.alerts() if a["status"] == "resolved"])
    assert done["labels"] == labels and not done["endsAt"].startswith("0001")
    time.sleep(0.5)  # repeat_suppress: still resolved although the burst is still in the window
    states = [
        a["state"] for a in httpx.get(f"{hub.api}/api/v1/alerts", headers={"X-Scope-OrgID": "acme"}).json()["alerts"]
    ]
    assert states == ["resolved"]


# the same alert at two severities per model: a count of calls over 5 minutes
_CALLS = {"type": "threshold", "metric": "gen_ai.client.operation.duration", "aggregation": "count", "window": "5m",
          "group_by": ["model"], "op": ">="}  # fmt: skip
PAIR = [{"name": "TooManyCalls", "severity": "warning", "condition": {**_CALLS, "value": 3}},
        {"name": "TooManyCalls", "severity": "critical", "condition": {**_CALLS, "value": 10}}]  # fmt: skip


def test_an_inhibited_warning_is_not_sent_until_its_critical_resolves(tmp_path: Path) -> None:
    """The hub inhibits by itself: Alertmanager here has no inhibit rule, yet is never told of the warning
    that the critical of the same model inhibits; another model's warning goes out; resolving the critical
    sends the warning."""
    with _stack(tmp_path, AlertingConfig(builtin_rules=False, rules=PAIR)) as (hub, receiver, am):
        post(hub, "acme", [make_event("telemetry") for _ in range(12)]
             + [make_event("telemetry", payload={"model": "claude"}) for _ in range(4)])  # fmt: skip

        def notified() -> set[tuple[str, str, str]]:
            return {(a["labels"]["gen_ai_request_model"], a["labels"]["severity"], a["status"])
                    for a in receiver.alerts()}  # fmt: skip

        wait_for(lambda: {("gpt-4o", "critical", "firing"), ("claude", "warning", "firing")} <= notified())
        hub_alerts = httpx.get(f"{hub.api}/api/v1/alerts?inhibited=any", headers={"X-Scope-OrgID": "acme"}).json()
        assert hub_alerts["inhibited_count"] == 1
        by = {(a["labels"]["gen_ai_request_model"], a["severity"]): a for a in hub_alerts["alerts"]}
        assert by[("gpt-4o", "warning")]["inhibited_by_id"] == by[("gpt-4o", "critical")]["id"]
        time.sleep(1.5)  # several evaluations and Alertmanager flushes (group_interval 1 s)
        assert ("gpt-4o", "warning", "firing") not in notified()
        assert {tuple(sorted(a["labels"].items())) for a in httpx.get(f"{am.url}/api/v2/alerts").json()} == {
            tuple(sorted(by[k]["labels"].items())) for k in (("gpt-4o", "critical"), ("claude", "warning"))
        }

        r = httpx.post(f"{hub.api}/api/v1/alerts/{by[('gpt-4o', 'critical')]['id']}/resolve",
                       headers={"X-Scope-OrgID": "acme"})  # fmt: skip
        assert r.status_code == 200
        wait_for(lambda: {("gpt-4o", "critical", "resolved"), ("gpt-4o", "warning", "firing")} <= notified())
        warn = httpx.get(f"{hub.api}/api/v1/alerts/{by[('gpt-4o', 'warning')]['id']}",
                         headers={"X-Scope-OrgID": "acme"}).json()["alert"]  # fmt: skip
        assert warn["state"] == "firing" and not warn["inhibited"]
