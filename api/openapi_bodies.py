"""The request bodies that routers read by hand, published in the OpenAPI document.

Most POST/PUT routes decode their JSON body themselves (their own error codes and messages, fields named
in 422s), so FastAPI cannot see a body parameter. Each such route passes ``openapi_extra=request_body(...)``:
a ``requestBody`` that points at a named schema of :data:`COMPONENTS`, with an example, and
:func:`install` adds those schemas to ``/openapi.json``. Runtime validation stays the handlers'; these
schemas describe what they accept (built from the parsers' own constants and msgspec structs, and
checked against the handlers by ``tests/api/test_openapi_bodies.py``). Rules across fields that the
schemas cannot say (``last`` or ``start``, not both) are in their descriptions.

    >>> request_body("AnomalyFeedback")["requestBody"]["content"]["application/json"]["schema"]
    {'$ref': '#/components/schemas/AnomalyFeedback'}
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import FastAPI

from analytics.service.budgets import MAX_CUSTOM_DAYS, PERIODS
from hubcore.model.events import CURRENT_SCHEMA_VERSION
from hubcore.model.schema import event_json_schema
from hubcore.query.composite import COMPOSITES
from hubcore.query.model import (
    BUCKETS,
    FUNCTIONS,
    MAX_IN_VALUES,
    MAX_LIMIT,
    MAX_OFFSET,
    OPERATORS,
)
from processors.alerting.rules import AGGREGATIONS, DIMENSIONS, EVENT_TYPES, OPS, SEVERITIES
from processors.alerting.webhook import WebhookPayload

REF = "#/components/schemas/{name}"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(name=name)}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING = {"type": "string"}
_NAMED = {"type": "string", "minLength": 1}
_TIME = {"anyOf": [{"type": "string"}, {"type": "number"}],
         "description": "ISO-8601 (naive = UTC) or epoch seconds, between 1970 and 2100"}  # fmt: skip
_DURATION = {"anyOf": [{"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([mM][sS]|[smhdwySMHDWY])?\s*$"},
                       {"type": "number", "minimum": 0}],
             "description": "a duration such as 30s, 5m, 1h, 7d, or a number of seconds"}  # fmt: skip


# -- native events --------------------------------------------------------------------------------------
def _event_components() -> dict[str, Schema]:
    """The native event's JSON Schema (``GET /api/v1/schemas/latest``) as components: ``NativeEvent`` and its
    payload definitions, their ``#/$defs/`` references rewritten to ``#/components/schemas/``."""
    schema = event_json_schema(CURRENT_SCHEMA_VERSION)
    text = msgspec.json.encode(schema).decode().replace('"#/$defs/', '"#/components/schemas/')
    moved = msgspec.json.decode(text)
    defs = moved.pop("$defs", {})
    for key in ("$schema", "$id"):  # an $id would rebase the references inside it
        moved.pop(key, None)
    return {"NativeEvent": moved, **defs}


EVENT_EXAMPLE = {
    "event_id": "5f0c7b8e-2d4a-4c1e-9a57-0d3f4b2a9e11", "timestamp": "2026-01-15T10:00:00Z",
    "source_module": "llm-costops", "event_type": "cost", "schema_version": "1.0.0",
    "payload": {"model": "gpt-4o", "cost_type": "api", "amount": 0.0042, "currency": "USD"},
    "tags": {"team": "search"},
}  # fmt: skip
_EVENTS_BATCH: Schema = {
    "description": "1 to receivers.native.max_batch_events (1000 by default) native events: a JSON array, or "
                   '{"events": [...]}. Each event is checked on its own (GET /api/v1/schemas/latest): a bad one is '
                   "listed in the answer's rejected, the others are stored.",
    "anyOf": [
        {"type": "array", "minItems": 1, "items": _ref("NativeEvent")},
        {"type": "object", "required": ["events"],
         "properties": {"events": {"type": "array", "minItems": 1, "items": _ref("NativeEvent")}}},
    ],
}  # fmt: skip


# -- the unified query ----------------------------------------------------------------------------------
def _query(max_limit: int, what: str) -> Schema:
    scalar = {"anyOf": [{"type": "string", "maxLength": 1000}, {"type": "number"}]}
    return {
        "type": "object", "additionalProperties": False, "description": what,
        "properties": {
            "time_range": {
                "type": ["object", "null"], "additionalProperties": False,
                "description": 'either {"last": "24h"} or {"start", "end"} (end defaults to now), not both; '
                               "at most 400 days; null: the last 24 h",
                "properties": {"start": _TIME, "end": _nullable(_TIME),
                               "last": {"type": "string", "pattern": r"^\d{1,6}(m|h|d|w)$"}},
                "anyOf": [{"required": ["last"]}, {"required": ["start"]}],
            },
            "filters": {
                "type": ["array", "null"], "maxItems": 50,
                "items": {
                    "type": "object", "required": ["field", "value"],
                    "description": "field: an event column, tags.<key> or payload.<path>; numeric columns take "
                                   "eq/ne/in/not_in/gt/gte/lt/lte, string columns eq/ne/in/not_in/contains/regex",
                    "properties": {
                        "field": _NAMED,
                        "operator": {"enum": list(OPERATORS), "default": "eq"},
                        "op": {"enum": list(OPERATORS), "description": "an alias of operator"},
                        "value": {"anyOf": [scalar, {"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES,
                                                     "items": scalar}],
                                  "description": "a list for in/not_in, a number for gt/gte/lt/lte, a non-empty "
                                                 "string for contains/regex (RE2 syntax)"},
                    },
                },
            },
            "metric": {
                "description": "what to aggregate; a string is a composite metric or a metric name",
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": 256},
                    {"type": "null"},
                    {"type": "object", "additionalProperties": False,
                     "description": "composite alone, or event_type/name/field (a numeric column or payload.<path>)",
                     "properties": {"event_type": {"type": "string", "minLength": 1, "maxLength": 256},
                                    "name": {"type": "string", "minLength": 1, "maxLength": 256},
                                    "field": _NAMED, "composite": {"enum": list(COMPOSITES)}}},
                ],
            },
            "aggregation": {
                "type": ["object", "null"], "additionalProperties": False,
                "properties": {
                    "time_bucket": {"enum": [*BUCKETS, None], "description": "at most 10,000 buckets in the range"},
                    "functions": {"type": ["array", "null"], "uniqueItems": True, "items": {"enum": list(FUNCTIONS)},
                                  "description": 'default ["count"]; omitted for a composite metric'},
                    "group_by": {"type": ["array", "null"], "maxItems": 8, "uniqueItems": True, "items": _NAMED},
                },
            },
            "sort": {
                "type": ["array", "null"],
                "items": {"type": "object", "required": ["field"],
                          "properties": {"field": {"type": "string", "description": "an output column"},
                                         "order": {"type": "string", "pattern": "^(?:[aA][sS][cC]|[dD][eE][sS][cC])$",
                                                   "default": "asc"}}},
            },
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": max_limit},
            "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            "cursor": {"type": ["string", "null"], "description": "metadata.next_cursor of the previous page"},
            "tenant": {"type": ["string", "null"], "description": '"*": every tenant (platform admins)'},
            "timeout_ms": {"type": ["integer", "null"], "minimum": 1, "maximum": 60_000},
        },
    }  # fmt: skip


QUERY_EXAMPLE = {
    "time_range": {"last": "24h"},
    "metric": {"event_type": "telemetry", "name": "gen_ai.client.operation.duration"},
    "filters": [{"field": "tags.team", "operator": "eq", "value": "search"}],
    "aggregation": {"time_bucket": "1h", "functions": ["p95"], "group_by": ["model"]},
    "sort": [{"field": "bucket", "order": "asc"}],
    "limit": 100,
}
_BATCH: Schema = {
    "type": "object", "additionalProperties": False, "required": ["queries"],
    "properties": {"queries": {"type": "array", "minItems": 1, "maxItems": 50, "items": _ref("Query"),
                               "description": "each runs as POST /api/v1/query would; a failing one is its own entry"},
                   "tenant": {"type": ["string", "null"], "description": "the batch's tenant (not set per query)"}},
}  # fmt: skip


# -- analytics -----------------------------------------------------------------------------------------
_FEEDBACK: Schema = {
    "type": "object", "additionalProperties": False, "required": ["label"],
    "properties": {"label": {"const": "false_positive", "description": "the only feedback taught"},
                   "detector": {"type": ["string", "null"], "description": "the detector that was wrong"},
                   "scope": {"enum": ["team", "query", None], "description":
                             "whose state learns: team (the series' team's; the default when it has one), "
                             "query (every series of the query; teams:all only) or null"}},
}  # fmt: skip


def _transform(kind: str, fields: Schema, required: list[str], what: str) -> Schema:
    return {"type": "object", "additionalProperties": False, "required": ["type", *required], "description": what,
            "properties": {"type": {"const": kind}, **fields}}  # fmt: skip


_MODEL_OR_ALL = {"type": ["string", "null"], "minLength": 1, "description": "null or absent: every model"}
_WHATIF: Schema = {
    "type": "object", "additionalProperties": False, "required": ["scenario"],
    "properties": {
        "scenario": {"type": "array", "minItems": 1, "items": {"oneOf": [
            _transform("scale_traffic", {"factor": {"type": "number", "minimum": 0}, "model": _MODEL_OR_ALL}, ["factor"],
                       "multiply a model's (or every model's) traffic by factor"),
            _transform("price_change", {"percent": {"type": "number", "minimum": -100}, "model": _MODEL_OR_ALL}, ["percent"],
                       "change a model's (or every model's) price by percent"),
            _transform("move_traffic", {"source": _NAMED, "target": _NAMED,
                                        "share": {"type": "number", "minimum": 0, "maximum": 1}},
                       ["source", "target", "share"], "move share (0..1) of source's traffic to target"),
            _transform("add_instances", {"model": _NAMED, "count": {"type": "integer"}}, ["model", "count"],
                       "add count instances (negative removes) to a model's fleet"),
        ]}},
        "horizon": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}], "default": "7d",
                    "description": "a duration (7d) or a number of steps"},
        "history": {**_DURATION, "default": "14d"},
        "step": {"enum": list(BUCKETS), "default": "1h", "description": "the forecast step"},
        "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100, "default": 95},
        "prices": {"type": ["object", "null"], "additionalProperties": {"type": "number", "minimum": 0},
                   "description": "USD per request by model; default: the history's cost / requests"},
        "fleet": {"type": ["object", "null"], "description": "serving capacity by model",
                  "additionalProperties": {"type": "object", "required": ["instances", "service_rate"],
                                           "properties": {"instances": {"type": "integer", "minimum": 1},
                                                          "service_rate": {"type": "number", "exclusiveMinimum": 0}}}},
        "include_series": {"type": "boolean", "default": False, "description": "add the per-step series"},
    },
}  # fmt: skip
_LABEL = {"type": ["string", "null"], "minLength": 1, "maxLength": 200}
_BUDGET: Schema = {
    "type": "object", "additionalProperties": False, "required": ["amount"],
    "description": f"a custom period needs start and end (at most {MAX_CUSTOM_DAYS} days apart); the other "
                   "periods take neither",
    "properties": {
        "amount": {"type": "number", "exclusiveMinimum": 0, "description": "USD per period"},
        "period": {"enum": list(PERIODS), "default": "monthly"},
        "name": _LABEL, "team": _LABEL, "project": _LABEL, "model": _LABEL,
        "start": _nullable(_TIME), "end": _nullable(_TIME),
        "alert_within_days": {"type": "number", "minimum": 0, "maximum": 366, "default": 7},
    },
    "if": {"required": ["period"], "properties": {"period": {"const": "custom"}}},
    "then": {"required": ["start", "end"], "properties": {"start": _TIME, "end": _TIME}},
    "else": {"properties": {"start": {"type": "null"}, "end": {"type": "null"}}},
}  # fmt: skip


# -- alerts ---------------------------------------------------------------------------------------------
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_DIM_FILTER = {
    "type": ["object", "null"], "propertyNames": {"enum": list(DIMENSIONS)},
    "additionalProperties": {"anyOf": [_NAMED, {"type": "array", "minItems": 1, "items": _NAMED}]},
}  # fmt: skip
_STRINGS = {"type": ["object", "null"], "propertyNames": {"pattern": _IDENT}, "additionalProperties": _STRING}
_OP = {"enum": list(OPS), "default": ">"}
_CONDITION: Schema = {"oneOf": [
    {"type": "object", "additionalProperties": False, "required": ["type", "aggregation", "window", "value"],
     "description": "an aggregation of events over a window compared with value, per group (match: only and "
                    "always with aggregation ratio)",
     "properties": {"type": {"const": "threshold"}, "event_type": {"enum": [*EVENT_TYPES, None]},
                    "metric": {"type": ["string", "null"], "minLength": 1}, "filters": _DIM_FILTER,
                    "aggregation": {"enum": list(AGGREGATIONS)}, "match": _DIM_FILTER, "window": _DURATION,
                    "group_by": {"type": "array", "items": {"enum": list(DIMENSIONS)}}, "op": _OP,
                    "value": {"type": "number"}, "min_count": {"type": "integer", "minimum": 1, "default": 1}}},
    {"type": "object", "additionalProperties": False, "required": ["type"],
     "description": "max(series) of the derived series over a window (anomaly_score > 1 is anomalous)",
     "properties": {"type": {"const": "anomaly"}, "series": {**_NAMED, "default": "anomaly_score"},
                    "filters": {"type": ["object", "null"], "propertyNames": {"pattern": _IDENT},
                                "additionalProperties": _STRING},
                    "window": _DURATION, "op": _OP, "value": {"type": "number", "default": 1}}},
    {"type": "object", "additionalProperties": False, "required": ["type", "op", "conditions"],
     "description": "and/or of conditions matched on shared labels (nested at most 3 deep)",
     "properties": {"type": {"const": "composite"}, "op": {"enum": ["and", "or"]},
                    "conditions": {"type": "array", "minItems": 2, "items": _ref("AlertCondition")}}},
]}  # fmt: skip
_RULE: Schema = {
    "type": "object", "additionalProperties": False, "required": ["name", "condition"],
    "description": "see docs/alerting.md",
    "properties": {
        "name": {"type": "string", "pattern": _IDENT, "description": "becomes the alertname"},
        "condition": _ref("AlertCondition"),
        "for": {**_DURATION, "default": 0, "description": "how long the condition holds before firing (0 allowed)"},
        "severity": {"enum": list(SEVERITIES), "default": "warning"},
        "labels": {**_STRINGS, "description": "alertname, severity, tenant_id and escalated are set by the hub"},
        "annotations": _STRINGS,
        "tenant_id": {"description": "ignored: the rule's tenant is the caller's (or ?tenant=)"},
        "enabled": {"description": "kept with the rule"},
    },
}  # fmt: skip
_TRANSITION: Schema = {
    "type": "object", "description": "by: who acted (ignored when the caller signs in: the credential names it)",
    "properties": {"by": {"type": ["string", "null"]}, "comment": {"type": ["string", "null"]}},
}  # fmt: skip


def _struct_components(*structs: type) -> dict[str, Schema]:
    """msgspec structs' JSON Schemas (what ``msgspec.json.decode(..., type=...)`` enforces) as components."""
    _, components = msgspec.json.schema_components(structs, ref_template=REF)
    return components


#: Every published body schema, by component name.
COMPONENTS: dict[str, Schema] = {
    **_event_components(),
    "EventsBatch": _EVENTS_BATCH,
    "Query": _query(MAX_LIMIT, "a unified query (docs/query.md)"),
    "ExportQuery": _query(10**9, "a unified query whose every row is exported (limit: none by default)"),
    "QueryBatch": _BATCH,
    **_struct_components(WebhookPayload),
    "AnomalyFeedback": _FEEDBACK,
    "WhatIf": _WHATIF,
    "Budget": _BUDGET,
    "AlertCondition": _CONDITION,
    "AlertRule": _RULE,
    "AlertTransition": _TRANSITION,
}

NDJSON_EXAMPLE = msgspec.json.encode(EVENT_EXAMPLE).decode() + "\n"


def request_body(
    name: str, *, example: Any = None, required: bool = True, description: str | None = None,
    extra_content: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``openapi_extra`` for a route whose handler reads the JSON body ``name`` (a :data:`COMPONENTS` key)."""
    if name not in COMPONENTS:
        raise KeyError(f"no body schema {name!r}")
    media: dict[str, Any] = {"schema": _ref(name)}
    if example is not None:
        media["example"] = example
    body: dict[str, Any] = {"required": required, "content": {"application/json": media, **(extra_content or {})}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def struct_body(
    struct: type, *, example: Any, required: bool = True, description: str | None = None,
    adjust: Callable[[Schema], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """:func:`request_body` for a handler that decodes its body with ``msgspec.json.decode(body, type=struct)``:
    the struct's own schema, registered under its name. ``adjust`` edits it to add a check the handler makes
    after decoding (so that the schema says what the handler accepts)."""
    components = _struct_components(struct)
    if adjust is not None:
        adjust(components[struct.__name__])
    for name, schema in components.items():
        if COMPONENTS.setdefault(name, schema) != schema:
            raise RuntimeError(f"two different body schemas are named {name!r}")
    return request_body(struct.__name__, example=example, required=required, description=description)


def install(app: FastAPI) -> None:
    """Add :data:`COMPONENTS` to the app's OpenAPI document (once, when it is first built)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        clash = sorted(set(schemas) & set(COMPONENTS))
        if clash:
            raise RuntimeError(f"body schema names clash with FastAPI's components: {clash}")
        schemas.update(copy.deepcopy(COMPONENTS))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
