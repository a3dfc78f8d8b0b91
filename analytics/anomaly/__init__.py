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

from .autoencoder import AutoencoderDetector, LSTMAutoencoderDetector
from .ensemble import OUTPUT_COLUMNS, AnomalyDetector, default_detectors, weights_from_accuracy
from .feedback import Calibration, FeedbackState
from .iforest import IsolationForestDetector
from .model import AnomalyScore, Detector, DetectorOutput, Severity
from .statistical import RobustDeviationDetector, RollingZScoreDetector, SeasonalResidualDetector

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
