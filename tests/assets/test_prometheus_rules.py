"""rules/prometheus/*.yaml with the real tools: promtool (Prometheus 2.42) and vmalert (1.79).

- `promtool check rules` on every rule file (strict PromQL: a MetricsQL-only function fails here);
- `promtool test rules` on rules/tests/*.yaml;
- every alert has a unit test where it fires and one where it stays quiet;
- `vmalert -dryRun` loads the same files (and rejects a broken one: the check is real);
- every alert has severity, team and tenant labels and a runbook that exists.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.procs import require_binary

pytestmark = pytest.mark.real_backend

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "rules" / "prometheus").glob("*.yaml"))
TEST_FILES = sorted((REPO / "rules" / "tests").glob("*.yaml"))


def _run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _alerting_rules() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend((path, rule) for rule in group["rules"] if "alert" in rule)
    return out


def _alert_names() -> set[str]:
    return {rule["alert"] for _, rule in _alerting_rules()}


def test_rule_files_exist() -> None:
    assert {p.name for p in RULE_FILES} >= {"recording.yaml", "alerts.yaml"}
    assert TEST_FILES


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(rule_file: Path) -> None:
    promtool = require_binary("promtool")
    result = _run([promtool, "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    result = _run([promtool, "test", "rules", *map(str, TEST_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = _alert_names()
    assert names, "no alerting rules found"
    assert not names - firing, f"alerts without a firing test: {sorted(names - firing)}"
    assert not names - quiet, f"alerts without a not-firing test: {sorted(names - quiet)}"
    assert not (firing | quiet) - names, f"tests of unknown alerts: {sorted((firing | quiet) - names)}"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_vmalert_dry_run(rule_file: Path) -> None:
    vmalert = require_binary("vmalert")
    result = _run([vmalert, "-dryRun", f"-rule={rule_file}", "-loggerLevel=WARN"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_vmalert_dry_run_rejects_a_broken_rule(tmp_path: Path) -> None:
    vmalert = require_binary("vmalert")
    broken = tmp_path / "broken.yaml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n")
    assert _run([vmalert, "-dryRun", f"-rule={broken}", "-loggerLevel=WARN"]).returncode != 0


def test_vmalert_dry_run_all_files_together() -> None:
    """Group names must be unique across the files vmalert loads together."""
    vmalert = require_binary("vmalert")
    result = _run([vmalert, "-dryRun", *[f"-rule={p}" for p in RULE_FILES], "-loggerLevel=WARN"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path_rule", _alerting_rules(), ids=lambda pr: pr[1]["alert"])
def test_alert_labels_and_runbook(path_rule: tuple[Path, dict[str, Any]]) -> None:
    _, rule = path_rule
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in {"critical", "warning"}
    assert labels.get("team"), "team label (who acts on it) is required"
    # tenant_id comes from a static label, a `by (tenant_id ...)`, a `tenant*:` recorded series or a
    # derived series that carries it (the unit tests check the resulting labels, see below)
    expr = rule["expr"]
    assert "tenant_id" in labels or "tenant" in expr or "anomaly_" in expr or "budget_" in expr
    assert annotations.get("summary") and annotations.get("description")
    assert annotations.get("runbook_url") == f"docs/runbooks/{rule['alert']}.md"
    assert (REPO / annotations["runbook_url"]).is_file()
    # events that are alerts in themselves (a correlated incident, an anomaly the model has already
    # debounced and announced, records a backend refused for good) fire at once; thresholds on noisy
    # series need a `for`
    if rule["alert"] not in {"LLMCriticalThreatNotBlocked", "LLMSecurityIncidentCorrelated", "LLMAnomalyDetected",
                             "HubExportDeadLettering", "HubStoreQuarantinedRows"}:  # fmt: skip
        assert rule.get("for"), "threshold alerts need a `for` duration"


def test_firing_alerts_in_unit_tests_carry_routing_labels() -> None:
    """What Alertmanager routes on is present on every alert the unit tests see firing."""
    checked = 0
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    labels = alert.get("exp_labels", {})
                    missing = {"severity", "team", "tenant_id"} - set(labels)
                    assert not missing, f"{path.name} {case['alertname']}: missing {missing}"
                    assert alert.get("exp_annotations", {}).get("runbook_url")
                    checked += 1
    assert checked >= len(_alert_names())


def test_recording_rule_names_follow_convention() -> None:
    doc = yaml.safe_load((REPO / "rules/prometheus/recording.yaml").read_text())
    records = [rule["record"] for group in doc["groups"] for rule in group["rules"]]
    assert len(records) == len(set(records))
    for name in records:
        assert name.count(":") == 2, f"{name}: expected level:metric:operation"
