"""Detectors by name: the names the service's ``params.detectors`` and ``hub detect --detectors`` accept.

Usage::

    from analytics.anomaly.registry import DETECTOR_CLASSES, make_detectors

    detectors = make_detectors(["robust", "seasonal"], min_periods=30)   # settings go to those that have them
    sorted(DETECTOR_CLASSES)   # ['autoencoder', 'iforest', 'lstm', 'robust', 'seasonal', 'zscore']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from .autoencoder import AutoencoderDetector, LSTMAutoencoderDetector
from .iforest import IsolationForestDetector
from .model import Detector
from .statistical import RobustDeviationDetector, RollingZScoreDetector, SeasonalResidualDetector

#: Every detector class by its ``name``.
DETECTOR_CLASSES: dict[str, type[Any]] = {
    "robust": RobustDeviationDetector,
    "seasonal": SeasonalResidualDetector,
    "iforest": IsolationForestDetector,
    "autoencoder": AutoencoderDetector,
    "lstm": LSTMAutoencoderDetector,
    "zscore": RollingZScoreDetector,
}


def make_detectors(names: Iterable[str], **settings: Any) -> list[Detector]:
    """One detector per name, each given the ``settings`` it has fields for (others are ignored).

    Raises ``ValueError`` naming an unknown detector and the known ones; an empty list is refused too.
    """
    chosen = list(names)
    if not chosen:
        raise ValueError(f"no detector named; choose from {', '.join(DETECTOR_CLASSES)}")
    out: list[Detector] = []
    for name in chosen:
        cls = DETECTOR_CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTOR_CLASSES)}")
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        out.append(cls(**{k: v for k, v in settings.items() if k in fields}))
    return out
