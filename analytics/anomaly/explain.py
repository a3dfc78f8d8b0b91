"""One human line per anomaly, and numbers written as people read them.

Usage::

    from analytics.anomaly.explain import explain, number

    number(53700.0)   # '53,700'
    explain(53700.0, 310.0, 20250.0, "high", 3.1, ["robust", "iforest"])
    # 'high anomaly (score 3.10): 53,700 is above the expected range [310, 20,250]; flagged by robust, iforest'

These names are re-exported by :mod:`analytics.anomaly.ensemble` (the column ``explanation``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def number(v: float) -> str:
    """A value as people read it: ``53,700``, ``812``, ``3.142``, ``0.0125``; ``1.2e+20`` beyond 1e15."""
    if not np.isfinite(v):
        return str(v)
    if 1000 <= abs(v) < 1e15:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def explain(value: float, lower: float, upper: float, severity: str, score: float, by: Sequence[str]) -> str:
    """One human line about an anomaly, e.g. ``high anomaly (score 3.10): 53,700 is above the expected
    range [310, 20,250]; flagged by robust, iforest``."""
    who = ", ".join(by)
    band = f"[{number(lower)}, {number(upper)}]"
    if np.isfinite(upper) and value > upper:
        where = f"{number(value)} is above the expected range {band}"
    elif np.isfinite(lower) and value < lower:
        where = f"{number(value)} is below the expected range {band}"
    else:
        where = f"the recent pattern around {number(value)} is unusual"
    return f"{severity} anomaly (score {score:.2f}): {where}; flagged by {who}"
