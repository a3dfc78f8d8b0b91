"""The native event (``AnalyticsEvent``, schema 1.x) sent by the platform's six modules.

The envelope is common to every event; ``payload`` is typed by ``event_type``. Decoding is two-step so
that one bad payload never hides the envelope's fields from the error message::

    >>> import msgspec
    >>> ev = msgspec.json.decode(b'''{"event_id": "6f1c2b4e-7d0a-4c55-9a43-1f7a2e9d1b11",
    ...   "timestamp": "2026-01-01T00:00:00Z", "source_module": "llm-costops",
    ...   "event_type": "cost", "schema_version": "1.0.0",
    ...   "payload": {"model": "gpt-4o", "cost_type": "token", "amount": 0.02}}''', type=AnalyticsEvent)
    >>> msgspec.json.decode(ev.payload, type=PAYLOAD_TYPES[ev.event_type]).amount
    0.02

Minor versions add optional fields only; an unknown major version is rejected (see
``processors/validate``). Structs ignore unknown fields so newer minor versions decode cleanly.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

CURRENT_SCHEMA_VERSION: Final = "1.0.0"
SUPPORTED_MAJOR_VERSIONS: Final = frozenset({1})

SOURCE_MODULES: Final = (
    "llm-observatory",
    "llm-sentinel",
    "llm-costops",
    "llm-governance",
    "llm-registry",
    "llm-policy-engine",
)
EVENT_TYPES: Final = ("telemetry", "security", "cost", "governance", "metadata", "policy")
SEVERITIES: Final = ("debug", "info", "warning", "error", "critical")

Severity = Literal["debug", "info", "warning", "error", "critical"]
EventType = Literal["telemetry", "security", "cost", "governance", "metadata", "policy"]
ThreatLevel = Literal["low", "medium", "high", "critical"]

Str256 = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Str4k = Annotated[str, msgspec.Meta(max_length=4096)]
#: A free-form string map (tags, dimensions...): at most 64 entries, keys up to 256 and values up to 4096 chars.
Labels = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=256)], Annotated[str, msgspec.Meta(max_length=4096)]],
    msgspec.Meta(max_length=64),
]
#: A token count. 2**53 is far above any real request, exact as a float, and leaves the sum of two counts
#: (``total_tokens``) and sums over many events far inside BIGINT: a larger value is refused per event.
MAX_TOKENS: Final = 2**53
TokenCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
SchemaVersion = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")]


class AnalyticsEvent(msgspec.Struct, frozen=True):
    """The envelope. ``payload`` stays raw JSON until its type is known from ``event_type``."""

    event_id: Str256
    timestamp: Str256
    source_module: Str256
    event_type: EventType
    payload: msgspec.Raw
    schema_version: SchemaVersion = CURRENT_SCHEMA_VERSION
    correlation_id: Str256 | None = None
    severity: Severity = "info"
    environment: Annotated[str, msgspec.Meta(max_length=64)] = "production"
    tags: Labels = {}


class TelemetryPayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """One measurement from llm-observatory (latency, tokens, errors, throughput...).

    ``unit`` is converted on ingest: durations to milliseconds, sizes to bytes, rates to per-second.
    ``dimensions`` are free low-cardinality labels (model, provider, operation, endpoint...).
    GenAI metric names (``gen_ai.client.operation.duration`` ...) are recognised.
    """

    metric_name: Str256
    value: float
    unit: Annotated[str, msgspec.Meta(max_length=32)] = ""
    dimensions: Labels = {}
    model: Str256 | None = None
    provider: Str256 | None = None
    operation: Str256 | None = None
    request_id: Str256 | None = None
    asset_id: Str256 | None = None
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    status: Literal["ok", "error"] = "ok"
    error_type: Str256 | None = None


class SecurityPayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """A finding from llm-sentinel: prompt injection, PII leak, jailbreak..."""

    threat_type: Str256
    threat_level: ThreatLevel
    confidence: Probability = 1.0
    action_taken: Literal["blocked", "flagged", "redacted", "allowed"] = "flagged"
    model: Str256 | None = None
    asset_id: Str256 | None = None
    user_id: Str256 | None = None
    source_ip: Str256 | None = None
    api_key_id: Str256 | None = None
    request_id: Str256 | None = None
    indicators: Labels = {}
    description: Str4k = ""


class CostPayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """A cost record from llm-costops. ``amount`` is in ``currency`` and converted to USD on ingest; the
    stored event then keeps what was sent in ``original_amount`` / ``original_currency`` and the rate used in
    ``exchange_rate`` (set by the hub: a conversion is not undone by a later rate, so the sent figure stays)."""

    cost_type: Literal["token", "api", "compute", "storage"]
    amount: float
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] = "USD"
    model: Str256 | None = None
    provider: Str256 | None = None
    asset_id: Str256 | None = None
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    project: Str256 | None = None
    team: Str256 | None = None
    request_id: Str256 | None = None
    original_amount: float | None = None
    original_currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] | None = None
    exchange_rate: float | None = None


class GovernancePayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """An audit event or policy violation from llm-governance."""

    action: Literal["violation", "audit", "approval", "exception"]
    policy_id: Str256
    compliant: bool = True
    violation_type: Str256 | None = None
    regulation: Str256 | None = None
    resource: Str256 | None = None
    user_id: Str256 | None = None
    asset_id: Str256 | None = None
    model: Str256 | None = None
    description: Str4k = ""


class MetadataPayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """An asset record from llm-registry (model, prompt, dataset...); used to enrich later events."""

    asset_id: Str256
    asset_type: Literal["model", "prompt", "dataset", "adapter", "pipeline"]
    name: Str256
    action: Literal["registered", "updated", "deprecated", "deleted"] = "registered"
    version: Annotated[str, msgspec.Meta(max_length=64)] = ""
    provider: Str256 | None = None
    owner: Str256 | None = None
    attributes: Labels = {}


class PolicyPayload(msgspec.Struct, frozen=True, omit_defaults=True):
    """One evaluation by llm-policy-engine."""

    policy_id: Str256
    result: Literal["pass", "fail", "warn"]
    evaluation_time: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    evaluation_time_unit: Annotated[str, msgspec.Meta(max_length=8)] = "ms"
    policy_name: Str256 | None = None
    rule_ids: Annotated[list[str], msgspec.Meta(max_length=64)] = []
    resource: Str256 | None = None
    subject: Str256 | None = None
    model: Str256 | None = None
    asset_id: Str256 | None = None
    reason: Str4k = ""


Payload = TelemetryPayload | SecurityPayload | CostPayload | GovernancePayload | MetadataPayload | PolicyPayload

PAYLOAD_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "telemetry": TelemetryPayload,
    "security": SecurityPayload,
    "cost": CostPayload,
    "governance": GovernancePayload,
    "metadata": MetadataPayload,
    "policy": PolicyPayload,
}
