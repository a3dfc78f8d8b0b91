"""The detectors' raw outputs are reused for the same data: a false-positive mark rescores the query with
the outputs of the last run (only the thresholds changed), the answers are those of a full recomputation,
and new data is scored afresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from analytics.anomaly.raw_cache import RawScoreCache
from analytics.anomaly.statistical import RobustDeviationDetector
from analytics.service import AnalyticsService
from tests.analytics_service.test_svc_feedback_teams import (
    NOW,
    QUERY,
    SPIKE,
    T0,
    _scores,
    _spike_id,
    two_teams_service,
)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[AnalyticsService]:
    with two_teams_service(tmp_path) as service:
        yield service


def test_a_mark_reuses_the_raw_outputs_of_the_last_run_and_answers_as_a_full_rescoring(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    cache = svc.raw_scores
    assert (cache.hits, cache.misses) == (0, 2)  # one series per team, scored once
    before = _scores(svc)
    svc.mark_false_positive("default", _spike_id(svc, "ml"), scope="query")
    # the marked series' scoring and the rescoring of both series: no detector ran again
    assert (cache.hits, cache.misses) == (3, 2)
    after = _scores(svc)
    assert after["ml"].get(SPIKE, (0.0, False))[0] < before["ml"][SPIKE][0]
    cache.clear()  # the same rescoring with every detector run again gives the same answer
    svc.run_model("default", "anomaly", QUERY, NOW, refit=True)
    assert cache.misses == 4 and _scores(svc) == after


def test_new_data_in_the_window_is_scored_afresh(svc: AnalyticsService) -> None:
    svc.run_once(NOW, force=True)
    cache = svc.raw_scores
    assert (cache.hits, cache.misses) == (0, 2)
    # a late, slow request of team ml two hours ago changes that bucket's p95: ml's series is new data
    t = T0 + 22 * 3600 + 90
    svc.store.append("events", {"tenant_id": ["default"], "ts": [int(t * 1e6)], "event_type": ["telemetry"],
                                "name": ["gen_ai.client.operation.duration"], "value": [5_000.0], "status": ["ok"],
                                "team": ["ml"], "payload": ["{}"], "event_id": ["late"]})  # fmt: skip
    assert svc.store.flush(10.0)
    svc.run_model("default", "anomaly", QUERY, NOW, refit=True)
    assert (cache.hits, cache.misses) == (1, 3)  # search's series reused, ml's scored again


def test_the_cache_is_bounded_read_only_and_keyed_by_the_detectors_settings() -> None:
    values = np.random.default_rng(0).normal(size=(400, 1))
    runs: list[str] = []

    def compute(d: RobustDeviationDetector) -> dict[str, object]:
        runs.append(repr(d))
        return {"robust": d.score(values)}

    one = RawScoreCache()
    a, b = RobustDeviationDetector(), RobustDeviationDetector(min_periods=60)
    first = one.get_or_compute([a], values, None, lambda: compute(a))  # type: ignore[arg-type,return-value]
    held = one.get_or_compute([a], values, None, lambda: compute(a))  # type: ignore[arg-type,return-value]
    assert len(runs) == 1 and np.array_equal(first["robust"].anomaly_score, held["robust"].anomaly_score)
    with pytest.raises(ValueError):  # a hit is shared: it cannot be changed in place
        held["robust"].anomaly_score[0] = 0.0
    one.get_or_compute([b], values, None, lambda: compute(b))  # type: ignore[arg-type,return-value]
    assert len(runs) == 2 and (one.hits, one.misses, len(one)) == (1, 2, 2)
    other = values.copy()
    other[-1, 0] += 1.0
    one.get_or_compute([a], other, None, lambda: compute(a))  # type: ignore[arg-type,return-value]
    assert len(runs) == 3  # one value changed: another key
    entry = 4 * 400 * 8  # four arrays of 400 floats
    small = RawScoreCache(max_bytes=2 * entry)
    for v in (values, other, values + 2.0):
        small.get_or_compute([a], v, None, lambda v=v: {"robust": a.score(v)})  # type: ignore[misc]
    assert len(small) == 2  # the least recently used went
    small.get_or_compute([a], values, None, lambda: {"robust": a.score(values)})
    assert small.misses == 4
