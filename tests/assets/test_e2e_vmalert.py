"""End to end with real components: the hub (stack mode) exports to a real VictoriaMetrics, a real vmalert
evaluates the committed rules/ against it and notifies a real Alertmanager (the committed routing tree),
which delivers to a local webhook.

Quiet simulated traffic raises no security or compliance alert; an injected prompt-injection burst
raises ``LLMSecurityThreatSpike`` at the expected receivers. To fit in seconds, the test runs a copy of
``rules/prometheus/*.yaml`` whose only change is every group's ``interval`` (2 s) and every ``for``
(0 s); the expressions, labels and routing are the committed ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.assets.test_alertmanager import _live_config, webhook_sink  # noqa: F401 - fixture
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub
from tests.helpers.procs import free_port, require_binary, run_alertmanager, run_victoriametrics

REPO = Path(__file__).resolve().parents[2]
QUIET_FAMILIES = ("LLMSecurity", "LLMCriticalThreat", "LLMCompliance", "LLMGovernance")


def _fast_rules(tmp_path: Path) -> list[Path]:
    out = []
    for src in sorted((REPO / "rules" / "prometheus").glob("*.yaml")):
        doc = yaml.safe_load(src.read_text())
        for group in doc["groups"]:
            group["interval"] = "2s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        dst = tmp_path / src.name
        dst.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(dst)
    return out


def _am_alerts(am_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{am_url}/api/v2/alerts", timeout=5) as resp:
        return list(json.loads(resp.read()))


def _evaluations(vmalert_url: str) -> dict[str, float]:
    """Rule-group evaluations vmalert has run so far, by group (``vmalert_iteration_total``)."""
    try:
        with urllib.request.urlopen(f"{vmalert_url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:  # not listening yet
        return {}
    return {
        series: float(value)
        for series, _, value in (line.rpartition(" ") for line in text.splitlines())
        if series.startswith("vmalert_iteration_total{")
    }


def _wait_for_evaluations(vmalert_url: str, rounds: int, timeout: float = 60.0) -> None:
    """Until every rule group has been evaluated at least ``rounds`` more times than it had been now."""
    deadline = time.monotonic() + timeout
    before = _evaluations(vmalert_url)
    while not before and time.monotonic() < deadline:
        time.sleep(0.2)
        before = _evaluations(vmalert_url)
    assert before, "vmalert exposes no vmalert_iteration_total"
    while time.monotonic() < deadline:
        now = _evaluations(vmalert_url)
        if all(now.get(group, 0.0) >= done + rounds for group, done in before.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"vmalert did not evaluate every group {rounds} more times in {timeout} s: {before}")


def _simulate(api: str, seconds: int) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "simulate", "--api", api, "--rate", "80", "--duration", str(seconds),
         "--seed", "7", "--quiet"], capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]


def test_injected_incident_alerts_through_vmalert_and_alertmanager(
    tmp_path: Path,
    webhook_sink: tuple[str, list[dict[str, Any]]],  # noqa: F811 - fixture
) -> None:
    vmalert = require_binary("vmalert")
    sink_url, received = webhook_sink
    with run_victoriametrics(tmp_path / "vm") as vm, run_alertmanager(tmp_path, _live_config(tmp_path, sink_url)) as am, running_hub(
        tmp_path / "hub", grpc=False, otlp_http=False,
        exporters__victoriametrics={"endpoint": vm.url, "flush_interval": 0.5},
        service__pipelines={
            "events": {"receivers": ["native"], "processors": ["native_events"], "exporters": ["embedded", "victoriametrics"]},
            "otlp": {"receivers": ["otlp"], "exporters": ["embedded", "victoriametrics"]},
        },
    ) as hub:  # fmt: skip
        rule_flags = [f"-rule={p}" for p in _fast_rules(tmp_path)]
        log = open(tmp_path / "vmalert.log", "wb")  # noqa: SIM115 - closed below
        vmalert_addr = f"127.0.0.1:{free_port()}"
        proc = subprocess.Popen(
            [vmalert, *rule_flags, f"-datasource.url={vm.url}", f"-notifier.url={am.url}",
             f"-remoteWrite.url={vm.url}", "-evaluationInterval=2s", f"-httpListenAddr={vmalert_addr}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _simulate(hub.api, 12)  # quiet traffic: the default tenant
            # several evaluations of every group over what the quiet traffic left in VictoriaMetrics (the
            # exporter sends every 0.5 s: the first may miss the last half second, the next ones do not)
            _wait_for_evaluations(f"http://{vmalert_addr}", rounds=3)
            quiet = [a["labels"]["alertname"] for a in _am_alerts(am.url)]
            assert not [n for n in quiet if n.startswith(QUIET_FAMILIES)], quiet
            burst = [
                make_event("security", severity="error",
                           payload={"threat_type": "prompt_injection", "threat_level": "high",
                                    "action_taken": "blocked", "source_ip": "203.0.113.77"})
                for _ in range(60)
            ]  # fmt: skip
            for i in range(0, 60, 20):  # three batches, so the counter rises across samples
                assert httpx.post(f"{hub.api}/api/v1/events", json=burst[i : i + 20]).status_code == 202
                time.sleep(1.5)
            deadline = time.monotonic() + 60
            fired: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not fired:
                fired = [a for a in _am_alerts(am.url) if a["labels"]["alertname"] == "LLMSecurityThreatSpike"]
                time.sleep(0.25)
            assert fired, (
                f"LLMSecurityThreatSpike did not fire; vmalert log:\\n{(tmp_path / 'vmalert.log').read_text()[-3000:]}"
            )
            alert = fired[0]
            assert alert["labels"]["threat_type"] == "prompt_injection"
            assert alert["labels"]["team"] == "security" and alert["labels"]["tenant_id"] == "default"
            receivers = {r["name"] for r in alert["receivers"]}
            assert {"hub-webhook", "security-slack"} <= receivers, receivers
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                names = {a["labels"]["alertname"] for n in received for a in n["alerts"]}
                if "LLMSecurityThreatSpike" in names:
                    break
                time.sleep(0.25)
            assert "LLMSecurityThreatSpike" in {a["labels"]["alertname"] for n in received for a in n["alerts"]}
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    shutil.rmtree(tmp_path / "vm", ignore_errors=True)
