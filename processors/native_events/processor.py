"""Turn a batch of raw native events into rows of the ``events`` table, or rejections with reasons.

Hot path: one msgspec decode of the envelope and one of the payload per event, a few dict look-ups,
and appends to column lists. No per-event objects survive the call.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from hubcore.model.events import (
    PAYLOAD_TYPES,
    SOURCE_MODULES,
    SUPPORTED_MAJOR_VERSIONS,
    AnalyticsEvent,
    CostPayload,
    GovernancePayload,
    MetadataPayload,
    PolicyPayload,
    SecurityPayload,
    TelemetryPayload,
)
from hubcore.tenants import TENANT_RULE, is_tenant
from processors.native_events.config import NativeEventsConfig
from processors.native_events.dedup import Deduplicator
from processors.native_events.registry import AssetRegistry
from processors.native_events.units import duration_to_ms, to_canonical

EVENT_COLUMNS = (
    "tenant_id", "ts", "received_at", "event_id", "source_module", "event_type", "severity",
    "environment", "correlation_id", "schema_version", "name", "value", "unit", "status", "model",
    "provider", "asset_id", "team", "project", "user_id", "input_tokens", "output_tokens", "tags",
    "payload", "enrichment",
)  # fmt: skip

log = logging.getLogger(__name__)
_row_values = operator.itemgetter(*EVENT_COLUMNS)
_envelope_decoder = msgspec.json.Decoder(AnalyticsEvent)
_payload_decoders = {k: msgspec.json.Decoder(v) for k, v in PAYLOAD_TYPES.items()}
_BAD_ENUM = re.compile(r"Invalid enum value .* - at `\$((?:\.\w+)*)`$")


@functools.lru_cache(maxsize=16)
def _schema(kind: type) -> tuple[dict[str, Any], dict[str, Any]]:
    (root,), defs = msgspec.json.schema_components([kind])
    return root, defs


def _choices(kind: type, path: str) -> list[Any] | None:
    """The allowed values of the enum field at ``path`` (``.a.b``) of ``kind``, from its JSON schema."""
    node, defs = _schema(kind)

    def resolve(n: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in n:
            n = defs[n["$ref"].rsplit("/", 1)[-1]]
        for alt in n.get("anyOf", []):  # Optional[...]: the non-null branch
            alt = resolve(alt)
            if "enum" in alt or "properties" in alt:
                return alt
        return n

    for key in path.strip(".").split("."):
        props = resolve(node).get("properties", {})
        if key not in props:
            return None
        node = props[key]
    values = resolve(node).get("enum")
    return list(values) if values else None


def _validation_message(exc: msgspec.ValidationError, kind: type) -> str:
    """msgspec's message, plus the allowed values when an enum value was refused.

    >>> try:
    ...     _payload_decoders["cost"].decode(b'{"amount": 1, "cost_type": "inference"}')
    ... except msgspec.ValidationError as exc:
    ...     print(_validation_message(exc, PAYLOAD_TYPES["cost"]))
    Invalid enum value 'inference' - at `$.cost_type`; expected one of ['api', 'compute', 'storage', 'token']
    """
    text = str(exc)
    match = _BAD_ENUM.search(text)
    choices = _choices(kind, match.group(1)) if match else None
    return f"{text}; expected one of {choices}" if choices else text
_encode = msgspec.json.encode
_SEVERITY_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_KNOWN_MODULES = frozenset(SOURCE_MODULES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why event number ``index`` of a batch was refused (``event_id`` when it could be read).

    ``tenant_id`` is the event's own tenant when it was known (the request's, else a valid
    ``tags.tenant_id``): the tenant whose dead-letter queue gets the event. Not part of :meth:`to_dict`.
    """

    index: int
    event_id: str | None
    reason: str
    tenant_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "event_id": self.event_id, "reason": self.reason}


@dataclass(slots=True)
class ProcessResult:
    columns: dict[str, list[Any]]
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    accepted_keys: list[tuple[str, str]] = field(default_factory=list)
    metadata_updates: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.columns["event_id"])


class _Reject(Exception):
    pass


class NativeEventsProcessor:
    """Validate → normalise → enrich → dedup. Not thread-safe: call from one thread at a time."""

    def __init__(
        self,
        config: NativeEventsConfig,
        *,
        registry: AssetRegistry | None = None,
        dedup: Deduplicator | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or AssetRegistry()
        self.dedup = dedup or Deduplicator(config.dedup_window, config.dedup_max_ids)

    def process(
        self,
        raw_events: Sequence[bytes | msgspec.Raw],
        *,
        tenant_id: str | None = None,
        now_us: int | None = None,
    ) -> ProcessResult:
        """Process one batch. ``tenant_id`` (from the credential or header) wins over ``tags.tenant_id``."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        cfg = self.config
        lo = now_us - int(cfg.max_age * 1e6)
        hi = now_us + int(cfg.max_future * 1e6)
        result = ProcessResult({c: [] for c in EVENT_COLUMNS})
        rows: list[tuple[Any, ...]] = []
        now_s = now_us / 1e6
        for index, raw in enumerate(raw_events):
            event_id: str | None = None
            tenant: str | None = tenant_id
            try:
                try:
                    ev = _envelope_decoder.decode(raw)
                except msgspec.ValidationError as exc:
                    raise _Reject(f"invalid event: {_validation_message(exc, AnalyticsEvent)}") from None
                except msgspec.DecodeError as exc:
                    raise _Reject(f"malformed JSON: {exc}") from None
                except UnicodeDecodeError:
                    raise _Reject("malformed JSON: a string is not valid UTF-8") from None
                except RecursionError:
                    raise _Reject("malformed JSON: nested too deeply") from None
                event_id = ev.event_id
                tag_tenant = None if tenant_id else ev.tags.get("tenant_id")
                if tag_tenant and not is_tenant(tag_tenant):
                    # "_hub", "*" or "../x" would be stored where no API call could read or erase it
                    raise _Reject(f"tags.tenant_id must be {TENANT_RULE}")
                tenant = tenant_id or tag_tenant or cfg.default_tenant
                row = self._normalise(ev, tenant, lo, hi)
                if self.dedup.seen_or_add(tenant, ev.event_id, now_s):
                    result.duplicates += 1
                    continue
            except _Reject as rej:
                result.rejected.append(Rejection(index, event_id, str(rej), tenant))
                continue
            except Exception as exc:  # a bug must not lose the event: dead-letter it for replay
                log.exception("unexpected error processing an event", extra={"event_id": event_id})
                reason = f"internal error: {type(exc).__name__}: {exc}"
                result.rejected.append(Rejection(index, event_id, reason, tenant))
                continue
            result.accepted_keys.append((tenant, ev.event_id))
            if ev.event_type == "metadata":
                meta = row.pop("_meta")
                result.metadata_updates.append((tenant, row["asset_id"], meta))
            row["received_at"] = now_us
            rows.append(_row_values(row))
        if rows:
            result.columns = dict(zip(EVENT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        for tenant, asset_id, meta in result.metadata_updates:
            self.registry.update(tenant, asset_id, meta)
        return result

    def rollback(self, result: ProcessResult) -> None:
        """Forget the ids of a batch that could not be stored, so that a retry is not a 'duplicate'."""
        for tenant, event_id in result.accepted_keys:
            self.dedup.forget(tenant, event_id)

    # -- per event --------------------------------------------------------------------------------
    def _normalise(self, ev: AnalyticsEvent, tenant: str, lo: int, hi: int) -> dict[str, Any]:
        major = ev.schema_version.split(".", 1)[0]
        if int(major) not in SUPPORTED_MAJOR_VERSIONS:
            raise _Reject(
                f"unsupported schema_version {ev.schema_version!r}: this hub accepts major version(s) "
                f"{sorted(SUPPORTED_MAJOR_VERSIONS)}; see GET /api/v1/schemas"
            )
        if ev.source_module not in _KNOWN_MODULES:
            raise _Reject(f"unknown source_module {ev.source_module!r}: expected one of {list(SOURCE_MODULES)}")
        ts = _parse_timestamp(ev.timestamp)
        skew = self.config.clock_skew.get(ev.source_module)
        if skew:
            ts += int(skew * 1e6)
        if ts < lo:
            raise _Reject(
                f"timestamp {ev.timestamp} is older than the accepted window "
                f"({self.config.max_age:g} s; processors.native_events.max_age)"
            )
        if ts > hi:
            raise _Reject(
                f"timestamp {ev.timestamp} is more than {self.config.max_future:g} s in the future "
                "(processors.native_events.max_future); check the sender's clock"
            )
        try:
            payload = _payload_decoders[ev.event_type].decode(ev.payload)
        except msgspec.ValidationError as exc:
            raise _Reject(
                f"invalid payload for event_type {ev.event_type!r}: "
                f"{_validation_message(exc, PAYLOAD_TYPES[ev.event_type])}".replace("`$", "`$.payload")
            ) from None
        except msgspec.DecodeError as exc:
            raise _Reject(f"malformed payload JSON: {exc}") from None
        except UnicodeDecodeError:
            raise _Reject("malformed payload JSON: a string is not valid UTF-8") from None
        except RecursionError:
            raise _Reject("malformed payload JSON: nested too deeply") from None
        tags = ev.tags
        row: dict[str, Any] = {
            "tenant_id": tenant,
            "ts": ts,
            "event_id": ev.event_id,
            "source_module": ev.source_module,
            "event_type": ev.event_type,
            "severity": ev.severity,
            "environment": ev.environment,
            "correlation_id": ev.correlation_id,
            "schema_version": ev.schema_version,
            "team": tags.get("team"),
            "project": tags.get("project"),
            "user_id": tags.get("user_id"),
            "name": None,
            "value": None,
            "unit": None,
            "status": None,
            "input_tokens": None,
            "output_tokens": None,
            "model": None,
            "provider": None,
            "asset_id": None,
            "tags": _encode(tags).decode() if tags else "{}",
            "payload": None,
            "enrichment": None,
        }
        new_payload = _NORMALISERS[ev.event_type](self, payload, row)
        row["payload"] = _encode(new_payload).decode() if new_payload is not None else bytes(ev.payload).decode()
        asset_id = row["asset_id"]
        if asset_id and ev.event_type != "metadata":
            meta = self.registry.lookup(tenant, asset_id)
            if meta is not None:
                row["enrichment"] = _encode({"asset": meta}).decode()
                if row["model"] is None and meta.get("asset_type") == "model":
                    row["model"] = meta.get("name")
                if row["provider"] is None:
                    row["provider"] = meta.get("provider")
        return row

    def _telemetry(self, p: TelemetryPayload, row: dict[str, Any]) -> Any:
        if not math.isfinite(p.value):
            raise _Reject(f"payload.value must be a finite number (metric {p.metric_name!r})")
        if p.value < 0:
            raise _Reject(f"payload.value must be >= 0 (metric {p.metric_name!r} got {p.value})")
        value, unit = to_canonical(p.value, p.unit)
        if not math.isfinite(value):
            raise _Reject(f"payload.value is out of range once converted to {unit!r} (metric {p.metric_name!r})")
        dims = p.dimensions
        row["name"] = p.metric_name
        row["value"] = value
        row["unit"] = unit
        row["status"] = p.status
        row["model"] = p.model or dims.get("model") or dims.get("gen_ai.request.model")
        row["provider"] = p.provider or dims.get("provider") or dims.get("gen_ai.provider.name")
        row["asset_id"] = p.asset_id
        row["input_tokens"] = p.input_tokens
        row["output_tokens"] = p.output_tokens
        row["team"] = row["team"] or dims.get("team")
        row["project"] = row["project"] or dims.get("project")
        row["user_id"] = row["user_id"] or dims.get("user_id")
        if unit != p.unit:
            return msgspec.structs.replace(p, value=value, unit=unit)
        return None

    def _security(self, p: SecurityPayload, row: dict[str, Any]) -> Any:
        if _SEVERITY_RANK[row["severity"]] < _SEVERITY_RANK["warning"]:
            row["severity"] = "warning"  # business rule: security findings are at least warnings
        row["name"] = p.threat_type
        row["value"] = p.confidence
        row["unit"] = "1"
        row["status"] = p.action_taken
        row["model"] = p.model
        row["asset_id"] = p.asset_id
        row["user_id"] = p.user_id or row["user_id"]
        return None

    def _cost(self, p: CostPayload, row: dict[str, Any]) -> Any:
        if not math.isfinite(p.amount) or p.amount <= 0:
            raise _Reject(f"payload.amount must be a positive number (got {p.amount})")
        currency = p.currency.upper()
        rate = self.config.exchange_rates.get(currency)
        if rate is None:
            raise _Reject(f"unknown currency {p.currency!r}: configure processors.native_events.exchange_rates")
        usd = p.amount * rate
        if not math.isfinite(usd):
            raise _Reject(f"payload.amount {p.amount} {currency} is out of range once converted to USD")
        row["name"] = p.cost_type
        row["value"] = usd
        row["unit"] = "USD"
        row["model"] = p.model
        row["provider"] = p.provider
        row["asset_id"] = p.asset_id
        row["input_tokens"] = p.input_tokens
        row["output_tokens"] = p.output_tokens
        row["team"] = p.team or row["team"]
        row["project"] = p.project or row["project"]
        if currency != "USD":
            return msgspec.structs.replace(p, amount=usd, currency="USD")
        return None

    def _governance(self, p: GovernancePayload, row: dict[str, Any]) -> Any:
        row["name"] = p.policy_id
        row["value"] = 0.0 if p.compliant and p.action != "violation" else 1.0
        row["status"] = "violation" if (p.action == "violation" or not p.compliant) else p.action
        row["model"] = p.model
        row["asset_id"] = p.asset_id
        row["user_id"] = p.user_id or row["user_id"]
        return None

    def _metadata(self, p: MetadataPayload, row: dict[str, Any]) -> Any:
        row["name"] = p.name
        row["status"] = p.action
        row["asset_id"] = p.asset_id
        row["provider"] = p.provider
        if p.asset_type == "model":
            row["model"] = p.name
        row["_meta"] = (
            None
            if p.action == "deleted"
            else {
                **p.attributes,
                "asset_type": p.asset_type,
                "name": p.name,
                "version": p.version,
                "provider": p.provider,
                "owner": p.owner,
            }
        )
        return None

    def _policy(self, p: PolicyPayload, row: dict[str, Any]) -> Any:
        ms = duration_to_ms(p.evaluation_time, p.evaluation_time_unit)
        if ms is None:
            raise _Reject(f"payload.evaluation_time_unit {p.evaluation_time_unit!r} is not a duration unit")
        if not math.isfinite(ms):
            raise _Reject(
                f"payload.evaluation_time must be a finite duration (got {p.evaluation_time} {p.evaluation_time_unit})"
            )
        row["name"] = p.policy_id
        row["value"] = ms
        row["unit"] = "ms"
        row["status"] = p.result
        row["model"] = p.model
        row["asset_id"] = p.asset_id
        if p.evaluation_time_unit != "ms":
            return msgspec.structs.replace(p, evaluation_time=ms, evaluation_time_unit="ms")
        return None


_NORMALISERS: dict[str, Any] = {
    "telemetry": NativeEventsProcessor._telemetry,
    "security": NativeEventsProcessor._security,
    "cost": NativeEventsProcessor._cost,
    "governance": NativeEventsProcessor._governance,
    "metadata": NativeEventsProcessor._metadata,
    "policy": NativeEventsProcessor._policy,
}


def _parse_timestamp(text: str) -> int:
    """ISO-8601 → µs since the epoch, UTC. A timestamp without an offset is taken as UTC."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise _Reject(f"timestamp {text!r} is not ISO-8601 (e.g. 2026-01-01T12:00:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
