"""Dashboards of the LLM Analytics Hub, generated as code.

Built with grafana-foundation-sdk (PyPI ``grafana-foundation-sdk==1769699998!10.1.0``: builders for
the Grafana 10.1 dashboard schema, schemaVersion 36; the JSON loads in Grafana 10.1 and later).
``scripts/gen_dashboards.py`` writes them to ``grafana/dashboards/*.json``::

    from grafana.generator import build_all
    for name, model in build_all().items():
        print(name, model["uid"], len(model["panels"]))
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from .dashboards import DASHBOARDS

__all__ = ["DASHBOARDS", "build_all", "render"]

SDK_TARGET_GRAFANA = "10.1.0"


def _normalise(model: dict[str, Any]) -> dict[str, Any]:
    """Give panels unique ids and targets ref ids; replace ``options: null`` by ``{}``."""
    next_id = 1

    def visit(panels: list[dict[str, Any]]) -> None:
        nonlocal next_id
        for panel in panels:
            panel["id"] = next_id
            next_id += 1
            if panel.get("options") is None and panel.get("type") != "row":
                panel["options"] = {}
            for index, target in enumerate(panel.get("targets") or []):
                target["refId"] = target.get("refId") or chr(ord("A") + index)
            visit(panel.get("panels") or [])

    visit(model.get("panels") or [])
    return model


def build_all() -> dict[str, dict[str, Any]]:
    """file stem -> dashboard JSON model (plain dicts, ready for json.dump)."""
    out: dict[str, dict[str, Any]] = {}
    for stem, factory in DASHBOARDS.items():
        encoded = json.dumps(factory().build(), cls=JSONEncoder)
        out[stem] = _normalise(json.loads(encoded))
    return out


def render(model: dict[str, Any]) -> str:
    """The committed form of a dashboard: stable key order, two-space indent, final newline."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"
