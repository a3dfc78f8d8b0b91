"""Scenarios change the traffic inside their window and record ground truth."""

from __future__ import annotations

import itertools
import statistics

import msgspec
import numpy as np
import pytest

from hub.simulate.generator import GeneratorState, generate_timed
from hub.simulate.scenarios import SCENARIOS, Scenario, ScenarioError, make_scenario, parse_spec, register
from hub.simulate.traces import synthetic_traces
from processors.native_events import NativeEventsConfig, NativeEventsProcessor

T0 = 1_800_000_000.0


def run(spec: str, n: int = 30_000, rate: float = 1000.0, seed: int = 3):
    scenario = make_scenario(spec, horizon_s=n / rate)
    state = GeneratorState.create(synthetic_traces(), rate=rate, t0=T0, scenario=scenario)
    events, times = generate_timed(n, np.random.default_rng(seed), state)
    return scenario, events, times


def latency_ms(p: dict) -> float:
    return p["value"] if p["unit"] == "ms" else p["value"] * 1000.0


def test_registry_has_the_required_scenarios() -> None:
    assert {"none", "latency_spike", "cost_spike", "injection_burst"} <= set(SCENARIOS)
    assert parse_spec("cost_spike:team=search, factor=4") == ("cost_spike", {"team": "search", "factor": "4"})
    for bad in ("nope", "latency_spike:model=gpt-5", "cost_spike:factor=x", "latency_spike:bogus=1", "none:x"):
        with pytest.raises(ScenarioError):
            make_scenario(bad, 60.0)


def test_none_changes_nothing() -> None:
    scenario, _events, _ = run("none", n=2000)
    assert scenario.truth() == {"scenario": "none", "description": scenario.description, "event_ids": []}


def test_latency_spike_multiplies_one_models_latency_in_the_window() -> None:
    scenario, events, times = run("latency_spike:model=gpt-4o,start=10,length=10,factor=5")
    inside, outside, other_inside = [], [], []
    for e, t in zip(events, times, strict=True):
        if e["event_type"] != "telemetry" or "error_type" in e["payload"]:
            continue
        p = e["payload"]
        if p["model"] == "gpt-4o":
            (inside if 10.5 <= t < 19.5 else outside if not 9.5 <= t < 20.5 else []).append(latency_ms(p))
        elif 10.5 <= t < 19.5:
            other_inside.append(latency_ms(p))
    ratio = statistics.median(inside) / statistics.median(outside)
    assert 3.0 < ratio < 8.0
    truth = scenario.truth()
    ids = set(truth["event_ids"])
    spiked = {e["event_id"] for e in events if e["event_type"] == "telemetry" and e["payload"]["model"] == "gpt-4o"
              and e["event_id"] in ids}  # fmt: skip
    assert spiked == ids and len(ids) > 100
    assert truth["target"]["model"] == "gpt-4o" and truth["window"]["start_offset_s"] == 10.0
    assert truth["window"]["start"].endswith("Z")


def test_cost_spike_multiplies_one_teams_traffic() -> None:
    scenario, events, times = run("cost_spike:team=marketing,start=10,length=10,factor=10", n=25_000)

    def share(lo: float, hi: float) -> float:
        costs = [e for e, t in zip(events, times, strict=True) if e["event_type"] == "cost" and lo <= t < hi]
        return sum(e["payload"]["team"] == "marketing" for e in costs) / len(costs)

    before, during = share(0, 10), share(10.5, 19.5)
    assert before < 0.2 and during > 2.5 * before
    per_s_during = sum(1 for t in times if 10.5 <= t < 19.5) / 9.0
    assert per_s_during > 1.5 * 1000.0  # the team's extra traffic comes on top
    truth = scenario.truth()
    assert truth["affected_events"] == len(truth["event_ids"]) > 0
    ids = set(truth["event_ids"])
    assert all(e["payload"]["team"] == "marketing" for e in events if e["event_id"] in ids)


def test_injection_burst_adds_findings_from_one_ip() -> None:
    scenario, events, times = run("injection_burst:ip=198.51.100.9,rate=50,start=5,length=10")
    assert all(b >= a for a, b in itertools.pairwise(times))
    burst = [e for e in events if e["event_type"] == "security" and e["payload"]["source_ip"] == "198.51.100.9"]
    assert 350 < len(burst) < 650
    assert {e["event_id"] for e in burst} == set(scenario.truth()["event_ids"])
    assert all(e["payload"]["threat_type"] == "prompt_injection" for e in burst)
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], now_us=int((T0 + 15) * 1e6)
    )
    assert res.rejected == []


def test_new_scenarios_can_be_registered() -> None:
    @register
    class Quiet(Scenario):
        name = "test_quiet"
        description = "for the test"

    try:
        assert isinstance(make_scenario("test_quiet", 10.0), Quiet)
    finally:
        SCENARIOS.pop("test_quiet")
