"""Feedback removes alerts, it does not add them: an event marked as a false positive stays silent
while it lasts (unless it grows), and a silenced detector neither splits an event nor fakes growth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.anomaly import AnomalyDetector
from analytics.anomaly._rolling import run_onsets
from analytics.anomaly.ensemble import marked_events


def test_run_onsets_without_context_is_unchanged() -> None:
    flags = np.zeros(40, dtype=bool)
    flags[[3, 4, 5, 20, 30]] = True
    assert list(np.flatnonzero(run_onsets(flags, 5))) == [3, 20, 30]
    assert list(np.flatnonzero(run_onsets(flags, 10))) == [3, 20]


def test_an_event_that_starts_silenced_raises_no_onset_only_growth() -> None:
    flags = np.zeros(30, dtype=bool)
    context = np.zeros(30, dtype=bool)
    context[[2, 3, 4]] = True  # what would have been flagged without feedback: the marked event
    flags[[8, 12]] = True  # later points of the same event, still anomalous after feedback
    scores = np.ones(30)
    growth = np.full(30, 2.0)
    assert not run_onsets(flags, 5, scores, 3.0, context, growth).any()
    growth[12] = 6.5  # the event grows past 3x its first point: announced
    assert list(np.flatnonzero(run_onsets(flags, 5, scores, 3.0, context, growth))) == [12]
    # a flag after the event ended (more than `refractory` points later) is a new event
    flags[25] = True
    assert 25 in np.flatnonzero(run_onsets(flags, 5, scores, 3.0, context, growth))


def test_marked_events_keeps_only_the_events_holding_a_marked_point() -> None:
    flagged = np.zeros(50, dtype=bool)
    flagged[[5, 7, 9, 30, 31]] = True
    assert list(np.flatnonzero(marked_events(flagged, np.array([7]), 4))) == [5, 7, 9]
    assert list(np.flatnonzero(marked_events(flagged, np.array([31]), 4))) == [30, 31]
    assert not marked_events(flagged, np.array([20]), 4).any()
    assert not marked_events(flagged, np.zeros(0, dtype=np.int64), 4).any()


def burst_then_creep(seed: int) -> pd.DataFrame:
    """A burst at 2000 (the alert a user marks) after which the same event goes on: the level creeps up."""
    rng = np.random.default_rng(seed)
    n = 3000
    x = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 2, n)
    x[2000:2004] += 40
    x[2004:2200] += np.linspace(0, 12, 196)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="5min"), "value": x})


def alerts_after(scored: pd.DataFrame, start: int) -> list[int]:
    return [int(i) for i in np.flatnonzero(scored["is_anomaly"].to_numpy()) if i >= start]


@pytest.mark.parametrize("seed", range(4))
def test_marking_an_alert_silences_its_event(seed: int) -> None:
    df = burst_then_creep(seed)
    det = AnomalyDetector()
    before = alerts_after(det.score(df), 1990)
    assert before and before[0] == 2000
    det.mark_false_positive(df["timestamp"].iloc[2000])
    assert alerts_after(det.score(df), 1990) == []


@pytest.mark.parametrize("seed", range(4))
def test_marking_one_detector_never_adds_an_alert(seed: int) -> None:
    df = burst_then_creep(seed)
    det = AnomalyDetector()
    scored = det.score(df)
    before = alerts_after(scored, 1990)
    shown = {name: s[2000] for name, s in det.last_detector_scores.items()}
    det.mark_false_positive(df["timestamp"].iloc[2000], max(shown, key=lambda k: shown[k]))
    after = alerts_after(det.score(df), 1990)
    assert set(after) <= set(before), (before, after)


def test_a_shared_state_silences_marked_events_only_in_their_own_series() -> None:
    from analytics.anomaly import FeedbackState

    df = burst_then_creep(0)
    state = FeedbackState()
    a = AnomalyDetector(feedback=state, series='{"model":"a"}')
    a.score(df)
    a.mark_false_positive(df["timestamp"].iloc[2000])
    assert state.history[-1].series == '{"model":"a"}'
    b = AnomalyDetector(feedback=state, series='{"model":"b"}')
    ts = df["timestamp"].to_numpy()
    assert list(a._marked_points(ts, len(df))) == [2000]
    assert list(b._marked_points(ts, len(df))) == []  # B learns the thresholds, not A's event
    anywhere = AnomalyDetector(feedback=FeedbackState.from_json(state.to_json()))
    assert list(anywhere._marked_points(ts, len(df))) == []  # unnamed series: only unnamed marks
    old = json.loads(state.to_json())
    del old["history"][0]["series"]  # a state saved before marks named their series
    legacy = FeedbackState.from_dict(old)
    assert legacy.history[0].series is None
    assert list(AnomalyDetector(feedback=legacy)._marked_points(ts, len(df))) == [2000]


def test_marks_without_timestamps_are_positions() -> None:
    x = burst_then_creep(1)["value"].to_numpy()
    det = AnomalyDetector()
    det.score(x)
    det.mark_false_positive(2000)
    assert list(det._marked_points(None, x.size)) == [2000]
    assert list(det._marked_points(None, 1500)) == []  # a shorter series does not have that point
    assert alerts_after(det.score(x), 1990) == []
