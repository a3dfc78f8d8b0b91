"""Valid native events of each type for tests, with overrides.

ev = make_event("cost", payload={"amount": 2.0})
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_PAYLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "telemetry": (
        "llm-observatory",
        {
            "metric_name": "gen_ai.client.operation.duration",
            "value": 850.0,
            "unit": "ms",
            "model": "gpt-4o",
            "provider": "openai",
            "operation": "chat",
            "input_tokens": 120,
            "output_tokens": 40,
            "dimensions": {"endpoint": "/v1/chat"},
        },
    ),
    "security": (
        "llm-sentinel",
        {
            "threat_type": "prompt_injection",
            "threat_level": "high",
            "confidence": 0.93,
            "action_taken": "blocked",
            "source_ip": "10.1.2.3",
            "user_id": "u-7",
        },
    ),
    "cost": ("llm-costops", {"cost_type": "token", "amount": 0.0123, "currency": "USD", "model": "gpt-4o"}),
    "governance": (
        "llm-governance",
        {"action": "violation", "policy_id": "pii-retention", "compliant": False, "regulation": "GDPR"},
    ),
    "metadata": (
        "llm-registry",
        {
            "asset_id": "asset-gpt4o",
            "asset_type": "model",
            "name": "gpt-4o",
            "version": "2024-08-06",
            "provider": "openai",
            "owner": "platform",
        },
    ),
    "policy": ("llm-policy-engine", {"policy_id": "rate-limit", "result": "pass", "evaluation_time": 1.5}),
}

EVENT_TYPES = tuple(_PAYLOADS)


def now_iso(delta_seconds: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_seconds)).isoformat().replace("+00:00", "Z")


def make_event(etype: str = "telemetry", /, *, payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    source, base = _PAYLOADS[etype]
    ev: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": now_iso(),
        "source_module": source,
        "event_type": etype,
        "schema_version": "1.0.0",
        "severity": "info",
        "environment": "production",
        "tags": {"team": "search", "project": "assistant"},
        "payload": {**copy.deepcopy(base), **(payload or {})},
    }
    ev.update(fields)
    return ev


def one_of_each(**fields: Any) -> list[dict[str, Any]]:
    return [make_event(t, **fields) for t in EVENT_TYPES]
