"""One atomic file replacement (``hubcore.files.write_atomic``) for every rewrite of state that must survive
a crash: the dead-letter queue's rewrite, the audit log's head sidecar, the write-ahead log's repair (and, in
their own packages' tests, the exporter queue's ack and the anomaly feedback state).

A crash between the write and the rename leaves the old file intact and a ``.tmp`` beside it that nothing
reads; its owner removes it at start. With fsync on, the file *and its directory* are synced (the rename is
durable: a power loss cannot bring back the old content after the call returned)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hubcore.files as files
from hubcore.dlq import DeadLetterQueue
from hubcore.files import discard_tmp, write_atomic
from hubcore.files import tmp_path as tmp_of
from hubcore.security.audit import AuditLog, verify
from hubcore.storage.wal import WriteAheadLog


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The directories ``write_atomic`` synced (the sync itself still runs)."""
    seen: list[Path] = []
    real = files.fsync_dir

    def record(directory: Path) -> None:
        seen.append(Path(directory))
        real(directory)

    monkeypatch.setattr(files, "fsync_dir", record)
    return seen


def _crash_at_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_a: Any) -> None:
        raise Crash

    monkeypatch.setattr(files.os, "replace", crash)


# -- the helper --------------------------------------------------------------------------------------------
def test_write_atomic_takes_bytes_or_chunks_and_a_failed_write_leaves_the_old_file_and_no_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synced: list[Path]
) -> None:
    path = tmp_path / "state"
    write_atomic(path, b"old", fsync=True)
    assert synced == [tmp_path]  # the rename is made durable
    write_atomic(path, iter([b"ne", b"w"]), fsync=False)  # chunks, no fsync: no directory sync either
    assert path.read_bytes() == b"new" and synced == [tmp_path]

    def chunks() -> Any:  # disk full halfway through
        yield b"partial"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(path, chunks(), fsync=True)
    assert path.read_bytes() == b"new" and not tmp_of(path).exists()  # it had left the .tmp behind
    _crash_at_rename(monkeypatch)
    with pytest.raises(Crash):
        write_atomic(path, b"newer", fsync=True)
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_discard_tmp_removes_the_leftover_and_legacy_names_only(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    path.write_bytes(b"kept")
    for name in ("dlq.jsonl.tmp", "dlq.tmp", "other.tmp"):
        (tmp_path / name).write_bytes(b"half")
    assert discard_tmp(path, tmp_path / "dlq.tmp") is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dlq.jsonl", "other.tmp"]
    assert discard_tmp(path) is False  # nothing left to remove


# -- the dead-letter queue -----------------------------------------------------------------------------
def _dlq(tmp_path: Path, n: int = 4) -> DeadLetterQueue:
    q = DeadLetterQueue(tmp_path, fsync=True)
    for i in range(n):
        q.put(tenant_id="t", receiver="rest", reason=f"bad {i}", raw=b"{}")
    return q


def test_the_dlq_rewrite_is_durable_and_a_crash_before_the_rename_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synced: list[Path]
) -> None:
    q = _dlq(tmp_path)
    q.replay(lambda entries: [e["reason"] == "bad 0" for e in entries], tenant_id="t")
    assert [e["reason"] for e in q.select(tenant_id="t")] == ["bad 1", "bad 2", "bad 3"]
    # the directory is synced after the rename (it was not); before it, the numbering's (hubcore.dlq: written
    # with the first entry, and by the replay with the floor that keeps the numbers it removes from reuse)
    assert synced == [q.directory] * 3
    _crash_at_rename(monkeypatch)
    with pytest.raises(Crash):
        q.replay(lambda entries: [True] * len(entries), tenant_id="t")
    monkeypatch.undo()
    again = DeadLetterQueue(tmp_path)  # a restart: the entries the crashed replay had not removed are all there
    assert [e["reason"] for e in again.select(tenant_id="t")] == ["bad 1", "bad 2", "bad 3"]


def test_a_dlq_rewrite_a_crash_left_behind_is_not_read_and_is_removed_at_start(tmp_path: Path) -> None:
    q = _dlq(tmp_path, 2)
    half = b'{"id": "x", "tenant_id": "t", "reason": "half-written'  # a rewrite cut short, never renamed
    for name in ("dlq.jsonl.tmp", "dlq.tmp"):  # (dlq.tmp: the name earlier releases used)
        (q.directory / name).write_bytes(half)
    again = DeadLetterQueue(tmp_path)
    assert [e["reason"] for e in again.select(tenant_id="t")] == ["bad 0", "bad 1"]
    assert again.discard_partial_writes() is True
    assert sorted(p.name for p in q.directory.iterdir()) == ["dlq.jsonl", "dlq.numbering"]
    assert again.discard_partial_writes() is False


# -- the audit log's head sidecar ----------------------------------------------------------------------
def test_the_audit_head_is_written_durably_and_a_leftover_tmp_is_ignored_then_removed(
    tmp_path: Path, synced: list[Path]
) -> None:
    log = AuditLog(tmp_path, fsync=True)
    log.append(subject="u", tenant_id="acme", action="keys:manage")
    assert synced == [log.directory]  # the sidecar's rename is durable (only the file was synced)
    head = json.loads(log.head.read_text())
    log.close()
    for name in ("audit.jsonl.head.tmp", "audit.jsonl.tmp"):  # (audit.jsonl.tmp: earlier releases' name)
        (log.directory / name).write_text('{"seq": 99, "ha')
    reopened = AuditLog(tmp_path, fsync=True)
    assert json.loads(reopened.head.read_text()) == head and verify(reopened.path).ok
    assert reopened.discard_partial_writes() is True
    assert sorted(p.name for p in reopened.directory.iterdir()) == ["audit.jsonl", "audit.jsonl.head"]
    reopened.append(subject="u", tenant_id="acme", action="keys:manage")
    assert verify(reopened.path).records == 2 and json.loads(reopened.head.read_text())["seq"] == 2


def test_an_unsynced_audit_log_does_not_sync_its_head(tmp_path: Path, synced: list[Path]) -> None:
    log = AuditLog(tmp_path, fsync=False)
    log.append(subject="u", tenant_id="acme", action="keys:manage")
    log.close()
    assert synced == [] and json.loads(log.head.read_text())["seq"] == 1


# -- the write-ahead log's repair ----------------------------------------------------------------------
def test_a_wal_segment_rewrite_a_crash_left_behind_is_removed_at_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append({"n": 1})
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    leftover = segment.with_name(segment.name + ".tmp")
    leftover.write_bytes(b"\x01" * 10)
    reopened = WriteAheadLog(tmp_path, fsync=False)
    assert [body for _seq, body in reopened.replay(after=0)] == [{"n": 1}]
    assert not leftover.exists() and "unfinished rewrite" in caplog.text
    reopened.close()


def test_a_damaged_wal_segment_is_rewritten_through_write_atomic(tmp_path: Path, synced: list[Path]) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    for n in range(3):
        wal.append({"n": n, "pad": "x" * 100})
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit inside the second record
    segment.write_bytes(bytes(data))
    synced.clear()
    reopened = WriteAheadLog(tmp_path, fsync=False)
    assert [body["n"] for _seq, body in reopened.replay(after=0)] == [0, 2]
    assert tmp_path in synced and not list(tmp_path.glob("*.tmp"))  # synced even with fsync off, as before
    reopened.close()


def test_the_dlq_count_reads_only_what_was_appended_and_follows_rewrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = DeadLetterQueue(tmp_path, fsync=False)
    assert q.count() == 0  # no file yet
    q.put_many([("a", "rest", "bad", "{}", i) for i in range(5)])
    q.put_many([("b", "rest", "bad", "{}", i) for i in range(3)])
    assert q.count() == 8
    # the next count reads from where the last one stopped: decoding (or re-reading) the file is not needed
    monkeypatch.setattr(q, "_read", lambda: pytest.fail("count() decoded the whole file"))
    q.put(tenant_id="a", receiver="rest", reason="bad", raw="{}")
    assert q.count() == 9 and q._counted[1] == q.path.stat().st_size
    monkeypatch.undo()
    # a rewrite (replay, erasure, trimming) replaces the file: counted afresh, even where it is no smaller
    assert q.replay(lambda entries: [True] * len(entries), tenant_id="b") == (3, 3)
    assert q.count() == 6 == len(q._read())
    q.put_many([("c", "rest", "bad", "{}", i) for i in range(3)])
    assert q.replay(lambda entries: [False] * len(entries), tenant_id="c") == (3, 0)  # same content, rewritten
    assert q.count() == 9 == len(q._read())
