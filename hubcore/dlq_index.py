"""Where each dead letter lies in the queue's file, so that a listing reads only its page.

:class:`DeadLetterIndex` holds, per entry, its byte range in ``dlq.jsonl``, its tenant and reason (interned),
its teams (decoded from ``raw`` the first time a team-limited listing needs them) and a sequence number.
It follows the file incrementally, as :meth:`hubcore.dlq.DeadLetterQueue.count` does: the queue adds what it
appends, lines appended by anyone else are read (only the new bytes, and only the entry's head, not ``raw``)
on the next :meth:`sync`, and a file replaced behind its back is indexed afresh. A rewrite by the queue
(replay, the size bound) hands over the entries it kept with their sequence numbers.

Sequence numbers grow with the file's order and are the file's own: each line carries its ``seq`` (written
by the queue), and a line without one (written before they were, or torn) or out of order takes the one after
the line before it, so indexing the same file always numbers it the same way, in a new process too. A
position in a listing (``before``) therefore stays exact across restarts and when a replay removes entries:
the next page starts at the first entry older than the last one shown that is still there.

:meth:`DeadLetterIndex.snapshot` and :meth:`DeadLetterIndex.restore` keep the index in a file beside the
queue's, so that a new process reads only the lines appended since it was saved, not the whole file.

    >>> idx = DeadLetterIndex()
    >>> idx.add(0, 10, "t", "bad")
    >>> idx.add(11, 10, "u", "bad")
    >>> idx.add(22, 10, "t", "worse")
    >>> [idx.starts[p] for p in idx.matching("t", None)]
    [0, 22]
    >>> [idx.starts[p] for p in idx.matching(None, "wor")]
    [22]
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from hubcore.files import write_atomic


class _Head(msgspec.Struct):
    """What the index keeps of a line (msgspec skips the rest, ``raw`` included, without building it)."""

    tenant_id: Any = None
    reason: Any = None
    seq: Any = None


_head = msgspec.json.Decoder(_Head)
log = logging.getLogger("hubcore.dlq")
#: The largest sequence number a line may carry (a larger one, or a non-integer, is renumbered).
MAX_SEQ = 2**62


class _Saved(msgspec.Struct):
    """The index as :meth:`DeadLetterIndex.snapshot` writes it (msgpack): the file it describes (device, inode,
    bytes indexed, CRC-32 of the first and the last 4 KiB indexed), the epoch of its numbering and the columns."""

    version: int
    epoch: str
    device: int
    inode: int
    indexed: int
    head_crc: int
    tail_crc: int
    byteorder: str
    starts: bytes
    lengths: bytes
    seqs: bytes
    tenants: bytes
    reasons: bytes
    tenant_names: list[str]
    reason_names: list[str]


_SAVED_VERSION = 1
_CHECK_BYTES = 4096


class DeadLetterIndex:
    """Byte ranges, tenants, reasons and sequence numbers of the entries of one queue file, in file order.
    Not thread-safe: the queue calls it under its lock."""

    def __init__(self, epoch: str = "") -> None:
        #: the queue's numbering (:class:`hubcore.dlq.DeadLetterQueue`), named in its positions
        self.epoch = epoch
        self.reset(None)

    def reset(self, identity: tuple[int, int] | None) -> None:
        """Forget every entry: the file ``identity`` (device, inode) is indexed from its start (its lines keep
        their sequence numbers: the file's own)."""
        self.identity = identity
        self.indexed = 0  # bytes of the file indexed (always at a line's end)
        self.last_seq = -1  # the sequence number of the last entry indexed
        self.starts = array("q")
        self.lengths = array("q")
        self.seqs = array("q")
        self.tenants = array("l")
        self.reasons = array("l")
        self.teams = array("l")  # -1: not decoded yet
        self._by_tenant: dict[int, array[int]] = {}
        self._tenant_codes: dict[str, int] = {}
        self._reason_codes: dict[str, int] = {}
        self.reason_names: list[str] = []
        self._team_codes: dict[frozenset[str], int] = {}
        self.team_sets: list[frozenset[str]] = []

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: int, length: int, tenant: Any, reason: Any, seq: Any = None) -> None:
        """Index the line at ``start`` (``length`` bytes, without its newline); ``seq``: the sequence number
        it carries, kept if it is an integer above the last entry's, else the one after the last entry's."""
        if type(seq) is not int or not self.last_seq < seq <= MAX_SEQ:
            seq = self.last_seq + 1
        self.last_seq = seq
        tenant_key = tenant if isinstance(tenant, str) else ""
        reason_key = reason if isinstance(reason, str) else ""
        tenant_code = self._tenant_codes.setdefault(tenant_key, len(self._tenant_codes))
        reason_code = self._reason_codes.get(reason_key)
        if reason_code is None:
            reason_code = self._reason_codes[reason_key] = len(self.reason_names)
            self.reason_names.append(reason_key)
        position = len(self.starts)
        self.starts.append(start)
        self.lengths.append(length)
        self.seqs.append(seq)
        self.tenants.append(tenant_code)
        self.reasons.append(reason_code)
        self.teams.append(-1)
        self._by_tenant.setdefault(tenant_code, array("l")).append(position)
        self.indexed = start + length + 1

    def sync(self, path: Path) -> None:
        """Catch up with the file: index the complete lines appended since the last call (a last line
        without its newline waits for it); index afresh if the file was replaced or shrank. Lines that are
        not a JSON object (torn by a crash) are skipped, as :meth:`hubcore.dlq.DeadLetterQueue.list` skips
        them."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed below; fstat: the file read is the one identified)
        except FileNotFoundError:
            if self.identity is not None or len(self):
                self.reset(None)
            return
        with fh:
            stat = os.fstat(fh.fileno())
            identity = (stat.st_dev, stat.st_ino)
            if identity != self.identity or stat.st_size < self.indexed:
                self.reset(identity)
            if stat.st_size == self.indexed:
                return
            fh.seek(self.indexed)
            start = self.indexed
            rest = b""
            while chunk := fh.read(1 << 22):
                data = rest + chunk
                begin = 0
                while (end := data.find(b"\n", begin)) >= 0:
                    self._add_line(start + begin, data[begin:end])
                    begin = end + 1
                start += begin
                rest = data[begin:]
                self.indexed = start

    def _add_line(self, start: int, line: bytes) -> None:
        try:
            head = _head.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            self.indexed = start + len(line) + 1
            return
        self.add(start, len(line), head.tenant_id, head.reason, head.seq)

    def rebuild(self, identity: tuple[int, int] | None, lines: Iterable[tuple[int, Any, Any, int | None]]) -> None:
        """After the queue rewrote the file (``identity``): its entries as (line length, tenant, reason,
        sequence number written in the line), in order."""
        self.reset(identity)
        start = 0
        for length, tenant, reason, seq in lines:
            self.add(start, length, tenant, reason, seq)
            start += length + 1

    def matching(self, tenant: str | None, reason_contains: str | None) -> list[int]:
        """Positions (file order) of the entries of ``tenant`` (None: every tenant's) whose reason contains
        ``reason_contains`` (None or empty: any)."""
        if tenant is None:
            positions: Iterable[int] = range(len(self.starts))
        else:
            code = self._tenant_codes.get(tenant)
            positions = self._by_tenant.get(code, array("l")) if code is not None else array("l")
        if not reason_contains:
            return list(positions)
        codes = {c for c, name in enumerate(self.reason_names) if reason_contains in name}
        reasons = self.reasons
        return [p for p in positions if reasons[p] in codes]

    def view(self) -> IndexView:
        """The entries indexed so far, for reading outside the queue's lock: the columns only grow while
        the numbering lasts (a rewrite or a fresh index replaces them), so positions below their length
        stay valid."""
        return IndexView(self.epoch, self.starts, self.lengths, self.seqs, self.teams, self.team_sets)

    def remember_teams(self, view: IndexView, found: dict[int, frozenset[str]]) -> None:
        """Keep the teams read (by position) through ``view``, if its columns are still the index's."""
        if view.teams is not self.teams:
            return
        for position, teams in found.items():
            code = self._team_codes.get(teams, -1)
            if code < 0:
                code = self._team_codes[teams] = len(self.team_sets)
                self.team_sets.append(teams)
            self.teams[position] = code

    def snapshot(self, path: Path) -> bytes | None:
        """The index of the file at ``path`` as bytes for :meth:`restore` (None unless it describes that file):
        the columns and names, and what :meth:`restore` checks the file against. Cheap (a copy of the columns
        and 8 KiB read): take it under the queue's lock, write it outside."""
        try:
            with open(path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                if (stat.st_dev, stat.st_ino) != self.identity or stat.st_size < self.indexed:
                    return None
                head, tail = _check_crcs(fh, self.indexed)
        except OSError:
            return None
        assert self.identity is not None
        return msgspec.msgpack.encode(
            _Saved(
                _SAVED_VERSION, self.epoch, self.identity[0], self.identity[1], self.indexed, head, tail,
                sys.byteorder, self.starts.tobytes(), self.lengths.tobytes(), self.seqs.tobytes(),
                self.tenants.tobytes(), self.reasons.tobytes(), list(self._tenant_codes), list(self.reason_names),
            )
        )  # fmt: skip

    @classmethod
    def restore(cls, data: bytes, path: Path, epoch: str) -> DeadLetterIndex | None:
        """The index :meth:`snapshot` gave, if it still describes the file at ``path`` (same device and
        inode, at least as long, the same first and last 4 KiB indexed) under numbering ``epoch``; else None
        (the file was replaced, truncated or rewritten since: index it afresh)."""
        try:
            saved = msgspec.msgpack.decode(data, type=_Saved)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if saved.version != _SAVED_VERSION or saved.epoch != epoch or saved.byteorder != sys.byteorder:
            return None
        try:
            with open(path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                if (stat.st_dev, stat.st_ino) != (saved.device, saved.inode) or stat.st_size < saved.indexed:
                    return None
                if _check_crcs(fh, saved.indexed) != (saved.head_crc, saved.tail_crc):
                    return None
        except OSError:
            return None
        idx = cls(epoch)
        idx.reset((saved.device, saved.inode))
        columns = (idx.starts, idx.lengths, idx.seqs, idx.tenants, idx.reasons)
        for column, raw in zip(columns, (saved.starts, saved.lengths, saved.seqs, saved.tenants, saved.reasons),
                               strict=True):  # fmt: skip
            try:
                column.frombytes(raw)
            except ValueError:
                return None
        n = len(idx.starts)
        if any(len(c) != n for c in columns):
            return None
        if n and (max(idx.tenants) >= len(saved.tenant_names) or max(idx.reasons) >= len(saved.reason_names)
                  or min(idx.tenants) < 0 or min(idx.reasons) < 0):  # fmt: skip
            return None
        idx.indexed = saved.indexed
        idx.last_seq = idx.seqs[-1] if n else -1
        idx.teams = array("l", [-1]) * n
        idx._tenant_codes = {name: code for code, name in enumerate(saved.tenant_names)}
        idx._reason_codes = {name: code for code, name in enumerate(saved.reason_names)}
        idx.reason_names = list(saved.reason_names)
        by_tenant: dict[int, array[int]] = {}
        for position, code in enumerate(idx.tenants):
            positions = by_tenant.get(code)
            if positions is None:
                positions = by_tenant[code] = array("l")
            positions.append(position)
        idx._by_tenant = by_tenant
        return idx


def _check_crcs(fh: Any, indexed: int) -> tuple[int, int]:
    """CRC-32 of the first and of the last (up to) 4 KiB of the ``indexed`` bytes of the open file ``fh``."""
    size = min(indexed, _CHECK_BYTES)
    fh.seek(0)
    head = zlib.crc32(fh.read(size))
    fh.seek(indexed - size)
    return head, zlib.crc32(fh.read(size))


class IndexFile:
    """Where and when a queue saves its index between processes (``dlq.index``): :meth:`due` takes a snapshot
    (under the queue's lock) once the index holds ``every`` entries more than the one saved, and a quarter
    more; :meth:`write` writes it (outside the lock), without fsync: a cache, checked against the file when
    read (:meth:`load`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: tuple[int, int] | None = None  # (entries, bytes indexed) of the index saved of this file
        self._lock = threading.Lock()  # one writer at a time

    def load(self, file_path: Path, epoch: str) -> DeadLetterIndex | None:
        """The index saved, if it still describes ``file_path`` under numbering ``epoch``
        (:meth:`DeadLetterIndex.restore`)."""
        try:
            idx = DeadLetterIndex.restore(self.path.read_bytes(), file_path, epoch)
        except OSError:
            return None
        if idx is not None:
            self.saved = (len(idx), idx.indexed)
        return idx

    def due(self, idx: DeadLetterIndex, file_path: Path, every: int) -> bytes | None:
        """A snapshot of ``idx`` (the index of ``file_path``) if one is due, else None."""
        if self.saved is None:
            if len(idx) < every:
                return None
        else:
            entries, indexed = self.saved
            quarter = entries // 4 if every > 1 else 0
            if idx.indexed == indexed or len(idx) - entries < max(every, quarter):
                return None
        snapshot = idx.snapshot(file_path)
        if snapshot is not None:
            self.saved = (len(idx), idx.indexed)
        return snapshot

    def write(self, snapshot: bytes | None) -> None:
        """Save ``snapshot`` (None: nothing to save)."""
        if snapshot is None:
            return
        with self._lock:
            try:
                write_atomic(self.path, snapshot, fsync=False)
            except OSError as exc:  # (a full disk: the next process indexes the file afresh)
                log.warning("dead-letter queue: could not save its index", extra={"error": str(exc)})


def with_seq(line: bytes, seq: int | None) -> bytes:
    """The JSON object ``line`` with its sequence number ``seq`` as its last key (None: as it is).

    >>> with_seq(b'{"id":"a"}', 7), with_seq(b"{}", 0)
    (b'{"id":"a","seq":7}', b'{"seq":0}')
    """
    if seq is None:
        return line
    return line[:-1] + (b'"seq":%d}' if line == b"{}" else b',"seq":%d}') % seq


def read_numbering(path: Path) -> tuple[str, int] | None:
    """The (epoch, floor) of a queue's numbering file (``dlq.numbering``: the epoch its positions name, the
    lowest number a new entry may take); None if there is none or it cannot be read."""
    try:
        data = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    if not isinstance(data, dict):
        return None
    epoch, floor = data.get("epoch"), data.get("floor")
    if not (isinstance(epoch, str) and epoch and type(floor) is int and floor >= 0):
        return None
    return epoch, floor


class IndexView(NamedTuple):
    """The columns of a :class:`DeadLetterIndex` at one moment (see :meth:`DeadLetterIndex.view`)."""

    epoch: str
    starts: array[int]
    lengths: array[int]
    seqs: array[int]
    teams: array[int]
    team_sets: list[frozenset[str]]

    def teams_at(
        self, position: int, decode: Callable[[int], frozenset[str]], found: dict[int, frozenset[str]]
    ) -> frozenset[str]:
        """The teams of the entry at ``position``: as indexed, else ``decode``d (and noted in ``found``)."""
        code = self.teams[position]
        if code >= 0:
            return self.team_sets[code]
        if position not in found:
            found[position] = decode(position)
        return found[position]

    def before(self, positions: list[int], seq: int) -> int:
        """How many of ``positions`` (file order) hold entries older than sequence number ``seq``."""
        seqs = self.seqs
        return bisect_left(positions, seq, key=lambda p: seqs[p])
