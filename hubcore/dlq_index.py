"""Where each dead letter lies in the queue's file, so that a listing reads only its page.

:class:`DeadLetterIndex` holds, per entry, its byte range in ``dlq.jsonl``, its tenant and reason (interned),
its teams (decoded from ``raw`` the first time a team-limited listing needs them) and a sequence number.
It follows the file incrementally, as :meth:`hubcore.dlq.DeadLetterQueue.count` does: the queue adds what it
appends, lines appended by anyone else are read (only the new bytes, and only the entry's head, not ``raw``)
on the next :meth:`sync`, and a file replaced behind its back is indexed afresh. A rewrite by the queue
(replay, the size bound) hands over the entries it kept with their sequence numbers.

Sequence numbers grow with the file's order and survive the queue's rewrites, so a position in a listing
(:meth:`page` ``before``) stays exact when a replay removes entries: the next page starts at the first
entry older than the last one shown that is still there. They are numbered afresh (a new :attr:`epoch`)
when the file is indexed afresh (a new process, a file replaced by another one).

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

import os
import secrets
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec


class _Head(msgspec.Struct):
    """What the index keeps of a line (msgspec skips the rest, ``raw`` included, without building it)."""

    tenant_id: Any = None
    reason: Any = None


_head = msgspec.json.Decoder(_Head)


class DeadLetterIndex:
    """Byte ranges, tenants, reasons and sequence numbers of the entries of one queue file, in file order.
    Not thread-safe: the queue calls it under its lock."""

    def __init__(self) -> None:
        self._next_seq = 0
        self.reset(None)

    def reset(self, identity: tuple[int, int] | None) -> None:
        """Forget every entry: the file ``identity`` (device, inode) is indexed from its start, under a new
        :attr:`epoch` (positions of the old numbering mean nothing in it)."""
        self.identity = identity
        self.indexed = 0  # bytes of the file indexed (always at a line's end)
        self.epoch = secrets.token_hex(4)
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

    def add(self, start: int, length: int, tenant: Any, reason: Any, seq: int | None = None) -> None:
        """Index the line at ``start`` (``length`` bytes, without its newline); ``seq``: its sequence number
        when it keeps one across a rewrite, else the next one."""
        if seq is None:
            seq = self._next_seq
        self._next_seq = max(self._next_seq, seq + 1)
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
        self.add(start, len(line), head.tenant_id, head.reason)

    def rebuild(self, identity: tuple[int, int] | None, lines: Iterable[tuple[int, Any, Any, int | None]]) -> None:
        """After the queue rewrote the file (``identity``): its entries as (line length, tenant, reason,
        sequence number kept, None for a line it had not indexed), in order. The epoch stays: positions keep their meaning."""
        kept = list(lines)
        epoch = self.epoch
        self.reset(identity)
        renumber = any(seq is None for _, _, _, seq in kept)
        if not renumber:  # (else a new epoch: a line it had not indexed has no place in the old numbering)
            self.epoch = epoch
        start = 0
        for length, tenant, reason, seq in kept:
            self.add(start, length, tenant, reason, None if renumber else seq)
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
