"""The correlation engine: a bounded streaming window per tenant, and on-demand analysis with SQL.

Streaming (call from the pipeline after each accepted batch; ``flush`` on a timer, e.g. every second)::

    engine = CorrelationEngine(store, registry=metrics.registry)
    engine.start()
    engine.ingest(result.columns)          # the events table's column dict of an accepted batch
    new = engine.flush()                   # analyse windows with new data; store + export new correlations

On demand::

    result = engine.analyze("tenant-a", start_us, end_us)   # reads events with parameterised SQL
    result.correlations, result.incidents

Memory is bounded: at most ``max_events_per_window`` rows per tenant (oldest evicted first), at most
``max_events_per_key`` per correlation id, events older than ``window_s`` behind the newest evicted,
and at most ``max_tenants`` tenants (least recently active evicted). After a restart, the stored correlations
and incidents an analysis continues are read back from the store (bounded: see ``_restore_incidents``), and
``refill()`` puts the events stored in the last ``window_s`` back in the windows (see ``refill``). What is
remembered between windows (correlations and incidents continued, rows of evicted events) is the
:class:`~analytics.correlation.memory.CorrelationMemory` mixin, in ``memory.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry

from analytics.correlation.detect import detect_all
from analytics.correlation.detect_graphs import Edges
from analytics.correlation.frame import (
    COST_KEYS,
    LATENCY_KEYS,
    SELECT_SQL,
    Baselines,
    build_frame,
    cost_mask,
    group_log_stats,
    latency_mask,
    mark_outliers,
    rows_from_sql,
)
from analytics.correlation.memory import ADJACENT_US, MAX_RECALLED_ROWS, CorrelationMemory
from analytics.correlation.model import AnomalyRecord, Correlation, EngineConfig, Incident
from analytics.correlation.persist import CorrelationRepository, StoreLike
from analytics.correlation.rca import group_incidents, rank_hypotheses
from analytics.correlation.refill import RefillStats, refill_windows
from analytics.correlation.window import LIST_COLUMNS, EventWindow, as_ts

#: ``ADJACENT_US`` and ``MAX_RECALLED_ROWS`` live in :mod:`analytics.correlation.memory`; still importable from here.
__all__ = [
    "ADJACENT_US",
    "MAX_ANALYZE_ROWS",
    "MAX_RECALLED_ROWS",
    "MAX_RESTORED_CORRELATIONS",
    "MAX_RESTORED_INCIDENTS",
    "AnalysisResult",
    "CorrelationEngine",
]

MAX_ANALYZE_ROWS = 500_000
#: At most this many stored incidents, and correlations of theirs, are read back per analysis (after a restart)
MAX_RESTORED_INCIDENTS = 100
MAX_RESTORED_CORRELATIONS = 5_000
log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    correlations: list[Correlation]
    incidents: list[Incident]
    hypotheses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    new: list[Correlation] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0


def _tenant_runs(tenants: list[Any], n: int) -> list[tuple[Any, range]]:
    """The batch's runs of consecutive rows of one tenant, in order."""
    first = tenants[0]
    if tenants.count(first) == n:
        return [(first, range(n))]
    runs = []
    start = 0
    for i in range(1, n):
        if tenants[i] != tenants[start]:
            runs.append((tenants[start], range(start, i)))
            start = i
    runs.append((tenants[start], range(start, n)))
    return runs


class CorrelationEngine(CorrelationMemory):
    """Thread-safe: ``ingest`` and ``flush`` may be called from different threads."""

    def __init__(self, store: StoreLike | None = None, config: EngineConfig | None = None, *,
                 registry: CollectorRegistry | None = None, export: bool = True) -> None:  # fmt: skip
        self.config = config or EngineConfig()
        self.store = store
        self.repo = CorrelationRepository(store, registry, export) if store is not None else None
        self._windows: OrderedDict[str, EventWindow] = OrderedDict()
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one analysis at a time (stream flush vs API analyze)
        self._started = False
        self._recent: OrderedDict[str, Correlation] = OrderedDict()
        self.max_recent = 20_000
        self._rca_cache: dict[tuple[str, str], tuple[Any, list[dict[str, Any]]]] = {}
        self._stored_sig: dict[str, tuple[int, int, float]] = {}
        self._by_event: dict[tuple[str, str, str], str] = {}
        self._by_dims: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
        self._incidents: OrderedDict[tuple[str, str], Incident] = OrderedDict()  # recent incidents, by id
        self._incident_of: dict[tuple[str, str], str] = {}  # (tenant, correlation id) -> its incident's id
        self._rows: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()  # correlated events' rows
        self.max_rows = 50_000
        self.default_tenant = "default"

    def start(self) -> None:
        """Create the ``correlations`` and ``incidents`` tables if missing (idempotent)."""
        if self.repo is not None and not self._started:
            self.repo.create_tables()
        self._started = True

    # -- streaming ----------------------------------------------------------------------------------
    def ingest(self, columns: dict[str, list[Any]]) -> int:
        """Add a batch of ``events`` rows (column lists) to the tenants' windows; returns rows kept."""
        n = len(columns.get("event_id", ()))
        if n == 0:
            return 0
        cfg = self.config
        held = {c: v for c in LIST_COLUMNS if (v := columns.get(c))}
        ts = as_ts(columns.get("ts") or None, n)
        if len(ts) != n or any(len(v) != n for v in held.values()):
            raise ValueError("the batch's columns differ in length")
        tenants = columns.get("tenant_id") or [self.default_tenant] * n
        # an event stamped ahead of the clock (a skewed source: the normaliser accepts up to an hour) moves the
        # window no further than now: it had evicted every event of the last window_s at once, and then kept
        # the window from closing behind it for as long as it was ahead
        wall_us = int(time.time() * 1e6)
        kept = 0
        with self._lock:
            # each run of rows of one tenant touches its window (the least recently active tenant goes first)
            parts: dict[int, tuple[EventWindow, list[range]]] = {}
            for tenant, rows in _tenant_runs(tenants, n):
                win = self._window(tenant or self.default_tenant)
                parts.setdefault(id(win), (win, []))[1].append(rows)
            # (a window evicted by a later tenant of this batch takes its rows too, then is dropped)
            for win, ranges in parts.values():
                kept += win.append(held, ts, ranges, cfg.max_events_per_key, now_us=wall_us)
            for win in self._windows.values():
                self._evict(win)
        return kept

    def refill(self, now_us: int | None = None, stop: threading.Event | None = None) -> RefillStats:
        """After a restart: put each tenant's events stored in the last ``window_s`` back in its window (at most
        ``max_events_per_window`` per tenant, its newest, and ``max_tenants`` tenants), in front of what was
        streamed meanwhile; an event already held is not added again. Call it once the write-ahead log's
        replay is applied, from any thread, while ``ingest`` goes on; a store that cannot answer is logged."""
        if self.store is None:
            return RefillStats()
        return refill_windows(self.store, self.config, self._merge_stored, now_us=now_us, stop=stop)

    def _merge_stored(self, tenant: str, columns: dict[str, list[Any]], ts: Any, now_us: int) -> int:
        cfg = self.config
        with self._lock:
            win = self._windows.get(tenant)
            if win is None:
                if len(self._windows) >= cfg.max_tenants:  # the tenants streaming now keep their windows
                    return 0
                win = self._windows[tenant] = EventWindow()
                self._windows.move_to_end(tenant, last=False)  # less recently active than those streaming now
            kept = win.prepend(columns, ts, cfg.max_events_per_window, cfg.max_events_per_key, now_us=now_us)
            self._evict(win)
            return kept

    def _window(self, tenant: str) -> EventWindow:
        win = self._windows.get(tenant)
        if win is None:
            win = self._windows[tenant] = EventWindow()
            while len(self._windows) > self.config.max_tenants:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(tenant)
        return win

    def _evict(self, win: EventWindow) -> None:
        win.evict(win.max_ts - int(self.config.window_s * 1e6), self.config.max_events_per_window)

    def forget(self, tenant: str) -> None:
        """Drop everything held in memory for ``tenant`` — its window of events, remembered rows and
        correlations, root-cause results — so that data erased from the store is not written back by
        the next flush (an erasure of the tenant or of one of its users calls this)."""
        with self._run_lock, self._lock:
            self._windows.pop(tenant, None)
            for cid in [cid for cid, c in self._recent.items() if c.tenant_id == tenant]:
                del self._recent[cid]
                self._stored_sig.pop(cid, None)
            for row_key in [k for k in self._rows if k[0] == tenant]:
                del self._rows[row_key]
            for rca_key in [k for k in self._rca_cache if k[0] == tenant]:
                del self._rca_cache[rca_key]
            for event_key in [k for k in self._by_event if k[0] == tenant]:
                del self._by_event[event_key]
            for dims_key in [k for k in self._by_dims if k[0] == tenant]:
                del self._by_dims[dims_key]
            for inc_key in [k for k in self._incidents if k[0] == tenant]:
                del self._incidents[inc_key]
            for of_key in [k for k in self._incident_of if k[0] == tenant]:
                del self._incident_of[of_key]

    def window_sizes(self) -> dict[str, tuple[int, int]]:
        """tenant → (rows, distinct keys) currently held (for tests and metrics)."""
        with self._lock:
            return {t: (len(w), w.keys()) for t, w in self._windows.items()}

    def flush(self, now_us: int | None = None) -> list[Correlation]:
        """Analyse each tenant's window that received data since the last flush; returns new correlations.

        ``now_us`` (default: wall clock) closes windows by time too: rows older than ``window_s`` go.
        """
        return [c for r in self.flush_results(now_us) for c in r.new]

    def flush_results(self, now_us: int | None = None) -> list[AnalysisResult]:
        """Like :meth:`flush`, returning each analysed window's full result (correlations, incidents, RCA)."""
        now_us = now_us if now_us is not None else int(time.time() * 1e6)
        todo: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for tenant, win in self._windows.items():
                win.max_ts = max(win.max_ts, now_us)
                self._evict(win)
                if win.dirty and len(win):
                    todo.append((tenant, win.columns(win.max_ts - int(self.config.window_s * 1e6))))
                    win.dirty = False
        results = []
        for tenant, columns in todo:
            df = build_frame(columns, outliers=False)
            current = self._windows.get(tenant)
            if current is not None:
                mark_outliers(df, current.baselines["latency_baselines"], current.baselines["cost_baselines"])
                self._learn_baselines(df, current.baselines)
            else:
                mark_outliers(df)
            results.append(self._run(df, tenant))
        return results

    def _learn_baselines(self, df: pd.DataFrame, baselines: dict[str, Baselines], cap: int = 5_000) -> None:
        """Exponentially smoothed per-series (median, MAD) of log latency / cost, learned from the values
        that are not outliers; a window whose median moved by more than 3 MADs does not update its series."""
        slow, costly = df["slow"].to_numpy(dtype=bool), df["cost_outlier"].to_numpy(dtype=bool)
        for name, mask, keys in (("latency_baselines", latency_mask(df) & ~slow, LATENCY_KEYS),
                                 ("cost_baselines", cost_mask(df) & ~costly, COST_KEYS)):  # fmt: skip
            base = baselines[name]
            for key, (med, mad) in group_log_stats(df, mask, keys).items():
                old = base.get(key)
                if old is None:
                    if len(base) < cap:
                        base[key] = (med, mad)
                elif abs(med - old[0]) <= 3 * max(old[1], 0.05):
                    base[key] = (0.8 * old[0] + 0.2 * med, 0.8 * old[1] + 0.2 * mad)

    # -- on demand ----------------------------------------------------------------------------------
    def analyze(self, tenant: str, start_us: int, end_us: int, *, anomalies: Sequence[AnomalyRecord] | None = None,
                store_results: bool = True) -> AnalysisResult:  # fmt: skip
        """Correlate the stored events of ``tenant`` in ``[start_us, end_us)``."""
        if end_us <= start_us:
            raise ValueError("end must be after start")
        if self.store is None:
            raise RuntimeError("analyze needs a store")
        rows = self.store.read(SELECT_SQL, [tenant, start_us, end_us, MAX_ANALYZE_ROWS]).fetchall()
        df = build_frame(rows_from_sql(rows))
        return self._run(df, tenant, anomalies=anomalies, deps=self.trace_dependencies(tenant, start_us, end_us),
                         store_results=store_results)  # fmt: skip

    def analyze_frame(self, df: pd.DataFrame, tenant: str, *, anomalies: Sequence[AnomalyRecord] | None = None,
                      store_results: bool = False) -> AnalysisResult:  # fmt: skip
        """Correlate an already-built frame (see :func:`build_frame`), e.g. in evaluations."""
        return self._run(df, tenant, anomalies=anomalies, store_results=store_results)

    def trace_dependencies(self, tenant: str, start_us: int, end_us: int) -> Edges:
        """child service → parent service edges (failures propagate that way) from the spans table."""
        if self.store is None:
            return {}
        rows = self.store.read(
            "SELECT c.service_name, p.service_name, count(*) FROM spans c JOIN spans p ON c.tenant_id = p.tenant_id "
            "AND c.trace_id = p.trace_id AND c.parent_span_id = p.span_id WHERE c.tenant_id = ? "
            "AND c.start_ts >= make_timestamp(?) AND c.start_ts < make_timestamp(?) "
            "AND c.service_name <> p.service_name GROUP BY 1, 2", [tenant, start_us, end_us]).fetchall()  # fmt: skip
        return {(str(a), str(b)): float(n) for a, b, n in rows}

    def _restore_incidents(self, tenant: str, groups: list[Incident], owners: set[str]) -> set[str]:
        """Read back the stored incidents that memory lacks and this analysis may continue (its memory starts
        empty after a restart, and forgets beyond ``max_recent``): those ``groups`` name (the same root), those
        of recalled correlations (``owners``), and the latest ending within ``ADJACENT_US`` of ``groups``; at
        most ``MAX_RESTORED_INCIDENTS``, with at most ``MAX_RESTORED_CORRELATIONS`` of their correlations.
        Nothing is read while every correlation of ``groups`` belongs to an incident memory holds. A store
        that cannot answer is logged: the incidents are then grouped from what memory holds, as before.
        Returns the ids of the correlations read back (their events are read back for the root-cause ranking)."""
        if self.repo is None or not groups:
            return set()
        with self._lock:
            if all((tenant, self._incident_of.get((tenant, c))) in self._incidents
                   for i in groups for c in i.correlation_ids):  # fmt: skip
                return set()
            named = {i for i in {g.id for g in groups} | owners if (tenant, i) not in self._incidents}
        since = min(i.start_us for i in groups) - ADJACENT_US
        until = max(i.end_us for i in groups) + ADJACENT_US
        try:
            stored = self.repo.load_incidents(tenant, sorted(named), since, until, MAX_RESTORED_INCIDENTS)
            with self._lock:
                fresh = [inc for inc in stored if (tenant, inc.id) not in self._incidents]
                lost = [c for inc in fresh for c in inc.correlation_ids if c not in self._recent]
            loaded = self.repo.load_correlations(tenant, list(dict.fromkeys(lost))[:MAX_RESTORED_CORRELATIONS])
        except Exception:  # best effort, like the rest of streaming correlation: never fail the analysis
            log.warning("could not read back the stored incidents of tenant %r: incidents found now are grouped "
                        "from memory only", tenant, exc_info=True)  # fmt: skip
            return set()
        with self._lock:
            for c in loaded:
                self._recent.setdefault(c.id, c)
                self._by_dims.setdefault((tenant, c.type, tuple(sorted(c.dimensions.items()))), c.id)
                for e in c.event_ids:
                    self._by_event.setdefault((tenant, c.type, e), c.id)
            for inc in sorted(fresh, key=lambda i: (i.end_us, i.id)):  # the latest ending is scanned first
                self._incidents[(tenant, inc.id)] = inc
                for cid in inc.correlation_ids:
                    self._incident_of.setdefault((tenant, cid), inc.id)  # what memory holds is newer
            self._trim()
        return {c.id for c in loaded}

    def _run(self, df: pd.DataFrame, tenant: str, *, anomalies: Sequence[AnomalyRecord] | None = None,
             deps: Edges | None = None, store_results: bool = True) -> AnalysisResult:  # fmt: skip
        with self._run_lock:
            return self._run_locked(df, tenant, anomalies=anomalies, deps=deps, store_results=store_results)

    def _run_locked(self, df: pd.DataFrame, tenant: str, *, anomalies: Sequence[AnomalyRecord] | None,
                    deps: Edges | None, store_results: bool) -> AnalysisResult:  # fmt: skip
        t = time.perf_counter()
        found = detect_all(df, tenant, self.config, deps, anomalies)
        recalled, recalled_incidents = self._recall(tenant, found)
        corrs = [self._merge(c) for c in found]
        groups = group_incidents(corrs)
        recalled |= self._restore_incidents(tenant, groups, recalled_incidents)
        incidents, kept = self._continue_incidents(tenant, groups, corrs)
        by_id = {c.id: c for c in [*kept, *corrs]}
        rca_frame = self._with_remembered(df, tenant, [*kept, *corrs], recalled)
        hyps: dict[str, list[dict[str, Any]]] = {}
        learned = dict(deps or {})
        changed_incidents = []
        for inc in incidents:
            # RCA again only when the incident changed (its correlations or their events)
            sig = (tuple(inc.correlation_ids), len(inc.event_ids), inc.end_us)
            cached = self._rca_cache.get((tenant, inc.id))
            if cached is not None and cached[0] == sig:
                hyps[inc.id] = cached[1]
                continue
            hyps[inc.id] = rank_hypotheses(inc, [by_id[c] for c in inc.correlation_ids], rca_frame, learned)
            self._rca_cache[(tenant, inc.id)] = (sig, hyps[inc.id])
            changed_incidents.append(inc)
        while len(self._rca_cache) > self.max_recent:
            self._rca_cache.pop(next(iter(self._rca_cache)))
        new: list[Correlation] = []
        if store_results and self.repo is not None:
            changed = [c for c in corrs if self._changed(c)]
            owners = {cid: inc.id for inc in incidents for cid in inc.correlation_ids}
            new = self.repo.save(changed, changed_incidents, hyps, df, incident_of=owners)
        return AnalysisResult(corrs, incidents, hyps, new, len(df), time.perf_counter() - t)
