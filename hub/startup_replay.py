"""What a start recovers from the data directory before the hub serves.

:class:`StartupReplayMixin` holds :class:`~hub.service.HubService`'s wait for the write-ahead log replay (at most
:data:`STARTUP_REPLAY_TIMEOUT`, a progress line every :data:`REPLAY_PROGRESS_SECONDS`, ended at once by a stop
request), the registry metadata and recent event ids rebuilt from the store, and the one-line error for a
``hub.duckdb`` that cannot be used.

    >>> STARTUP_REPLAY_TIMEOUT, REPLAY_PROGRESS_SECONDS
    (300.0, 10.0)
    >>> _REPLAY_POLL_SECONDS < REPLAY_PROGRESS_SECONDS   # the wait is sliced: a stop request is seen promptly
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import duckdb
import msgspec

if TYPE_CHECKING:
    from hub.pipeline import IngestPipeline
    from hubcore.config import HubConfig
    from hubcore.storage.embedded import EmbeddedStore

log = logging.getLogger("hub")

#: How long startup waits for the write-ahead log replay before it serves anyway (the rest is then applied
#: in the background, behind new writes). A stop request (SIGTERM) ends the wait at once.
STARTUP_REPLAY_TIMEOUT = 300.0
#: How often a long startup replay logs its progress.
REPLAY_PROGRESS_SECONDS = 10.0
#: The replay is waited for in slices this long, so that a stop request is seen promptly.
_REPLAY_POLL_SECONDS = 0.25


class StartupReplayMixin:
    """The startup replay and state rebuild (part of :class:`~hub.service.HubService`, which sets this state)."""

    config: HubConfig
    store: EmbeddedStore
    pipeline: IngestPipeline
    _stop: asyncio.Event

    async def _wait_for_replay(self) -> bool:
        """Wait until the store has applied what the write-ahead log replayed at start (at most
        :data:`STARTUP_REPLAY_TIMEOUT`), logging progress every :data:`REPLAY_PROGRESS_SECONDS`. False when a
        stop was requested meanwhile: then the hub does not serve."""
        began = time.monotonic()
        next_report = began + REPLAY_PROGRESS_SECONDS
        while not self._stop.is_set():
            left = began + STARTUP_REPLAY_TIMEOUT - time.monotonic()
            if left <= 0:
                log.warning(
                    "write-ahead log replay not finished; serving anyway, the rest is applied in the background",
                    extra=self._replay_progress(began),
                )
                return True
            if await asyncio.to_thread(self.store.flush, min(_REPLAY_POLL_SECONDS, left)):
                if time.monotonic() - began >= REPLAY_PROGRESS_SECONDS:
                    log.info("write-ahead log replayed", extra=self._replay_progress(began))
                return True
            if time.monotonic() >= next_report:
                log.info("replaying write-ahead log", extra=self._replay_progress(began))
                next_report += REPLAY_PROGRESS_SECONDS
        return False

    def _replay_progress(self, began: float) -> dict[str, Any]:
        stats = self.store.stats
        return {
            "applied_rows": stats.applied_rows,
            "pending_rows": stats.pending_rows,
            "elapsed_seconds": round(time.monotonic() - began, 1),
        }

    @contextlib.contextmanager
    def _database_errors(self) -> Generator[None, None, None]:
        """A DuckDB error while opening or reading ``hub.duckdb`` (not a DuckDB file, a checksum error) as
        one line that names the file."""
        try:
            yield
        except duckdb.Error as exc:
            path = self.store.data_dir / "hub.duckdb"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(
                f"the database {path} cannot be used ({reason}); restore it from a backup, or move it aside "
                "to start with an empty one (what it held is lost; the write-ahead log holds only what was not "
                "applied yet)"
            ) from None

    def _rebuild_state(self) -> None:
        """Registry metadata and recent event ids come back from the store after a restart."""
        proc = self.pipeline.processor
        rows = self.store.read(
            "SELECT tenant_id, asset_id, status, payload FROM events WHERE event_type = 'metadata' ORDER BY ts"
        ).fetchall()
        for tenant, asset_id, status, payload in rows:
            p = msgspec.json.decode(payload)
            meta = None if status == "deleted" else {
                **p.get("attributes", {}), "asset_type": p.get("asset_type"), "name": p.get("name"),
                "version": p.get("version", ""), "provider": p.get("provider"), "owner": p.get("owner"),
            }  # fmt: skip
            proc.registry.update(tenant, asset_id, meta)
        window = self.config.processors.native_events.dedup_window
        recent = self.store.read(
            "SELECT tenant_id, event_id, epoch(received_at) FROM events "
            "WHERE received_at >= now()::TIMESTAMP - to_microseconds(?) ORDER BY received_at",
            [int(window * 1e6)],
        ).fetchall()
        for tenant, event_id, received in recent:
            proc.dedup.seen_or_add(tenant, event_id, float(received))
