"""vmalert evaluates the rules for real (not only -dryRun): replay mode over synthetic contract data.

vmalert 1.79 `-replay.timeFrom/-replay.timeTo` evaluates every group over a past range against a real
VictoriaMetrics and remote-writes the results (recorded series, ALERTS) back to it. Recording rules
go first, then the alerting rules read what they recorded, as in production. This checks that the
rules written for promtool also run on VictoriaMetrics' engine and produce the recorded series and
the alerts the synthetic data is built to trigger.

(1.79's replay leaves alerts with a `for` in state "pending"; the `for` semantics are covered by the
promtool unit tests, so both states count as "the condition held" here.)
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.assets.synthetic import load_into
from tests.helpers.procs import VMHandle, require_binary, run_victoriametrics

pytestmark = pytest.mark.real_backend

REPO = Path(__file__).resolve().parents[2]
MINUTES = 180
#: alerts whose conditions the synthetic data (tests/assets/synthetic.py) clearly meets
EXPECTED = {
    "LLMAnomalyDetected",  # anomaly_alert 1.6 (announced) for acme/gpt-4o
    "LLMBudgetExhaustionPredicted",  # 5 and 3.3 days left
    "LLMBudgetExceeded",  # spend 12k of 10k
    "LLMCriticalThreatNotBlocked",  # critical threats redacted
    "LLMSecurityIncidentCorrelated",  # security_incident correlations
    "LLMSecurityThreatSpike",  # globex: 36 per 5 min per threat type
    "LLMLatencyP95High",  # p95 far above 15 s
}
NOT_EXPECTED = {"HubQueueBacklog", "HubIngestRejectionsHigh", "LLMErrorBudgetBurnFast", "LLMErrorRateHigh"}


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(vm: VMHandle, expr: str, at: float) -> list[dict[str, object]]:
    params = urllib.parse.urlencode({"query": expr, "time": str(at)})
    with urllib.request.urlopen(f"{vm.url}/api/v1/query?{params}", timeout=10) as resp:
        return json.loads(resp.read())["data"]["result"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VMHandle, float]]:
    vmalert = require_binary("vmalert")
    end_ms = (int(time.time()) // 60) * 60 * 1000 - 60_000
    end_s = end_ms / 1000
    with run_victoriametrics(tmp_path_factory.mktemp("vm-replay")) as vm:
        load_into(vm.url, end_ms, MINUTES)
        vm.flush()
        for rule_file in ("recording.yaml", "alerts.yaml"):
            result = subprocess.run(
                [vmalert, f"-rule={REPO / 'rules' / 'prometheus' / rule_file}", f"-datasource.url={vm.url}",
                 f"-remoteWrite.url={vm.url}", f"-replay.timeFrom={_rfc3339(end_s - (MINUTES - 10) * 60)}",
                 f"-replay.timeTo={_rfc3339(end_s)}", "-replay.disableProgressBar", "-replay.rulesDelay=0s",
                 "-loggerLevel=WARN"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert result.returncode == 0, f"{rule_file}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            assert "error" not in result.stderr.lower(), result.stderr[-2000:]
            vm.flush()
        yield vm, end_s


def test_every_recording_rule_was_recorded(replayed: tuple[VMHandle, float]) -> None:
    vm, end_s = replayed
    doc = yaml.safe_load((REPO / "rules/prometheus/recording.yaml").read_text())
    expected = {rule["record"] for group in doc["groups"] for rule in group["rules"]}
    found = {r["metric"]["__name__"] for r in _query(vm, 'count by (__name__) ({__name__=~".+:.+:.+"})', end_s)}
    assert expected <= found, f"not recorded by vmalert: {sorted(expected - found)}"


def test_alerts_raised_by_vmalert(replayed: tuple[VMHandle, float]) -> None:
    vm, end_s = replayed
    results = _query(vm, "count by (alertname, alertstate, severity, team) (last_over_time(ALERTS[3h]))", end_s)
    names = {r["metric"]["alertname"] for r in results}
    assert names >= EXPECTED, f"missing: {sorted(EXPECTED - names)}; got {sorted(names)}"
    assert not names & NOT_EXPECTED, f"unexpected: {sorted(names & NOT_EXPECTED)}"
    for r in results:  # routing labels survive vmalert's label templating
        assert r["metric"].get("severity") in {"critical", "warning"} and r["metric"].get("team"), r


def test_vmalert_resolves_a_withdrawn_anomaly_on_the_next_run_and_rides_out_a_late_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """LLMAnomalyDetected on VictoriaMetrics' engine follows the newest anomaly_alert sample: a stale run's
    110.9 withdrawn by the next run's 0 stops firing at that run (it had fired 10 minutes more on
    ``max_over_time``); a 2.5 whose next run is 6 minutes late keeps firing through the gap."""
    vmalert = require_binary("vmalert")
    start_s = (int(time.time()) // 60) * 60 - 60 * 60
    labels = {"__name__": "anomaly_alert", "model_alias": "anomaly_ensemble", "tenant_id": "acme"}
    withdrawn = {minute: 110.9 if minute == 10 else 0.0 for minute in range(40)}
    late = {minute: 2.5 if minute in (10, 17) else 0.0 for minute in range(40) if not 10 < minute < 17}
    lines = [json.dumps({"metric": {**labels, "for": query}, "values": list(points.values()),
                         "timestamps": [(start_s + 60 * m) * 1000 for m in points]})
             for query, points in (("requests_rate", withdrawn), ("latency_p95", late))]  # fmt: skip
    with run_victoriametrics(tmp_path_factory.mktemp("vm-withdraw")) as vm:
        req = urllib.request.Request(f"{vm.url}/api/v1/import", data="\n".join(lines).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        vm.flush()
        result = subprocess.run(
            [vmalert, f"-rule={REPO / 'rules' / 'prometheus' / 'alerts.yaml'}", f"-datasource.url={vm.url}",
             f"-remoteWrite.url={vm.url}", f"-replay.timeFrom={_rfc3339(start_s)}",
             f"-replay.timeTo={_rfc3339(start_s + 40 * 60)}", "-replay.disableProgressBar", "-replay.rulesDelay=0s",
             "-datasource.queryStep=1m", "-loggerLevel=WARN"],  # (replay's step: 5m by default)
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        vm.flush()
        params = urllib.parse.urlencode({"match[]": 'ALERTS{alertname="LLMAnomalyDetected"}'})
        with urllib.request.urlopen(f"{vm.url}/api/v1/export?{params}", timeout=10) as resp:
            exported = [json.loads(line) for line in resp.read().decode().splitlines() if line]
    firing: dict[tuple[str, str], set[int]] = {}
    for series in exported:
        key = (series["metric"]["for"], series["metric"]["severity"])
        firing.setdefault(key, set()).update(round(t / 1000 - start_s) // 60 for t in series["timestamps"])
    assert firing[("requests_rate", "critical")] == firing[("requests_rate", "warning")] == {10}, firing
    assert firing[("latency_p95", "warning")] == set(range(10, 18)), firing
    assert ("latency_p95", "critical") not in firing
