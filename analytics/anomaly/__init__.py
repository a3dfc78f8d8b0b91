"""Anomaly detection for the hub's metric series (issue 5).

Causal detectors (rolling z-score, robust MAD/IQR, seasonal residuals, Isolation Forest, autoencoder)
combined by :class:`AnomalyDetector`, which outputs vmanomaly-style ``anomaly_score`` (> 1 anomalous),
``yhat``/``yhat_lower``/``yhat_upper``, severities, confidences and one-line explanations, and learns
from false positives.

Usage::

    import pandas as pd
    from analytics.anomaly import AnomalyDetector

    scored = AnomalyDetector().score(pd.read_csv("nab.csv", parse_dates=["timestamp"]))
    print(scored[scored.is_anomaly][["timestamp", "value", "severity", "explanation"]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubcore.lazy import lazy_attribute

if TYPE_CHECKING:
    from .autoencoder import AutoencoderDetector, LSTMAutoencoderDetector
    from .ensemble import OUTPUT_COLUMNS, AnomalyDetector, default_detectors, weights_from_accuracy
    from .feedback import Calibration, FeedbackState
    from .iforest import IsolationForestDetector
    from .model import AnomalyScore, Detector, DetectorOutput, Severity
    from .statistical import RobustDeviationDetector, RollingZScoreDetector, SeasonalResidualDetector

#: Each public name -> the submodule that defines it, imported on first use (:mod:`hubcore.lazy`): importing
#: ``analytics.anomaly.cli`` for ``hub detect --help`` does not import pandas, scikit-learn or torch.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(("AutoencoderDetector", "LSTMAutoencoderDetector"), "autoencoder"),
    **dict.fromkeys(("OUTPUT_COLUMNS", "AnomalyDetector", "default_detectors", "weights_from_accuracy"),
                    "ensemble"),
    **dict.fromkeys(("Calibration", "FeedbackState"), "feedback"),
    "IsolationForestDetector": "iforest",
    **dict.fromkeys(("AnomalyScore", "Detector", "DetectorOutput", "Severity"), "model"),
    **dict.fromkeys(("RobustDeviationDetector", "RollingZScoreDetector", "SeasonalResidualDetector"),
                    "statistical"),
}  # fmt: skip

__all__ = [
    "OUTPUT_COLUMNS",
    "AnomalyDetector",
    "AnomalyScore",
    "AutoencoderDetector",
    "Calibration",
    "Detector",
    "DetectorOutput",
    "FeedbackState",
    "IsolationForestDetector",
    "LSTMAutoencoderDetector",
    "RobustDeviationDetector",
    "RollingZScoreDetector",
    "SeasonalResidualDetector",
    "Severity",
    "default_detectors",
    "weights_from_accuracy",
]

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any misspelt name

    def __getattr__(name: str) -> Any:
        return lazy_attribute(__name__, _SOURCES, name)
