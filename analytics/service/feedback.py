"""Per-tenant, per-query feedback state of the anomaly ensemble, persisted as JSON in the data dir.

Layout: ``<data_dir>/analytics/feedback/<tenant>/<query>.json`` (``FeedbackState.to_json()``), written
atomically (temporary file + rename).

    >>> import tempfile
    >>> fs = FeedbackStore(tempfile.mkdtemp())
    >>> state = fs.load("acme", "latency_p95")
    >>> state.ensemble_threshold
    1.0
    >>> state.ensemble_threshold = 2.0; fs.save("acme", "latency_p95", state)
    >>> fs.load("acme", "latency_p95").ensemble_threshold
    2.0
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from analytics.anomaly import FeedbackState

__all__ = ["FeedbackStore"]

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _name(part: str) -> str:
    cleaned = _SAFE.sub("_", part)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}"


class FeedbackStore:
    """Loads and saves :class:`FeedbackState` per (tenant, query); thread-safe."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "analytics" / "feedback"
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], FeedbackState] = {}

    def path(self, tenant: str, query: str) -> Path:
        return self.root / _name(tenant) / f"{_name(query)}.json"

    def load(self, tenant: str, query: str) -> FeedbackState:
        """The saved state, or a neutral one (a copy: mutate it, then :meth:`save`)."""
        with self._lock:
            cached = self._cache.get((tenant, query))
            if cached is None:
                p = self.path(tenant, query)
                cached = FeedbackState.from_json(p.read_text()) if p.is_file() else FeedbackState()
                self._cache[(tenant, query)] = cached
            return FeedbackState.from_json(cached.to_json())

    def save(self, tenant: str, query: str, state: FeedbackState) -> None:
        p = self.path(tenant, query)
        with self._lock:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(".json.tmp")
            tmp.write_text(state.to_json())
            os.replace(tmp, p)
            self._cache[(tenant, query)] = FeedbackState.from_json(state.to_json())
