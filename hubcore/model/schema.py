"""JSON Schema of the native event, generated from the model (served at ``GET /api/v1/schemas``).

>>> s = event_json_schema("1.0.0")
>>> s["title"], sorted(s["properties"]["event_type"]["enum"])[0]
('AnalyticsEvent 1.0.0', 'cost')
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubcore.model.events import CURRENT_SCHEMA_VERSION, PAYLOAD_TYPES, AnalyticsEvent

#: Every schema version the hub has published, newest last.
PUBLISHED_VERSIONS: tuple[str, ...] = (CURRENT_SCHEMA_VERSION,)


def event_json_schema(version: str = CURRENT_SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for one published version; KeyError if unknown."""
    if version not in PUBLISHED_VERSIONS:
        raise KeyError(version)
    payload_types = list(PAYLOAD_TYPES.values())
    (_envelope, *payloads), components = msgspec.json.schema_components(
        [AnalyticsEvent, *payload_types], ref_template="#/$defs/{name}"
    )
    env = dict(components[AnalyticsEvent.__name__])
    props = dict(env["properties"])
    props["payload"] = {"description": "typed by event_type", "oneOf": payloads}
    env["properties"] = props
    env["allOf"] = [
        {
            "if": {"properties": {"event_type": {"const": etype}}},
            "then": {"properties": {"payload": ref}},
        }
        for etype, ref in zip(PAYLOAD_TYPES, payloads, strict=True)
    ]
    defs = {k: v for k, v in components.items() if k != AnalyticsEvent.__name__}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:llm-analytics-hub:event:{version}",
        **env,
        "title": f"AnalyticsEvent {version}",
        "$defs": defs,
    }
