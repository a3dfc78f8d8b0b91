"""An append-only write-ahead log of batches: what is acknowledged is on disk first.

Records are ``[u64 seq][u32 length][u32 crc32][msgpack body]`` in numbered segment files; sequence
numbers rise by one from record to record. On open:

* a torn tail (a crash mid-write; zero-filled bytes, which a filesystem can leave after a crash) is
  detected by the sequence, length and CRC and cut off, with a warning giving the bytes cut;
* a damaged record *inside* a segment (a flipped bit) does not cost the records after it: the reader
  finds the next intact record, the segment is copied aside as ``<name>.corrupt`` and rewritten with
  every intact record, and an error names the segment, the offset and the sequence numbers lost;
* files that are not segments (``backup.wal``) are left alone, with a warning;
* ``min_seq`` (the last sequence the consumer has applied) is a floor: if the log ends below it (a
  segment deleted or zeroed), numbering continues above it, so a new record can never reuse a number
  the consumer already counts as applied.

A failed write (disk full) truncates the segment back to its last complete record before the error
propagates, so no partial record is left for later records to follow. Segments wholly applied to the
store are deleted with :meth:`WriteAheadLog.truncate_through`.

    >>> import tempfile
    >>> wal = WriteAheadLog(tempfile.mkdtemp(), fsync=False)
    >>> wal.append({"kind": "events"})
    1
    >>> [(seq, body["kind"]) for seq, body in wal.replay(after=0)]
    [(1, 'events')]
    >>> wal.close()
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from hubcore.files import fsync_dir, write_atomic

_HEADER = struct.Struct("<QII")
_SEGMENT_SUFFIX = ".wal"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()
#: a fully applied current segment at least this large is replaced by an empty one (see truncate_through)
ROTATE_APPLIED_BYTES = 64 << 10
_RESYNC_WINDOW = 64  # how far past a damaged record's sequence number the reader looks for the next one

log = logging.getLogger(__name__)


class WriteAheadLog:
    """Thread-safe appends with optional fsync; one writer process per directory."""

    def __init__(
        self, directory: str | Path, *, fsync: bool = True, segment_bytes: int = 64 << 20, min_seq: int = 0
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._synced_seq = 0
        self._last_seq = 0
        self._segments: list[tuple[int, Path]] = []  # (first seq in segment, path)
        self._recover()
        raised = min_seq > self._last_seq
        if raised:
            if self._last_seq or self._segments:
                log.warning(
                    "write-ahead log ends below what its consumer applied; numbering continues above it",
                    extra={"directory": str(self.directory), "log_last_seq": self._last_seq, "applied_seq": min_seq},
                )
            self._last_seq = min_seq
        if self._segments and not raised:
            self._fh = open(self._segments[-1][1], "ab")  # noqa: SIM115 - held open for appends
        else:
            self._fh = self._open_segment(self._last_seq + 1)
        self._size = self._fh.tell()

    # -- public -----------------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, body: Any) -> int:
        """Write one record durably (fsync when enabled) and return its sequence number."""
        seq = self.write(body)
        self.sync(seq)
        return seq

    def sync(self, seq: int) -> None:
        """Make every record up to ``seq`` durable (no-op without fsync). Safe to call concurrently."""
        if self.fsync:
            self._sync_through(seq, self._fh)

    def write(self, body: Any) -> int:
        """Write one record (not yet fsynced: call :meth:`sync`) and return its sequence number."""
        data = _encoder.encode(body)
        with self._lock:
            seq = self._last_seq + 1
            if self._size >= self.segment_bytes:
                if self.fsync:  # the old segment is complete and durable before rotating
                    self._sync_file(self._fh)
                self._fh.close()
                self._fh = self._open_segment(seq)
                self._size = 0
            try:
                self._fh.write(_HEADER.pack(seq, len(data), zlib.crc32(data)) + data)
                self._fh.flush()
            except OSError:
                self._cut_back()
                raise
            self._size += _HEADER.size + len(data)
            self._last_seq = seq
        return seq

    def _sync_through(self, seq: int, fh: Any) -> None:
        """Group commit: one fsync covers every record written before it started.

        A record in an already rotated (closed) segment was fsynced at rotation.
        """
        with self._sync_lock:
            if self._synced_seq >= seq:
                return
            with self._lock:
                target = self._last_seq
                fh = self._fh
            self._sync_file(fh)
            self._synced_seq = target

    @staticmethod
    def _sync_file(fh: Any) -> None:
        if not fh.closed:
            os.fsync(fh.fileno())

    def replay(self, *, after: int) -> Iterator[tuple[int, Any]]:
        """Yield ``(seq, body)`` for every record with ``seq > after``, in order."""
        with self._lock:
            segments = list(self._segments)
        for idx, (_first, path) in enumerate(segments):
            nxt = segments[idx + 1][0] if idx + 1 < len(segments) else None
            if nxt is not None and nxt - 1 <= after:
                continue
            for seq, raw in _read_records(path):
                if seq > after:
                    yield seq, _decoder.decode(raw)

    def truncate_through(self, seq: int) -> int:
        """Delete segments whose every record is ``<= seq``; returns how many were deleted.

        When every record written so far is ``<= seq`` and the current segment holds at least
        :data:`ROTATE_APPLIED_BYTES`, it is replaced by a fresh one too, so a log (or an exporter's queue)
        that has been fully applied holds almost no disk (before, the current segment — up to
        ``segment_bytes`` — stayed for good, and a disk it had filled never recovered)."""
        deleted = 0
        with self._lock:
            while len(self._segments) > 1 and self._segments[1][0] - 1 <= seq:
                _first, path = self._segments.pop(0)
                path.unlink(missing_ok=True)
                deleted += 1
            if seq >= self._last_seq and self._size >= ROTATE_APPLIED_BYTES and self._segments:
                _first, path = self._segments.pop()
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = self._open_segment(self._last_seq + 1)
                self._size = 0
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def size_bytes(self) -> int:
        with self._lock:
            return sum(p.stat().st_size for _, p in self._segments if p.exists())

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                if self.fsync:
                    os.fsync(self._fh.fileno())
                self._fh.close()

    # -- internals --------------------------------------------------------------------------------
    def _cut_back(self) -> None:
        """After a failed write: drop its partial bytes (the segment ends at its last complete record)."""
        path = self._segments[-1][1]
        with contextlib.suppress(OSError):
            self._fh.close()  # the buffered bytes that failed are discarded with the handle
        try:
            os.truncate(path, self._size)
        except OSError:  # pragma: no cover - the open-time recovery cuts it instead
            log.exception("could not cut a partial write-ahead record", extra={"segment": str(path)})
        self._fh = open(path, "ab")  # noqa: SIM115 - held open for appends

    def _open_segment(self, first_seq: int) -> Any:
        path = self.directory / f"{first_seq:020d}{_SEGMENT_SUFFIX}"
        self._segments.append((first_seq, path))
        fh = open(path, "ab")  # noqa: SIM115 - held open for appends
        fsync_dir(self.directory)
        return fh

    def _recover(self) -> None:
        for tmp in self.directory.glob(f"*{_SEGMENT_SUFFIX}.tmp"):  # a rewrite a crash cut short: never read
            log.warning("removed the unfinished rewrite of a write-ahead log segment (the segment is intact)",
                        extra={"file": str(tmp)})  # fmt: skip
            tmp.unlink(missing_ok=True)
        segments: list[tuple[int, Path]] = []
        for path in self.directory.glob(f"*{_SEGMENT_SUFFIX}"):
            if not path.stem.isdigit() or not path.is_file():
                log.warning("not a write-ahead log segment; left alone", extra={"file": str(path)})
                continue
            segments.append((int(path.stem), path))
        segments.sort()
        for i, (first, path) in enumerate(segments):
            records, damaged, good_end = _scan(path.read_bytes(), max(first, self._last_seq + 1))
            if damaged:
                self._rewrite(path, records, damaged)
            elif path.stat().st_size != good_end:  # a torn tail from a crash: cut it off
                log.warning(
                    "cut a torn tail off a write-ahead log segment",
                    extra={"segment": str(path), "bytes_cut": path.stat().st_size - good_end, "records": len(records)},
                )
                with open(path, "r+b") as fh:
                    fh.truncate(good_end)
            if records:
                self._last_seq = records[-1][0]
            elif i < len(segments) - 1:
                path.unlink()
                continue
            self._segments.append((first, path))
            if self._last_seq < first - 1:
                self._last_seq = first - 1

    def _rewrite(self, path: Path, records: list[tuple[int, bytes]], damaged: list[tuple[int, int, int]]) -> None:
        """Keep a copy of a segment with damaged records and rewrite it with its intact ones."""
        aside = path.with_name(path.name + ".corrupt")
        shutil.copy2(path, aside)
        for offset, lost_from, lost_to in damaged:
            log.error(
                "write-ahead log segment has a damaged record; the intact records after it are kept",
                extra={"segment": str(path), "offset": offset, "lost_seqs": f"{lost_from}..{lost_to}",
                       "copy": str(aside)},
            )  # fmt: skip
        chunks = (_HEADER.pack(seq, len(raw), zlib.crc32(raw)) + raw for seq, raw in records)
        write_atomic(path, chunks, fsync=True)  # (always synced: it replaces acknowledged records)


def _record_at(data: bytes, pos: int, seq_floor: int) -> tuple[int, bytes] | None:
    """The intact record at ``pos`` whose sequence is at least ``seq_floor``, or None."""
    if pos + _HEADER.size > len(data):
        return None
    seq, length, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    raw = data[start : start + length]
    # a zero-filled header (seq 0, length 0, crc32(b"") == 0) passes the CRC: lengths and numbers rule it out
    if seq < seq_floor or length == 0 or len(raw) != length or zlib.crc32(raw) != crc:
        return None
    return seq, raw


def _scan(data: bytes, expected: int) -> tuple[list[tuple[int, bytes]], list[tuple[int, int, int]], int]:
    """The intact records of a segment, in order, from sequence ``expected`` on; the damaged stretches
    followed by an intact record, as ``(offset, first lost seq, last lost seq)``; and where the last
    intact record ends (the rest is a torn tail)."""
    records: list[tuple[int, bytes]] = []
    damaged: list[tuple[int, int, int]] = []
    pos = 0
    while pos < len(data):
        rec = _record_at(data, pos, expected)
        if rec is not None:  # (a number above ``expected``: a gap a rewrite already reported)
            records.append(rec)
            pos += _HEADER.size + len(rec[1])
            expected = rec[0] + 1
            continue
        found = _resync(data, pos + 1, expected)
        if found is None:
            break  # nothing intact follows: a torn tail
        damaged.append((pos, expected, found[1] - 1))
        pos, expected = found
    end = sum(_HEADER.size + len(raw) for _seq, raw in records) if not damaged else len(data)
    return records, damaged, end


def _resync(data: bytes, start: int, expected: int) -> tuple[int, int] | None:
    """``(offset, seq)`` of the first intact record after ``start`` numbered ``expected`` or a little more."""
    best: tuple[int, int] | None = None
    for seq in range(expected, expected + _RESYNC_WINDOW):
        needle = _HEADER.pack(seq, 0, 0)[:8]
        pos = data.find(needle, start)
        while pos != -1 and (best is None or pos < best[0]):
            if _record_at(data, pos, seq) is not None:
                best = (pos, seq)
                break
            pos = data.find(needle, pos + 1)
        if best is not None and seq > best[1]:
            break
    return best


def _read_records(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    pos = 0
    while True:
        rec = _record_at(data, pos, 1)
        if rec is None:
            return
        yield rec
        pos += _HEADER.size + len(rec[1])

