"""The native-event processor: every way input can be bad, and what normalisation does."""

from __future__ import annotations

import gc
import json
import time

import msgspec
import pytest

from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from processors.native_events.dedup import Deduplicator
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
    assert stored["amount"] == 15.0 and stored["currency"] == "USD"  # spelled out: queries group by payload.currency
    # what was sent is kept (a conversion is not undone by a later rate: the sent figure would be lost)
    assert (stored["original_amount"], stored["original_currency"], stored["exchange_rate"]) == (10.0, "EUR", 1.5)
    policy = msgspec.json.decode(res.columns["payload"][2])
    assert (policy["evaluation_time"], policy["evaluation_time_unit"]) == (2000.0, "ms")  # "ms" spelled out too
    # a USD cost carries no original_amount:
    _, plain = run([make_event("cost", payload={"amount": 3.0})], config=cfg)
    assert "original_amount" not in msgspec.json.decode(plain.columns["payload"][0])


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


# -- which field fills each column (the normalisers return their part of the row) ---------------------
COLUMN_SOURCES = [
    ("telemetry: payload model and provider win over dimensions",
     make_event("telemetry", payload={"dimensions": {"model": "dm", "provider": "dp"}}), {"model": "gpt-4o", "provider": "openai"}),
    ("telemetry: dimensions, then GenAI names, fill what the payload lacks",
     make_event("telemetry", payload={"model": None, "provider": None,
                                      "dimensions": {"gen_ai.request.model": "gm", "gen_ai.provider.name": "gp"}}),
     {"model": "gm", "provider": "gp"}),
    ("telemetry: an empty tag falls through to the dimension, a missing one to None",
     make_event("telemetry", tags={"team": "", "user_id": ""}, payload={"dimensions": {"team": "dt"}}),
     {"team": "dt", "project": None, "user_id": None}),
    ("telemetry: no dimensions and an empty tag give None, not ''",
     make_event("telemetry", tags={"team": ""}, payload={"dimensions": {}}), {"team": None}),
    ("cost: the payload's team and project win over the tags",
     make_event("cost", tags={"team": "tt", "project": "tp", "user_id": "tu"}, payload={"team": "pt"}),
     {"team": "pt", "project": "tp", "user_id": "tu", "status": None, "name": "token"}),
    ("security: the payload's user wins; no provider or tokens",
     make_event("security", tags={"user_id": "tu"}), {"user_id": "u-7", "provider": None, "input_tokens": None,
                                                      "unit": "1", "status": "blocked", "value": 0.93}),
    ("security: the tag's user when the payload has none",
     make_event("security", tags={"user_id": "tu"}, payload={"user_id": None}), {"user_id": "tu"}),
    ("governance: not compliant is a violation",
     make_event("governance", payload={"action": "audit", "compliant": False}), {"value": 1.0, "status": "violation"}),
    ("governance: compliant and no violation",
     make_event("governance", payload={"action": "audit", "compliant": True}), {"value": 0.0, "status": "audit", "unit": None}),
    ("metadata: the model column only for a model asset",
     make_event("metadata", payload={"asset_type": "dataset", "asset_id": "ds-1"}),
     {"model": None, "name": "gpt-4o", "provider": "openai", "asset_id": "ds-1", "value": None}),
    ("policy: no provider; the tags' team",
     make_event("policy"), {"provider": None, "team": "search", "unit": "ms", "status": "pass", "name": "rate-limit"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "event", "expected"), COLUMN_SOURCES, ids=[c[0] for c in COLUMN_SOURCES])
def test_each_column_comes_from_the_right_field(
    name: str, event: dict[str, object], expected: dict[str, object]
) -> None:
    _, res = run([event], now_us=NOW_US)
    assert res.accepted == 1, res.rejected  # type: ignore[attr-defined]
    row = {column: values[0] for column, values in res.columns.items()}  # type: ignore[attr-defined]
    assert {k: row[k] for k in expected} == expected
    assert row["received_at"] == NOW_US and row["event_id"] == event["event_id"]


def test_enrichment_fills_model_and_provider_only_when_missing() -> None:
    proc, _ = run([make_event("metadata")])
    own = make_event("cost", payload={"asset_id": "asset-gpt4o", "model": "mine", "provider": None})
    res = proc.process([json.dumps(own).encode()])
    assert res.columns["model"] == ["mine"] and res.columns["provider"] == ["openai"]
    proc.process([json.dumps(make_event("metadata", payload={"action": "deleted"})).encode()])
    res = proc.process([json.dumps(make_event("cost", payload={"asset_id": "asset-gpt4o", "model": None})).encode()])
    assert res.columns["enrichment"] == [None] and res.columns["model"] == [None]


def test_accepted_keys_are_the_accepted_events_in_order() -> None:
    dup = make_event("cost")
    events = [make_event("cost", tags={"tenant_id": "acme"}), dup, b"{", dup, make_event("policy")]
    _, res = run(events)
    keys = res.accepted_keys  # type: ignore[attr-defined]
    assert keys == list(zip(res.columns["tenant_id"], res.columns["event_id"], strict=True))  # type: ignore[attr-defined]
    assert [k[0] for k in keys] == ["acme", "default", "default"] and keys[1][1] == dup["event_id"]


def test_unsupported_schema_versions_stay_rejected_after_many_distinct_versions() -> None:
    """The supported-major cache is bounded; versions past its size are still checked."""
    events = [make_event("cost", schema_version=f"{major}.{minor}.0") for major in (1, 2) for minor in range(300)]
    _, res = run(events)
    assert res.accepted == 300  # type: ignore[attr-defined]
    assert {r.index for r in res.rejected} == set(range(300, 600))  # type: ignore[attr-defined]
    assert all("unsupported schema_version" in r.reason for r in res.rejected)  # type: ignore[attr-defined]


# -- the deduplicator -----------------------------------------------------------------------------------
def test_dedup_tells_apart_tenants_and_ids_that_concatenate_alike() -> None:
    d = Deduplicator(window_seconds=300, max_ids=100)
    pairs = [("a", "b\x00c"), ("a\x00b", "c"), ("", "a\x00b\x00c"), ("3:a", "\x00bc"), ("a", "bc")]
    assert [d.seen_or_add(t, e, now=0.0) for t, e in pairs] == [False] * len(pairs)
    assert [d.seen_or_add(t, e, now=1.0) for t, e in pairs] == [True] * len(pairs)
    d.forget("a\x00b", "c")
    assert d.seen_or_add("a\x00b", "c", now=2.0) is False and d.seen_or_add("a", "b\x00c", now=2.0) is True


def test_dedup_keeps_no_object_the_garbage_collector_tracks_per_id() -> None:
    """A (tenant, id) tuple per remembered id was an object for the collector to traverse, up to
    ``max_ids`` of them for the whole window; one string per id is not."""
    d = Deduplicator(window_seconds=300, max_ids=10_000)
    for i in range(1000):
        d.seen_or_add("t1", f"id-{i}", now=0.0)
    assert not any(gc.is_tracked(key) for key in d._seen)
