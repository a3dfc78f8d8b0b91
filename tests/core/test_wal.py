"""The write-ahead log: ordered replay, torn tails, segment truncation."""

from __future__ import annotations

from pathlib import Path

from hubcore.storage.wal import WriteAheadLog


def test_append_and_replay_in_order(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=True)
    seqs = [wal.append({"i": i}) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [b["i"] for _, b in wal.replay(after=2)] == [2, 3, 4]  # seqs 3..5
    wal.close()
    reopened = WriteAheadLog(tmp_path)
    assert reopened.last_seq == 5
    assert reopened.append({"i": 5}) == 6


def test_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append({"i": 1})
    wal.append({"i": 2})
    wal.close()
    seg = sorted(tmp_path.glob("*.wal"))[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # a crash mid-write of the last record
    wal = WriteAheadLog(tmp_path, fsync=False)
    assert [b["i"] for _, b in wal.replay(after=0)] == [1]
    assert wal.append({"i": 3}) == 2
    assert [b["i"] for _, b in wal.replay(after=0)] == [1, 3]


def test_a_corrupted_record_stops_replay_there(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append({"i": 1})
    wal.append({"i": 2})
    wal.close()
    seg = sorted(tmp_path.glob("*.wal"))[-1]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert [b["i"] for _, b in WriteAheadLog(tmp_path).replay(after=0)] == [1]


def test_applied_segments_are_deleted(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False, segment_bytes=64)
    for i in range(10):
        wal.append({"payload": "x" * 50, "i": i})
    assert len(list(tmp_path.glob("*.wal"))) == 10
    wal.truncate_through(7)
    remaining = [b["i"] for _, b in wal.replay(after=0)]
    assert remaining[0] <= 7 < remaining[1] if len(remaining) > 1 else remaining == [9]
    assert 7 + 1 in [i + 1 for i in remaining]
    wal.truncate_through(10)
    assert len(list(tmp_path.glob("*.wal"))) == 1  # the current segment stays
