"""What llm-registry told us about assets, joined onto later events by ``asset_id``.

>>> r = AssetRegistry()
>>> r.update("t", "m-1", {"name": "gpt-4o", "version": "2024-08", "asset_type": "model"})
>>> r.lookup("t", "m-1")["name"]
'gpt-4o'
"""

from __future__ import annotations

import threading
from typing import Any


class AssetRegistry:
    """A per-tenant map asset_id → metadata; rebuilt from stored metadata events at start."""

    def __init__(self, max_assets: int = 100_000) -> None:
        self.max_assets = max_assets
        self._assets: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def update(self, tenant: str, asset_id: str, meta: dict[str, Any] | None) -> None:
        """Record metadata; ``None`` removes the asset (a deletion)."""
        with self._lock:
            if meta is None:
                self._assets.pop((tenant, asset_id), None)
            elif (tenant, asset_id) in self._assets or len(self._assets) < self.max_assets:
                self._assets[(tenant, asset_id)] = meta

    def lookup(self, tenant: str, asset_id: str) -> dict[str, Any] | None:
        return self._assets.get((tenant, asset_id))

    def __len__(self) -> int:
        return len(self._assets)
