"""docs/runbooks/: one runbook per alert (Prometheus and Loki rules), no orphans, all indexed."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"


def _alert_names() -> set[str]:
    names = set()
    for path in [*(REPO / "rules" / "prometheus").glob("*.yaml"), *(REPO / "rules" / "loki").glob("*.yaml")]:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_one_runbook_per_alert() -> None:
    alerts = _alert_names()
    runbooks = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert alerts == runbooks, f"missing: {sorted(alerts - runbooks)}; orphaned: {sorted(runbooks - alerts)}"


def test_runbooks_are_actionable_and_indexed() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    for name in _alert_names():
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n")
        assert "## Diagnose" in text and "## Mitigate" in text, name
        assert f"[{name}]({name}.md)" in index, f"{name} not in docs/runbooks/README.md"
