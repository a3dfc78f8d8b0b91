"""The streaming engine keeps one incident for one degradation across windows: a correlation with an earlier
root joining it, or the degradation found again a little later by another detector, had made a second
incident. Separate incidents (other dimension values, or far apart in time) stay separate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import analytics.correlation.engine as engine_module
from analytics.correlation import CorrelationEngine, build_frame
from analytics.correlation.model import Correlation
from analytics.correlation.scenarios import Dims, _Builder
from tests.correlation._data import T0, process

S = 1_000_000


def _events() -> tuple[pd.DataFrame, list[str]]:
    """Latency events of one model, one per second from T0 (ids in time order)."""
    b = _Builder(np.random.default_rng(1), Dims.pick(np.random.default_rng(1), 2))
    ids = [b.telemetry(T0 + k, 40_000.0 if k % 2 else 500.0, severity="warning" if k % 2 else None,
                       corr=f"req-{k}") for k in range(200)]  # fmt: skip
    return build_frame(process(b.events)), ids


def _corr(ctype: str, ids: list[str], first: int, last: int, dims: dict[str, str], key: str) -> Correlation:
    t0 = int(T0 * S)
    return Correlation.build(ctype, "t1", ids[first : last + 1], ["llm-observatory"], 0.8, f"{ctype} {key}",
                             t0 + first * S, t0 + last * S, key=key, root_event_id=ids[first], dimensions=dims)  # fmt: skip


def _stream(monkeypatch: pytest.MonkeyPatch, windows: list[list[Correlation]]) -> list[Any]:
    """Each window's detections (in place of the detectors), through the engine's own grouping."""
    df, _ = _events()
    queue = list(windows)
    monkeypatch.setattr(engine_module, "detect_all", lambda *a, **k: [Correlation(**{
        f: getattr(c, f) for f in Correlation.__slots__}) for c in queue.pop(0)])  # fmt: skip
    engine = CorrelationEngine(None)
    return [engine.analyze_frame(df, "t1") for _ in windows]


def test_an_earlier_rooted_correlation_joining_keeps_the_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    _, ids = _events()
    model = {"model": "m-1"}
    latency = _corr("anomaly", ids, 10, 20, model, "lat")
    # a flush later the temporal correlation of the same degradation, rooted earlier, shares its events
    trend = _corr("temporal", ids, 5, 15, {}, "trend")
    results = _stream(monkeypatch, [[latency], [latency, trend]])
    first, second = results[0].incidents, results[1].incidents
    assert len(first) == 1 and len(second) == 1
    assert second[0].id == first[0].id  # it had become another incident (its id follows the earliest root)
    assert sorted(second[0].types) == ["anomaly", "temporal"] and second[0].start_us == int(T0 * S) + 5 * S
    assert results[1].hypotheses[second[0].id]


def test_the_degradation_found_again_later_by_another_detector_is_the_same_incident(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, ids = _events()
    latency = _corr("anomaly", ids, 10, 20, {"model": "m-1"}, "lat")
    # 20 s after the latency anomaly left the window, the same model's cost/token signal: no shared event
    cost = _corr("performance_degradation", ids, 40, 50, {"model": "m-1", "component": "llm-observatory"}, "cost")
    results = _stream(monkeypatch, [[latency], [], [cost]])
    (one,), (two,) = results[0].incidents, results[2].incidents
    assert two.id == one.id
    assert set(two.correlation_ids) == {latency.id, cost.id}  # the earlier correlation is kept in it
    assert set(ids[10:21]) <= set(two.event_ids) and two.start_us == latency.start_us


def test_separate_incidents_stay_separate(monkeypatch: pytest.MonkeyPatch) -> None:
    _, ids = _events()
    a = _corr("anomaly", ids, 10, 20, {"model": "m-1"}, "a")
    other_model = _corr("anomaly", ids, 25, 30, {"model": "m-2"}, "b")
    much_later = _corr("performance_degradation", ids, 120, 130, {"model": "m-1"}, "c")
    results = _stream(monkeypatch, [[a], [other_model], [much_later]])
    seen = [inc.id for r in results for inc in r.incidents]
    assert len(seen) == 3 and len(set(seen)) == 3
    assert [r.incidents[0].correlation_ids for r in results] == [[a.id], [other_model.id], [much_later.id]]


def test_forget_drops_the_remembered_incidents(monkeypatch: pytest.MonkeyPatch) -> None:
    _, ids = _events()
    latency = _corr("anomaly", ids, 10, 20, {"model": "m-1"}, "lat")
    cost = _corr("performance_degradation", ids, 40, 50, {"model": "m-1"}, "cost")
    df, _ = _events()
    queue = [[latency], [cost]]
    monkeypatch.setattr(engine_module, "detect_all", lambda *a, **k: queue.pop(0))
    engine = CorrelationEngine(None)
    first = engine.analyze_frame(df, "t1").incidents[0]
    engine.forget("t1")
    second = engine.analyze_frame(df, "t1").incidents[0]
    assert second.id != first.id and second.correlation_ids == [cost.id]
