"""Related series: the columns a multivariate detector sees next to a series (``ModelSpec.related``).

A related series belongs with a target series when they carry the same values on every label they
share (``error_rate{model="gpt-4o"}`` with ``latency_p95{environment="prod", model="gpt-4o"}``); a
related series with no labels at all (a global one) belongs with every target; one that shares no
label with the target (cost by team next to latency by model) does not. Values are aligned causally:
at each target bucket, the last related bucket that had *ended* by the end of the target bucket.

    >>> import numpy as np
    >>> from analytics.service.series import Series
    >>> lat = Series({"model": "a"}, np.array([0, 300, 600]), np.array([1.0, 2.0, 3.0]), 300)
    >>> err = Series({"model": "a"}, np.array([0, 300, 600]), np.array([0.1, 0.2, 0.3]), 300)
    >>> other = Series({"model": "b"}, np.array([0, 300, 600]), np.array([9.0, 9.0, 9.0]), 300)
    >>> related_columns(lat, {"errors": [err, other]})
    {'related:errors': array([0.1, 0.2, 0.3])}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from analytics.service.series import Series

__all__ = ["MAX_PER_QUERY", "aligned", "belongs", "related_columns"]

#: At most this many related series of one query per target (the first in label order).
MAX_PER_QUERY = 4


def belongs(target: Series, related: Series) -> bool:
    """True when ``related`` describes the same thing as ``target`` (see the module docstring)."""
    if not related.labels:
        return True
    shared = set(target.labels) & set(related.labels)
    return bool(shared) and all(target.labels[k] == related.labels[k] for k in shared)


def aligned(target: Series, related: Series) -> np.ndarray:
    """``related``'s values on ``target``'s buckets: the last related bucket ended by each target
    bucket's end (NaN before the first); never a bucket still open at that time."""
    ends = related.ts.astype(np.int64) + related.step
    idx = np.searchsorted(ends, target.ts.astype(np.int64) + target.step, side="right") - 1
    out = np.full(target.ts.size, np.nan)
    ok = idx >= 0
    out[ok] = related.values[idx[ok]]
    return out


def related_columns(target: Series, related: Mapping[str, Sequence[Series]]) -> dict[str, np.ndarray]:
    """The extra columns of ``target``: ``related:<query>`` (or ``related:<query><labels>`` when a
    query has several matching series), aligned on ``target``'s buckets."""
    out: dict[str, np.ndarray] = {}
    for query, candidates in related.items():
        matches = [r for r in candidates if belongs(target, r) and r.ts.size][:MAX_PER_QUERY]
        for r in matches:
            name = f"related:{query}" if len(matches) == 1 else f"related:{query}{r.key}"
            out[name] = aligned(target, r)
    return out
