"""The dead-letter queue: rejected input on disk, with its reason, listable and replayable.

Entries are JSON lines in ``<data_dir>/dlq/dlq.jsonl``; replay rewrites the file without the entries
that were accepted. The file is bounded (``max_bytes``): past it, the oldest half is dropped and counted.

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
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec

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


#: The largest ``offset`` ``GET /api/v1/dlq`` takes (as the unified query's): a listing reads the queue whole,
#: so paging past a million entries is better done by narrowing it (``reason``). A larger one is a 422.
MAX_LIST_OFFSET: Final = 1_000_000


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

    def put(self, *, tenant_id: str, receiver: str, reason: str, raw: bytes | str, index: int | None = None) -> None:
        self.put_many([(tenant_id, receiver, reason, raw, index)])

    def put_many(self, entries: builtins.list[tuple[str, str, str, bytes | str, int | None]]) -> None:
        if not entries:
            return
        now = time.time()
        lines = []
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
        data = b"\n".join(lines) + b"\n"
        with self._lock:
            created = not self.path.exists()
            with open(self.path, "ab") as fh:
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            if created and self.fsync:  # the new file's name is durable too
                fsync_dir(self.directory)
            if self.path.stat().st_size > self.max_bytes:
                self._drop_oldest_half()

    def list(
        self, *, tenant_id: str | None, limit: int = 100, offset: int = 0, reason_contains: str | None = None
    ) -> tuple[builtins.list[Entry], int]:
        """Newest first. Returns (entries, total matching). ``tenant_id=None`` lists every tenant."""
        entries, total, _ = self.list_visible(
            tenant_id=tenant_id, limit=limit, offset=offset, reason_contains=reason_contains
        )
        return entries, total

    def list_visible(
        self,
        *,
        tenant_id: str | None,
        visible: Callable[[Entry], bool] | None = None,
        limit: int = 100,
        offset: int = 0,
        reason_contains: str | None = None,
    ) -> tuple[builtins.list[Entry], int, int]:
        """:meth:`list` of the entries ``visible`` keeps (all without it): (entries, total kept, how many
        matching entries it left out). Paging counts only the entries kept.

            >>> import tempfile
            >>> q = DeadLetterQueue(tempfile.mkdtemp(), fsync=False)
            >>> for raw in ('{"tags": {"team": "ml"}}', '{"tags": {"team": "search"}}', "{}"):
            ...     q.put(tenant_id="t", receiver="rest", reason="bad", raw=raw)
            >>> entries, total, hidden = q.list_visible(tenant_id="t", visible=lambda e: entry_teams(e) <= {"ml"})
            >>> total, hidden
            (2, 1)
        """
        entries = [e for e in self._read() if tenant_id is None or e.get("tenant_id") == tenant_id]
        if reason_contains:
            entries = [e for e in entries if reason_contains in e.get("reason", "")]
        matching = len(entries)
        if visible is not None:
            entries = [e for e in entries if visible(e)]
        entries.reverse()
        return entries[offset : offset + limit], len(entries), matching - len(entries)

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
        with self._lock:
            entries = self._read()
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
            keep = [e for e in entries if e["id"] not in accepted_ids]
            self._rewrite(keep)
            return len(selected), len(accepted_ids)

    def discard_partial_writes(self) -> bool:
        """Remove the temporary file of a rewrite (replay, trim) that a crash cut short before its rename:
        the queue is the old file, intact, and the temporary file is never read. For the owner at start,
        once the data directory is its own (the hub: after the store took the directory's lock; a second hub
        refused on that lock must not remove the running one's file mid-rewrite). Whether one was removed."""
        with self._lock:
            removed = discard_tmp(self.path, self.directory / "dlq.tmp")  # (dlq.tmp: earlier releases' name)
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

    def _read(self) -> builtins.list[Entry]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, "rb") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(_dec.decode(line))
                except msgspec.DecodeError:  # a torn line from a crash: skip it
                    continue
        return out

    def _rewrite(self, entries: builtins.list[Entry]) -> None:
        """Replace the file with ``entries`` at once; with ``fsync`` the file and the rename are durable (a
        power loss after a replay must not bring back the entries it accepted, nor lose the others)."""
        write_atomic(self.path, (_enc.encode(e) + b"\n" for e in entries), fsync=self.fsync)
        self._rewrites += 1

    def _drop_oldest_half(self) -> None:
        entries = self._read()
        half = len(entries) // 2
        self.dropped += half
        self._rewrite(entries[half:])
