"""The embedded default store: DuckDB behind a write-ahead log and a background writer.

``append`` makes a batch durable (WAL, fsync) and returns; a writer thread moves batches into DuckDB in
large transactions (the Collector's persistent queue + batch processor). Each transaction records the
last WAL sequence it applied, so a restart replays exactly what is missing: nothing acknowledged is lost
and nothing is applied twice.

    >>> import tempfile
    >>> store = EmbeddedStore(tempfile.mkdtemp(), wal_fsync=False)
    >>> store.start()
    >>> _ = store.append("logs", {"tenant_id": ["t1"], "ts": [0], "body": ["hello"]})
    >>> store.flush(5.0)
    True
    >>> store.read("SELECT body FROM logs").fetchall()
    [('hello',)]
    >>> store.shutdown()
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from hubcore.errors import PermanentError, QueueFullError, StoreUnavailableError
from hubcore.mapping import (
    EVENT_TRACE_KEY_SQL,
    EVENTS_TO_POINTS_SQL,
    EVENTS_TO_SPANS_SQL,
    mapping_view_sql,
)
from hubcore.storage.lock import in_use_message
from hubcore.storage.tables import TABLES
from hubcore.storage.wal import WriteAheadLog
from hubcore.storage.writer import StoreWriterMixin, _rows

# the writer thread (_run_writer, _apply, _quarantine...) is StoreWriterMixin, in hubcore.storage.writer
__all__ = ["CHECKPOINT_THRESHOLD", "VIEWS", "AppliedListener", "EmbeddedStore", "StoreStats"]

log = logging.getLogger(__name__)

#: Native events are stored once; their OTel metric points and spans are views over ``events``
#: (the mapping of :mod:`hubcore.mapping`), and ``all_*`` views join them with the OTLP tables.
VIEWS = (
    mapping_view_sql("event_metric_points", EVENTS_TO_POINTS_SQL),
    mapping_view_sql("event_spans", EVENTS_TO_SPANS_SQL),
    "CREATE OR REPLACE VIEW all_metric_points AS "
    "SELECT * FROM metric_points UNION ALL BY NAME SELECT * FROM event_metric_points",
    "CREATE OR REPLACE VIEW all_spans AS SELECT * FROM spans UNION ALL BY NAME SELECT * FROM event_spans",
)


#: Columns added to a table after the first release: an existing database gets them when the store starts,
#: and its stored rows are filled in with this expression (None: left NULL).
_ADDED_COLUMNS: dict[str, dict[str, str | None]] = {"events": {"trace_key": EVENT_TRACE_KEY_SQL}}

#: DuckDB's own log is folded into ``hub.duckdb`` (a checkpoint) once it holds this much. DuckDB's default,
#: 16 MiB, checkpoints every few tens of thousands of events, each compressing small, partly filled row
#: groups (again): 64 MiB takes about 1.5 µs less CPU per stored event (≈ 9.5 instead of 11 µs
#: for the writer's batches, DuckDB's threads included) and leaves a file a fifth smaller. Commits are as
#: durable either way (DuckDB's log is synced at each commit); a restart after a crash replays at most this much.
CHECKPOINT_THRESHOLD = "64MiB"

#: Called after each commit with (kind, tenant ids, min ts µs, max ts µs) — e.g. to invalidate caches.
AppliedListener = Callable[[str, frozenset[str], int, int], None]


@dataclass
class StoreStats:
    appended_batches: int = 0
    applied_batches: int = 0
    pending_rows: int = 0
    applied_rows: int = 0
    last_flush_seconds: float = 0.0
    retention_deleted_rows: int = 0
    #: rows the writer could not store because of their values, kept in ``quarantine.jsonl``
    quarantined_rows: int = 0
    quarantined_batches: int = 0
    #: the last error that stopped the writer (disk, I/O) while it retries; None when it is applying
    writer_error: str | None = None


class EmbeddedStore(StoreWriterMixin):
    """One data directory: ``hub.duckdb`` and ``wal/``. One process owns it."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        wal_fsync: bool = True,
        max_pending_rows: int = 2_000_000,
        flush_rows: int = 50_000,
        flush_interval: float = 0.25,
        retention_days: int = 30,
        retention_check_interval: float = 3600.0,
        memory_limit: str | None = None,
        tenant_retention_days: dict[str, int] | None = None,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive")
        if max_pending_rows <= 0 or flush_rows <= 0:
            raise ValueError("max_pending_rows and flush_rows must be positive")
        self.data_dir = Path(data_dir)
        self.wal_fsync = wal_fsync
        self.max_pending_rows = max_pending_rows
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.retention_days = retention_days
        #: tenant -> days, overriding ``retention_days`` for that tenant
        self.tenant_retention_days = dict(tenant_retention_days or {})
        self.retention_check_interval = retention_check_interval
        self.memory_limit = memory_limit
        self.stats = StoreStats()
        self._listeners: list[AppliedListener] = []
        self._queue: queue.Queue[tuple[int, str, dict[str, list[Any]]] | None] = queue.Queue()
        self._append_lock = threading.Lock()
        self._maintenance_lock = threading.Lock()
        self._applied_cv = threading.Condition()
        self._applied_seq = 0
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._wal: WriteAheadLog | None = None
        self._started = False
        # the first pass runs about a minute after start, then every retention_check_interval
        self._last_retention = time.monotonic() - max(0.0, self.retention_check_interval - 60.0)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {"checkpoint_threshold": CHECKPOINT_THRESHOLD}
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        # The root connection only hands out cursors (one per thread or task); it never runs a query
        # itself, so creating a cursor never meets "connection is busy".
        try:
            self._con = duckdb.connect(str(self.data_dir / "hub.duckdb"), config=config)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            # another hub (or a DuckDB shell) has this data directory open; its WAL is not touched
            holder = re.search(r"PID (\d+)", str(exc))
            raise RuntimeError(in_use_message(self.data_dir, int(holder.group(1)) if holder else None)) from None
        setup = self._con.cursor()
        for table in TABLES.values():
            setup.execute(table.create_sql())
        _add_columns(setup)
        for statement in VIEWS:
            setup.execute(statement)
        setup.execute("CREATE TABLE IF NOT EXISTS hub_wal_state (id INTEGER PRIMARY KEY, applied_seq BIGINT)")
        row = setup.execute("SELECT applied_seq FROM hub_wal_state WHERE id = 1").fetchone()
        setup.close()
        self._applied_seq = int(row[0]) if row else 0
        # the floor: numbering continues above what the store applied even if the log lost its end
        self._wal = WriteAheadLog(self.data_dir / "wal", fsync=self.wal_fsync, min_seq=self._applied_seq)
        replayed = 0
        for seq, body in self._wal.replay(after=self._applied_seq):
            self._queue.put((seq, body["kind"], body["cols"]))
            self.stats.pending_rows += _rows(body["cols"])
            replayed += 1
        if replayed:
            log.info("replaying write-ahead log", extra={"batches": replayed, "after_seq": self._applied_seq})
        self._writer = threading.Thread(target=self._run_writer, name="hub-store-writer", daemon=True)
        self._started = True
        self._writer.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Flush what is queued (bounded by ``timeout``), stop the writer, close files. Idempotent."""
        if not self._started:
            return
        self.flush(timeout)
        self._stop.set()
        self._queue.put(None)
        if self._writer is not None:
            self._writer.join(timeout)
        if self._wal is not None:
            self._wal.close()
        if self._con is not None:
            try:
                self._con.cursor().execute("CHECKPOINT")
            except duckdb.Error:  # pragma: no cover - best effort
                log.exception("checkpoint failed at shutdown")
            self._con.close()
        self._started = False

    # -- writes -----------------------------------------------------------------------------------
    def append(self, kind: str, columns: dict[str, list[Any]], *, encoded: bytes | None = None) -> int:
        """Durably append a batch of rows for table ``kind``; returns its WAL sequence number.

        ``encoded``: ``msgpack({"kind": kind, "cols": columns})`` when the caller has it already (stack
        mode's pipeline encodes a batch once for the store and every export queue): logged as given.
        Raises :class:`QueueFullError` when more than ``max_pending_rows`` are waiting for the writer.
        """
        if kind not in TABLES:
            raise ValueError(f"unknown table {kind!r}")
        n = _rows(columns)
        if n == 0:
            return self._applied_seq
        if not self._started or self._wal is None:
            raise RuntimeError("store is not started")
        if self.stats.pending_rows + n > self.max_pending_rows:
            raise QueueFullError(
                f"ingest queue is full ({self.stats.pending_rows} rows waiting to be stored)",
                retry_after=max(1.0, self.flush_interval * 4),
            )
        with self._append_lock:  # queue order == WAL order; the fsync happens outside the lock
            try:
                seq = self._wal.write({"kind": kind, "cols": columns} if encoded is None else msgspec.Raw(encoded))
            except (OverflowError, TypeError, msgspec.EncodeError) as exc:  # encoded before anything is written
                raise PermanentError(f"rows cannot be logged: {exc}", reason="unencodable") from exc
            except OSError as exc:  # disk full, I/O: the WAL cut the partial record; nothing was kept
                raise StoreUnavailableError(
                    f"the store cannot write its log ({exc.strerror or exc}); retry later", retry_after=5.0
                ) from exc
            self.stats.pending_rows += n
            self.stats.appended_batches += 1
            self._queue.put((seq, kind, columns))
        self._wal.sync(seq)  # group commit with concurrent appends; only then is the batch acknowledged
        return seq

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything appended so far is in DuckDB. Returns False on timeout."""
        if not self._started or self._wal is None:
            return True
        target = self._wal.last_seq
        deadline = time.monotonic() + timeout
        with self._applied_cv:
            while self._applied_seq < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied_cv.wait(left)
        return True

    def add_listener(self, listener: AppliedListener) -> None:
        self._listeners.append(listener)

    def notify_changed(self, kind: str, tenants: frozenset[str], min_ts_us: int, max_ts_us: int) -> None:
        """Tell the listeners (the query cache) that rows of ``kind`` changed outside the writer (an erasure)."""
        for listener in self._listeners:
            try:
                listener(kind, tenants, min_ts_us, max_ts_us)
            except Exception:  # pragma: no cover - a listener must not break the caller
                log.exception("store listener failed")

    # -- reads ------------------------------------------------------------------------------------
    def read(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run a read query on a fresh cursor (thread-safe). Always pass user values as ``params``."""
        return self.cursor().execute(sql, params or [])

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("store is not started")
        return self._con.cursor()

    @property
    def applied_seq(self) -> int:
        return self._applied_seq

    @property
    def ready(self) -> bool:
        """The writer runs and is not stuck retrying a write that fails (disk full, I/O)."""
        alive = self._started and self._writer is not None and self._writer.is_alive()
        return alive and self.stats.writer_error is None

    def wal_bytes(self) -> int:
        return self._wal.size_bytes() if self._wal is not None else 0

    # -- retention --------------------------------------------------------------------------------
    def enforce_retention(self, now_us: int | None = None, retention_days: int | None = None) -> int:
        """Delete rows older than the retention period from every table; returns rows deleted.

        Rows arrive roughly in time order, so whole DuckDB row groups go at once (zone maps on ``ts``).
        """
        now_us = now_us if now_us is not None else int(time.time() * 1e6)
        days = retention_days or self.retention_days
        cutoff = now_us - days * 86_400_000_000
        overrides = self.tenant_retention_days
        deleted = 0
        with self._maintenance_lock:  # one deleter at a time (DuckDB refuses concurrent deletes of a row)
            cur = self.cursor()
            for table in TABLES.values():
                col = table.time_column
                others = ""
                params: list[Any] = [cutoff]
                if overrides:
                    others = f" AND tenant_id NOT IN ({', '.join('?' * len(overrides))})"
                    params += list(overrides)
                res = cur.execute(
                    f"DELETE FROM {table.name} WHERE {col} < make_timestamp(?){others}", params
                ).fetchone()
                deleted += int(res[0]) if res else 0
                for tenant, tdays in overrides.items():  # per-tenant retention
                    res = cur.execute(
                        f"DELETE FROM {table.name} WHERE tenant_id = ? AND {col} < make_timestamp(?)",
                        [tenant, now_us - tdays * 86_400_000_000],
                    ).fetchone()
                    deleted += int(res[0]) if res else 0
        self.stats.retention_deleted_rows += deleted
        return deleted


def _add_columns(cur: duckdb.DuckDBPyConnection) -> None:
    """Give a database made by an earlier hub the columns of :data:`_ADDED_COLUMNS` (appended, in the order of
    :data:`TABLES`, so inserts by position still line up), filling them in for the rows already stored."""
    for name, added in _ADDED_COLUMNS.items():
        have = {r[0] for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
            [name],
        ).fetchall()}  # fmt: skip
        for column in TABLES[name].columns:
            if column.name in have or column.name not in added:
                continue
            cur.execute(f"ALTER TABLE {name} ADD COLUMN {column.name} {column.sql}")
            fill = added[column.name]
            if fill is not None:
                cur.execute(f"UPDATE {name} SET {column.name} = {fill}")
            log.info("added a column to a table of an earlier hub", extra={"table": name, "column": column.name})
