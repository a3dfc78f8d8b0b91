"""A bounded cache of the detectors' raw outputs, keyed by the detectors and the exact data they scored.

The raw outputs of the detectors (:meth:`AnomalyDetector.detector_scores`) do not depend on feedback:
thresholds, weights and marks are applied after them. A false-positive mark therefore changes how a
series' raw scores are combined, not the scores themselves, and the rescoring it triggers can reuse
the raw outputs of the last run on the same data. The key is a digest of the detectors' settings
(their ``repr``: every field of the dataclasses), the values (target and related columns) and the
timestamps, so any change of the data, or of a detector's settings, is a different key: nothing has to
be invalidated, and an entry that no longer matches any data ages out (least recently used first, once
``max_bytes`` is held).

>>> import numpy as np
>>> from analytics.anomaly.statistical import RobustDeviationDetector
>>> cache = RawScoreCache()
>>> d = [RobustDeviationDetector()]
>>> values = np.random.default_rng(0).normal(size=(500, 1))
>>> out = cache.get_or_compute(d, values, None, lambda: {"robust": d[0].score(values)})
>>> again = cache.get_or_compute(d, values, None, lambda: {"robust": d[0].score(values)})
>>> cache.hits, cache.misses, np.array_equal(out["robust"].anomaly_score, again["robust"].anomaly_score)
(1, 1, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hubcore.lru import SizedLRU

from .model import DetectorOutput

#: The default bound: the last run of about 170 series of 4 days of 1-minute buckets (two detectors).
#: Each run adds the outputs of the data it scored; the older ones, which no data matches any more,
#: go first.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _key(detectors: Sequence[Any], values: np.ndarray, timestamps: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(repr([repr(d) for d in detectors]).encode())
    v = np.ascontiguousarray(values, dtype=float)
    h.update(repr(v.shape).encode())
    h.update(v.tobytes())
    if timestamps is not None:
        t = np.ascontiguousarray(timestamps)
        h.update(f"{t.dtype}{t.shape}".encode())
        h.update(t.tobytes())
    return h.hexdigest()


def _frozen(output: DetectorOutput) -> DetectorOutput:
    """A read-only copy (a cached output is shared by every later hit: none may change it)."""
    arrays = []
    for a in output:
        c = np.array(a, dtype=float, copy=True)
        c.setflags(write=False)
        arrays.append(c)
    return DetectorOutput(*arrays)


class RawScoreCache(SizedLRU[dict[str, DetectorOutput]]):
    """Least-recently-used raw detector outputs, at most ``max_bytes`` of arrays (thread-safe)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_bytes)

    def get_or_compute(
        self, detectors: Sequence[Any], values: np.ndarray, timestamps: np.ndarray | None,
        compute: Callable[[], dict[str, DetectorOutput]],
    ) -> dict[str, DetectorOutput]:  # fmt: skip
        """The outputs for this data, computed (``compute``) only when not held already."""
        key = _key(detectors, values, timestamps)
        held = self.get(key)
        if held is not None:
            return dict(held)
        outputs = compute()
        frozen = {name: _frozen(o) for name, o in outputs.items()}
        self.put(key, frozen, sum(a.nbytes for o in frozen.values() for a in o))
        return outputs
