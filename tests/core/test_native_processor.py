"""The native-event processor: every way input can be bad, and what normalisation does."""

from __future__ import annotations

import json
import time

import msgspec
import pytest

from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from tests.helpers.events import EVENT_TYPES, make_event, now_iso

NOW_US = int(time.time() * 1e6)


def run(events: list[object], **kw: object) -> tuple[NativeEventsProcessor, object]:
    proc = NativeEventsProcessor(kw.pop("config", NativeEventsConfig()))  # type: ignore[arg-type]
    raws = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]
    return proc, proc.process(raws, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_every_event_type_is_accepted(etype: str) -> None:
    _, res = run([make_event(etype)], tenant_id="t1")
    assert res.accepted == 1, res.rejected
    assert res.columns["event_type"] == [etype]
    assert res.columns["tenant_id"] == ["t1"]


def _without(key: str) -> dict[str, object]:
    ev = make_event("cost")
    del ev[key]
    return ev


BAD_INPUTS = [
    ("truncated JSON", b'{"event_id": "x", ', "malformed JSON"),
    ("not an object", b"[1, 2]", "invalid event: Expected `object`, got `array`"),
    ("bad UTF-8", b'{"event_id": "\xff\xfe"}', "malformed JSON"),
    ("missing event_id", _without("event_id"), "invalid event: Object missing required field `event_id`"),
    ("missing payload", _without("payload"), "invalid event: Object missing required field `payload`"),
    ("wrong type", make_event("cost", severity=3), "invalid event: Expected `str`, got `int` - at `$.severity`"),
    ("unknown event_type", make_event("cost", event_type="billing"),
     "invalid event: Invalid enum value 'billing' - at `$.event_type`; expected one of ['cost', 'governance', "),
    ("unknown severity", make_event("cost", severity="fatal"),
     "at `$.severity`; expected one of ['critical', 'debug', 'error', 'info', 'warning']"),
    ("unknown major", make_event("cost", schema_version="2.0.0"), "unsupported schema_version '2.0.0'"),
    ("bad semver", make_event("cost", schema_version="one"), "invalid event"),
    ("unknown module", make_event("cost", source_module="llm-x"), "unknown source_module 'llm-x'"),
    ("bad timestamp", make_event("cost", timestamp="yesterday"), "timestamp 'yesterday' is not ISO-8601"),
    ("too old", make_event("cost", timestamp="2001-01-01T00:00:00Z"), "older than the accepted window"),
    ("future", make_event("cost", timestamp=now_iso(7200)), "in the future"),
    ("payload wrong field type", make_event("cost", payload={"amount": "lots"}), "`$.payload.amount`"),
    ("payload missing field", make_event("telemetry", payload={"metric_name": None}), "invalid payload"),
    ("negative metric", make_event("telemetry", payload={"value": -1.0}), "payload.value must be >= 0"),
    ("zero cost", make_event("cost", payload={"amount": 0}), "payload.amount must be a positive number"),
    ("negative cost", make_event("cost", payload={"amount": -3}), "payload.amount must be a positive number"),
    ("unknown currency", make_event("cost", payload={"currency": "XYZ"}), "unknown currency 'XYZ'"),
    ("bad threat level", make_event("security", payload={"threat_level": "meh"}),
     "invalid payload for event_type 'security': Invalid enum value 'meh' - at `$.payload.threat_level`; expected one of"),
    ("bad cost type", make_event("cost", payload={"cost_type": "inference"}),
     "at `$.payload.cost_type`; expected one of ['api', 'compute', 'storage', 'token']"),
    ("confidence > 1", make_event("security", payload={"confidence": 1.5}), "invalid payload"),
    ("bad policy unit", make_event("policy", payload={"evaluation_time_unit": "By"}), "not a duration unit"),
    ("oversized id", make_event("cost", event_id="x" * 300), "invalid event"),
    # token counts: bounded at 2**53 (2**63 could not be stored; 2**62 + 2**62 overflowed total_tokens)
    ("tokens 2**63", make_event("telemetry", payload={"input_tokens": 2**63}),
     "Expected `int` <= 9007199254740992 - at `$.payload.input_tokens`"),
    ("tokens 2**70", make_event("cost", payload={"output_tokens": 2**70}), "at `$.payload.output_tokens`"),
    ("tokens 2**62", make_event("telemetry", payload={"input_tokens": 2**62, "output_tokens": 2**62}),
     "at `$.payload.input_tokens`"),
    # finite as sent, infinite once converted
    ("value inf in ms", make_event("telemetry", payload={"value": 1e306, "unit": "s"}),
     "payload.value is out of range once converted to 'ms'"),
    ("amount inf in USD", make_event("cost", payload={"amount": 1.7e308, "currency": "EUR"}),
     "payload.amount 1.7e+308 EUR is out of range once converted to USD"),
    ("evaluation_time inf in ms", make_event("policy", payload={"evaluation_time": 1e305, "evaluation_time_unit": "h"}),
     "payload.evaluation_time must be a finite duration"),
    ("huge schema_version", make_event("cost", schema_version="1" * 5000 + ".0"),
     "invalid event: Expected `str` of length <= 32 - at `$.schema_version`"),
    ("huge tag value", make_event("cost", tags={"x": "v" * 4097}), "invalid event: Expected `str` of length <= 4096"),
    ("huge tag key", make_event("cost", tags={"k" * 257: "v"}), "invalid event: Expected `str` of length <= 256"),
    ("huge dimension", make_event("telemetry", payload={"dimensions": {"d": "v" * 4097}}),
     "`$.payload.dimensions"),
]


@pytest.mark.parametrize(("name", "event", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_rejected_with_an_actionable_reason(name: str, event: object, reason: str) -> None:
    _, res = run([make_event("cost"), event])
    assert res.accepted == 1  # the good event of the batch still goes through
    assert len(res.rejected) == 1
    rej = res.rejected[0]
    assert rej.index == 1
    assert reason in rej.reason, rej.reason


def test_unknown_fields_are_ignored_for_minor_versions() -> None:
    ev = make_event("cost", schema_version="1.4.0", new_field={"x": 1})
    ev["payload"]["new_payload_field"] = 1
    _, res = run([ev])
    assert res.accepted == 1


def test_units_and_currencies_are_normalised() -> None:
    tel = make_event("telemetry", payload={"value": 1.25, "unit": "s"})
    cost = make_event("cost", payload={"amount": 10.0, "currency": "EUR"})
    pol = make_event("policy", payload={"evaluation_time": 2, "evaluation_time_unit": "s"})
    cfg = NativeEventsConfig(exchange_rates={"USD": 1.0, "EUR": 1.5})
    _, res = run([tel, cost, pol], config=cfg)
    assert res.columns["value"] == [1250.0, 15.0, 2000.0]
    assert res.columns["unit"] == ["ms", "USD", "ms"]
    stored = msgspec.json.decode(res.columns["payload"][1])
    assert stored["amount"] == 15.0 and stored.get("currency", "USD") == "USD"  # USD is the default


def test_timestamps_are_utc_with_clock_skew() -> None:
    ev = make_event("cost", timestamp="2026-01-01T12:00:00+02:00")
    naive = make_event("cost", timestamp="2026-01-01T10:00:00")
    cfg = NativeEventsConfig(clock_skew={"llm-costops": 1.5}, max_age=1e9)
    _, res = run([ev, naive], config=cfg)
    expected = 1767261600 * 1_000_000 + 1_500_000  # 2026-01-01T10:00:00Z + 1.5 s skew
    assert res.columns["ts"] == [expected, expected]


def test_security_severity_is_at_least_warning() -> None:
    _, res = run([make_event("security", severity="info"), make_event("security", severity="critical")])
    assert res.columns["severity"] == ["warning", "critical"]


def test_duplicates_within_the_window_are_dropped_and_counted() -> None:
    ev = make_event("cost")
    proc, res = run([ev, ev])
    assert res.accepted == 1 and res.duplicates == 1
    again = proc.process([json.dumps(ev).encode()])
    assert again.accepted == 0 and again.duplicates == 1
    other_tenant = proc.process([json.dumps(ev).encode()], tenant_id="other")
    assert other_tenant.accepted == 1


def test_rollback_forgets_ids_so_a_retry_is_accepted() -> None:
    ev = make_event("cost")
    proc, res = run([ev])
    proc.rollback(res)  # type: ignore[arg-type]
    assert proc.process([json.dumps(ev).encode()]).accepted == 1


def test_registry_metadata_enriches_later_events() -> None:
    meta = make_event("metadata")
    later = make_event("cost", payload={"asset_id": "asset-gpt4o", "model": None})
    proc, res = run([meta])
    assert res.accepted == 1
    res2 = proc.process([json.dumps(later).encode()])
    enrichment = msgspec.json.decode(res2.columns["enrichment"][0])
    assert enrichment["asset"]["version"] == "2024-08-06"
    assert res2.columns["model"] == ["gpt-4o"]


def test_tenant_from_header_wins_then_tags_then_default() -> None:
    tagged = make_event("cost", tags={"tenant_id": "acme"})
    plain = make_event("cost")
    _, res = run([tagged, plain])
    assert res.columns["tenant_id"] == ["acme", "default"]
    _, res = run([make_event("cost", tags={"tenant_id": "acme"})], tenant_id="hdr")
    assert res.columns["tenant_id"] == ["hdr"]
