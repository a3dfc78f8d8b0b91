"""An append-only, hash-chained audit log: ``<data_dir>/audit/audit.jsonl``.

Each line is one JSON record: ``seq``, ``ts`` (UTC ISO-8601), ``subject``, ``key_id``, ``tenant_id``,
``target_tenant_id``, ``action``, ``resource``, ``outcome`` (``allowed``/``denied``/``error``...), ``reason``,
``source_ip``, ``user_agent``, ``prev_hash`` and ``hash`` = sha256 of the canonical JSON (sorted keys, no
spaces) of the record without ``hash`` (so it covers ``prev_hash``). The first record's ``prev_hash`` is 64 zeros.

Two tenants: ``tenant_id`` is the *acting* principal's tenant (who did it), ``target_tenant_id`` the tenant
whose data was acted upon (``"*"``: every tenant). They differ when a principal allowed to cross tenants
(a platform admin) names another tenant, or when a denied caller tried to. Records written before
``target_tenant_id`` existed lack it (their target is their ``tenant_id`` as far as the log knows): the hash
covers exactly the keys a record has, so those records still verify, and adding, removing or editing
``target_tenant_id`` on any record breaks the chain. Filtering by a tenant (:func:`iter_records`,
:func:`tail`) matches a record when *either* tenant is it (see :func:`concerns`), so a tenant's view holds
its own principals' actions and what others (platform admins) did to its data.
A sidecar ``audit.jsonl.head`` holds the last durable ``seq`` and ``hash``, so a cut tail is detected too.
Appends are serialised by a lock and written through one kept-open file; synced appends are made durable
by *group commit*: concurrent callers wait for one fsync of the file and one of the sidecar that covers
them all (the first to arrive does it), so an acknowledged record is on disk and 100 concurrent writers
cost one fsync pair, not 100. Appends made with ``sync=False`` (ingest batches, many per second) move
the sidecar every :data:`HEAD_EVERY` records or at the next synced one; a log opened with
``fsync=False`` moves it (unsynced) at every record. One process (the hub) writes.

    >>> import tempfile, pathlib
    >>> log = AuditLog(tempfile.mkdtemp())
    >>> _ = log.append(subject="alice", tenant_id="acme", action="keys:manage", resource="key/abc",
    ...                outcome="allowed")
    >>> _ = log.append(subject="root", tenant_id="ops", target_tenant_id="acme", action="data:erase",
    ...                resource="tenant/acme")
    >>> verify(log.path)
    VerifyResult(ok=True, records=2, first_bad_line=None, reason='intact')
    >>> [(r["subject"], r["tenant_id"], r["target_tenant_id"]) for r in iter_records(log.path, tenant_id="acme")]
    [('alice', 'acme', 'acme'), ('root', 'ops', 'acme')]

What this proves: no record was edited, removed, inserted or reordered since it was written, and the
tail was not cut, *unless* the attacker rewrote the whole chain and the sidecar. To anchor against that,
ship records (or just the head hash) off the machine as they are written: :func:`iter_records`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from hubcore.files import discard_tmp, write_atomic
from hubcore.security.principal import Principal

GENESIS = "0" * 64
#: Unsynced appends rewrite the head sidecar only every this many records (it is best effort for them).
HEAD_EVERY = 64
#: The fields of a record besides ``seq``, ``ts``, ``prev_hash`` and ``hash``. ``target_tenant_id`` came later:
#: older records lack it, and verification hashes the keys a record has (so they still verify).
FIELDS = ("subject", "key_id", "tenant_id", "target_tenant_id", "action", "resource", "outcome", "reason",
          "source_ip", "user_agent")  # fmt: skip
#: A ``target_tenant_id`` meaning every tenant (a platform-wide read): it concerns each tenant.
ALL_TENANTS = "*"


class VerifyResult(NamedTuple):
    ok: bool
    records: int
    first_bad_line: int | None
    reason: str


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of ``record`` without its ``hash`` (``prev_hash`` included)."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


class AuditLog:
    """Append-only writer. ``directory`` defaults to ``<data_dir>/audit``.

    ``recover=False`` leaves the file untouched until :meth:`recover` (or the first append): the hub constructs
    its log before the store takes the data directory's lock, and a second hub refused on that lock must not
    cut the running hub's half-written last line."""

    def __init__(self, data_dir: str | Path, *, fsync: bool = True, directory: str | Path | None = None,
                 recover: bool = True) -> None:  # fmt: skip
        self.directory = Path(directory) if directory is not None else Path(data_dir) / "audit"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "audit.jsonl"
        self.head = head_path(self.path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._seq, self._last_hash = 0, GENESIS
        self._durable_seq = self._head_seq = 0
        self._recovered = False
        self._fh: Any = None  # opened at the first append, reopened if the file is replaced
        #: called with each record after it is durable (e.g. to ship it to Loki in stack mode)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        if recover:
            self.recover()

    def recover(self) -> None:
        """Continue the chain from the last record: cut a torn last line, set damaged lines after the last record
        aside (:func:`_tail_state`; :class:`AuditLogDamaged` when that would lose a durable record). Idempotent.
        For the log's owner once the data directory is its own (the hub: after the store took its lock)."""
        with self._sync_lock, self._lock:
            if self._recovered:
                return
            self._seq, self._last_hash = _tail_state(self.path)
            self._durable_seq = self._head_seq = self._seq
            self._recovered = True

    def append(self, *, subject: str, tenant_id: str | None, action: str, resource: str = "",
               outcome: str = "allowed", reason: str = "", key_id: str | None = None,
               source_ip: str | None = None, user_agent: str | None = None,
               target_tenant_id: str | None = None, sync: bool | None = None) -> dict[str, Any]:  # fmt: skip
        """Write one record (fsynced when ``sync``, default: the log's ``fsync``); returns it with ``seq``
        and ``hash``. High-volume ingest records pass ``sync=False``: written and chained, not fsynced.

        ``tenant_id`` is the actor's tenant, ``target_tenant_id`` the tenant acted upon (default: the same)."""
        do_sync = self.fsync if sync is None else sync
        target = target_tenant_id if target_tenant_id is not None else tenant_id
        if not self._recovered:  # never fork the chain: a record continues the last one on disk
            self.recover()
        values = {"subject": subject, "key_id": key_id, "tenant_id": tenant_id, "target_tenant_id": target,
                  "action": action, "resource": resource, "outcome": outcome, "reason": reason, "source_ip": source_ip,
                  "user_agent": (user_agent or "")[:512] or None}  # fmt: skip
        with self._lock:
            record: dict[str, Any] = {"seq": self._seq + 1, "ts": _now(), **values, "prev_hash": self._last_hash}
            record["hash"] = record_hash(record)
            fh = self._file()
            fh.write(canonical(record) + b"\n")
            fh.flush()
            self._seq, self._last_hash = record["seq"], record["hash"]
            # high-volume unsynced records (sync=False) move the sidecar every HEAD_EVERY records; a log
            # that never fsyncs keeps it on its last record (not durable, but a cut tail still shows)
            move_head = not do_sync and (
                sync is not False or self._head_seq == 0 or self._seq - self._head_seq >= HEAD_EVERY
            )
        if do_sync:
            self._sync_through(record["seq"])
        elif move_head:
            self._move_head(record["seq"], record["hash"], fsync=False)
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:  # shipping is best effort; the local chain is the record of truth
                logging.getLogger(__name__).warning("audit record not shipped", exc_info=True)
        return record

    def _file(self) -> Any:
        """The kept-open append handle (under ``_lock``); reopened when the log file was replaced."""
        if self._fh is not None:
            try:
                same = os.fstat(self._fh.fileno()).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if not same:
                self._fh.close()
                self._fh = None
        if self._fh is None:
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open across appends, closed by close()
        return self._fh

    def _sync_through(self, seq: int) -> None:
        """Group commit: return once record ``seq`` and the sidecar naming it (or a later one) are on disk.

        Lock order: ``_sync_lock`` (head writes and fsyncs), then ``_lock`` (appends), never the reverse.
        """
        with self._sync_lock:
            if self._durable_seq >= seq:
                return  # another caller's fsync covered it
            with self._lock:  # everything appended so far is flushed to the OS: make all of it durable
                last_seq, last_hash = self._seq, self._last_hash
                # a duplicate descriptor: appends go on while this one syncs (and close() may run meanwhile)
                fd = os.dup(self._file().fileno())
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_head_locked(last_seq, last_hash, fsync=True)
            self._durable_seq = last_seq

    def _move_head(self, seq: int, last_hash: str, *, fsync: bool) -> None:
        with self._sync_lock:
            self._write_head_locked(seq, last_hash, fsync=fsync)

    def _write_head_locked(self, seq: int, last_hash: str, *, fsync: bool) -> None:
        """Write the sidecar (caller holds ``_sync_lock``); it never moves back to an earlier record."""
        if seq >= self._head_seq:
            _write_head(self.head, seq, last_hash, fsync=fsync)
            self._head_seq = seq

    def close(self) -> None:
        """Make the last record durable (when the log fsyncs), point the sidecar at it, close the file."""
        with self._sync_lock:
            with self._lock:
                if self._fh is not None:
                    self._fh.flush()
                    if self.fsync:
                        os.fsync(self._fh.fileno())
                    self._fh.close()
                    self._fh = None
                last_seq, last_hash = self._seq, self._last_hash
            if last_seq and (self._head_seq != last_seq or last_seq > self._durable_seq):
                self._write_head_locked(last_seq, last_hash, fsync=self.fsync)
            if self.fsync:
                self._durable_seq = last_seq

    def discard_partial_writes(self) -> bool:
        """Remove the temporary file of a sidecar write that a crash cut short before its rename (the sidecar
        is the old one, intact; the temporary file is never read). For the owner at start, once the data
        directory is its own (the hub: after the store took its lock). Whether one was removed."""
        with self._sync_lock:  # (head writes hold it)
            return discard_tmp(self.head, self.head.with_suffix(".tmp"))  # (audit.jsonl.tmp: earlier releases')

    def record(self, principal: Principal, action: str, resource: str = "", *, outcome: str = "allowed",
               reason: str = "", source_ip: str | None = None, user_agent: str | None = None,
               target_tenant_id: str | None = None, sync: bool | None = None) -> dict[str, Any]:  # fmt: skip
        """:meth:`append` for an authenticated principal (subject, key id and actor tenant from it).

        ``target_tenant_id``: the tenant whose data the action is on, when the caller chose one (a header,
        a query or path parameter, a body field); default: the principal's own tenant."""
        return self.append(subject=principal.subject, key_id=principal.key_id, tenant_id=principal.tenant_id,
                           target_tenant_id=target_tenant_id, action=action, resource=resource, outcome=outcome,
                           reason=reason, source_ip=source_ip, user_agent=user_agent, sync=sync)  # fmt: skip

    @property
    def count(self) -> int:
        return self._seq


def verify(path: str | Path) -> VerifyResult:
    """Check the whole chain and the sidecar. ``first_bad_line`` is 1-based."""
    path = Path(path)
    prev, n = GENESIS, 0
    if path.exists():
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    rec = json.loads(raw)
                except ValueError:
                    return VerifyResult(False, n, lineno, "not a JSON record (torn or edited line)")
                if not isinstance(rec, dict) or "hash" not in rec:
                    return VerifyResult(False, n, lineno, "not an audit record")
                if rec.get("prev_hash") != prev:
                    return VerifyResult(False, n, lineno, "prev_hash does not match the previous record's hash "
                                        "(a record was deleted, inserted or reordered before this line)")  # fmt: skip
                if record_hash(rec) != rec["hash"]:
                    return VerifyResult(False, n, lineno, "hash does not match the record (the record was edited)")
                if rec.get("seq") != lineno:
                    return VerifyResult(False, n, lineno, f"seq is {rec.get('seq')!r}, expected {lineno}")
                prev, n = rec["hash"], lineno
    head = _read_head(head_path(path))
    if head is None:
        if n:
            return VerifyResult(False, n, None, "the head sidecar is missing")
        return VerifyResult(True, 0, None, "intact")
    head_seq, head_hash = head
    if n < head_seq:
        return VerifyResult(False, n, n + 1, f"the log ends at record {n} but {head_seq} were written "
                            "(the tail was truncated)")  # fmt: skip
    if head_seq and _hash_at(path, head_seq) != head_hash:
        return VerifyResult(False, n, head_seq, "record does not match the hash in the head sidecar")
    return VerifyResult(True, n, None, "intact")


def target_of(record: dict[str, Any]) -> Any:
    """The tenant a record's action was on: ``target_tenant_id``, or for a record written before that field
    existed, its ``tenant_id`` (then the log knows no other; the ``resource`` may name it)."""
    return record["target_tenant_id"] if "target_tenant_id" in record else record.get("tenant_id")


def concerns(record: dict[str, Any], tenant_id: str, *, foreign_denied: bool = True) -> bool:
    """Whether ``record`` belongs in ``tenant_id``'s view: its principal is of that tenant (``tenant_id``), or
    its action was on that tenant's data (``target_tenant_id`` is it, or ``"*"``, every tenant).

    ``foreign_denied=False`` leaves out what other tenants' principals were *refused* on this tenant (they
    touched no data, and the record names the other tenant's user, key and address): the view a tenant gets
    through the API. What was allowed across tenants (a platform admin's access) is always included."""
    if record.get("tenant_id") == tenant_id:
        return True
    target = target_of(record)
    if target != tenant_id and target != ALL_TENANTS:
        return False
    return foreign_denied or record.get("outcome") == "allowed"


def iter_records(path: str | Path, *, tenant_id: str | None = None, after_seq: int = 0,
                 foreign_denied: bool = True) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Records in order (for export, e.g. to Loki) after ``after_seq``; with ``tenant_id`` only those that
    :func:`concern <concerns>` the tenant (acted by it or on it)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if rec.get("seq", 0) > after_seq and (
                tenant_id is None or concerns(rec, tenant_id, foreign_denied=foreign_denied)
            ):
                yield rec


def tail(path: str | Path, *, tenant_id: str | None = None, limit: int = 100,
         foreign_denied: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """The newest ``limit`` records (newest first), optionally those concerning one tenant (:func:`concerns`)."""
    return list(reversed(deque(iter_records(path, tenant_id=tenant_id, foreign_denied=foreign_denied), maxlen=limit)))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditLogDamaged(RuntimeError):
    """The audit log cannot be continued without losing a record it holds: the hub refuses to start."""


def _tail_state(path: Path) -> tuple[int, str]:
    """(seq, hash) of the last record, reading only the end of the file.

    A torn last line (no newline) is cut off. Whole lines after the last record that are not audit records
    (garbage, a zero-filled or half-written line that still got its newline) are moved to
    ``audit.jsonl.damaged`` and cut off the same way, so the chain goes on from the last record and still
    verifies. Not when the head sidecar names a record after the last intact one (a durable record is among
    the damaged lines: cutting it would lose it without a trace once the head moves on), nor when no record is
    left at all: then the log is refused with :class:`AuditLogDamaged`.
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0, GENESIS
    _cut_torn_tail(path)
    if path.stat().st_size == 0:
        return 0, GENESIS
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        bad_from, bad_lines = size, 0
        for offset, line in _lines_backwards(fh, size):
            rec = _as_record(line)
            if rec is None:
                bad_from, bad_lines = offset, bad_lines + 1
                continue
            seq, last_hash = rec
            if bad_lines:
                head = _read_head(head_path(path))
                if head is not None and head[0] > seq:
                    raise AuditLogDamaged(
                        f"the audit log {path} is damaged: its last {bad_lines} line(s) are not audit records, "
                        f"and its head sidecar names record {head[0]} (the last intact one is {seq}); check it with "
                        f"`hub audit verify`, then restore it from a backup or move it aside"
                    )
                _set_aside(path, fh, bad_from, size, bad_lines)
            return seq, last_hash
    raise AuditLogDamaged(
        f"the audit log {path} holds no audit record (its {bad_lines} line(s) are not JSON records); "
        f"check it with `hub audit verify`, then restore it from a backup or move it aside to start a new log"
    )


def _as_record(line: bytes) -> tuple[int, str] | None:
    """``(seq, hash)`` of an audit record line, or None for anything else."""
    try:
        rec = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(rec, dict):
        return None
    seq, last_hash = rec.get("seq"), rec.get("hash")
    if type(seq) is not int or not isinstance(last_hash, str):
        return None
    return seq, last_hash


def _lines_backwards(fh: Any, size: int, chunk: int = 65536) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` from the last line to the first, without newlines; the file ends with one."""
    pos, buf = size, b""  # buf holds the bytes [pos, end of the current last line]
    while True:
        nl = buf.rfind(b"\n", 0, len(buf) - 1)
        if nl >= 0:
            yield pos + nl + 1, buf[nl + 1 : -1]
            buf = buf[: nl + 1]
        elif pos == 0:
            if buf:
                yield 0, buf[:-1]
            return
        else:
            start = max(0, pos - chunk)
            fh.seek(start)
            buf = fh.read(pos - start) + buf
            pos, chunk = start, chunk * 2  # a long line is read in O(its size)


def _set_aside(path: Path, fh: Any, start: int, end: int, lines: int) -> None:
    """Copy the bytes ``[start, end)`` to ``<path>.damaged`` (appended, synced), then cut them off ``path``."""
    aside = path.with_name(path.name + ".damaged")
    fh.seek(start)
    data = fh.read(end - start)
    with open(aside, "ab") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    fh.truncate(start)
    fh.flush()
    os.fsync(fh.fileno())
    logging.getLogger(__name__).warning(
        "audit log: lines after the last record are not audit records; moved them aside",
        extra={"file": str(path), "lines": lines, "bytes": len(data), "moved_to": str(aside)},
    )


def _cut_torn_tail(path: Path) -> None:
    """A crash mid-append leaves a last line without its newline (never acknowledged): cut it off."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        pos = size
        while pos > 0:
            start = max(0, pos - 4096)
            fh.seek(start)
            block = fh.read(pos - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                fh.truncate(start + nl + 1)
                return
            pos = start
        fh.truncate(0)


def _hash_at(path: Path, seq: int) -> str | None:
    for rec in iter_records(path, after_seq=seq - 1):
        return str(rec.get("hash")) if rec.get("seq") == seq else None
    return None


def _write_head(head: Path, seq: int, last_hash: str, *, fsync: bool) -> None:
    """Replace the sidecar at once; with ``fsync`` its content and its rename survive a power loss (a lost
    rename leaves the sidecar naming an earlier record, or none after its first write: ``verify`` reports
    a missing sidecar)."""
    write_atomic(head, json.dumps({"seq": seq, "hash": last_hash}).encode(), fsync=fsync)


def _read_head(head: Path) -> tuple[int, str] | None:
    try:
        data = json.loads(head.read_text())
        return int(data["seq"]), str(data["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
