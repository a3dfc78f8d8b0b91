"""The write-ahead log: ordered replay, torn tails, segment truncation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

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


def _records(path: Path) -> list[int]:
    return [b["i"] for _, b in WriteAheadLog(path, fsync=False).replay(after=0)]


def test_a_zero_filled_tail_is_cut_and_numbering_goes_on(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    for i in range(3):
        wal.append({"i": i})
    wal.close()
    seg = sorted(tmp_path.glob("*.wal"))[-1]
    with seg.open("ab") as f:
        f.write(b"\0" * 4096)  # what a filesystem can leave after a crash: crc32(b"") == 0, so it looked valid
    wal = WriteAheadLog(tmp_path, fsync=False)
    assert wal.last_seq == 3  # it had dropped to 0: new records reused numbers the store had applied
    assert wal.append({"i": 3}) == 4
    wal.close()
    assert _records(tmp_path) == [0, 1, 2, 3]


def test_a_damaged_record_inside_a_segment_costs_only_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    for i in range(5):
        wal.append({"i": i, "pad": "x" * 100})
    wal.close()
    seg = sorted(tmp_path.glob("*.wal"))[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) * 3 // 10] ^= 0xFF  # inside the second record
    seg.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        wal = WriteAheadLog(tmp_path, fsync=False)
    assert [b["i"] for _, b in wal.replay(after=0)] == [0, 2, 3, 4]  # before: [0], the rest truncated away
    assert wal.last_seq == 5 and wal.append({"i": 5}) == 6
    assert any("damaged record" in r.getMessage() for r in caplog.records)
    assert (tmp_path / (seg.name + ".corrupt")).read_bytes() == bytes(data)  # kept for forensics
    wal.close()
    assert _records(tmp_path) == [0, 2, 3, 4, 5]


def test_min_seq_is_a_floor_when_the_log_lost_its_end(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    for i in range(3):
        wal.append({"i": i})
    wal.close()
    for seg in tmp_path.glob("*.wal"):
        seg.unlink()  # a segment lost while the store had applied through seq 3
    wal = WriteAheadLog(tmp_path, fsync=False, min_seq=3)
    assert wal.append({"i": 9}) == 4  # before: 1, which the store's replay(after=3) would skip
    wal.close()
    assert [s for s, _ in WriteAheadLog(tmp_path, fsync=False, min_seq=3).replay(after=3)] == [4]


def test_stray_files_are_left_alone(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append({"i": 0})
    wal.close()
    (tmp_path / "backup.wal").write_bytes(b"junk")  # int('backup') had crashed startup
    assert _records(tmp_path) == [0]
    assert (tmp_path / "backup.wal").exists()


def test_a_failed_write_leaves_no_partial_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append({"i": 0})
    real = wal._fh

    class Full:
        """A file whose write puts half the bytes on disk, then fails (a disk filling up)."""

        def write(self, b: bytes) -> int:
            real.write(b[: len(b) // 2])
            real.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(wal, "_fh", Full())
    with pytest.raises(OSError):
        wal.append({"i": 1, "pad": "x" * 200})
    assert wal.append({"i": 2}) == 2  # the failed record's number is not burnt, and nothing torn precedes it
    wal.close()
    assert _records(tmp_path) == [0, 2]


def test_a_fully_applied_log_gives_its_disk_back(tmp_path: Path) -> None:
    from hubcore.storage.wal import ROTATE_APPLIED_BYTES

    wal = WriteAheadLog(tmp_path, fsync=False)
    last = 0
    while wal.size_bytes() < ROTATE_APPLIED_BYTES:
        last = wal.append({"pad": "x" * 4096})
    assert len(list(tmp_path.glob("*.wal"))) == 1
    wal.truncate_through(last - 1)  # not everything applied yet: the segment stays
    assert wal.size_bytes() >= ROTATE_APPLIED_BYTES
    wal.truncate_through(last)  # before: the current segment (up to segment_bytes) was kept for good
    assert wal.size_bytes() == 0 and len(list(tmp_path.glob("*.wal"))) == 1
    assert wal.append({"i": 1}) == last + 1
    wal.close()
    reopened = WriteAheadLog(tmp_path, fsync=False)
    assert reopened.last_seq == last + 1 and [s for s, _ in reopened.replay(after=0)] == [last + 1]
