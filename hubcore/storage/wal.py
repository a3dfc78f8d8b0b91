"""An append-only write-ahead log of batches: what is acknowledged is on disk first.

Records are ``[u64 seq][u32 length][u32 crc32][msgpack body]`` in numbered segment files. A torn tail
(a crash mid-write) is detected by length/CRC and cut off on open. Segments wholly applied to the store
are deleted with :meth:`WriteAheadLog.truncate_through`.

    >>> import tempfile
    >>> wal = WriteAheadLog(tempfile.mkdtemp(), fsync=False)
    >>> wal.append({"kind": "events"})
    1
    >>> [(seq, body["kind"]) for seq, body in wal.replay(after=0)]
    [(1, 'events')]
    >>> wal.close()
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

_HEADER = struct.Struct("<QII")
_SEGMENT_SUFFIX = ".wal"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class WriteAheadLog:
    """Thread-safe appends with optional fsync; one writer process per directory."""

    def __init__(self, directory: str | Path, *, fsync: bool = True, segment_bytes: int = 64 << 20) -> None:
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
        if self._segments:
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
            self._fh.write(_HEADER.pack(seq, len(data), zlib.crc32(data)) + data)
            self._fh.flush()
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
        """Delete segments whose every record is ``<= seq``; returns how many were deleted."""
        deleted = 0
        with self._lock:
            while len(self._segments) > 1 and self._segments[1][0] - 1 <= seq:
                _first, path = self._segments.pop(0)
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
    def _open_segment(self, first_seq: int) -> Any:
        path = self.directory / f"{first_seq:020d}{_SEGMENT_SUFFIX}"
        self._segments.append((first_seq, path))
        fh = open(path, "ab")  # noqa: SIM115 - held open for appends
        _fsync_dir(self.directory)
        return fh

    def _recover(self) -> None:
        paths = sorted(self.directory.glob(f"*{_SEGMENT_SUFFIX}"))
        for path in paths:
            first = int(path.stem)
            good_end = 0
            for seq, raw in _read_records(path):
                self._last_seq = seq
                good_end += _HEADER.size + len(raw)
            if path.stat().st_size != good_end:  # torn tail from a crash: cut it off
                with open(path, "r+b") as fh:
                    fh.truncate(good_end)
            if good_end == 0 and path is not paths[-1]:
                path.unlink()
                continue
            self._segments.append((first, path))
            if self._last_seq < first - 1:
                self._last_seq = first - 1


def _read_records(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 0
    while pos + _HEADER.size <= len(data):
        seq, length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        raw = data[start : start + length]
        if len(raw) != length or zlib.crc32(raw) != crc:
            return
        yield seq, raw
        pos = start + length


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
