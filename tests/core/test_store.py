"""The embedded store: durable appends, the OTel mapping of native events, retention, restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubcore.config import NativeEventsConfig
from hubcore.errors import PermanentError, QueueFullError
from hubcore.storage.embedded import EmbeddedStore
from processors.native_events import NativeEventsProcessor
from tests.helpers.events import EVENT_TYPES, make_event

REPO = Path(__file__).resolve().parents[2]


def events_columns(events: list[dict[str, object]], tenant: str = "t1") -> dict[str, list[object]]:
    proc = NativeEventsProcessor(NativeEventsConfig())
    res = proc.process([json.dumps(e).encode() for e in events], tenant_id=tenant)
    assert not res.rejected, res.rejected
    return res.columns


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    yield s
    s.shutdown()


def test_events_map_onto_metric_points_and_spans(store: EmbeddedStore) -> None:
    events = [make_event(t, correlation_id="req-1") for t in EVENT_TYPES]
    events.append(make_event("governance", payload={"action": "audit", "compliant": True}))
    store.append("events", events_columns(events))
    assert store.flush(10)
    names = dict(store.read("SELECT name, count(*) FROM all_metric_points GROUP BY name").fetchall())
    assert names == {
        "gen_ai.client.operation.duration": 1,
        "gen_ai.client.token.usage": 2,  # input and output tokens of the telemetry event
        "llm.cost.usd": 1,
        "llm.security.threats": 1,
        "llm.governance.violations": 1,  # the audit event is not a violation
        "llm.policy.evaluations": 1,
        "llm.registry.asset.info": 1,
    }
    tok = store.read(
        "SELECT token_type, value FROM all_metric_points WHERE name = 'gen_ai.client.token.usage' ORDER BY 1"
    ).fetchall()
    assert tok == [("input", 120.0), ("output", 40.0)]
    cost = store.read(
        "SELECT value, kind, temporality, monotonic, model FROM all_metric_points WHERE name='llm.cost.usd'"
    )
    assert cost.fetchall() == [(0.0123, "sum", "delta", True, "gpt-4o")]
    sec = store.read("SELECT attributes FROM all_metric_points WHERE name = 'llm.security.threats'").fetchone()
    assert json.loads(sec[0]) == {"threat_type": "prompt_injection", "threat_level": "high", "action": "blocked"}
    spans = store.read("SELECT DISTINCT trace_id FROM all_spans").fetchall()
    assert len(spans) == 1  # every event of the correlation id is a span of one trace
    # the audit has no id; the others hang under the trace's one synthetic root span
    assert store.read("SELECT count(*) FROM all_spans WHERE source = 'event'").fetchone()[0] == len(events) - 1
    root = store.read("SELECT span_id FROM all_spans WHERE source = 'event_root'").fetchall()
    parents = store.read("SELECT DISTINCT parent_span_id FROM all_spans WHERE source = 'event'").fetchall()
    assert len(root) == 1 and parents == root
    dur = store.read("SELECT duration_ms FROM all_spans WHERE name LIKE 'telemetry%'").fetchone()
    assert dur == (850.0,)


def test_queue_full_is_a_retryable_error(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=False, max_pending_rows=3)
    s.start()
    try:
        with pytest.raises(QueueFullError) as info:
            s.append("events", events_columns([make_event("cost") for _ in range(4)]))
        assert info.value.retry_after >= 1
        assert s.read("SELECT count(*) FROM events").fetchone() == (0,)
    finally:
        s.shutdown()


def test_retention_drops_old_rows(store: EmbeddedStore) -> None:
    cols = events_columns([make_event("cost"), make_event("cost")])
    old = int((time.time() - 40 * 86400) * 1e6)
    cols["ts"][0] = old
    store.append("events", cols)
    store.flush(10)
    deleted = store.enforce_retention(retention_days=30)
    assert deleted == 1  # the old event (its metric points and spans are views over events)
    assert store.read("SELECT count(*) FROM events").fetchone() == (1,)


def test_restart_replays_what_was_not_applied(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=True, flush_interval=30)
    s.start()
    s._stop.set()  # simulate a crash: the writer never applies what follows
    s._queue.put(None)
    assert s._writer is not None
    s._writer.join(5)
    s.append("events", events_columns([make_event("cost") for _ in range(3)]))
    s._wal.close()  # type: ignore[union-attr]
    s._con.close()  # type: ignore[union-attr]
    again = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    again.start()
    try:
        assert again.flush(10)
        assert again.read("SELECT count(*) FROM events").fetchone() == (3,)
    finally:
        again.shutdown()
    third = EmbeddedStore(tmp_path, wal_fsync=False)
    third.start()
    try:  # applied once, never twice
        assert third.read("SELECT count(*) FROM events").fetchone() == (3,)
    finally:
        third.shutdown()


def test_shutdown_is_idempotent_and_safe_without_start(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path)
    s.shutdown()
    s.start()
    s.shutdown()
    s.shutdown()


def test_retention_per_tenant(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02, tenant_retention_days={"short": 7})
    s.start()
    try:
        ten_days_ago = int((time.time() - 10 * 86400) * 1e6)
        for tenant in ("short", "long"):
            cols = events_columns([make_event("cost")], tenant=tenant)
            cols["ts"][0] = ten_days_ago
            s.append("events", cols)
        s.flush(10)
        assert s.enforce_retention(retention_days=30) == 1  # only the tenant with 7 days loses its row
        assert s.read("SELECT tenant_id FROM events").fetchall() == [("long",)]
    finally:
        s.shutdown()


def test_a_data_directory_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    # A second `hub run` on the same --data-dir printed DuckDB's lock traceback; the WAL is never opened.
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(60)", str(tmp_path / "hub.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        store = EmbeddedStore(tmp_path, wal_fsync=False)
        with pytest.raises(RuntimeError, match=rf"data directory {tmp_path} is in use by another process \(PID {holder.pid}\)"):
            store.start()
        assert not (tmp_path / "wal").exists()
    finally:
        holder.kill()
        holder.wait()
    store = EmbeddedStore(tmp_path, wal_fsync=False)
    store.start()  # free again once the other process is gone
    store.shutdown()


def _crash(s: EmbeddedStore) -> None:
    """Stop a store as a kill -9 would: the writer stops, nothing is flushed or checkpointed."""
    s._stop.set()
    s._queue.put(None)
    assert s._writer is not None
    s._writer.join(5)
    s._wal.close()  # type: ignore[union-attr]
    s._con.close()  # type: ignore[union-attr]


def test_a_row_that_cannot_be_stored_is_quarantined_not_retried_forever(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    try:
        poison = events_columns([make_event("telemetry")])
        poison["input_tokens"][0] = 2**63  # beyond BIGINT: the model bounds it, the store must survive it anyway
        s.append("events", poison)
        bigger = events_columns([make_event("telemetry")])
        bigger["output_tokens"][0] = 2**64 - 1  # the largest the log encodes
        s.append("events", bigger)
        huge = events_columns([make_event("telemetry")])
        huge["output_tokens"][0] = 2**70  # the log cannot encode it: refused before anything is written
        with pytest.raises(PermanentError, match="cannot be logged"):
            s.append("events", huge)
        s.append("events", events_columns([make_event("cost"), make_event("cost")]))
        assert s.flush(10)  # before: every later batch of every tenant was folded into a failing retry
        assert s.read("SELECT count(*) FROM events").fetchone() == (2,)
        assert (s.stats.quarantined_rows, s.stats.pending_rows, s.ready) == (2, 0, True)
        record, record2 = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
        assert record["kind"] == "events" and record["rows"] == 1 and "int" in record["reason"].lower()
        assert record["cols"]["input_tokens"] == [2**63]  # the rows themselves are kept, not only counted
        assert record2["cols"]["output_tokens"] == [2**64 - 1]
    finally:
        s.shutdown()
    again = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    again.start()
    try:  # not replayed on restart (it had hung startup), and nothing applied twice
        assert again.flush(10) and again.read("SELECT count(*) FROM events").fetchone() == (2,)
    finally:
        again.shutdown()


def test_a_failed_apply_is_retried_first_in_log_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    real = s._apply
    failures = [3]

    def flaky(con, batch):  # type: ignore[no-untyped-def]
        if failures[0] > 0:  # a disk that is full for a while
            failures[0] -= 1
            s.append("events", events_columns([make_event("policy")], tenant="later"))  # arrives meanwhile
            raise duckdb.IOException("IO Error: No space left on device")
        return real(con, batch)

    monkeypatch.setattr(s, "_apply", flaky)
    s.start()
    try:
        s.append("events", events_columns([make_event("cost")], tenant="first"))
        deadline = time.monotonic() + 5
        while s.ready and time.monotonic() < deadline:  # unready while writes fail
            time.sleep(0.01)
        assert not s.ready and "No space left" in (s.stats.writer_error or "")
        assert s.flush(20)
        rows = s.read("SELECT tenant_id, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
        assert rows == [("first", 1), ("later", 3)] and s.ready
        applied = s.read("SELECT applied_seq FROM hub_wal_state").fetchone()
        assert applied == (4,)
    finally:
        s.shutdown()
    again = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    again.start()
    try:  # the failed batch had gone behind newer ones, so hub_wal_state passed it: lost on a crash, or twice
        assert again.flush(10) and again.read("SELECT count(*) FROM events").fetchone() == (4,)
    finally:
        again.shutdown()


def test_a_full_disk_is_a_retryable_error_and_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.errors import StoreUnavailableError

    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    try:
        wal = s._wal
        assert wal is not None
        real_write = wal.write

        def full(body: object) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(wal, "write", full)
        with pytest.raises(StoreUnavailableError, match="No space left") as ei:
            s.append("events", events_columns([make_event("cost")]))
        assert isinstance(ei.value, QueueFullError) and ei.value.retry_after > 0  # 503 + Retry-After
        monkeypatch.setattr(wal, "write", real_write)
        s.append("events", events_columns([make_event("cost")]))
        assert s.flush(10) and s.read("SELECT count(*) FROM events").fetchone() == (1,)
        assert s.stats.pending_rows == 0
    finally:
        s.shutdown()


def test_numbering_continues_above_what_was_applied_when_the_log_is_lost(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    s.start()
    for _ in range(3):
        s.append("events", events_columns([make_event("cost")]))
    s.shutdown()
    for seg in (tmp_path / "wal").glob("*.wal"):
        seg.unlink()  # an operator's rm, or a zeroed segment
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=30)
    s.start()
    assert s.append("events", events_columns([make_event("cost")], tenant="new")) == 4  # was 1
    _crash(s)
    again = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02)
    again.start()
    try:  # before: replay(after=3) skipped the acknowledged seq-1 record
        assert again.flush(10)
        assert again.read("SELECT count(*) FROM events WHERE tenant_id = 'new'").fetchone() == (1,)
    finally:
        again.shutdown()


def test_an_idle_store_still_enforces_retention(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path, wal_fsync=False, flush_interval=0.02, retention_check_interval=0.2)
    s.start()
    try:
        cols = events_columns([make_event("cost"), make_event("cost")])
        cols["ts"][0] = int((time.time() - 40 * 86400) * 1e6)
        s.append("events", cols)
        assert s.flush(10)
        deadline = time.monotonic() + 10
        while s.stats.retention_deleted_rows == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # no further write: before, retention ran only after the writer applied a batch
        assert s.read("SELECT count(*) FROM events").fetchone() == (1,)
    finally:
        s.shutdown()


def test_duckdb_checkpoints_past_64_mib_of_its_log_and_keeps_the_memory_limit(tmp_path: Path) -> None:
    # DuckDB's default (16 MiB) checkpointed every ~45,000 events, compressing the last row group again each time
    s = EmbeddedStore(tmp_path, wal_fsync=False, memory_limit="300MB")
    s.start()
    try:
        threshold, memory = s.read(
            "SELECT current_setting('checkpoint_threshold'), current_setting('memory_limit')"
        ).fetchone()  # type: ignore[misc]
    finally:
        s.shutdown()
    assert threshold == "64.0 MiB"
    assert memory.startswith("286.") and memory.endswith("MiB")  # 300 MB


def test_rows_applied_but_not_yet_checkpointed_survive_a_crash(tmp_path: Path) -> None:
    # the applied batch is committed in DuckDB's log only (no checkpoint before 64 MiB), and the hub's own log no
    # longer holds it: the process dies without shutting down, and the rows are still there after a restart
    child = (
        "import os, sys\n"
        "from hubcore.storage.embedded import EmbeddedStore\n"
        "from tests.core.test_store import events_columns\n"
        "from tests.helpers.events import make_event\n"
        "s = EmbeddedStore(sys.argv[1], wal_fsync=True, flush_interval=0.01)\n"
        "s.start()\n"
        "s.append('events', events_columns([make_event('cost') for _ in range(5)]))\n"
        "assert s.flush(10)\n"
        "print(os.path.getsize(os.path.join(sys.argv[1], 'hub.duckdb.wal')), flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) > 0  # the rows were in DuckDB's log, not yet in hub.duckdb
    again = EmbeddedStore(tmp_path, wal_fsync=False)
    again.start()
    try:
        assert again.read("SELECT count(*) FROM events").fetchone() == (5,)
        assert again.stats.pending_rows == 0  # nothing left to replay from the hub's log either
    finally:
        again.shutdown()
