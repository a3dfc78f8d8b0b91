"""The streaming windows refilled after a restart from the events already stored (the engine's memory
starts empty: a correlation needing events from before the restart was found later or not at all).

    stats = refill_windows(store, config, engine._merge_stored)   # what ``CorrelationEngine.refill`` does
    stats.tenants, stats.rows, stats.seconds

One query lists the tenants with events stored in the last ``window_s`` (the ``max_tenants`` most recently
active), then one query per tenant reads its newest ``max_events_per_window`` events of that span (newest
first, so a bound cuts the oldest), handed to ``merge`` in time order. A read that fails is logged and
skipped: refilling is best effort, like the rest of streaming correlation.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from analytics.correlation.frame import SELECT_SQL, rows_from_sql
from analytics.correlation.model import EngineConfig
from analytics.correlation.persist import StoreLike
from analytics.correlation.window import as_ts

#: The tenants with events stored in ``[start, end)``, the most recently active first.
TENANTS_SQL: Final = (
    "SELECT tenant_id, max(ts) FROM events WHERE ts >= make_timestamp(?) AND ts < make_timestamp(?) "
    "GROUP BY tenant_id ORDER BY 2 DESC, tenant_id LIMIT ?"
)
#: ``SELECT_SQL`` newest first: with the limit, what is read is a tenant's newest events of the span.
NEWEST_SQL: Final = SELECT_SQL.replace("ORDER BY ts LIMIT", "ORDER BY ts DESC LIMIT")
log = logging.getLogger(__name__)

#: ``merge(tenant, columns, ts, now_us)`` puts a tenant's stored rows (in time order) in its window; returns rows kept.
Merge = Callable[[str, dict[str, list[Any]], "array[int]", int], int]


@dataclass(frozen=True)
class RefillStats:
    tenants: int = 0  #: tenants whose stored events were read
    read: int = 0  #: rows read from the store
    kept: int = 0  #: rows put in windows (less: events streamed meanwhile, bounds)
    failed: int = 0  #: reads that failed (logged)
    seconds: float = 0.0


def refill_windows(store: StoreLike, config: EngineConfig, merge: Merge, *, now_us: int | None = None,
                   stop: threading.Event | None = None) -> RefillStats:  # fmt: skip
    """Read the events stored in ``[now_us - window_s, now_us)`` per tenant and ``merge`` them (see the module)."""
    began = time.perf_counter()
    now_us = now_us if now_us is not None else int(time.time() * 1e6)
    start_us = now_us - int(config.window_s * 1e6)
    try:
        tenants = [str(t) for t, _ in store.read(TENANTS_SQL, [start_us, now_us, config.max_tenants]).fetchall()]
    except Exception:
        log.warning("could not read the stored events to refill the correlation windows: they start empty",
                    exc_info=True)  # fmt: skip
        return RefillStats(failed=1, seconds=time.perf_counter() - began)
    read = kept = failed = done = 0
    for tenant in tenants:
        if stop is not None and stop.is_set():
            break
        try:
            rows = store.read(NEWEST_SQL, [tenant, start_us, now_us, config.max_events_per_window]).fetchall()
        except Exception:
            log.warning("could not read the stored events of tenant %r: its correlation window starts empty",
                        tenant, exc_info=True)  # fmt: skip
            failed += 1
            continue
        rows.reverse()  # time order
        columns = rows_from_sql(rows)
        done += 1
        read += len(rows)
        kept += merge(tenant, columns, as_ts(columns["ts"], len(rows)), now_us)
    return RefillStats(done, read, kept, failed, time.perf_counter() - began)
