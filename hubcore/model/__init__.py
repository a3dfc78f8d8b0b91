"""The native event model (schema 1.x) and its JSON Schema."""

from hubcore.model.events import (
    CURRENT_SCHEMA_VERSION,
    EVENT_TYPES,
    PAYLOAD_TYPES,
    SEVERITIES,
    SOURCE_MODULES,
    AnalyticsEvent,
    CostPayload,
    GovernancePayload,
    MetadataPayload,
    PolicyPayload,
    SecurityPayload,
    TelemetryPayload,
)

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "EVENT_TYPES",
    "PAYLOAD_TYPES",
    "SEVERITIES",
    "SOURCE_MODULES",
    "AnalyticsEvent",
    "CostPayload",
    "GovernancePayload",
    "MetadataPayload",
    "PolicyPayload",
    "SecurityPayload",
    "TelemetryPayload",
]
