"""Each correlation type is found on a small injected incident, and not on normal traffic alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analytics.correlation import CORRELATION_TYPES, EngineConfig, build_frame, detect_all
from analytics.correlation.scenarios import SCENARIOS, Dims, Injected, service_traffic
from tests.correlation._data import CASES, DURATION, T0, with_incident


def _inject(name: str, seed: int = 3) -> Injected:
    rng = np.random.default_rng(seed)
    return SCENARIOS[name](rng, T0 + 30.0, Dims.pick(rng, 4))


@pytest.mark.parametrize("ctype", sorted(CASES))
def test_type_detected_on_its_incident(ctype: str, noise_events: list[dict[str, Any]]) -> None:
    inj = _inject(CASES[ctype])
    df = build_frame(with_incident(noise_events, inj))
    found = [c for c in detect_all(df, "t1", EngineConfig()) if c.type == ctype]
    truth = set(inj.truth.event_ids)
    best = max((len(truth & set(c.event_ids)) / len(truth) for c in found), default=0.0)
    assert best >= 0.5, (ctype, best, [c.explanation for c in found])
    hit = max(found, key=lambda c: len(truth & set(c.event_ids)))
    assert 0 < hit.confidence <= 1 and hit.explanation and hit.tenant_id == "t1"
    assert set(hit.impact) == {"performance", "cost", "security", "business"}


def test_performance_degradation_detected(noise_events: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(5)
    svc = service_traffic(rng, T0, T0 + DURATION, 2.0, (T0 + 25.0, 30.0))
    df = build_frame(with_incident(noise_events, Injected([], svc.truth), svc.events))
    found = [c for c in detect_all(df, "t1", EngineConfig()) if c.type == "performance_degradation"]
    assert found, "no degradation found"
    top = max(found, key=lambda c: len(c.event_ids))
    assert top.explanation.startswith("degradation propagated vector-db")
    assert len(set(top.event_ids) & set(svc.truth.event_ids)) >= 0.5 * len(top.event_ids)


def test_nothing_on_normal_traffic(noise_columns: dict[str, list[Any]]) -> None:
    rng = np.random.default_rng(5)
    svc = service_traffic(rng, T0, T0 + DURATION, 2.0, None)
    from tests.correlation._data import process

    cols = process(svc.events)
    merged = {k: [*noise_columns[k], *cols[k]] for k in noise_columns}
    found = detect_all(build_frame(merged), "t1", EngineConfig())
    assert {c.type for c in found} & set(CORRELATION_TYPES) == set(), [c.explanation for c in found]
