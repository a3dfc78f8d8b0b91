"""Turn a batch of raw native events into rows of the ``events`` table, or rejections with reasons.

Hot path: one msgspec decode of the envelope and one of the payload per event, a few dict look-ups,
each normaliser returning its part of the row as a tuple, and the row's values appended to one flat list
that is sliced into columns at the end. No per-event container survives the event: a tuple per row and a
(tenant, id) tuple per accepted and per remembered id had (the garbage collector ran every 700 of them, in
a hub whose heap holds hundreds of thousands of objects).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
_ONE_US = timedelta(microseconds=1)
#: schema_version → whether its major version is supported (bounded: the strings come from clients)
_MAJOR_OK: dict[str, bool] = {}
_MAJOR_OK_MAX = 256


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
    metadata_updates: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.columns["event_id"])

    @property
    def accepted_keys(self) -> list[tuple[str, str]]:
        """``(tenant, event_id)`` of every accepted event, in order (from the columns: no per-event list)."""
        return list(zip(self.columns["tenant_id"], self.columns["event_id"], strict=True))


def _converted(payload: msgspec.Struct, **fields: Any) -> dict[str, Any]:
    """The payload to store once ``fields`` were converted: every one of them spelled out, also a value equal
    to the struct's default (``currency="USD"``, ``evaluation_time_unit="ms"``), which ``omit_defaults``
    would leave out, so the stored payload says what it was converted to, as one sent that way does.

    >>> from hubcore.model.events import PolicyPayload
    >>> _converted(PolicyPayload(policy_id="p", result="pass", evaluation_time=2.0, evaluation_time_unit="s"),
    ...            evaluation_time=2000.0, evaluation_time_unit="ms")["evaluation_time_unit"]
    'ms'
    """
    return {**msgspec.to_builtins(msgspec.structs.replace(payload, **fields)), **fields}


class _Reject(Exception):
    pass


#: what a payload type's normaliser returns (see NativeEventsProcessor._telemetry)
_Fields = tuple[Any, ...]
_ASSET_ID = EVENT_COLUMNS.index("asset_id")
_N_COLUMNS = len(EVENT_COLUMNS)


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
        # every accepted row's values one after the other: a list of per-event tuples kept a thousand objects
        # alive for the garbage collector to count and promote (a collection every 700 of them)
        flat: list[Any] = []
        rejected = result.rejected
        now_s = now_us / 1e6
        decode = _envelope_decoder.decode
        normalise = self._normalise
        seen_or_add = self.dedup.seen_or_add
        for index, raw in enumerate(raw_events):
            event_id: str | None = None
            tenant: str | None = tenant_id
            try:
                try:
                    ev = decode(raw)
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
                row, meta = normalise(ev, tenant, lo, hi, now_us)
                if seen_or_add(tenant, event_id, now_s):
                    result.duplicates += 1
                    continue
            except _Reject as rej:
                rejected.append(Rejection(index, event_id, str(rej), tenant))
                continue
            except Exception as exc:  # a bug must not lose the event: dead-letter it for replay
                log.exception("unexpected error processing an event", extra={"event_id": event_id})
                reason = f"internal error: {type(exc).__name__}: {exc}"
                rejected.append(Rejection(index, event_id, reason, tenant))
                continue
            if ev.event_type == "metadata":
                result.metadata_updates.append((tenant, row[_ASSET_ID], meta))
            flat.extend(row)
        if flat:
            result.columns = {c: flat[i::_N_COLUMNS] for i, c in enumerate(EVENT_COLUMNS)}
        for tenant, asset_id, meta in result.metadata_updates:
            self.registry.update(tenant, asset_id, meta)
        return result

    def rollback(self, result: ProcessResult) -> None:
        """Forget the ids of a batch that could not be stored, so that a retry is not a 'duplicate'."""
        for tenant, event_id in result.accepted_keys:
            self.dedup.forget(tenant, event_id)

    # -- per event --------------------------------------------------------------------------------
    def _normalise(
        self, ev: AnalyticsEvent, tenant: str, lo: int, hi: int, received_at: int
    ) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """The event's row (in :data:`EVENT_COLUMNS` order) and, for a metadata event, the asset's
        new metadata (None when it was deleted); raises :class:`_Reject`."""
        version = ev.schema_version
        supported = _MAJOR_OK.get(version)
        if supported is None:
            supported = int(version.split(".", 1)[0]) in SUPPORTED_MAJOR_VERSIONS
            if len(_MAJOR_OK) < _MAJOR_OK_MAX:
                _MAJOR_OK[version] = supported
        if not supported:
            raise _Reject(
                f"unsupported schema_version {version!r}: this hub accepts major version(s) "
                f"{sorted(SUPPORTED_MAJOR_VERSIONS)}; see GET /api/v1/schemas"
            )
        source_module = ev.source_module
        if source_module not in _KNOWN_MODULES:
            raise _Reject(f"unknown source_module {source_module!r}: expected one of {list(SOURCE_MODULES)}")
        ts = _parse_timestamp(ev.timestamp)
        cfg = self.config
        skew = cfg.clock_skew.get(source_module) if cfg.clock_skew else None
        if skew:
            ts += int(skew * 1e6)
        if ts < lo:
            raise _Reject(
                f"timestamp {ev.timestamp} is older than the accepted window "
                f"({cfg.max_age:g} s; processors.native_events.max_age)"
            )
        if ts > hi:
            raise _Reject(
                f"timestamp {ev.timestamp} is more than {cfg.max_future:g} s in the future "
                "(processors.native_events.max_future); check the sender's clock"
            )
        event_type = ev.event_type
        try:
            payload = _payload_decoders[event_type].decode(ev.payload)
        except msgspec.ValidationError as exc:
            raise _Reject(
                f"invalid payload for event_type {event_type!r}: "
                f"{_validation_message(exc, PAYLOAD_TYPES[event_type])}".replace("`$", "`$.payload")
            ) from None
        except msgspec.DecodeError as exc:
            raise _Reject(f"malformed payload JSON: {exc}") from None
        except UnicodeDecodeError:
            raise _Reject("malformed payload JSON: a string is not valid UTF-8") from None
        except RecursionError:
            raise _Reject("malformed payload JSON: nested too deeply") from None
        tags = ev.tags
        (name, value, unit, status, model, provider, asset_id, input_tokens, output_tokens, team, project,
         user_id, severity, new_payload, meta) = _NORMALISERS[event_type](self, payload, ev, tags)  # fmt: skip
        enrichment = None
        if asset_id and event_type != "metadata":
            asset = self.registry.lookup(tenant, asset_id)
            if asset is not None:
                enrichment = _encode({"asset": asset}).decode()
                if model is None and asset.get("asset_type") == "model":
                    model = asset.get("name")
                if provider is None:
                    provider = asset.get("provider")
        row = (
            tenant, ts, received_at, ev.event_id, source_module, event_type, severity, ev.environment,
            ev.correlation_id, version, name, value, unit, status, model, provider, asset_id, team, project,
            user_id, input_tokens, output_tokens, _encode(tags).decode() if tags else "{}",
            _encode(new_payload).decode() if new_payload is not None else bytes(ev.payload).decode(),
            enrichment,
        )  # fmt: skip
        return row, meta

    # Each normaliser checks its payload's business rules and returns its part of the row:
    # (name, value, unit, status, model, provider, asset_id, input_tokens, output_tokens, team, project,
    #  user_id, severity, the payload to store when it changed (else None), the asset metadata).
    def _telemetry(self, p: TelemetryPayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        if not math.isfinite(p.value):
            raise _Reject(f"payload.value must be a finite number (metric {p.metric_name!r})")
        if p.value < 0:
            raise _Reject(f"payload.value must be >= 0 (metric {p.metric_name!r} got {p.value})")
        value, unit = to_canonical(p.value, p.unit)
        if not math.isfinite(value):
            raise _Reject(f"payload.value is out of range once converted to {unit!r} (metric {p.metric_name!r})")
        dims = p.dimensions
        changed = msgspec.structs.replace(p, value=value, unit=unit) if unit != p.unit else None
        return (p.metric_name, value, unit, p.status,
                p.model or dims.get("model") or dims.get("gen_ai.request.model"),
                p.provider or dims.get("provider") or dims.get("gen_ai.provider.name"),
                p.asset_id, p.input_tokens, p.output_tokens,
                tags.get("team") or dims.get("team"), tags.get("project") or dims.get("project"),
                tags.get("user_id") or dims.get("user_id"), ev.severity, changed, None)  # fmt: skip

    def _security(self, p: SecurityPayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        severity = ev.severity
        if _SEVERITY_RANK[severity] < _SEVERITY_RANK["warning"]:
            severity = "warning"  # business rule: security findings are at least warnings
        return (p.threat_type, p.confidence, "1", p.action_taken, p.model, None, p.asset_id, None, None,
                tags.get("team"), tags.get("project"), p.user_id or tags.get("user_id"), severity, None, None)  # fmt: skip

    def _cost(self, p: CostPayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        if not math.isfinite(p.amount) or p.amount <= 0:
            raise _Reject(f"payload.amount must be a positive number (got {p.amount})")
        currency = p.currency.upper()
        rate = self.config.exchange_rates.get(currency)
        if rate is None:
            raise _Reject(f"unknown currency {p.currency!r}: configure processors.native_events.exchange_rates")
        usd = p.amount * rate
        if not math.isfinite(usd):
            raise _Reject(f"payload.amount {p.amount} {currency} is out of range once converted to USD")
        changed = (_converted(p, currency="USD", amount=usd, original_amount=p.amount, original_currency=currency,
                              exchange_rate=rate)
                   if currency != "USD" else None)  # fmt: skip
        return (p.cost_type, usd, "USD", None, p.model, p.provider, p.asset_id, p.input_tokens, p.output_tokens,
                p.team or tags.get("team"), p.project or tags.get("project"), tags.get("user_id"), ev.severity,
                changed, None)  # fmt: skip

    def _governance(self, p: GovernancePayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        violation = p.action == "violation" or not p.compliant
        return (p.policy_id, 1.0 if violation else 0.0, None, "violation" if violation else p.action, p.model,
                None, p.asset_id, None, None, tags.get("team"), tags.get("project"),
                p.user_id or tags.get("user_id"), ev.severity, None, None)  # fmt: skip

    def _metadata(self, p: MetadataPayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        meta = (
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
        return (p.name, None, None, p.action, p.name if p.asset_type == "model" else None, p.provider, p.asset_id,
                None, None, tags.get("team"), tags.get("project"), tags.get("user_id"), ev.severity, None, meta)  # fmt: skip

    def _policy(self, p: PolicyPayload, ev: AnalyticsEvent, tags: dict[str, str]) -> _Fields:
        ms = duration_to_ms(p.evaluation_time, p.evaluation_time_unit)
        if ms is None:
            raise _Reject(f"payload.evaluation_time_unit {p.evaluation_time_unit!r} is not a duration unit")
        if not math.isfinite(ms):
            raise _Reject(
                f"payload.evaluation_time must be a finite duration (got {p.evaluation_time} {p.evaluation_time_unit})"
            )
        changed = (_converted(p, evaluation_time=ms, evaluation_time_unit="ms")
                   if p.evaluation_time_unit != "ms" else None)  # fmt: skip
        return (p.policy_id, ms, "ms", p.result, p.model, None, p.asset_id, None, None, tags.get("team"),
                tags.get("project"), tags.get("user_id"), ev.severity, changed, None)  # fmt: skip


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
    return (dt - _EPOCH) // _ONE_US
