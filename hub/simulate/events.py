"""Native events (schema 1.0.0): the envelope, one builder per kind of side event, and the JSON encoding.

:mod:`hub.simulate.traffic` builds a request's telemetry and cost events inline (the hot path); the
rarer events — policy evaluations, security findings, governance records, registry announcements and
updates — are built here, and scenarios reuse them (e.g. :func:`security_event`).

    >>> import numpy as np
    >>> ids = uuid4_strings(2, np.random.default_rng(3))
    >>> len(ids[0]), ids[0][14]
    (36, '4')
    >>> ev = security_event(ids[0], "2026-01-01T00:00:00.000Z", "pii_leak", "high", 0.9, None, None, None,
    ...                     "10.0.0.1", None, ids[1], "production", None)
    >>> ev["severity"], ev["payload"]["action_taken"], ev["correlation_id"] == ids[1]
    ('error', 'redacted', True)
    >>> encode_lines([{"a": 1}, {"b": 2}])
    b'{"a":1}\\n{"b":2}\\n'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from hub.simulate import catalog as C

if TYPE_CHECKING:
    from hub.simulate.state import GeneratorState

SCHEMA_VERSION = "1.0.0"
DURATION_METRIC = "gen_ai.client.operation.duration"

Event = dict[str, Any]
_encoder = msgspec.json.Encoder()

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def uuid4_strings(k: int, rng: np.random.Generator) -> list[str]:
    """``k`` random (version 4) UUID strings from ``rng`` — reproducible with a seed, vectorised."""
    if k <= 0:
        return []
    b = rng.integers(0, 256, size=(k, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    nib = np.empty((k, 32), dtype=np.uint8)
    nib[:, 0::2] = b >> 4
    nib[:, 1::2] = b & 0x0F
    chars = np.full((k, 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_POS] = _HEX[nib]
    s = chars.tobytes().decode("ascii")
    return [s[i : i + 36] for i in range(0, 36 * k, 36)]


def envelope(
    event_id: str, ts: str, module: str, etype: str, payload: dict[str, Any], *, corr: str | None = None,
    severity: str = "info", environment: str = "production", tags: dict[str, str] | None = None,
) -> Event:  # fmt: skip
    """The common fields around ``payload`` (``correlation_id`` and ``tags`` only when given)."""
    ev: Event = {
        "event_id": event_id,
        "timestamp": ts,
        "source_module": module,
        "event_type": etype,
        "schema_version": SCHEMA_VERSION,
        "severity": severity,
        "environment": environment,
        "payload": payload,
    }
    if corr is not None:
        ev["correlation_id"] = corr
    if tags:
        ev["tags"] = tags
    return ev


def _tenant_tags(tenant: str | None) -> dict[str, str] | None:
    return {"tenant_id": tenant} if tenant else None


def _model_payload(m: C.ModelSpec, action: str, version: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """An llm-registry ``metadata`` payload for a model (announced or updated)."""
    attributes = {"family": m.family, "context_window": str(m.context_window),
                  "price_input_per_1k_usd": repr(m.price_in), "price_output_per_1k_usd": repr(m.price_out)}  # fmt: skip
    if extra:
        attributes.update(extra)
    return {"asset_id": m.asset_id, "asset_type": "model", "name": m.name, "action": action, "version": version,
            "provider": m.provider, "owner": "platform-team", "attributes": attributes}  # fmt: skip


def registry_events(state: GeneratorState, rng: np.random.Generator) -> list[Event]:
    """llm-registry announcements of every model, each project's system prompt and two datasets."""
    payloads: list[dict[str, Any]] = [_model_payload(m, "registered", m.version) for m in C.MODELS]
    for p in C.PROJECTS:
        payloads.append({
            "asset_id": f"prompt-{p.name}-system", "asset_type": "prompt", "name": f"{p.name}-system-prompt",
            "action": "registered", "version": "v1", "owner": p.team,
            "attributes": {"project": p.name, "workload": p.workload},
        })  # fmt: skip
    for name, owner in (("support-kb", "support"), ("research-corpus", "research")):
        payloads.append({
            "asset_id": f"dataset-{name}", "asset_type": "dataset", "name": name, "action": "registered",
            "version": "2024.11", "owner": owner, "attributes": {"classification": "internal"},
        })  # fmt: skip
    ids = uuid4_strings(len(payloads), rng)
    ts = state.timestamp_strings(np.array([state.sim_time]))[0]
    return [
        envelope(i, ts, "llm-registry", "metadata", p, tags=_tenant_tags(state.tenant))
        for i, p in zip(ids, payloads, strict=True)
    ]


def model_update_event(event_id: str, ts: str, m: C.ModelSpec, revision: int, tenant: str | None) -> Event:
    """An llm-registry update of model ``m`` to deployment ``revision``."""
    payload = _model_payload(m, "updated", f"{m.version}-r{revision}", {"deployment_revision": str(revision)})
    return envelope(event_id, ts, "llm-registry", "metadata", payload, tags=_tenant_tags(tenant))


def policy_event(
    event_id: str, ts: str, policy: tuple[str, str, tuple[str, ...], str], result: str, evaluation_ms: float,
    project: str, user_id: str, model: str, asset_id: str, corr: str, environment: str, tags: dict[str, str],
) -> Event:  # fmt: skip
    """One llm-policy-engine evaluation of ``policy`` (id, name, rule ids, reason when not passing)."""
    pid, name, rules, why = policy
    payload: dict[str, Any] = {
        "policy_id": pid, "result": result, "evaluation_time": evaluation_ms,
        "evaluation_time_unit": "ms", "policy_name": name, "rule_ids": list(rules),
        "resource": f"project/{project}", "subject": user_id, "model": model, "asset_id": asset_id,
    }  # fmt: skip
    if result != "pass":
        payload["reason"] = why
    return envelope(event_id, ts, "llm-policy-engine", "policy", payload, corr=corr,
                    severity="warning" if result == "fail" else "info", environment=environment, tags=tags)  # fmt: skip


def governance_event(
    event_id: str, ts: str, policy: tuple[str, str, str], action: str, project: str, user_id: str, model: str,
    asset_id: str, corr: str, environment: str, tags: dict[str, str],
) -> Event:  # fmt: skip
    """One llm-governance record under ``policy`` (id, regulation, violation type): an audit, approval,
    exception or violation."""
    gid, regulation, vtype = policy
    payload: dict[str, Any] = {
        "action": action, "policy_id": gid, "compliant": action != "violation",
        "regulation": regulation, "resource": f"project/{project}", "user_id": user_id,
        "asset_id": asset_id, "model": model,
    }  # fmt: skip
    if action == "violation":
        payload["violation_type"] = vtype
        payload["description"] = f"{regulation} {vtype.replace('_', ' ')} in project {project}"
    severity = "error" if action == "violation" else ("warning" if action == "exception" else "info")
    return envelope(event_id, ts, "llm-governance", "governance", payload, corr=corr, severity=severity,
                    environment=environment, tags=tags)  # fmt: skip


def security_event(
    event_id: str, ts: str, threat: str, level: str, confidence: float, model: str | None, asset_id: str | None,
    user_id: str | None, source_ip: str, api_key_id: str | None, corr: str | None, environment: str,
    tags: dict[str, str] | None,
) -> Event:  # fmt: skip
    """One llm-sentinel finding; ``action_taken`` and severity follow from the threat level."""
    if level in ("high", "critical"):
        action = "redacted" if threat == "pii_leak" else "blocked"
    else:
        action = "flagged" if level == "medium" else "allowed"
    indicators = C.THREAT_INDICATORS.get(threat, ("unknown",))
    payload: dict[str, Any] = {
        "threat_type": threat, "threat_level": level, "confidence": round(confidence, 4),
        "action_taken": action, "source_ip": source_ip,
        "indicators": {"pattern": indicators[int(confidence * 1000) % len(indicators)]},
        "description": f"{threat.replace('_', ' ')} ({level}) detected",
    }  # fmt: skip
    for key, val in (("model", model), ("asset_id", asset_id), ("user_id", user_id),
                     ("api_key_id", api_key_id), ("request_id", corr)):  # fmt: skip
        if val is not None:
            payload[key] = val
    severity = {"critical": "critical", "high": "error"}.get(level, "warning")
    return envelope(event_id, ts, "llm-sentinel", "security", payload, corr=corr, severity=severity,
                    environment=environment, tags=tags)  # fmt: skip


def encode_batch(events: Sequence[Event]) -> bytes:
    """The JSON array body of ``POST /api/v1/events``."""
    return _encoder.encode(events)


def encode_lines(events: Sequence[Event]) -> bytes:
    """JSON Lines (one event per line, trailing newline) for ``--dry-run --output``."""
    return _encoder.encode_lines(events)
