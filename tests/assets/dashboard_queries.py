"""Walk the generated dashboards and pull out what the tests check.

for q in prom_queries(model): ...      # every VictoriaMetrics target, with its panel
substitute("rate(x{a=~\"$tenant\"}[$__rate_interval])")  # -> PromQL VictoriaMetrics can run
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"

#: What Grafana would substitute, as a test can: every template variable on "All" (allValue .*),
#: built-in intervals fixed.
SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$tenant": ".*",
    "$environment": ".*",
    "$model": ".*",
    "$team": ".*",
}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool
    datasource_uid: str

    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref_id}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def iter_panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", []) or []


def queries(name: str, model: dict[str, Any]) -> Iterator[Query]:
    for panel in iter_panels(model):
        panel_ds = (panel.get("datasource") or {}).get("uid", "")
        for target in panel.get("targets", []) or []:
            uid = (target.get("datasource") or {}).get("uid", panel_ds)
            yield Query(
                dashboard=name,
                panel=panel.get("title", "?"),
                ref_id=target.get("refId", "?"),
                expr=target.get("expr", ""),
                instant=bool(target.get("instant")) and not target.get("range"),
                datasource_uid=uid,
            )


def substitute(expr: str) -> str:
    # longest names first so $__rate_interval is not eaten by a shorter prefix
    for name in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTIONS[name])
    return expr


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)$")


def label_values_call(query: str) -> tuple[str | None, str]:
    """Split Grafana's ``label_values(selector, label)`` into (selector or None, label)."""
    match = _LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


def referenced_datasource_uids(node: Any) -> Iterator[str]:
    """Every ``datasource.uid`` in a dashboard JSON, plus the Explore links' datasources."""
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            yield ds["uid"]
        elif isinstance(ds, str) and ds and not ds.startswith("$"):
            yield ds
        for value in node.values():
            yield from referenced_datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from referenced_datasource_uids(value)
