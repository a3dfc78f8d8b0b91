"""The ensemble's voters and their votes: default detectors and weights, votes that last a few points, and
the events a false-positive mark silences.

Usage::

    import numpy as np
    from analytics.anomaly.voting import marked_events, weights_from_accuracy

    flagged = np.zeros(12, dtype=bool); flagged[[2, 4, 10]] = True
    marked_events(flagged, np.array([4]), refractory=3)   # True at 2 and 4 (one event), not at 10
    weights_from_accuracy({"robust": 0.6, "iforest": 0.2})   # robust 0.75, iforest 0.25

These names are re-exported by :mod:`analytics.anomaly.ensemble`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .autoencoder import AutoencoderDetector
from .iforest import IsolationForestDetector
from .model import Detector
from .statistical import RobustDeviationDetector, SeasonalResidualDetector

#: Relative weights: each detector's F1 alone on the NAB benchmark (``benchmarks/anomaly_eval.py``,
#: ``per_detector_overall``; see docs/anomaly.md).
DEFAULT_WEIGHTS: dict[str, float] = {"robust": 0.667, "seasonal": 0.471, "iforest": 0.511, "autoencoder": 0.4}


def default_detectors() -> list[Detector]:
    """The default detectors: robust multi-scale, seasonal residual, Isolation Forest, autoencoder."""
    return [
        RobustDeviationDetector(),
        SeasonalResidualDetector(),
        IsolationForestDetector(),
        AutoencoderDetector(),
    ]


def weights_from_accuracy(f1_by_detector: Mapping[str, float], floor: float = 0.05) -> dict[str, float]:
    """Turn measured accuracies (e.g. F1 per detector on labelled data) into weights summing to 1."""
    raw = {name: max(floor, float(f1)) for name, f1 in f1_by_detector.items()}
    total = sum(raw.values())
    return {name: w / total for name, w in raw.items()}


def marked_events(flagged: np.ndarray, marked: np.ndarray, refractory: int) -> np.ndarray:
    """The ``flagged`` points of the events (flags at most ``refractory`` apart) that contain a point of
    ``marked``; all False when none does."""
    out = np.zeros(flagged.size, dtype=bool)
    idx = np.flatnonzero(flagged)
    if not idx.size or not marked.size:
        return out
    event = np.cumsum(np.diff(idx, prepend=-(refractory + 2)) > max(refractory, 0))
    hit = np.unique(event[np.isin(idx, marked)])
    out[idx[np.isin(event, hit)]] = True
    return out


def _trailing_max(mat: np.ndarray, width: int) -> np.ndarray:
    """Row-wise causal maximum over the last ``width`` columns."""
    if width <= 1 or mat.size == 0:
        return mat
    return pd.DataFrame(mat.T).rolling(width, min_periods=1).max().to_numpy().T
