"""Fixtures for the alerting tests: an embedded store, rows appended at chosen times, a fake Alertmanager."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from exporters.alertmanager.client import Alert
from hubcore.storage.embedded import EmbeddedStore

T0 = float(int(time.time()) - 3600)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data", wal_fsync=False, flush_interval=0.01)
    s.start()
    yield s
    s.shutdown()


def add_events(store: EmbeddedStore, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append ``events`` rows: ``ts`` in seconds; ``payload`` as a dict; defaults for the rest."""
    cols: dict[str, list[Any]] = {}
    rows = list(rows)
    names = {"tenant_id", "ts", "event_type", "name", "value", "status", "model", "team", "payload", "event_id"}
    for k in names:
        cols[k] = []
    for i, r in enumerate(rows):
        cols["tenant_id"].append(r.get("tenant_id", "acme"))
        cols["ts"].append(int(r["ts"] * 1e6))
        cols["event_type"].append(r.get("event_type", "telemetry"))
        cols["name"].append(r.get("name", "gen_ai.client.operation.duration"))
        cols["value"].append(r.get("value"))
        cols["status"].append(r.get("status", "ok"))
        cols["model"].append(r.get("model", "gpt-4o"))
        cols["team"].append(r.get("team", "search"))
        cols["payload"].append(json.dumps(r.get("payload", {})))
        cols["event_id"].append(f"e{i}-{r['ts']}")
    store.append("events", cols)
    assert store.flush(10.0)


def latency(ts: float, value: float, **kw: Any) -> dict[str, Any]:
    return {"ts": ts, "value": value, **kw}


def injection(ts: float, ip: str, tenant: str = "acme") -> dict[str, Any]:
    return {"ts": ts, "tenant_id": tenant, "event_type": "security", "name": "prompt_injection", "value": 0.9,
            "status": "blocked", "model": None, "payload": {"source_ip": ip, "threat_level": "high"}}  # fmt: skip


class FakeAlertmanager:
    """Records what the service asks the client to do."""

    def __init__(self) -> None:
        self.fired: list[Alert] = []
        self.resolved: list[Alert] = []
        self.withdrawn: list[Alert] = []
        self.started = self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stopped += 1

    def fire(self, alerts: Iterable[Alert]) -> None:
        self.fired.extend(alerts)

    def resolve(self, labels: Iterable[Mapping[str, str] | Alert]) -> None:
        self.resolved.extend(a for a in labels if isinstance(a, Alert))

    def withdraw(self, labels: Iterable[Mapping[str, str] | Alert]) -> None:
        self.withdrawn.extend(a for a in labels if isinstance(a, Alert))
