"""rules/loki/*.yaml (Loki ruler) and the dashboards' Loki queries.

There is no LogQL parser here (Loki is not packaged, and no PyPI package provides its grammar),
so LogQL is checked structurally by tests/assets/logql_check.py: balanced brackets, a stream
selector with known labels that Loki accepts, known pipeline stages and labels (stream labels or
the `| json` flattening of the native event), ranges on range aggregations, metric queries for
rules. The checker itself is tested below on queries it must reject.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.assets.dashboard_queries import load_dashboards, queries
from tests.assets.logql_check import check_logql

REPO = Path(__file__).resolve().parents[2]
LOKI_RULE_FILES = sorted((REPO / "rules" / "loki").glob("*.yaml"))


def _rules() -> list[dict[str, Any]]:
    out = []
    for path in LOKI_RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        names = [g["name"] for g in doc["groups"]]
        assert len(names) == len(set(names)), f"{path.name}: duplicate group names"
        for group in doc["groups"]:
            out.extend(group["rules"])
    return out


def test_loki_rule_files_exist() -> None:
    assert LOKI_RULE_FILES
    assert any("alert" in r for r in _rules())


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_loki_rule(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
    assert check_logql(rule["expr"], metric=True) == []
    if "alert" in rule:
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning"} and labels["team"]
        assert "tenant_id" in rule["expr"], "Loki alerts must keep tenant_id for routing"
        assert annotations["summary"] and annotations["description"]
        assert annotations["runbook_url"] == f"docs/runbooks/{rule['alert']}.md"
        assert (REPO / annotations["runbook_url"]).is_file()


def _loki_queries() -> list[Any]:
    out = []
    for name, model in load_dashboards().items():
        out.extend(q for q in queries(name, model) if q.datasource_uid == "loki")
    return out


def test_dashboards_have_loki_queries() -> None:
    assert len(_loki_queries()) >= 4


@pytest.mark.parametrize("query", _loki_queries(), ids=lambda q: f"{q.dashboard}:{q.panel}")
def test_dashboard_logql(query: Any) -> None:
    assert check_logql(query.expr) == [], query.expr


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ('{source_module="llm-sentinel"', "unclosed"),
        ('sum(count_over_time({source_module="a"} | json))', "without a [range]"),
        ('{tenant_id=~".*"} | json', "empty string"),
        ('{hostname="x"}', "unknown stream label"),
        ('{source_module="a"} | json | user="x"', "unknown label"),
        ('sum by (pod) (rate({source_module="a"}[5m]))', "unknown label"),
        ('{source_module="a"} | json', "metric query"),
        ('{source_module="a} | json', "unterminated"),
        ('{source_module=~"(a"}', "bad regex"),
        ('sum(rate({source_module="a"}[5m])) / foo(1)', "unknown functions"),
    ],
)
def test_checker_rejects(bad: str, why: str) -> None:
    problems = check_logql(bad, metric=True)
    assert any(why in p for p in problems), problems


def test_checker_accepts_the_documented_example() -> None:
    example = (
        'sum by (payload_source_ip) (count_over_time({source_module="llm-sentinel", event_type="security"}'
        ' | json | payload_threat_type="prompt_injection" [5m]))'
    )
    assert check_logql(example, metric=True) == []
