"""Queued batches: their on-disk encoding, and the helpers that count and pick their rows by tenant.

A batch is queued as msgpack ``{"kind": ..., "cols": {column: [values...]}}`` (:func:`encode_batch`, the
format of the embedded store's log too); the worker of :class:`~exporters.queue.base.QueuedExporter`
reads it back as a :data:`Batch`, ``(sequence number, body)``. ``_rows``, ``_batch_rows``,
``_tenant_rows`` and ``_select`` count a batch's rows and pick those of some tenants, for the per-tenant
delivery of :mod:`exporters.queue.tenant_hold`:

    >>> import msgspec
    >>> body = msgspec.msgpack.decode(encode_batch("logs", {"tenant_id": ["a", "b", "a"], "ts": [1, 2, 3]}))
    >>> _tenant_rows([(7, body)], "tenant_id", {"a"})
    {'a': {7: 2}}
    >>> _select(body, "tenant_id", lambda tenant: tenant != "a")
    {'kind': 'logs', 'cols': {'tenant_id': ['b'], 'ts': [2]}}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import msgspec

Batch = tuple[int, Any]  # (queue sequence number, {"kind": ..., "cols": {...}})
_batch_encoder = msgspec.msgpack.Encoder()


def _rows(cols: Mapping[str, Any]) -> int:
    first = next(iter(cols.values()), None) if isinstance(cols, Mapping) else None
    return len(first) if isinstance(first, list) else 1


def encode_batch(kind: str, columns: Mapping[str, Any]) -> bytes:
    """A batch as the queues (and the embedded store's log) hold it: msgpack ``{"kind", "cols"}``.

    >>> import msgspec
    >>> msgspec.msgpack.decode(encode_batch("logs", {"ts": [1]}))
    {'kind': 'logs', 'cols': {'ts': [1]}}
    """
    return _batch_encoder.encode({"kind": kind, "cols": columns})


def _batch_rows(batches: Sequence[Batch]) -> dict[int, int]:
    return {seq: _rows(body.get("cols", {})) if isinstance(body, Mapping) else 1 for seq, body in batches}


def _tenant_rows(batches: Sequence[Batch], column: str, tenants: Collection[str]) -> dict[str, dict[int, int]]:
    """For each of ``tenants`` with rows in ``batches``: {sequence number: its rows there}."""
    out: dict[str, dict[int, int]] = {}
    if not tenants:
        return out
    for seq, body in batches:
        cols = body.get("cols") if isinstance(body, Mapping) else None
        if not isinstance(cols, Mapping):
            continue
        col = cols.get(column)
        if not col:
            if "" in tenants:
                out.setdefault("", {})[seq] = _rows(cols)
            continue
        for value in col:
            tenant = value or ""
            if tenant in tenants:
                per = out.setdefault(tenant, {})
                per[seq] = per.get(seq, 0) + 1
    return out


def _select(body: Any, column: str, keep: Callable[[str], bool]) -> Any | None:
    """``body`` with only the rows whose tenant ``keep`` accepts (None when no row is left)."""
    cols = body.get("cols") if isinstance(body, Mapping) else None
    if not isinstance(cols, Mapping):
        return body if keep("") else None
    n = _rows(cols)
    col = cols.get(column) or [None] * n
    idx = [i for i, value in enumerate(col) if keep(value or "")]
    if len(idx) == n:
        return body
    if not idx:
        return None
    picked = {name: [values[i] for i in idx] if isinstance(values, list) else values for name, values in cols.items()}
    return {**body, "cols": picked}
