"""grafana/: provisioning files and the generated dashboards.

- datasources carry the fixed uids (victoriametrics, loki, tempo, alertmanager) and the Tempo
  cross-links (tracesToLogsV2, tracesToMetrics) point at provisioned uids;
- every datasource uid a dashboard refers to (panels, targets, variables, annotations, Explore
  links) is provisioned;
- dashboards: unique uids, unique panel ids, the four template variables, drill-down links to
  Loki and Tempo; the committed JSON is what the generator produces.
"""

from __future__ import annotations

import importlib.util
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.assets.dashboard_queries import iter_panels, load_dashboards, referenced_datasource_uids

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "grafana" / "provisioning"
EXPECTED_UIDS = {"victoriametrics": "prometheus", "loki": "loki", "tempo": "tempo", "alertmanager": "alertmanager"}


def _datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())
    assert doc["apiVersion"] == 1
    return {ds["uid"]: ds for ds in doc["datasources"]}


def test_datasources_have_fixed_uids_and_types() -> None:
    datasources = _datasources()
    assert {uid: ds["type"] for uid, ds in datasources.items()} == EXPECTED_UIDS
    assert datasources["victoriametrics"]["isDefault"] is True
    assert sum(1 for ds in datasources.values() if ds.get("isDefault")) == 1


def test_datasource_cross_links_point_at_provisioned_uids() -> None:
    datasources = _datasources()
    tempo = datasources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "victoriametrics"
    assert tempo["tracesToMetrics"]["queries"], "tracesToMetrics needs queries"
    linked = [tempo["serviceMap"]["datasourceUid"], tempo["lokiSearch"]["datasourceUid"]]
    linked += [d["datasourceUid"] for d in datasources["loki"]["jsonData"]["derivedFields"]]
    linked += [d["datasourceUid"] for d in datasources["victoriametrics"]["jsonData"]["exemplarTraceIdDestinations"]]
    assert set(linked) <= set(datasources)


def test_dashboard_provider() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/llm-hub"


def test_alerting_provisioning_points_at_alertmanager() -> None:
    contact = yaml.safe_load((PROVISIONING / "alerting" / "contact-points.yaml").read_text())
    policies = yaml.safe_load((PROVISIONING / "alerting" / "notification-policies.yaml").read_text())
    (point,) = contact["contactPoints"]
    assert point["receivers"][0]["type"] == "prometheus-alertmanager"
    assert point["receivers"][0]["settings"]["url"] == _datasources()["alertmanager"]["url"]
    assert policies["policies"][0]["receiver"] == point["name"]


def _explore_link_datasources(model: dict[str, Any]) -> list[str]:
    uids = []
    for panel in iter_panels(model):
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            query = urllib.parse.urlparse(link["url"]).query
            left = urllib.parse.parse_qs(query)["left"][0]
            # ${...} placeholders are JSON-safe inside strings
            uids.append(json.loads(left)["datasource"])
    return uids


def test_dashboards_only_reference_provisioned_datasources() -> None:
    provisioned = set(_datasources())
    for name, model in load_dashboards().items():
        used = set(referenced_datasource_uids(model)) | set(_explore_link_datasources(model))
        assert used, name
        assert used <= provisioned, f"{name}: unknown datasource uids {used - provisioned}"


def test_dashboards_structure() -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == {
        "executive-summary",
        "performance",
        "cost",
        "security",
        "governance",
        "anomalies-forecasts",
        "correlations-incidents",
    }
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids)) and all(u.startswith("llm-hub-") for u in uids)
    for name, model in dashboards.items():
        ids = [p["id"] for p in iter_panels(model)]
        assert len(ids) == len(set(ids)) and 0 not in ids, name
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert list(variables) == ["tenant", "environment", "model", "team"], name
        assert all(v["includeAll"] and v["allValue"] == ".*" for v in variables.values())
        for panel in iter_panels(model):
            if panel["type"] != "row":
                assert panel["title"] and panel.get("targets"), f"{name}: panel without query"
                for target in panel["targets"]:
                    assert target["refId"], f"{name}/{panel['title']}: target without refId"


def test_dashboards_drill_down_to_loki_and_tempo() -> None:
    for name, model in load_dashboards().items():
        uids = _explore_link_datasources(model)
        assert "loki" in uids and "tempo" in uids, f"{name}: drill-down links {uids}"


def test_cost_dashboard_shows_budget_and_forecast_band() -> None:
    text = json.dumps(load_dashboards()["cost"])
    for needle in (
        "budget_limit_usd",
        "budget_exhaustion_timestamp_seconds",
        "yhat_lower",
        "yhat_upper",
        "fillBelowTo",
    ):
        assert needle in text, needle


def test_panel_queries_only_use_contract_metrics() -> None:
    contract = re.compile(
        r"^(gen_ai_client_operation_duration_seconds|gen_ai_client_token_usage|"
        r"gen_ai_server_time_to_first_token_seconds|hub_request_duration_seconds)_(bucket|sum|count)$|"
        r"^(llm_cost_usd_total|llm_security_threats_total|llm_governance_violations_total|"
        r"llm_policy_evaluations_total|llm_registry_asset_info|anomaly_score|yhat|yhat_lower|yhat_upper|"
        r"budget_exhaustion_timestamp_seconds|budget_limit_usd|budget_spend_usd|hub_correlations_total|"
        r"hub_incidents_open|hub_ingest_events_total|hub_ingest_rejected_total|hub_queue_depth|ALERTS)$"
    )
    words = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
    for name, model in load_dashboards().items():
        for panel in iter_panels(model):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("uid") != "victoriametrics":
                    continue
                for metric in words.findall(target["expr"]):
                    assert contract.match(metric), f"{name}/{panel['title']}: {metric} is not in the contract"


@pytest.mark.skipif(
    importlib.util.find_spec("grafana_foundation_sdk") is None,
    reason="grafana-foundation-sdk not installed (pip install 'grafana-foundation-sdk==1769699998!10.1.0')",
)
def test_committed_dashboards_match_generator() -> None:
    from grafana.generator import build_all, render

    for stem, model in build_all().items():
        path = REPO / "grafana" / "dashboards" / f"{stem}.json"
        assert path.read_text() == render(model), f"{path} is stale: run scripts/gen_dashboards.py"
