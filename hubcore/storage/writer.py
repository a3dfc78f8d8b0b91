"""The background writer of :class:`hubcore.storage.embedded.EmbeddedStore`: WAL records into DuckDB.

:class:`StoreWriterMixin` holds the writer thread's loop (batches of queued WAL records, merged per table and
inserted in one transaction that also records the last WAL sequence applied), the fallback that applies a
failed batch record by record and quarantines a record that cannot be stored because of its own values
(``quarantine.jsonl``), and the retention pass it runs when due. The state it works on is created by
``EmbeddedStore.__init__`` and ``start``, which starts the thread::

    self._writer = threading.Thread(target=self._run_writer, name="hub-store-writer", daemon=True)

A record's row count, and whether a failure is about the data (quarantined) or not (retried):

    >>> _rows({"tenant_id": ["t1", "t2"], "ts": [0, 1]})
    2
    >>> _is_data_error(OverflowError("int too big to convert")), _is_data_error(OSError("No space left"))
    (True, False)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from hubcore.mapping import EVENTS_INSERT_SQL
from hubcore.storage.tables import TABLES
from hubcore.storage.wal import WriteAheadLog

if TYPE_CHECKING:
    from hubcore.storage.embedded import AppliedListener, StoreStats

#: the logger of :mod:`hubcore.storage.embedded`, where this code was first: its records keep their logger name
log = logging.getLogger("hubcore.storage.embedded")

#: Each batch is written clustered by what queries filter on, so DuckDB's zone maps skip row groups
#: (a 3x faster dashboard query on 10 M events, benchmarks/query.py).
_ORDER = {
    "events": " ORDER BY tenant_id, event_type, name, ts",
    "metric_points": " ORDER BY tenant_id, name, ts",
    "logs": " ORDER BY tenant_id, service_name, ts",
    "spans": " ORDER BY tenant_id, service_name, start_ts",
}

#: What each batch is inserted as: an event's trace key (``events.trace_key``, by which a trace's event spans
#: are read: a 4-byte compare instead of hashing every event) is derived here, once, as the rows go in.
_INSERT = {"events": EVENTS_INSERT_SQL}


class StoreWriterMixin:
    """The writer thread of the store (see the module docstring)."""

    data_dir: Path
    wal_fsync: bool
    flush_rows: int
    flush_interval: float
    retention_check_interval: float
    stats: StoreStats
    _listeners: list[AppliedListener]
    _queue: queue.Queue[tuple[int, str, dict[str, list[Any]]] | None]
    _applied_cv: threading.Condition
    _applied_seq: int
    _stop: threading.Event
    _con: duckdb.DuckDBPyConnection | None
    _wal: WriteAheadLog | None
    _last_retention: float

    if TYPE_CHECKING:

        def enforce_retention(self, now_us: int | None = None, retention_days: int | None = None) -> int: ...

    def _run_writer(self) -> None:
        assert self._con is not None
        con = self._con.cursor()
        # a batch that failed for a reason that may pass (disk full, I/O): retried before anything newer,
        # so that rows are applied in WAL order and ``hub_wal_state`` never passes a row not yet stored
        pending: list[tuple[int, str, dict[str, list[Any]]]] = []
        while True:
            if pending:
                batch, pending = pending, []
                try:
                    self._apply(con, batch)
                except Exception:
                    pending = self._apply_each(con, batch)
                if pending:
                    if self._stop.is_set():
                        return  # shutting down: the log keeps what was not applied, for the next start
                    time.sleep(1.0)
                    continue
                self.stats.writer_error = None
                continue
            try:  # an idle hub still enforces retention (a tenant that stopped sending keeps no old data)
                first = self._queue.get(timeout=min(60.0, self.retention_check_interval))
            except queue.Empty:
                self._maybe_enforce_retention()
                continue
            if first is None:
                if self._queue.empty():
                    return
                continue
            batch = [first]
            rows = _rows(first[2])
            deadline = time.monotonic() + self.flush_interval
            while rows < self.flush_rows:
                left = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(left, 0.0)) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
                rows += _rows(item[2])
            try:
                self._apply(con, batch)
            except Exception:  # keep the writer alive; the WAL still holds the batch
                pending = self._apply_each(con, batch)
                if pending:
                    time.sleep(1.0)
                continue
            self._maybe_enforce_retention()

    def _apply_each(
        self, con: duckdb.DuckDBPyConnection, batch: list[tuple[int, str, dict[str, list[Any]]]]
    ) -> list[tuple[int, str, dict[str, list[Any]]]]:
        """After a merged batch failed: apply its WAL records one by one, in order. A record that cannot be
        stored because of its own values (an integer beyond BIGINT, a type DuckDB refuses) is quarantined —
        written to ``quarantine.jsonl`` with the reason and passed over — so one bad row never stops every
        later write. A failure that is not about the data (disk full, I/O) stops here: the records from it
        on are returned, to be retried first."""
        for i, item in enumerate(batch):
            try:
                self._apply(con, [item])
            except Exception as exc:
                if not _is_data_error(exc):
                    log.exception("store writer failed to apply a batch; will retry")
                    self.stats.writer_error = f"{type(exc).__name__}: {exc}"[:500]
                    return batch[i:]
                try:
                    self._quarantine(con, item, exc)
                except Exception as qexc:  # the quarantine file cannot be written (disk full): retry later
                    log.exception("store writer could not quarantine a batch; will retry")
                    self.stats.writer_error = f"{type(qexc).__name__}: {qexc}"[:500]
                    return batch[i:]
        return []

    def _quarantine(
        self, con: duckdb.DuckDBPyConnection, item: tuple[int, str, dict[str, list[Any]]], exc: Exception
    ) -> None:
        seq, kind, cols = item
        n = _rows(cols)
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        record = {"seq": seq, "kind": kind, "rows": n, "reason": reason, "quarantined_at": time.time(), "cols": cols}
        path = self.data_dir / "quarantine.jsonl"
        with path.open("ab") as f:  # the rows leave the WAL only once they are in this file
            # stdlib json: any int (msgspec stops at 64 bits, the very values that end up here), repr for the rest
            f.write(json.dumps(record, default=repr).encode() + b"\n")
            f.flush()
            if self.wal_fsync:
                os.fsync(f.fileno())
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT OR REPLACE INTO hub_wal_state VALUES (1, ?)", [seq])
        con.execute("COMMIT")
        self.stats.pending_rows -= n
        self.stats.quarantined_rows += n
        self.stats.quarantined_batches += 1
        log.error("store writer quarantined a batch it cannot store", extra={"seq": seq, "table": kind, "rows": n,
                                                                            "reason": reason, "file": str(path)})  # fmt: skip
        with self._applied_cv:
            self._applied_seq = max(self._applied_seq, seq)
            self._applied_cv.notify_all()
        if self._wal is not None:
            self._wal.truncate_through(seq)

    def _apply(self, con: duckdb.DuckDBPyConnection, batch: list[tuple[int, str, dict[str, list[Any]]]]) -> None:
        started = time.perf_counter()
        by_kind: dict[str, dict[str, list[Any]]] = {}
        for _seq, kind, cols in batch:
            merged = by_kind.setdefault(kind, {})
            n_before = _rows(merged)
            n_new = _rows(cols)
            for name in set(merged) | set(cols):
                dst = merged.setdefault(name, [None] * n_before)
                src = cols.get(name)
                dst.extend(src if src is not None else [None] * n_new)
        max_seq = max(seq for seq, _, _ in batch)
        touched: list[tuple[str, frozenset[str], int, int]] = []
        con.execute("BEGIN TRANSACTION")
        try:
            for kind, cols in by_kind.items():
                table = TABLES[kind]
                arrow_batch = table.to_arrow(cols)
                con.register("batch", arrow_batch)
                con.execute(
                    f"INSERT INTO {table.name} {_INSERT.get(kind, 'SELECT * FROM batch')}{_ORDER.get(kind, '')}"
                )
                con.unregister("batch")
                ts_col = cols.get(table.time_column) or [0]
                ts_vals = [t for t in ts_col if t is not None] or [0]
                tenants = frozenset(t for t in cols.get("tenant_id", []) if t is not None)
                touched.append((kind, tenants, min(ts_vals), max(ts_vals)))
            con.execute("INSERT OR REPLACE INTO hub_wal_state VALUES (1, ?)", [max_seq])
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(duckdb.Error):  # after a failed COMMIT there is no transaction left:
                con.execute("ROLLBACK")  # the error that matters ("No space left on device") is the first
            raise
        n = sum(_rows(c) for _, _, c in batch)
        self.stats.pending_rows -= n
        self.stats.applied_rows += n
        self.stats.applied_batches += len(batch)
        self.stats.last_flush_seconds = time.perf_counter() - started
        with self._applied_cv:
            self._applied_seq = max_seq
            self._applied_cv.notify_all()
        if self._wal is not None:
            self._wal.truncate_through(max_seq)
        for listener in self._listeners:
            for kind, tenants, lo, hi in touched:
                try:
                    listener(kind, tenants, lo, hi)
                except Exception:  # pragma: no cover - a listener must not break the writer
                    log.exception("store listener failed")

    def _maybe_enforce_retention(self) -> None:
        now = time.monotonic()
        if now - self._last_retention >= self.retention_check_interval:
            self._last_retention = now
            try:
                deleted = self.enforce_retention()
                if deleted:
                    log.info("retention removed old rows", extra={"rows": deleted})
            except Exception:  # pragma: no cover
                log.exception("retention failed")


def _is_data_error(exc: BaseException) -> bool:
    """Whether applying a batch failed because of its values (the same batch will always fail), rather
    than the disk or the database (retrying can succeed)."""
    return isinstance(exc, OverflowError | ValueError | TypeError | pa.ArrowException | duckdb.DataError)


def _rows(columns: dict[str, list[Any]]) -> int:
    for values in columns.values():
        return len(values)
    return 0
