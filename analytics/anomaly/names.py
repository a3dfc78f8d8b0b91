"""The detectors' names, known without importing the detectors (pandas, scikit-learn, torch).

``hub detect --help`` lists them and ``hub detect --detectors`` is checked against them before the engine
is imported; :data:`analytics.anomaly.registry.DETECTOR_CLASSES` and
:func:`analytics.anomaly.ensemble.default_detectors` hold the same names (a test keeps them equal).
"""

from __future__ import annotations

#: Every detector's name, in the order of ``DETECTOR_CLASSES``.
DETECTOR_NAMES: tuple[str, ...] = ("robust", "seasonal", "iforest", "autoencoder", "lstm", "zscore")
#: The default ensemble's detectors, in the order of ``default_detectors()``.
DEFAULT_DETECTORS: tuple[str, ...] = ("robust", "seasonal", "iforest", "autoencoder")
