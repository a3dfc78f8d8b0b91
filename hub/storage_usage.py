"""How many bytes each tenant occupies in the embedded store, estimated cheaply for storage quotas.

Rows per tenant (all tables) times the store's average bytes per row; recomputed at most every
``refresh_seconds`` (the first call computes synchronously, later ones return the cached figure).

    >>> u = StorageUsage(store=None, refresh_seconds=60)   # doctest: +SKIP
    >>> u.bytes_for("acme")                                  # doctest: +SKIP
    123456
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hubcore.storage.embedded import EmbeddedStore
from hubcore.storage.tables import TABLES


class StorageUsage:
    def __init__(self, store: EmbeddedStore, *, refresh_seconds: float = 60.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._bytes: dict[str, int] = {}
        self._at = float("-inf")
        self._lock = threading.Lock()

    def bytes_for(self, tenant_id: str) -> int:
        if time.monotonic() - self._at >= self.refresh_seconds and self._lock.acquire(blocking=False):
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._bytes.get(tenant_id, 0)

    def _refresh(self) -> None:
        rows: dict[str, int] = {}
        for table in TABLES.values():
            for tenant, n in self.store.read(f"SELECT tenant_id, count(*) FROM {table.name} GROUP BY 1").fetchall():
                rows[tenant] = rows.get(tenant, 0) + int(n)
        total_rows = sum(rows.values()) or 1
        db = Path(self.store.data_dir) / "hub.duckdb"
        size = db.stat().st_size if db.exists() else 0
        per_row = size / total_rows
        self._bytes = {t: int(n * per_row) for t, n in rows.items()}
        self._at = time.monotonic()
