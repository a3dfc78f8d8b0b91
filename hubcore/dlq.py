"""The dead-letter queue: rejected input on disk, with its reason, listable and replayable.

Entries are JSON lines in ``<data_dir>/dlq/dlq.jsonl``; replay rewrites the file without the entries
that were accepted. The file is bounded (``max_bytes``): past it, the oldest half is dropped and counted.

Each line carries its sequence number (``seq``, its place in listings; :mod:`hubcore.dlq_index`), which the
queue's rewrites keep. ``dlq.numbering`` names the numbering (an epoch, in every listing position) and the
lowest number a new entry may take (so that one removed by a replay is never reused); ``dlq.index`` keeps the
index of the file between processes (a cache: checked against the file, rebuilt from it when it does not
match). So a listing position (``GET /api/v1/dlq``'s cursor) outlives the process, and a new process reads
only the lines appended since the index was saved.

    >>> import tempfile
    >>> q = DeadLetterQueue(tempfile.mkdtemp())
    >>> q.put(tenant_id="t", receiver="rest", reason="bad", raw=b'{"x": 1}')
    >>> [e["reason"] for e in q.list(tenant_id="t")[0]]
    ['bad']
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final, NamedTuple

import msgspec

from hubcore.dlq_index import DeadLetterIndex, IndexFile, IndexView, read_numbering, with_seq
from hubcore.files import discard_tmp, fsync_dir, write_atomic

Entry = dict[str, Any]

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
log = logging.getLogger(__name__)


def entry_teams(entry: Entry) -> frozenset[str]:
    """The teams a dead-lettered event names (its RBAC team scope, rule 4 of ``dlq:replay``): ``tags.team``,
    ``payload.team`` (a cost event's, which wins over the tag once stored) and ``payload.dimensions.team``
    (a telemetry event's), wherever each is a non-empty string. An entry whose ``raw`` is not a JSON
    object (malformed input) or names no team has none: any caller allowed to replay may replay it.

    >>> sorted(entry_teams({"raw": '{"tags": {"team": "ml"}, "payload": {"team": "search"}}'}))
    ['ml', 'search']
    >>> entry_teams({"raw": "{not json"})
    frozenset()
    """
    try:
        event = _dec.decode(entry.get("raw") or "")
    except (msgspec.DecodeError, RecursionError):
        return frozenset()
    if not isinstance(event, dict):
        return frozenset()
    tags, payload = event.get("tags"), event.get("payload")
    dims = payload.get("dimensions") if isinstance(payload, dict) else None
    found = (part.get("team") for part in (tags, payload, dims) if isinstance(part, dict))
    return frozenset(t for t in found if isinstance(t, str) and t)


#: The largest ``offset`` ``GET /api/v1/dlq`` takes (as the unified query's); past a million entries, page with
#: its cursor or narrow the listing (``reason``). A larger one is a 422.
MAX_LIST_OFFSET: Final = 1_000_000
#: The index is saved (``dlq.index``) once it holds this many entries more than when last saved (and at least
#: a quarter more), besides after a first full indexing, a rewrite and :meth:`DeadLetterQueue.close`.
SAVE_INDEX_EVERY: Final = 10_000


class DeadLetterPage(NamedTuple):
    """A page of :meth:`DeadLetterQueue.list_visible`: its entries (newest first), how many entries it
    lists in all (``total``), how many matching entries the ``visible`` test left out, and where the next
    page starts (``next_position``, for ``before``; None after the last page)."""

    entries: list[Entry]
    total: int
    hidden: int
    next_position: str | None


class StalePosition(ValueError):
    """A ``before`` position of another numbering of the queue (its file was removed, or its numbering lost,
    since; or a damaged position): list again from the newest entry."""


class DeadLetterQueue:
    def __init__(self, data_dir: str | Path, *, max_bytes: int = 256 << 20, fsync: bool = True) -> None:
        self.directory = Path(data_dir) / "dlq"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "dlq.jsonl"
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.dropped = 0
        self._lock = threading.Lock()
        #: (rewrites so far, bytes counted, lines in them): :meth:`count` reads only what was appended since
        self._rewrites = 0
        self._counted = (0, 0, 0)
        #: where each entry lies in the file (:mod:`hubcore.dlq_index`): a listing reads only its page
        self._index = DeadLetterIndex()
        self.numbering_path = self.directory / "dlq.numbering"
        self.index_file = IndexFile(self.directory / "dlq.index")  # the index saved between processes
        self.index_path = self.index_file.path
        #: the numbering (:meth:`_ready`): its epoch (None until read), the lowest number a new entry may
        #: take as saved in ``dlq.numbering`` (None: not saved yet), and the next number to give
        self._epoch: str | None = None
        self._floor: int | None = None
        self._next_seq = 0

    def put(self, *, tenant_id: str, receiver: str, reason: str, raw: bytes | str, index: int | None = None) -> None:
        self.put_many([(tenant_id, receiver, reason, raw, index)])

    def put_many(self, entries: builtins.list[tuple[str, str, str, bytes | str, int | None]]) -> None:
        if not entries:
            return
        now = time.time()
        lines: builtins.list[bytes] = []
        for tenant_id, receiver, reason, raw, index in entries:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
            lines.append(
                _enc.encode(
                    {
                        "id": uuid.uuid4().hex,
                        "received_at": now,
                        "tenant_id": tenant_id,
                        "receiver": receiver,
                        "reason": reason,
                        "index": index,
                        "raw": text,
                    }
                )
            )
        snapshot = None
        with self._lock:
            self._ready()
            created = not self.path.exists()
            if created:
                self._save_numbering(self._floor or 0)
            with open(self.path, "ab") as fh:
                before = fh.tell()
                idx = self._index
                if before == 0 and not len(idx) and not idx.indexed:  # an empty file: indexed as written
                    stat = os.fstat(fh.fileno())
                    idx.reset((stat.st_dev, stat.st_ino))
                elif idx.identity is not None and idx.indexed != before:  # another process appended: catch up
                    idx.sync(self.path)
                first = max(self._next_seq, idx.last_seq + 1)
                self._next_seq = first + len(lines)
                lines = [with_seq(line, first + i) for i, line in enumerate(lines)]
                fh.write(b"\n".join(lines) + b"\n")
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
                stat = os.fstat(fh.fileno())
            if idx.identity == (stat.st_dev, stat.st_ino) and idx.indexed == before:  # in step: no re-read
                for i, ((tenant_id, _, reason, _, _), line) in enumerate(zip(entries, lines, strict=True)):
                    idx.add(idx.indexed, len(line), tenant_id, reason, first + i)
            if created and self.fsync:  # the new file's name is durable too
                fsync_dir(self.directory)
            if self.path.stat().st_size > self.max_bytes:
                self._drop_oldest_half()
            snapshot = self._index_snapshot_if_due()
        self.index_file.write(snapshot)

    def list(
        self, *, tenant_id: str | None, limit: int = 100, offset: int = 0, reason_contains: str | None = None
    ) -> tuple[builtins.list[Entry], int]:
        """Newest first. Returns (entries, total matching). ``tenant_id=None`` lists every tenant."""
        page = self.list_visible(tenant_id=tenant_id, limit=limit, offset=offset, reason_contains=reason_contains)
        return page.entries, page.total

    def list_visible(
        self,
        *,
        tenant_id: str | None,
        visible: Callable[[frozenset[str]], bool] | None = None,
        limit: int = 100,
        offset: int = 0,
        reason_contains: str | None = None,
        before: str | None = None,
    ) -> DeadLetterPage:
        """:meth:`list` of the entries whose teams (:func:`entry_teams`) ``visible`` keeps (all without it).
        Paging counts only the entries kept: ``offset`` entries are skipped after ``before`` (a page's
        ``next_position``: the entries older than the last one it showed; :class:`StalePosition` if it is
        of another numbering of the queue). Reads only the page's lines from the file (and, once per entry,
        the teams of those ``visible`` is asked about), not the whole queue.

            >>> import tempfile
            >>> q = DeadLetterQueue(tempfile.mkdtemp(), fsync=False)
            >>> for raw in ('{"tags": {"team": "ml"}}', '{"tags": {"team": "search"}}', "{}"):
            ...     q.put(tenant_id="t", receiver="rest", reason="bad", raw=raw)
            >>> page = q.list_visible(tenant_id="t", visible=lambda teams: teams <= {"ml"}, limit=1)
            >>> page.total, page.hidden, [e["raw"] for e in page.entries]
            (2, 1, ['{}'])
            >>> [e["raw"] for e in q.list_visible(tenant_id="t", before=page.next_position).entries]
            ['{"tags": {"team": "search"}}', '{"tags": {"team": "ml"}}']
        """
        try:
            return self._page(tenant_id, visible, limit, offset, reason_contains, before)
        except _IndexMismatch:  # (a saved index that its checks took for the file's: the file edited by hand)
            log.warning("dead-letter queue: its index did not match its file; indexing the file afresh")
            with self._lock:
                self._index, self.index_file.saved = DeadLetterIndex(self._index.epoch), None
            return self._page(tenant_id, visible, limit, offset, reason_contains, before)

    def _page(
        self,
        tenant_id: str | None,
        visible: Callable[[frozenset[str]], bool] | None,
        limit: int,
        offset: int,
        reason_contains: str | None,
        before: str | None,
    ) -> DeadLetterPage:
        view, positions, opened = self._matching(tenant_id, reason_contains)
        matching = len(positions)
        # (outside the lock: a rewrite renames a new file in, and the one opened, with the positions of the
        # view, stays as it was; appends only add entries past the view's)
        with opened or _no_file() as fh:
            if visible is not None:
                found: dict[int, frozenset[str]] = {}

                def decode(position: int) -> frozenset[str]:
                    return entry_teams(_entry_at(fh, view, position))

                positions = [p for p in positions if visible(view.teams_at(p, decode, found))]
                if found:
                    with self._lock:
                        self._index.remember_teams(view, found)
            end = len(positions)
            if before is not None:
                epoch, _, seq = before.partition(":")
                if epoch != view.epoch or not (seq.isascii() and seq.isdigit() and len(seq) <= 18):
                    raise StalePosition(before)
                end = view.before(positions, int(seq))
            end = max(0, end - offset)
            shown = positions[max(0, end - limit) : end][::-1]
            entries = [_entry_at(fh, view, p) for p in shown]
        more = bool(shown) and end - len(shown) > 0
        next_position = f"{view.epoch}:{view.seqs[shown[-1]]}" if more else None
        return DeadLetterPage(entries, len(positions), matching - len(positions), next_position)

    def _matching(
        self, tenant_id: str | None, reason_contains: str | None
    ) -> tuple[IndexView, builtins.list[int], BinaryIO | None]:
        """A view of the index, caught up with the file, the positions of the entries matching, and the file
        it indexes, open (None when nothing matches). The first read of a large file (a new process) is
        indexed outside the lock: writers are not held up by it."""
        with self._lock:
            self._ready()
            cold, rewrites = len(self._index) == 0 and self._index.indexed == 0, self._rewrites
            epoch = self._index.epoch
        if cold:
            fresh = DeadLetterIndex(epoch)
            fresh.sync(self.path)
            with self._lock:
                if self._rewrites == rewrites and len(self._index) == 0 and self._index.indexed == 0:
                    self._index = fresh
        with self._lock:
            self._index.sync(self.path)
            positions = self._index.matching(tenant_id, reason_contains)
            opened = open(self.path, "rb") if positions else None  # noqa: SIM115 (the caller closes it)
            view = self._index.view()
            snapshot = self._index_snapshot_if_due()
        try:
            self.index_file.write(snapshot)
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        return view, positions, opened

    def select(self, *, tenant_id: str | None, ids: builtins.list[str] | None = None) -> builtins.list[Entry]:
        """The entries :meth:`replay` would hand over (oldest first): the tenant's (``None``: every
        tenant's), or those of them with the given ids."""
        wanted = set(ids) if ids else None
        return [
            e
            for e in self._read()
            if (tenant_id is None or e.get("tenant_id") == tenant_id) and (wanted is None or e["id"] in wanted)
        ]

    def replay(
        self,
        handler: Callable[[builtins.list[Entry]], builtins.list[bool]],
        *,
        tenant_id: str | None,
        ids: builtins.list[str] | None = None,
    ) -> tuple[int, int]:
        """Hand matching entries to ``handler`` (returns accepted flags); drop the accepted ones.

        Returns (replayed, accepted).
        """
        snapshot = None
        with self._lock:
            self._ready()
            located = self._read_located()
            entries = [e for _, e in located]
            wanted = set(ids) if ids else None
            selected = [
                e
                for e in entries
                if (tenant_id is None or e.get("tenant_id") == tenant_id) and (wanted is None or e["id"] in wanted)
            ]
            if not selected:
                return 0, 0
            flags = handler(selected)
            accepted_ids = {e["id"] for e, ok in zip(selected, flags, strict=True) if ok}
            self._rewrite([(at, e) for at, e in located if e["id"] not in accepted_ids])
            snapshot = self._index_snapshot_if_due()
        self.index_file.write(snapshot)
        return len(selected), len(accepted_ids)

    def discard_partial_writes(self) -> bool:
        """Remove the temporary file of a rewrite (replay, trim) that a crash cut short before its rename:
        the queue is the old file, intact, and the temporary file is never read. For the owner at start,
        once the data directory is its own (the hub: after the store took the directory's lock; a second hub
        refused on that lock must not remove the running one's file mid-rewrite). Whether one was removed."""
        with self._lock:
            removed = discard_tmp(self.path, self.directory / "dlq.tmp")  # (dlq.tmp: earlier releases' name)
            for path in (self.numbering_path, self.index_path):  # (their old content stays: a rename never done)
                removed = discard_tmp(path) or removed
        if removed:
            log.info("dead-letter queue: removed the temporary file of a rewrite cut short",
                     extra={"file": str(self.path)})  # fmt: skip
        return removed

    def count(self) -> int:
        """Entries in the queue: its lines, counted incrementally (the file is appended to, and replaced
        only by this object's rewrites), so that each ``/metrics`` scrape does not decode the whole file
        (234,000 entries, 237 MB, had taken over a second a scrape). A line torn by a crash counts until
        the next rewrite.

            >>> import tempfile
            >>> q = DeadLetterQueue(tempfile.mkdtemp(), fsync=False)
            >>> q.put(tenant_id="t", receiver="rest", reason="bad", raw="{}"); q.count()
            1
        """
        with self._lock:  # put and rewrites hold it: the file does not change during the count
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return 0
            rewrites, done, lines = self._counted
            if rewrites != self._rewrites or done > size:
                done, lines = 0, 0
            if done < size:
                with open(self.path, "rb") as fh:
                    fh.seek(done)
                    while chunk := fh.read(1 << 20):
                        lines += chunk.count(b"\n")
                        done += len(chunk)
            self._counted = (self._rewrites, done, lines)
            return lines

    def close(self) -> None:
        """Save the index (``dlq.index``) if it changed since it was saved, for the next process: it reads
        only what is appended after. For the owner at stop (:mod:`hub.shutdown`); safe twice or unused."""
        with self._lock:
            snapshot = self._index_snapshot_if_due(every=1)
        self.index_file.write(snapshot)

    def _ready(self) -> None:
        """(Under the lock.) Read the numbering once: the epoch and floor of ``dlq.numbering`` and the index
        saved in ``dlq.index`` if it still matches the file (caught up with the lines appended since). A queue
        without its file (new, or removed) or without a readable numbering starts a new epoch (positions of
        another are :class:`StalePosition`), saved with the file's first entry (:meth:`put_many`)."""
        if self._epoch is not None:
            return
        numbering = read_numbering(self.numbering_path)
        exists = self.path.exists()
        if numbering is not None and exists:
            self._epoch, self._floor = numbering
        else:
            self._epoch, self._floor = secrets.token_hex(8), None
            if exists:
                self._save_numbering(0)
        floor = numbering[1] if numbering is not None else 0
        restored = self.index_file.load(self.path, self._epoch) if exists else None
        if restored is not None:
            restored.sync(self.path)
            self._index = restored
        else:
            self._index = DeadLetterIndex(self._epoch)  # indexed by the first listing (outside the lock)
        self._next_seq = max(floor, self._index.last_seq + 1)

    def _save_numbering(self, floor: int) -> None:
        """(Under the lock.) Save the epoch with ``floor``, the lowest number a new entry may take, if it is
        not saved yet or is above the one saved."""
        assert self._epoch is not None
        if self._floor is not None and floor <= self._floor:
            return
        data = _enc.encode({"epoch": self._epoch, "floor": floor})
        write_atomic(self.numbering_path, data + b"\n", fsync=self.fsync)
        self._floor = floor

    def _index_snapshot_if_due(self, every: int | None = None) -> bytes | None:
        """(Under the lock.) The index to save (:meth:`IndexFile.write`, outside the lock) if it is due."""
        return self.index_file.due(self._index, self.path, SAVE_INDEX_EVERY if every is None else every)

    def _read(self) -> builtins.list[Entry]:
        return [e for _, e in self._read_located()]

    def _read_located(self) -> builtins.list[tuple[int, Entry]]:
        """Every entry (a JSON object), oldest first, with the byte offset of its line."""
        if not self.path.exists():
            return []
        out = []
        start = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                at, start = start, start + len(line)
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = _dec.decode(line)
                except msgspec.DecodeError:  # a torn line from a crash: skip it
                    continue
                if isinstance(entry, dict):
                    entry.pop("seq", None)  # (the queue's, not the entry's: see the index)
                    out.append((at, entry))
        return out

    def _rewrite(self, located: builtins.list[tuple[int, Entry]]) -> None:
        """Replace the file with the entries of ``located`` (from :meth:`_read_located`) at once; with
        ``fsync`` the file and the rename are durable (a power loss after a replay must not bring back the
        entries it accepted, nor lose the others). The index keeps each kept entry's sequence number (its
        place in listings)."""
        index = self._index
        index.sync(self.path)  # (under the lock, as _read_located: the same file)
        seq_at = dict(zip(index.starts, index.seqs, strict=True))
        # the numbers of the entries removed are never given again, in a later process either
        self._save_numbering(max(self._next_seq, index.last_seq + 1))
        lines = [(with_seq(_enc.encode(e), seq_at.get(at)), e.get("tenant_id"), e.get("reason"), seq_at.get(at))
                 for at, e in located]  # fmt: skip
        write_atomic(self.path, (line + b"\n" for line, _, _, _ in lines), fsync=self.fsync)
        self._rewrites += 1
        stat = self.path.stat()
        index.rebuild((stat.st_dev, stat.st_ino), ((len(line), t, r, seq) for line, t, r, seq in lines))
        self.index_file.saved = None  # the index saved is of the file replaced: save this one

    def _drop_oldest_half(self) -> None:
        located = self._read_located()
        half = len(located) // 2
        self.dropped += half
        self._rewrite(located[half:])


def _entry_at(fh: Any, view: IndexView, position: int) -> Entry:
    """The entry at index ``position`` of ``view``, read from the open file ``fh`` (without its ``seq``)."""
    fh.seek(view.starts[position])
    try:
        entry = _dec.decode(fh.read(view.lengths[position]))
    except msgspec.DecodeError:
        raise _IndexMismatch from None
    if not isinstance(entry, dict):
        raise _IndexMismatch
    entry.pop("seq", None)
    return entry


class _IndexMismatch(Exception):
    """What the index says is an entry's line is not one: the index is not of the file's content."""


class _no_file:
    """The open file of an empty queue (no file yet): nothing is read from it."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
