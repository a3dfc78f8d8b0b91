"""The audit log's write path: group commit of synced appends, the lazily moved sidecar of unsynced
(ingest) appends, close(), and a log file replaced under a running writer."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from hubcore.security import audit as audit_mod
from hubcore.security.audit import HEAD_EVERY, AuditLog, iter_records, verify


def _head(log: AuditLog) -> int:
    return int(json.loads(log.head.read_text())["seq"])


def _append(log: AuditLog, i: int, **kw: object) -> dict[str, object]:
    return log.append(subject=f"u{i}", tenant_id="acme", action="events:write", resource=f"r/{i}", **kw)  # type: ignore[arg-type]


def test_concurrent_synced_appends_share_fsyncs_and_stay_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:  # a disk-like fsync: long enough that writers pile up behind it
        calls.append(fd)
        real_fsync(fd)
        time.sleep(0.005)

    monkeypatch.setattr(audit_mod.os, "fsync", counting_fsync)
    log = AuditLog(tmp_path, fsync=True)
    start = threading.Barrier(16)

    def writer(t: int) -> None:
        start.wait()
        for i in range(25):
            rec = _append(log, t * 100 + i)
            # acknowledged means durable: the sidecar already names this record or a later one
            assert _head(log) >= int(rec["seq"])  # type: ignore[call-overload]

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert verify(log.path).ok and verify(log.path).records == 400
    assert _head(log) == 400
    assert len({r["subject"] for r in iter_records(log.path)}) == 400
    # three fsyncs per commit (the file, the sidecar, the sidecar's directory: hubcore.files.write_atomic);
    # concurrent writers share commits (1,200 calls without them, one commit per record). The bound is loose
    # on purpose: on a loaded machine fewer writers pile up behind each commit (it failed once at < 400
    # calls, two per commit then, with two test suites and three hubs on 2 cores)
    assert len(calls) < 900


def test_unsynced_appends_move_the_sidecar_lazily_and_a_synced_one_catches_up(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=True)
    for i in range(10):
        _append(log, i, sync=False)
    assert _head(log) == 1  # the first record names the sidecar; then every HEAD_EVERY records
    assert verify(log.path).ok  # a sidecar behind the log is fine: nothing was cut
    _append(log, 10)  # synced: durable, and the sidecar names it
    assert _head(log) == 11
    for i in range(HEAD_EVERY):
        _append(log, 100 + i, sync=False)
    assert _head(log) == 11 + HEAD_EVERY
    _append(log, 999, sync=False)
    log.close()  # the sidecar names the last record again
    assert _head(log) == 12 + HEAD_EVERY and verify(log.path).ok


def test_a_log_that_never_fsyncs_keeps_its_sidecar_on_the_last_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    for i in range(5):
        _append(log, i)
        assert _head(log) == i + 1
    log.path.write_text("".join(log.path.read_text().splitlines(keepends=True)[:-1]))
    assert "truncated" in verify(log.path).reason


def test_appends_follow_a_replaced_log_file(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)
    for i in range(3):
        _append(log, i)
    copy = log.path.with_name("copy.jsonl")
    copy.write_bytes(log.path.read_bytes())
    os.replace(copy, log.path)  # e.g. restored from a backup while the hub runs
    _append(log, 3)
    assert [r["seq"] for r in iter_records(log.path)] == [1, 2, 3, 4] and verify(log.path).ok


def test_a_restarted_writer_continues_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=True)
    for i in range(3):
        _append(log, i, sync=False)
    log.close()
    again = AuditLog(tmp_path, fsync=True)
    assert _append(again, 3)["seq"] == 4
    assert verify(again.path).ok and _head(again) == 4


def test_a_synced_append_racing_close_is_still_made_durable(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync=False)  # the log does not fsync by default; this record asks to
    rec = _append(log, 0)
    log.close()
    log._sync_through(int(rec["seq"]) + 1)  # what a synced append finishing after close() does: no crash
    _append(log, 1, sync=True)  # and the log reopens its file for later records
    assert verify(log.path).ok and _head(log) == 2
