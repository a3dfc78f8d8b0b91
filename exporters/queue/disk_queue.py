"""A bounded on-disk FIFO of batches with acknowledgement: what ``put`` returned from survives a crash.

Built on the hub's write-ahead log (``[seq][len][crc][msgpack]`` records in segment files; each record
holds the batch's own msgpack encoding, so only sizes are kept in memory and ``peek`` reads the bodies
back from disk: memory stays small however full the queue is). The consumer
reads batches in order and acknowledges through a sequence number once the backend accepted them; the
acknowledgement (with an optional opaque *state* blob, e.g. an exporter's running counter totals as of
that point) is written atomically to ``ack``. A restart re-delivers everything after the last
acknowledgement: at-least-once, never lost. A consumer that delivers tenant by tenant may read on
past rows it holds back (a throttled tenant's) without rewriting them: ``ack(seq, cursor=, held=)``
records how far it read and, per held tenant, where its held rows start, and ``peek(after=)`` /
``read(seqs)`` read on from the cursor and read held batches again.

    >>> import tempfile
    >>> q = DiskQueue(tempfile.mkdtemp(), fsync=False)
    >>> q.put({"kind": "logs"})
    1
    >>> [(seq, body["kind"]) for seq, body in q.peek(10)]
    [(1, 'logs')]
    >>> q.ack(1, state=b"totals")
    >>> q.depth, q.state
    (0, b'totals')
    >>> q.close()
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from hubcore.errors import QueueFullError, StoreUnavailableError
from hubcore.files import discard_tmp, write_atomic
from hubcore.storage.wal import WriteAheadLog

_ACK_FILE = "ack"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class _Ack(msgspec.Struct):
    seq: int
    state: bytes | None = None
    #: the consumer read the batches through ``cursor`` (>= ``seq``), and delivered all of their rows but
    #: those of the keys in ``held`` from the sequence number given (rows it keeps where they are for later)
    cursor: int = 0
    held: dict[str, int] = {}


class DiskQueue:
    """Thread-safe: many producers (``put``), one consumer (``peek``/``ack``)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 256 << 20,
        max_batches: int = 100_000,
        fsync: bool = True,
        segment_bytes: int = 8 << 20,
    ) -> None:
        if max_bytes <= 0 or max_batches <= 0:
            raise ValueError("max_bytes and max_batches must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_batches = max_batches
        self.fsync = fsync
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        # an ack write cut short by a crash left ack.tmp (never read: the ack is the old one, intact); one
        # writer process per directory (the exporter opens its queue at start, once the data dir is its own)
        discard_tmp(self.directory / _ACK_FILE)
        ack = self._read_ack()
        self._acked = ack.seq
        self._state = ack.state
        self._cursor = max(ack.seq, ack.cursor)
        self._held = dict(ack.held)
        self._wal = WriteAheadLog(self.directory / "segments", fsync=fsync, segment_bytes=segment_bytes)
        self._pending: deque[tuple[int, int]] = deque()  # (seq, encoded size); bodies stay on disk
        self._bytes = 0
        for seq, raw in self._wal.replay(after=self._acked):
            size = len(raw) if isinstance(raw, bytes) else len(_encoder.encode(raw))
            self._pending.append((seq, size))
            self._bytes += size

    # -- producer ---------------------------------------------------------------------------------
    def put(self, body: Any, *, encoded: bytes | None = None) -> int:
        """Append ``body`` durably; raise :class:`QueueFullError` when the queue is at its bound.

        ``encoded``: ``body``'s msgpack encoding when the caller has it already (the ingest pipeline
        encodes a batch once for all its destinations); it is stored as given, ``body`` is not encoded.
        """
        raw = _encoder.encode(body) if encoded is None else encoded
        size = len(raw)
        with self._lock:
            if self._pending and (len(self._pending) >= self.max_batches or self._bytes + size > self.max_bytes):
                raise QueueFullError(
                    f"exporter queue {self.directory} is full ({len(self._pending)} batches, {self._bytes} bytes)",
                    retry_after=1.0,
                )
            try:
                seq = self._wal.append(raw)
            except OSError as exc:  # disk full, I/O: the log cut the partial record; nothing was queued
                raise StoreUnavailableError(
                    f"exporter queue {self.directory} cannot write ({exc.strerror or exc}); retry later",
                    retry_after=5.0,
                ) from exc
            self._pending.append((seq, size))
            self._bytes += size
            self._not_empty.notify_all()
            return seq

    # -- consumer ---------------------------------------------------------------------------------
    def peek(self, max_batches: int, *, max_bytes: int | None = None, after: int = 0) -> list[tuple[int, Any]]:
        """The oldest unacknowledged batches after sequence number ``after`` (at least one when any),
        without removing them.

        Consumer side only (one thread): reads the bodies back from the segment files.
        """
        with self._lock:
            after = max(after, self._acked)
            count, total = 0, 0
            for seq, size in self._pending:
                if seq <= after:
                    continue
                if count and (count >= max_batches or (max_bytes is not None and total + size > max_bytes)):
                    break
                count += 1
                total += size
        out: list[tuple[int, Any]] = []
        if not count:
            return out
        for seq, raw in self._wal.replay(after=after):
            out.append((seq, _decoder.decode(raw) if isinstance(raw, bytes) else raw))
            if len(out) >= count:
                break
        return out

    def read(self, seqs: Iterable[int]) -> list[tuple[int, Any]]:
        """The unacknowledged batches ``seqs`` (read again: rows the consumer held back), in order."""
        wanted = sorted(set(seqs))
        out: list[tuple[int, Any]] = []
        if not wanted:
            return out
        want = set(wanted)
        for seq, raw in self._wal.replay(after=max(wanted[0] - 1, self._acked)):
            if seq in want:
                out.append((seq, _decoder.decode(raw) if isinstance(raw, bytes) else raw))
            if seq >= wanted[-1]:
                break
        return out

    def wait(self, timeout: float, *, after: int = 0) -> bool:
        """Block until a batch after sequence number ``after`` is queued (True) or ``timeout`` passes."""
        with self._not_empty:
            if self._pending and self._pending[-1][0] > after:
                return True
            self._not_empty.wait(timeout)
            return bool(self._pending) and self._pending[-1][0] > after

    def ack(
        self, seq: int, *, state: bytes | None = None, cursor: int | None = None, held: dict[str, int] | None = None
    ) -> None:
        """Everything through ``seq`` was accepted downstream; persist that (and ``state``), trim.

        ``cursor`` / ``held``: the consumer also read the batches after ``seq`` through ``cursor`` and
        delivered every row of them except, for each key of ``held`` (a tenant), its rows from the
        sequence number given on: kept where they are, for :attr:`cursor` and :attr:`held` after a restart.
        """
        with self._lock:
            while self._pending and self._pending[0][0] <= seq:
                _s, size = self._pending.popleft()
                self._bytes -= size
            self._acked = max(self._acked, seq)
            self._cursor = max(self._acked, cursor or 0)
            self._held = dict(held or {})
            self._state = state
            self._write_ack(_Ack(self._acked, state, self._cursor, self._held))
        self._wal.truncate_through(seq)

    # -- inspection -------------------------------------------------------------------------------
    def has_room(self, nbytes: int = 0) -> bool:
        """Would a ``put`` of about ``nbytes`` fit now (a hint: producers race)?"""
        with self._lock:
            return not self._pending or (
                len(self._pending) < self.max_batches and self._bytes + nbytes <= self.max_bytes
            )

    @property
    def depth(self) -> int:
        """Batches waiting (``hub_queue_depth``)."""
        with self._lock:
            return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def pending_through(self, seq: int) -> tuple[int, int]:
        """``(batches, bytes)`` waiting with a sequence number up to ``seq``."""
        count = nbytes = 0
        with self._lock:
            for s, size in self._pending:
                if s > seq:
                    break
                count += 1
                nbytes += size
        return count, nbytes

    def sizes(self, seqs: Iterable[int]) -> dict[int, int]:
        """The encoded size of each waiting batch of ``seqs``."""
        want = set(seqs)
        with self._lock:
            return {s: size for s, size in self._pending if s in want}

    def count_after(self, seq: int) -> int:
        """Batches waiting with a sequence number above ``seq``."""
        n = 0
        with self._lock:
            for s, _size in reversed(self._pending):
                if s <= seq:
                    break
                n += 1
        return n

    @property
    def acked_seq(self) -> int:
        return self._acked

    @property
    def state(self) -> bytes | None:
        """The state blob stored with the last acknowledgement (None at first)."""
        return self._state

    @property
    def cursor(self) -> int:
        """The consumer read everything through this sequence number (as of the last acknowledgement)."""
        return self._cursor

    @property
    def held(self) -> dict[str, int]:
        """Tenant → the first sequence number of its rows the consumer held back (see :meth:`ack`)."""
        return dict(self._held)

    def close(self) -> None:
        self._wal.close()

    # -- internals --------------------------------------------------------------------------------
    def _read_ack(self) -> _Ack:
        path = self.directory / _ACK_FILE
        if not path.is_file():
            return _Ack(0)
        try:
            return msgspec.msgpack.decode(path.read_bytes(), type=_Ack)
        except msgspec.DecodeError as exc:  # written by rename, so this is someone else's file
            raise RuntimeError(f"{path} is corrupt: {exc}") from None

    def _write_ack(self, ack: _Ack) -> None:
        """Replace ``ack`` at once; with ``fsync`` its content and its rename survive a power loss (a rename
        lost after :meth:`ack` deleted the segments it covers would bring back an older ``state``, e.g.
        running totals, without the batches that moved it on)."""
        write_atomic(self.directory / _ACK_FILE, msgspec.msgpack.encode(ack), fsync=self.fsync)
