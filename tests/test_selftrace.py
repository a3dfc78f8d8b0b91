"""The hub traces its own work into its store (tenant ``_hub``) when no OTLP endpoint is set."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub


def test_ingest_batches_are_traced(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")] * 1).status_code == 202
        hub.service.tracer_provider.force_flush()
        deadline = time.monotonic() + 10
        rows: list[tuple[object, ...]] = []
        while time.monotonic() < deadline and not rows:
            rows = hub.sql("SELECT name, attributes FROM spans WHERE tenant_id = '_hub'")
            time.sleep(0.1)
        assert rows and rows[0][0] == "ingest native events"
        assert '"hub.accepted": 1' in str(rows[0][1])
