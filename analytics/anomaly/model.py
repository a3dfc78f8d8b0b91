"""Data model shared by every anomaly detector: severities, one anomaly, detector output, the protocol.

Usage::

    from analytics.anomaly.model import AnomalyScore, Severity

    Severity.from_score(2.7)          # Severity.HIGH
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import pandas as pd


class Severity(enum.StrEnum):
    """How bad an anomaly is; derived from its ``anomaly_score`` (> 1 means anomalous)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def from_score(cls, anomaly_score: float) -> Severity:
        """Map a score to a severity: [1, 1.5) low, [1.5, 2.5) medium, [2.5, 4) high, >= 4 critical."""
        if not np.isfinite(anomaly_score) or anomaly_score < 1.0:
            return cls.NONE
        if anomaly_score < 1.5:
            return cls.LOW
        if anomaly_score < 2.5:
            return cls.MEDIUM
        if anomaly_score < 4.0:
            return cls.HIGH
        return cls.CRITICAL


_SEVERITY_EDGES = np.array([1.0, 1.5, 2.5, 4.0])
_SEVERITY_NAMES = np.array([s.value for s in Severity])


def severities(scores: np.ndarray) -> np.ndarray:
    """Vectorised :meth:`Severity.from_score` returning an array of severity names."""
    clean = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0, posinf=1e9)
    return _SEVERITY_NAMES[np.searchsorted(_SEVERITY_EDGES, clean, side="right")]


@dataclass(frozen=True)
class AnomalyScore:
    """One detected anomaly, as the API and alerting layers see it.

    ``anomaly_score`` follows vmanomaly: above 1 is anomalous. ``expected_range`` is ``(lower, upper)``,
    the band the value was expected in (``yhat_lower``, ``yhat_upper``).
    """

    timestamp: pd.Timestamp
    value: float
    anomaly_score: float
    severity: Severity
    confidence: float
    detected_by: tuple[str, ...]
    expected_range: tuple[float, float]
    explanation: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly dict (timestamp in ISO-8601)."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "value": self.value,
            "anomaly_score": self.anomaly_score,
            "severity": self.severity.value,
            "confidence": self.confidence,
            "detected_by": list(self.detected_by),
            "expected_range": list(self.expected_range),
            "explanation": self.explanation,
        }


class DetectorOutput(NamedTuple):
    """Per-point causal output of one detector; every array has the input's length.

    ``anomaly_score`` > 1 means anomalous; ``yhat*`` is the expected value and band (NaN when unknown,
    e.g. during warm-up).
    """

    anomaly_score: np.ndarray
    yhat: np.ndarray
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray


@runtime_checkable
class Detector(Protocol):
    """The contract every detector honours.

    ``score`` is causal: the output at index ``t`` depends only on ``values[: t + 1]`` (and the
    matching timestamps). ``values`` is 1-D (one series) or 2-D ``(n, k)`` for ``k`` aligned series,
    column 0 being the target; univariate detectors use column 0 only.
    """

    name: str

    @property
    def available(self) -> bool:
        """False when an optional dependency (e.g. torch) is missing; the ensemble then skips it."""
        ...

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        """Score every point causally."""
        ...
