"""The streaming correlation engine is fed by the ingest pipeline and closes its windows on its own."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub


def test_a_causal_chain_is_correlated_while_events_stream_in(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, processors__correlation={"flush_interval": 0.2}) as hub:
        chain = [
            make_event("security", correlation_id="req-77", payload={"source_ip": "10.9.9.9"}),
            make_event("telemetry", correlation_id="req-77", payload={"status": "error", "error_type": "blocked"}),
            make_event("cost", correlation_id="req-77"),
        ]
        assert httpx.post(f"{hub.api}/api/v1/events", json=chain, headers={"X-Scope-OrgID": "s1"}).status_code == 202
        deadline = time.monotonic() + 20
        found: list[dict[str, object]] = []
        while time.monotonic() < deadline and not found:
            body = httpx.get(f"{hub.api}/api/v1/correlations", params={"type": "causal_chain"},
                             headers={"X-Scope-OrgID": "s1"}).json()  # fmt: skip
            found = [c for c in body["correlations"] if {e["event_id"] for e in chain} <= set(c["event_ids"])]
            time.sleep(0.2)
        assert found, "the chain was not correlated by the streaming engine"
        other = httpx.get(f"{hub.api}/api/v1/correlations", headers={"X-Scope-OrgID": "s2"}).json()
        assert other["correlations"] == []
