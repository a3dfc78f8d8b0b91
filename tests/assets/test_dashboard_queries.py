"""Every PromQL query of every dashboard panel, template variable and recording rule runs against a
real VictoriaMetrics loaded with synthetic series that follow the metric contract, and returns data.

Grafana is not installable here, so this is how the dashboards are exercised: template variables
are set to "All" (``.*``), ``$__rate_interval`` to 5m and ``$__range`` to 1h, as Grafana would.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.assets.dashboard_queries import (
    label_values_call,
    load_dashboards,
    queries,
    substitute,
)
from tests.assets.synthetic import load_into
from tests.helpers.procs import VMHandle, run_victoriametrics

pytestmark = pytest.mark.real_backend

REPO = Path(__file__).resolve().parents[2]
MINUTES = 180


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _query(vm: VMHandle, expr: str, end_s: int, instant: bool) -> dict[str, Any]:
    if instant:
        params = {"query": expr, "time": str(end_s)}
        path = "/api/v1/query"
    else:
        params = {"query": expr, "start": str(end_s - 3600), "end": str(end_s), "step": "60"}
        path = "/api/v1/query_range"
    try:
        return _get(f"{vm.url}{path}?{urllib.parse.urlencode(params)}")
    except urllib.error.HTTPError as err:
        return {"status": "error", "error": err.read().decode(errors="replace")[:500]}


def _has_data(answer: dict[str, Any]) -> bool:
    if answer.get("status") != "success":
        return False
    for series in answer["data"]["result"]:
        points = series.get("values") or [series.get("value")]
        if any(p and not math.isnan(float(p[1])) for p in points):
            return True
    return False


@pytest.fixture(scope="module")
def loaded_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VMHandle, int]]:
    end_ms = (int(time.time()) // 60) * 60 * 1000 - 60_000
    with run_victoriametrics(tmp_path_factory.mktemp("vm")) as vm:
        load_into(vm.url, end_ms, MINUTES)
        vm.flush()
        yield vm, end_ms // 1000


def _vm_queries() -> list[Any]:
    out = []
    for name, model in load_dashboards().items():
        out.extend(q for q in queries(name, model) if q.datasource_uid == "victoriametrics")
    return out


def test_dashboards_have_queries() -> None:
    assert len(load_dashboards()) == 7
    assert len(_vm_queries()) > 50


def test_every_panel_query_returns_data(loaded_vm: tuple[VMHandle, int]) -> None:
    vm, end_s = loaded_vm
    # the check can fail: a series outside the contract has no data
    assert not _has_data(_query(vm, 'llm_not_in_contract_total{tenant_id=~".*"}', end_s, instant=True))
    empty: list[str] = []
    for q in _vm_queries():
        answer = _query(vm, substitute(q.expr), end_s, q.instant)
        if not _has_data(answer):
            empty.append(f"{q.where()}: {substitute(q.expr)}\n    -> {str(answer)[:300]}")
    assert not empty, f"{len(empty)} panel queries returned no data:\n" + "\n".join(empty)


def test_template_variables_return_values(loaded_vm: tuple[VMHandle, int]) -> None:
    vm, end_s = loaded_vm
    problems: list[str] = []
    for name, model in load_dashboards().items():
        names = [v["name"] for v in model["templating"]["list"]]
        assert names == ["tenant", "environment", "model", "team"], f"{name}: variables {names}"
        for variable in model["templating"]["list"]:
            selector, label = label_values_call(variable["query"]["query"])
            params: dict[str, str] = {"start": str(end_s - 3600), "end": str(end_s)}
            if selector:
                params["match[]"] = substitute(selector)
            answer = _get(f"{vm.url}/api/v1/label/{label}/values?{urllib.parse.urlencode(params)}")
            if not answer.get("data"):
                problems.append(f"{name} ${variable['name']}: {variable['query']['query']} -> {answer}")
    assert not problems, "\n".join(problems)


def test_recording_rules_return_data(loaded_vm: tuple[VMHandle, int]) -> None:
    """The recording rules' expressions also run on VictoriaMetrics and produce series."""
    vm, end_s = loaded_vm
    doc = yaml.safe_load((REPO / "rules/prometheus/recording.yaml").read_text())
    empty = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            # 1d/3d windows reach before the synthetic data starts; VictoriaMetrics still answers
            answer = _query(vm, rule["expr"], end_s, instant=True)
            if not _has_data(answer):
                empty.append(f"{rule['record']}: {str(answer)[:300]}")
    assert not empty, "recording rules without data:\n" + "\n".join(empty)
