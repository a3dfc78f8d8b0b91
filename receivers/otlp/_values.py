"""OTLP values to plain Python: ``AnyValue``/``KeyValue`` lists, indexed GenAI attributes, resources.

Shared by the three signal translators in :mod:`receivers.otlp.translate`. Everything here runs per data
point, log record or span, so it stays small: one dict per attribute list, one JSON encode, a set test
before any per-key look-up.

    >>> from opentelemetry.proto.common.v1.common_pb2 import KeyValue, AnyValue
    >>> attrs = attributes_dict([KeyValue(key="gen_ai.system", value=AnyValue(string_value="openai"))])
    >>> attrs, indexed(attrs, NO_INDEXED)[1]
    ({'gen_ai.system': 'openai'}, 'openai')
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from hubcore.tenants import is_tenant

_json_encode = msgspec.json.Encoder().encode

#: Attribute keys that fill indexed columns, in column order; a second key is the older/fallback name.
INDEXED_ATTRIBUTES: tuple[tuple[str, str | None], ...] = (
    ("gen_ai.request.model", "gen_ai.response.model"),  # model
    ("gen_ai.provider.name", "gen_ai.system"),  # provider (gen_ai.system: semconv before 1.37)
    ("gen_ai.operation.name", None),  # operation
    ("gen_ai.token.type", None),  # token_type
    ("error.type", None),  # error_type
    ("team", None),  # team
    ("project", None),  # project
    ("deployment.environment.name", "deployment.environment"),  # environment
)
INDEXED_KEYS: frozenset[str] = frozenset(k for pair in INDEXED_ATTRIBUTES for k in pair if k)

#: (model, provider, operation, token_type, error_type, team, project, environment)
Indexed = tuple[str | None, str | None, str | None, str | None, str | None, str | None, str | None, str | None]
NO_INDEXED: Indexed = (None, None, None, None, None, None, None, None)

TENANT_KEYS = ("tenant_id", "tenant.id")


def any_value(v: AnyValue) -> Any:
    """One ``AnyValue`` as JSON-able Python (bytes as base64 text, as in OTLP/JSON)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def attributes_dict(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """``KeyValue`` list to a dict (a repeated key keeps its last value)."""
    # A non-empty string_value can only be a string: the common case skips any_value's dispatch.
    return {kv.key: kv.value.string_value or any_value(kv.value) for kv in kvs}


def to_json(value: Any) -> str:
    """JSON text for a JSON column (NaN and infinities become ``null``)."""
    return _json_encode(value).decode()


def _text(v: Any) -> str | None:
    return v if v is None or type(v) is str else to_json(v)


def indexed(a: dict[str, Any], defaults: Indexed) -> Indexed:
    """The indexed columns from ``a``, each falling back to ``defaults`` (the resource's values).

    An empty or false value counts as absent; a non-string value is stored as its JSON text.
    """
    if INDEXED_KEYS.isdisjoint(a):
        return defaults
    g = a.get
    model = g("gen_ai.request.model") or g("gen_ai.response.model") or defaults[0]
    provider = g("gen_ai.provider.name") or g("gen_ai.system") or defaults[1]
    operation = g("gen_ai.operation.name") or defaults[2]
    token_type = g("gen_ai.token.type") or defaults[3]
    error_type = g("error.type") or defaults[4]
    team = g("team") or defaults[5]
    project = g("project") or defaults[6]
    env = g("deployment.environment.name") or g("deployment.environment") or defaults[7]
    out = (model, provider, operation, token_type, error_type, team, project, env)
    if _STR_OR_NONE.issuperset(map(type, out)):
        return out
    return tuple(map(_text, out))  # type: ignore[return-value]


_STR_OR_NONE = frozenset({str, type(None)})


class ResourceInfo(NamedTuple):
    """What every row of one resource shares."""

    tenant_id: str
    service_name: str | None
    resource_json: str
    defaults: Indexed


def resource_info(resource: Resource, tenant_id: str, resource_tenant: bool) -> ResourceInfo:
    """Tenant (the resource's ``tenant_id``/``tenant.id`` when ``resource_tenant``), service, JSON."""
    attrs = attributes_dict(resource.attributes)
    if resource_tenant:
        for key in TENANT_KEYS:
            t = attrs.get(key)
            if type(t) is str and is_tenant(t):  # else ignored: the request's tenant (never "_hub" or "*")
                tenant_id = t
                break
    service = attrs.get("service.name")
    return ResourceInfo(
        tenant_id,
        service if type(service) is str else (None if service is None else to_json(service)),
        to_json(attrs),
        indexed(attrs, NO_INDEXED),
    )


class Rejections:
    """Counts rejected items by reason; renders the OTLP partial-success ``error_message``."""

    __slots__ = ("count", "reasons")

    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}

    def add(self, reason: str, n: int = 1) -> None:
        self.count += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n

    def message(self, noun: str, *, verb: str = "rejected") -> str | None:
        if not self.count:
            return None
        parts = [f"{n} x {reason}" for reason, n in list(self.reasons.items())[:5]]
        more = len(self.reasons) - 5
        tail = f"; and {more} other reasons" if more > 0 else ""
        return f"{verb} {self.count} {noun}: " + "; ".join(parts) + tail
