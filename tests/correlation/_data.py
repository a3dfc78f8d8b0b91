"""Test data: a small slice of normal traffic (hub.simulate) normalised by the real processor.

Imported by conftest and tests alike (one module, so one ``T0``)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import numpy as np

from analytics.correlation.scenarios import Injected
from hub.simulate import GeneratorState, generate_timed, synthetic_traces
from hubcore.config import NativeEventsConfig
from processors.native_events.processor import NativeEventsProcessor

T0 = float(int(time.time()) - 1800)
DURATION = 90.0
#: The injected scenario (analytics.correlation.scenarios) that each correlation type must find (the
#: eighth type, performance degradation, comes from service traffic with a degraded dependency).
CASES = {
    "causal_chain": "security_chain",
    "temporal": "provider_outage",
    "pattern": "retry_storm",
    "anomaly": "model_rollout",
    "cost_impact": "failed_billing",
    "security_incident": "attack_campaign",
    "compliance_cascade": "rate_limit_cascade",
}


def process(events: list[dict[str, Any]], tenant: str = "t1") -> dict[str, list[Any]]:
    proc = NativeEventsProcessor(NativeEventsConfig())
    res = proc.process([msgspec.json.encode(e) for e in events], tenant_id=tenant, now_us=int(time.time() * 1e6))
    assert not res.rejected, res.rejected[:3]
    return res.columns


def noise(seed: int = 11) -> list[dict[str, Any]]:
    state = GeneratorState.create(synthetic_traces(), rate=60.0, t0=T0)
    events, _ = generate_timed(int(60 * DURATION), np.random.default_rng(seed), state)
    return events


def with_incident(
    noise: list[dict[str, Any]], inj: Injected, extra: list[dict[str, Any]] | None = None
) -> dict[str, list[Any]]:
    return process([*noise, *inj.events, *(extra or [])])
