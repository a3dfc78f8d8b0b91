"""Per-tenant delivery of :class:`~exporters.queue.base.QueuedExporter`: rows held in place in the queue.

:class:`TenantHoldMixin` holds what :meth:`~TenantHoldMixin.deliver_by_tenant` needs: each tenant's
backoff after the backend refused it for now (a 429 rate limit...), the index of its rows held where
they are in the queue (read again and delivered once its backoff is over), and the relocation of the
held rows to the end of the queue when they keep too many delivered batches from being trimmed. The
state it works on is created by ``QueuedExporter.__init__`` and used by its worker (``_flush``,
``_acknowledge``); a multi-tenant exporter calls it from its ``process``::

    class LokiExporter(QueuedExporter):  # QueuedExporter derives from TenantHoldMixin
        def process(self, batches: list[Batch]) -> None:
            by_tenant = ...  # tenant -> this flush's records, converted from ``batches``
            self.deliver_by_tenant(batches, by_tenant, encode, url=self.url, headers_for=self.headers_for)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from exporters.queue.batches import Batch, _batch_rows, _rows, _select, _tenant_rows, encode_batch
from exporters.queue.config import RetryConfig
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.retry import Backoff
from hubcore.errors import QueueFullError, RetryableError

if TYPE_CHECKING:
    from exporters.queue.sender import HttpDelivery

#: the logger of :mod:`exporters.queue.base`, where this code was first: its records keep their logger name
log = logging.getLogger("exporters.queue.base")

T = TypeVar("T")


@dataclass(slots=True)
class _TenantRetry:
    """The backoff of one tenant that the backend refused for now (429/5xx/connection errors)."""

    backoff: Backoff
    started: float  # monotonic time of the first failure
    not_before: float = 0.0


class TenantHoldMixin:
    """The per-tenant delivery half of :class:`~exporters.queue.base.QueuedExporter` (its only base)."""

    # -- provided by QueuedExporter (its class attributes, ``__init__`` and ``delivery``) -------------
    name: ClassVar[str]
    tenant_column: ClassVar[str]
    retry_config: RetryConfig
    _tenant_retry: dict[str, _TenantRetry]
    _cursor: int
    _held: dict[str, int]
    _held_index: dict[str, dict[int, int]]
    _rows_in: dict[int, int]
    _failed_now: dict[str, dict[int, int]]

    if TYPE_CHECKING:

        @property
        def delivery(self) -> HttpDelivery: ...

    def deliver_by_tenant(
        self,
        batches: list[Batch],
        groups: Mapping[str, Sequence[T]],
        encode: Callable[[Sequence[T]], bytes],
        *,
        url: str,
        headers_for: Callable[[str], Mapping[str, str]],
    ) -> list[str]:
        """Deliver each tenant's records of this flush (``groups``: tenant → records converted from
        ``batches``) so that a tenant the backend refuses for now (a 429 rate limit...) cannot hold the
        others back. Returns the tenants done (delivered or dead-lettered).

        Every tenant gets one attempt (413 splits and permanent errors are handled as usual); a tenant
        that fails retryably gets its own backoff (``retry_on_failure``, ``Retry-After`` as a floor)
        and its rows of ``batches`` are *held*: they stay where they are in the queue (nothing is
        rewritten), later batches' rows of that tenant are held behind them (its order is kept), and
        the queue is acknowledged up to its first held row, the rest of what was read being recorded
        as delivered with the acknowledgement (so a restart neither loses its rows nor re-sends the
        others'). When its backoff is over, its held rows are read again and delivered with the next
        flush. ``max_elapsed_time`` counts from a tenant's first failure. For stateless exporters (the
        acknowledgement's :meth:`snapshot_state` is taken while rows are still held). Records that
        cannot be traced back to their rows by :attr:`tenant_column` are retried in place instead.
        """
        delivery = self.delivery
        done: list[str] = []
        failed: list[str] = []
        for tenant, records in groups.items():
            attempt = delivery.deliver(records, encode, url=url, headers=headers_for(tenant), once=True)
            if attempt is None:
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            retry = self._tenant_retry.get(tenant)
            if retry is None:
                retry = self._tenant_retry[tenant] = _TenantRetry(Backoff(self.retry_config), time.monotonic())
            delay = retry.backoff.next_delay(attempt.retry_after)
            limit = self.retry_config.max_elapsed_time
            if limit and time.monotonic() - retry.started + delay > limit:
                reason = f"retries exhausted after {limit}s: {attempt.reason}"
                delivery.give_up(records, encode(records), reason, status=attempt.status, url=url)
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
                continue
            retry.not_before = time.monotonic() + delay
            delivery.stats.retries += 1
            log.info("%s: tenant %r: %s; retrying it in %.2fs, the others go on", self.name, tenant,
                     attempt.reason, delay)  # fmt: skip
            failed.append(tenant)
        if failed:
            where = _tenant_rows(batches, self.tenant_column, failed)
            for tenant in failed:
                if where.get(tenant):
                    self._failed_now[tenant] = where[tenant]
                    continue
                # its records are not found in the batches by their tenant column: they cannot be held
                log.warning("%s: tenant %r's rows are not found by %r; retrying them in place", self.name,
                            tenant, self.tenant_column)  # fmt: skip
                delivery.deliver(groups[tenant], encode, url=url, headers=headers_for(tenant))
                self._tenant_retry.pop(tenant, None)
                done.append(tenant)
        return done

    def _hold_rows(self, tenant: str, where: Mapping[int, int], totals: Mapping[int, int]) -> None:
        """Index ``tenant``'s rows held in place (``where``: sequence number → its rows there; ``totals``:
        the batches' rows, for :meth:`_should_relocate`)."""
        index = self._held_index.setdefault(tenant, {})
        for seq, n in where.items():
            index[seq] = n
            if seq in totals:
                self._rows_in[seq] = totals[seq]

    def _release(self, tenant: str) -> None:
        self._held.pop(tenant, None)
        self._held_index.pop(tenant, None)
        self._tenant_retry.pop(tenant, None)

    def _due(self, tenant: str, now: float) -> bool:
        return self._not_before(tenant) <= now

    def _not_before(self, tenant: str) -> float:
        retry = self._tenant_retry.get(tenant)
        return retry.not_before if retry is not None else 0.0  # none after a restart: due at once

    def _load_held(self, queue: DiskQueue) -> None:
        """After a (re)start: what the last acknowledgement says was read and is held, and where."""
        self._cursor = queue.cursor
        self._held = queue.held
        self._held_index, self._rows_in = {}, {}
        if not self._held:
            return
        start = min(self._held.values())
        seqs = range(start, self._cursor + 1)
        for seq, body in queue.read(seqs):
            totals = _batch_rows([(seq, body)])
            for tenant, where in _tenant_rows([(seq, body)], self.tenant_column, self._held).items():
                if seq >= self._held[tenant]:
                    self._hold_rows(tenant, where, totals)
        log.info("%s: %d tenants' rows are held in the queue from the last run (%s)", self.name,
                 len(self._held), ", ".join(sorted(self._held)[:10]))  # fmt: skip

    def _should_relocate(self, queue: DiskQueue) -> bool:
        """Held rows keep the queue from being trimmed past them: when the batches read but kept for
        them take a quarter of the queue's bound, and the held rows no more than half of those, the held
        rows are moved to the end of the queue once (so that the queue does not fill up with batches
        already delivered while a tenant is throttled for long)."""
        count, nbytes = queue.pending_through(self._cursor)
        if count * 4 < queue.max_batches and nbytes * 4 < queue.max_bytes:
            return False
        seqs = {s for rows in self._held_index.values() for s in rows}
        sizes = queue.sizes(seqs)
        held_bytes = 0.0
        for rows in self._held_index.values():
            for s, n in rows.items():
                held_bytes += sizes.get(s, 0) * min(1.0, n / max(1, self._rows_in.get(s, n)))
        return held_bytes * 2 <= nbytes

    def _relocate(self, queue: DiskQueue) -> bool:
        """Move every held row to the end of the queue (one batch per kind); the tenants stay held,
        from the first batch after the cursor on (the moved rows come after the cursor). False when the
        queue has no room for them: they stay held where they are."""
        held = frozenset(self._held)
        seqs = {s for rows in self._held_index.values() for s in rows}
        merged: dict[str, dict[str, list[Any]]] = {}
        counts: dict[str, int] = {}
        for _seq, body in queue.read(seqs):
            picked = _select(body, self.tenant_column, held.__contains__)
            if picked is None:
                continue
            cols: dict[str, list[Any]] = picked["cols"]
            n = _rows(cols)
            kind = picked["kind"]
            out = merged.setdefault(kind, {})
            have = counts.get(kind, 0)
            for name in cols:
                if name not in out:
                    out[name] = [None] * have
            for name, values in out.items():
                values.extend(cols.get(name) or [None] * n)
            counts[kind] = have + n
        encoded = [(kind, cols, encode_batch(kind, cols)) for kind, cols in merged.items()]
        try:
            if queue.depth + len(encoded) > queue.max_batches or not queue.has_room(sum(len(e) for *_, e in encoded)):
                raise QueueFullError(f"{queue.depth} batches, {queue.pending_bytes} bytes waiting", retry_after=1.0)
            for kind, cols, raw in encoded:
                queue.put({"kind": kind, "cols": cols}, encoded=raw)
        except (RetryableError, OSError) as exc:
            log.warning("%s: cannot move the held rows of %d tenants to the end of the queue (%s)",
                        self.name, len(held), exc)  # fmt: skip
            return False
        log.info("%s: moved %d held rows of %d tenants to the end of the queue, so that %d batches already "
                 "delivered can be trimmed", self.name, sum(counts.values()), len(held),
                 queue.pending_through(self._cursor)[0])  # fmt: skip
        for tenant in held:
            self._held[tenant] = self._cursor + 1
        self._held_index, self._rows_in = {}, {}
        return True
