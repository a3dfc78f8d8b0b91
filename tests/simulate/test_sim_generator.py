"""The generator: valid events for every module, sane distributions, determinism, speed."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest

from hub.simulate import catalog as C
from hub.simulate.generator import (
    EXPECTED_EVENTS_PER_REQUEST,
    GeneratorState,
    encode_batch,
    encode_lines,
    generate_batch,
    generate_timed,
)
from hub.simulate.traces import TraceData, load_or_fallback, locate_traces_dir, repo_root, synthetic_traces
from hubcore.model.events import PAYLOAD_TYPES, SOURCE_MODULES, AnalyticsEvent
from processors.native_events import NativeEventsConfig, NativeEventsProcessor

T0 = 1_800_000_000.0  # a fixed start for reproducible timestamps


@pytest.fixture(scope="module")
def traces() -> TraceData:
    t, _warning = load_or_fallback()
    return t


@pytest.fixture(scope="module")
def events(traces: TraceData) -> list[dict]:
    state = GeneratorState.create(traces, rate=2000.0, t0=time.time())
    return generate_batch(30_000, np.random.default_rng(11), state)


def test_every_event_is_accepted_by_the_native_processor(events: list[dict]) -> None:
    raw = [msgspec.json.encode(e) for e in events]
    res = NativeEventsProcessor(NativeEventsConfig()).process(raw, tenant_id="sim")
    assert res.rejected == []
    assert res.accepted == len(events) and res.duplicates == 0


def test_every_event_decodes_into_the_typed_model(events: list[dict]) -> None:
    for raw in msgspec.json.decode(encode_batch(events), type=list[msgspec.Raw]):
        ev = msgspec.json.decode(raw, type=AnalyticsEvent)
        msgspec.json.decode(ev.payload, type=PAYLOAD_TYPES[ev.event_type])
        assert ev.schema_version == "1.0.0"
        assert ev.timestamp.endswith("Z")
        assert uuid.UUID(ev.event_id).version == 4


def test_all_six_modules_and_types_appear(events: list[dict]) -> None:
    assert {e["source_module"] for e in events} == set(SOURCE_MODULES)
    assert {e["event_type"] for e in events} == set(PAYLOAD_TYPES)
    # the registry announces every model first
    first = [e for e in events[:40] if e["event_type"] == "metadata"]
    assert {e["payload"]["asset_id"] for e in first} >= {m.asset_id for m in C.MODELS}


def test_distributions_are_sane(events: list[dict]) -> None:
    tel = [e["payload"] for e in events if e["event_type"] == "telemetry"]
    cost = [e["payload"] for e in events if e["event_type"] == "cost"]
    assert all(p["input_tokens"] > 0 for p in tel)
    assert all(p["output_tokens"] > 0 for p in tel if p.get("status", "ok") == "ok")
    assert all(p["value"] > 0 for p in tel)
    assert all(p["amount"] > 0 and p["cost_type"] == "token" for p in cost)
    err = [p for p in tel if p.get("status") == "error"]
    assert 0.005 < len(err) / len(tel) < 0.04
    assert {p["error_type"] for p in err} <= {"rate_limited", "timeout", "server_error"}
    currencies = Counter(p["currency"] for p in cost)
    assert 0.6 < currencies["USD"] / len(cost) < 0.95 and currencies["EUR"] > 0
    assert {p["model"] for p in tel} == {m.name for m in C.MODELS}
    assert {p["provider"] for p in tel} == {"openai", "anthropic", "meta", "mistral"}
    ms = np.array([p["value"] if p["unit"] == "ms" else p["value"] * 1000 for p in tel if "error_type" not in p])
    assert 200 < np.median(ms) < 20_000 and np.percentile(ms, 99.9) > 5 * np.median(ms)  # heavy tail
    pol = Counter(e["payload"]["result"] for e in events if e["event_type"] == "policy")
    assert pol["pass"] > 0.8 * sum(pol.values()) and pol["fail"] > 0 and pol["warn"] > 0
    gov = Counter(e["payload"]["action"] for e in events if e["event_type"] == "governance")
    assert gov["audit"] > 0.8 * sum(gov.values()) and gov["violation"] > 0
    viol = [e["payload"] for e in events if e["event_type"] == "governance" and e["payload"]["action"] == "violation"]
    assert all(v["regulation"] in {"GDPR", "SOC2", "HIPAA"} and not v["compliant"] for v in viol)
    sec = [e for e in events if e["event_type"] == "security"]
    assert 0 < len(sec) < 0.02 * len(tel)
    assert all(e["severity"] in {"warning", "error", "critical"} for e in sec)
    assert all({"source_ip", "user_id", "api_key_id"} <= e["payload"].keys() for e in sec)


def test_cost_matches_tokens_times_price(events: list[dict]) -> None:
    prices = {m.name: m for m in C.MODELS}
    for e in events:
        if e["event_type"] != "cost":
            continue
        p = e["payload"]
        m = prices[p["model"]]
        usd = p["input_tokens"] * m.price_in / 1000 + p["output_tokens"] * m.price_out / 1000
        expect = usd / C.USD_PER_EUR if p["currency"] == "EUR" else usd
        assert p["amount"] == pytest.approx(expect, rel=1e-6, abs=1e-9)


def _ms(timestamp: str) -> int:
    return round(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_correlated_events_share_the_request(events: list[dict]) -> None:
    by_corr: dict[str, list[dict]] = {}
    for e in events:
        if "correlation_id" in e:
            by_corr.setdefault(e["correlation_id"], []).append(e)
    for group in list(by_corr.values())[:3000]:
        types = Counter(e["event_type"] for e in group)
        assert types["telemetry"] <= 1 and types["cost"] <= 1
        tel = [e for e in group if e["event_type"] == "telemetry"]
        if tel and len(group) > 1:
            t = tel[0]
            for other in group:
                assert other["tags"]["project"] == t["tags"]["project"]
                assert other["payload"].get("model", t["payload"]["model"]) == t["payload"]["model"]
                # a few ms apart, in the order the platform handles a call: policy, security, the call, cost, audit
                offset = {"telemetry": 0, "policy": C.OFFSET_MS_POLICY, "security": C.OFFSET_MS_SECURITY,
                          "cost": C.OFFSET_MS_COST, "governance": C.OFFSET_MS_GOVERNANCE}[other["event_type"]]  # fmt: skip
                assert _ms(other["timestamp"]) - _ms(t["timestamp"]) == offset, (other["event_type"], group)


def test_exact_counts_and_rate_follow_the_schedule(traces: TraceData) -> None:
    state = GeneratorState.create(traces, rate=500.0, t0=T0)
    rng = np.random.default_rng(5)
    sizes = [1, 7, 500, 999, 0, 1000]
    total_events, total_times = [], []
    for n in sizes:
        ev, tt = generate_timed(n, rng, state)
        assert len(ev) == len(tt) == n
        total_events += ev
        total_times += tt
    ev, tt = generate_timed(40_000, rng, state)
    total_times += tt
    assert all(b >= a for a, b in itertools.pairwise(total_times))
    span = total_times[-1] - total_times[0]
    assert len(total_times) / span == pytest.approx(500.0, rel=0.35)
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() for e in ev[:100]]
    assert stamps[0] == pytest.approx(T0 + tt[0], abs=0.002)
    assert state.events == sum(sizes) + 40_000
    assert pytest.approx(len(total_times) / state.requests, rel=0.1) == EXPECTED_EVENTS_PER_REQUEST


def test_same_seed_same_events(traces: TraceData) -> None:
    def run(seed: int) -> bytes:
        state = GeneratorState.create(traces, rate=1000.0, t0=T0, tenant="acme")
        rng = np.random.default_rng(seed)
        return b"".join(encode_lines(generate_batch(n, rng, state)) for n in (100, 900, 3000))

    a, b, c = run(42), run(42), run(43)
    assert a == b
    assert a != c
    assert b'"tenant_id":"acme"' in a


def test_fallback_when_trace_files_are_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TRACES_DIR", str(tmp_path / "nowhere"))
    assert locate_traces_dir() == tmp_path / "nowhere"
    traces, warning = load_or_fallback()
    assert traces.synthetic and warning and "parametric" in warning
    state = GeneratorState.create(traces, rate=100.0)
    events = generate_batch(2000, np.random.default_rng(1), state)
    res = NativeEventsProcessor(NativeEventsConfig()).process([msgspec.json.encode(e) for e in events])
    assert res.rejected == [] and res.accepted == 2000


def test_default_location_is_next_to_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TRACES_DIR", raising=False)
    assert locate_traces_dir() == repo_root().parent / "shared" / "data" / "llm_traces"
    assert locate_traces_dir("/x/y") == Path("/x/y")


def test_empirical_traces_are_used_when_present(traces: TraceData) -> None:
    if traces.synthetic:
        pytest.skip("trace files are not available here")
    code = traces.workloads["code"]
    assert len(code.input_tokens) > 1000 and code.input_tokens.min() > 0
    assert traces.gaps.std() / traces.gaps.mean() > 1.0  # bursty arrivals


def test_a_long_run_at_a_high_rate_gives_distinct_valid_events(traces: TraceData) -> None:
    """100 batches at 100,000 events/s: every body decodes, and no event id repeats across batches.

    (No speed is asserted here: `hub simulate` reports its `achieved_rate` in its progress lines.)
    """
    state = GeneratorState.create(synthetic_traces(), rate=100_000.0, clock="wall")
    rng = np.random.default_rng(0)
    ids: set[str] = set()
    n = 0
    for _ in range(100):
        decoded = msgspec.json.decode(encode_batch(generate_batch(1000, rng, state)))
        assert len(decoded) == 1000
        ids.update(ev["event_id"] for ev in decoded)
        n += len(decoded)
    assert len(ids) == n == 100_000
