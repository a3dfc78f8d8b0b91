"""rules/alertmanager/ with the real Alertmanager 0.25 and amtool.

- `amtool check-config` on the file as committed;
- `amtool config routes test`: label sets -> expected receivers (the routing tree by team,
  severity and tenant);
- `amtool template render`: every template in templates/*.tmpl renders;
- a live Alertmanager with the same config (only the hub webhook pointed at a local server and the
  secret files replaced): inhibition suppresses the warning of the same alert and series (not another
  model's or team's), and the hub webhook receives what is not suppressed.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.procs import require_binary, run_alertmanager

pytestmark = pytest.mark.real_backend

REPO = Path(__file__).resolve().parents[2]
AM_DIR = REPO / "rules" / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yml"


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = require_binary("amtool")
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_check_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "1 templates" in result.stdout


ROUTES = [
    # (labels, expected receivers in order)
    (
        {"alertname": "LLMSecurityThreatSpike", "severity": "warning", "team": "security", "tenant_id": "globex"},
        ["hub-webhook", "security-slack"],
    ),
    (
        {"alertname": "LLMCriticalThreatNotBlocked", "severity": "critical", "team": "security", "tenant_id": "globex"},
        ["hub-webhook", "security-pagerduty", "security-slack"],
    ),
    (
        {"alertname": "LLMLatencyP95High", "severity": "critical", "team": "search", "tenant_id": "globex"},
        ["hub-webhook", "oncall-pagerduty"],
    ),
    (
        {"alertname": "LLMLatencyP95High", "severity": "warning", "team": "search", "tenant_id": "globex"},
        ["hub-webhook", "llm-platform-slack"],
    ),
    (
        {"alertname": "LLMBudgetExhaustionPredicted", "severity": "warning", "team": "finops", "tenant_id": "globex"},
        ["hub-webhook", "finops-email"],
    ),
    (
        {"alertname": "LLMBudgetExceeded", "severity": "critical", "team": "finops", "tenant_id": "globex"},
        ["hub-webhook", "finops-slack"],
    ),
    (
        {"alertname": "LLMComplianceRateLow", "severity": "critical", "team": "compliance", "tenant_id": "globex"},
        ["hub-webhook", "oncall-pagerduty", "compliance-email"],
    ),
    (
        {"alertname": "LLMComplianceRateLow", "severity": "warning", "team": "compliance", "tenant_id": "globex"},
        ["hub-webhook", "compliance-email"],
    ),
    # tenant routing: acme gets a copy on its own webhook, then the normal tree
    (
        {"alertname": "LLMErrorRateHigh", "severity": "critical", "team": "search", "tenant_id": "acme"},
        ["hub-webhook", "tenant-acme-webhook", "oncall-pagerduty"],
    ),
    (
        {"alertname": "HubQueueBacklog", "severity": "warning", "team": "llm-platform", "tenant_id": "all"},
        ["hub-webhook", "llm-platform-slack"],
    ),
    # unlabelled alerts still reach people
    ({"alertname": "Unknown"}, ["hub-webhook", "llm-platform-slack"]),
]


@pytest.mark.parametrize(
    ("labels", "expected"), ROUTES, ids=lambda v: v.get("alertname") if isinstance(v, dict) else ""
)
def test_routes(labels: dict[str, str], expected: list[str]) -> None:
    result = _amtool("config", "routes", "test", f"--config.file={CONFIG}", *[f"{k}={v}" for k, v in labels.items()])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().split(",") == expected


def _template_names() -> list[str]:
    text = "".join(p.read_text() for p in sorted((AM_DIR / "templates").glob("*.tmpl")))
    return re.findall(r'{{-?\s*define\s+"([^"]+)"', text)


def test_every_template_renders() -> None:
    names = _template_names()
    assert {"hub.title", "hub.slack.text", "hub.email.html", "hub.pagerduty.description"} <= set(names)
    config_text = CONFIG.read_text()
    glob = str(AM_DIR / "templates" / "*.tmpl")
    for name in names:
        text = f'{{{{ template "{name}" . }}}}' if name != "hub.text.list" else '{{ template "hub.text.list" .Alerts }}'
        result = _amtool("template", "render", f"--template.glob={glob}", f"--template.text={text}")
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    for used in set(re.findall(r'template "([^"]+)"', config_text)):
        assert used in names, f"alertmanager.yml uses undefined template {used}"


# --------------------------------------------------------------------------- live Alertmanager


class _Sink(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append({"auth": self.headers.get("Authorization"), **json.loads(body)})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_sink() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _live_config(tmp_path: Path, sink_url: str) -> Path:
    """The committed config with the hub webhook pointed at ``sink_url`` and secrets in tmp files."""
    work = tmp_path / "am"
    shutil.copytree(AM_DIR, work)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    text = (work / "alertmanager.yml").read_text().replace("/etc/alertmanager/secrets", str(secrets))
    for name in (
        "smtp_password",
        "slack_api_url",
        "pagerduty_oncall_key",
        "pagerduty_security_key",
        "hub_webhook_token",
    ):
        (secrets / name).write_text("http://127.0.0.1:9/unused\n" if name == "slack_api_url" else f"test-{name}\n")
    config = yaml.safe_load(text)
    for receiver in config["receivers"]:
        if receiver["name"] == "hub-webhook":
            receiver["webhook_configs"][0]["url"] = sink_url
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work / "alertmanager.yml"


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def _alert(model: str, severity: str, team: str = "search") -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "LLMLatencyP95High",
            "severity": severity,
            "team": team,
            "tenant_id": "globex",
            "environment": "prod",
            "gen_ai_request_model": model,
        },
        "annotations": {
            "summary": f"p95 of {model}",
            "description": "d",
            "runbook_url": "docs/runbooks/LLMLatencyP95High.md",
        },
        "startsAt": datetime.now(UTC).isoformat(),
    }


def test_inhibit_rule_compares_every_series_label() -> None:
    """The critical -> warning rule: ``equal`` holds the labels that identify the series of the shipped
    rules (and the hub's group-by dimensions), so a critical never inhibits another series' warning."""
    from processors.alerting.rules import DIMENSIONS

    config = yaml.safe_load(CONFIG.read_text())
    [rule] = [r for r in config["inhibit_rules"] if r.get("target_matchers") == ['severity="warning"']]
    assert rule["source_matchers"] == ['severity="critical"']
    equal = set(rule["equal"])
    series = {"alertname", "tenant_id", "environment", "team", "project", "gen_ai_request_model",  # tenant_model_team
              "for", "model_alias", "budget_id", "policy_id", "regulation", "threat_type", "job"}  # fmt: skip
    assert series <= equal, series - equal
    assert {label for _sql, label in DIMENSIONS.values()} <= equal  # the embedded rules' group-by labels
    assert not equal & {"severity", "escalated"}  # these differ between the two alerts by design


def _key(alert: dict[str, Any]) -> tuple[str, str, str]:
    labels = alert["labels"]
    return labels["gen_ai_request_model"], labels["team"], labels["severity"]


def test_live_inhibition_and_hub_webhook(tmp_path: Path, webhook_sink: tuple[str, list[dict[str, Any]]]) -> None:
    sink_url, received = webhook_sink
    config = _live_config(tmp_path, sink_url)
    with run_alertmanager(tmp_path, config) as am:
        # the critical first, and only once it has been notified (so the inhibitor has seen it)
        # the warnings: posted together, the warning's group may be flushed before inhibition applies
        _post_alerts(am.url, [_alert("gpt-4o", "critical")])
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received, "hub webhook got nothing"
        # the same model's warning (inhibited), another model's and another team's of the same model (not)
        _post_alerts(am.url, [_alert("gpt-4o", "warning"), _alert("claude", "warning"),
                              _alert("gpt-4o", "warning", team="billing")])  # fmt: skip
        deadline = time.monotonic() + 45  # the hub webhook's group_wait is 1 s (0 s split the two warnings)
        states: dict[tuple[str, str, str], dict[str, Any]] = {}
        webhook_alerts: set[tuple[str, str, str]] = set()
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{am.url}/api/v2/alerts", timeout=5) as resp:
                states = {_key(a): a["status"] for a in json.loads(resp.read())}
            webhook_alerts = {_key(a) for n in received for a in n["alerts"]}
            if len(states) == 4 and states[("gpt-4o", "search", "warning")]["inhibitedBy"] and len(webhook_alerts) >= 3:
                break
            time.sleep(0.2)
        warning = states[("gpt-4o", "search", "warning")]
        assert warning["state"] == "suppressed" and warning["inhibitedBy"], states
        assert states[("gpt-4o", "search", "critical")]["state"] == "active", states
        assert states[("claude", "search", "warning")]["state"] == "active", (
            "other model's warning must not be inhibited"
        )
        assert states[("gpt-4o", "billing", "warning")]["state"] == "active", (
            "other team's warning must not be inhibited"
        )
        assert webhook_alerts == {("gpt-4o", "search", "critical"), ("claude", "search", "warning"),
                                  ("gpt-4o", "billing", "warning")}, received  # fmt: skip
        assert all(n["auth"] == "Bearer test-hub_webhook_token" for n in received)
