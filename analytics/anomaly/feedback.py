"""Feedback: false positives marked by a user tune detector weights and thresholds; JSON-serialisable.

Usage::

    from analytics.anomaly.feedback import FeedbackState

    state = FeedbackState()
    state.record_false_positive("2024-01-01T00:05:00", {"robust": 1.8, "seasonal": 0.4}, ensemble_score=1.2)
    text = state.to_json()                  # persist it
    same = FeedbackState.from_json(text)    # and load it back
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_THRESHOLD = 5.0
MIN_WEIGHT = 0.05
WEIGHT_DECAY = 0.7
THRESHOLD_STEP = 1.1
OVERSHOOT = 1.05


@dataclass
class Calibration:
    """What feedback has taught about one detector: its weight multiplier and threshold multiplier."""

    weight: float = 1.0
    threshold: float = 1.0
    false_positives: int = 0


@dataclass(frozen=True)
class FalsePositive:
    """One point a user said was not an anomaly."""

    timestamp: str
    detector: str | None
    detector_scores: dict[str, float]
    ensemble_score: float
    series: str | None = None  # which series of a shared state (None: any scored with this state)


@dataclass
class FeedbackState:
    """Per-detector calibrations, the ensemble threshold, and the history of false positives.

    Learning rule for a false positive: each blamed detector (the named one, or every detector that
    voted) loses 30 % of its weight (floor 0.05) and raises its threshold just above the score it gave
    (at least 10 %, at most 5x the default); the ensemble threshold does the same with the ensemble
    score when no single detector is named. A repeated pattern of the same size therefore stops firing.
    """

    detectors: dict[str, Calibration] = field(default_factory=dict)
    ensemble_threshold: float = 1.0
    history: list[FalsePositive] = field(default_factory=list)

    def calibration(self, name: str) -> Calibration:
        """The calibration of ``name`` (neutral if none was learned)."""
        return self.detectors.get(name, Calibration())

    def record_false_positive(
        self,
        timestamp: str,
        detector_scores: dict[str, float],
        ensemble_score: float,
        detector: str | None = None,
        series: str | None = None,
    ) -> None:
        """Learn from one false positive. Scores are the ones shown to the user (thresholds applied);
        ``series`` names the series when one state serves several (a service's query)."""
        if detector is not None:
            blamed = [detector]
        else:
            blamed = [name for name, s in detector_scores.items() if s > 1.0]
            self.ensemble_threshold = _raised(self.ensemble_threshold, ensemble_score)
        for name in blamed:
            cal = self.detectors.setdefault(name, Calibration())
            cal.weight = max(MIN_WEIGHT, cal.weight * WEIGHT_DECAY)
            cal.threshold = _raised(cal.threshold, detector_scores.get(name, 1.0))
            cal.false_positives += 1
        self.history.append(
            FalsePositive(str(timestamp), detector, dict(detector_scores), float(ensemble_score), series)
        )

    def replayed(self, keep: Callable[[FalsePositive], bool]) -> FeedbackState:
        """A state learned from the marks of :attr:`history` that ``keep`` accepts, in their order, as they
        were recorded (the scores shown then): how a mark is undone.

        >>> s = FeedbackState()
        >>> s.record_false_positive("t1", {"robust": 2.0}, 2.0); s.record_false_positive("t2", {"robust": 3.0}, 3.0)
        >>> undone = s.replayed(lambda fp: fp.timestamp != "t2")
        >>> [fp.timestamp for fp in undone.history], round(s.ensemble_threshold, 2), round(undone.ensemble_threshold, 2)
        (['t1'], 5.0, 2.1)
        """
        out = FeedbackState()
        for fp in self.history:
            if keep(fp):
                out.record_false_positive(fp.timestamp, dict(fp.detector_scores), fp.ensemble_score, fp.detector,
                                          fp.series)  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Serialise to a JSON string (a service persists this)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackState:
        return cls(
            detectors={k: Calibration(**v) for k, v in data.get("detectors", {}).items()},
            ensemble_threshold=float(data.get("ensemble_threshold", 1.0)),
            history=[FalsePositive(**h) for h in data.get("history", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> FeedbackState:
        """Load a state written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def _raised(threshold: float, shown_score: float) -> float:
    """New threshold multiplier: just above the shown score, at least one step up, capped."""
    return min(MAX_THRESHOLD, max(threshold * THRESHOLD_STEP, threshold * shown_score * OVERSHOOT))
