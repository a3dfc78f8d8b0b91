"""Small pieces the stack exporters share: protobuf wire encoding by hand, the Grafana-stack tenant
header, and the in-memory DuckDB on which native events are mapped.

    >>> varint(300), len_delimited(0x0A, b"ab")
    (b'\\xac\\x02', b'\\n\\x02ab')
    >>> scope_org_headers({"User-Agent": "hub"}, "acme", org_id="", tenant_header=True)
    {'User-Agent': 'hub', 'X-Scope-OrgID': 'acme'}
    >>> from hubcore.mapping import EVENTS_TO_SPANS_SQL
    >>> to_spans = EventMapping(EVENTS_TO_SPANS_SQL)
    >>> to_spans.close()  # the worker calls ``to_spans(event_columns)``; the connection opens then
    True
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hubcore.mapping import run_mapping

if TYPE_CHECKING:
    import duckdb

_MASK64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """Protobuf base-128 varint (negative int64 as its 64-bit two's complement)."""
    n &= _MASK64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def len_delimited(tag: int, data: bytes) -> bytes:
    """A length-delimited protobuf field: the one-byte ``tag`` (field number << 3 | 2), length, ``data``."""
    return bytes((tag,)) + varint(len(data)) + data


def scope_org_headers(headers: Mapping[str, str], tenant: str, *, org_id: str, tenant_header: bool) -> dict[str, str]:
    """``headers`` plus ``X-Scope-OrgID`` (Loki/Tempo/Mimir multi-tenancy): the fixed ``org_id`` when set,
    else the batch's ``tenant`` when ``tenant_header`` is on and the tenant is known; else none."""
    out = dict(headers)
    if org_id:
        out["X-Scope-OrgID"] = org_id
    elif tenant_header and tenant:
        out["X-Scope-OrgID"] = tenant
    return out


class EventMapping:
    """One of the hub's mappings of native events (:mod:`hubcore.mapping`), run on each batch of
    ``events`` rows (timestamps in µs) on a private in-memory DuckDB opened at first use. Used from the
    exporter's worker thread; ``close`` it at shutdown, after the worker stopped."""

    def __init__(self, mapping_sql: str) -> None:
        self.mapping_sql = mapping_sql
        self._con: duckdb.DuckDBPyConnection | None = None
        #: held while a batch is mapped: ``close`` must not close the connection under a worker that
        #: outlived its shutdown's wait (DuckDB raised "connection is busy with another call" in shutdown)
        self._busy = threading.Lock()

    def __call__(self, cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
        with self._busy:
            if self._con is None:
                import duckdb  # here: the wire helpers above need no DuckDB

                self._con = duckdb.connect()
            return run_mapping(self._con, self.mapping_sql, cols)

    def close(self, wait: float = 1.0) -> bool:
        """Close the connection (True); False when a batch is still being mapped after ``wait`` seconds:
        the connection is then left to that worker (an in-memory database, gone with the process)."""
        if not self._busy.acquire(timeout=wait):
            return False
        try:
            if self._con is not None:
                self._con.close()
                self._con = None
            return True
        finally:
            self._busy.release()
