"""Read the input series of a configured query through the unified query layer (DuckDB backend).

A query spec becomes a unified-query body (``QuerySpec.body``), is parsed with
``hubcore.query.model.parse_query`` for the tenant and run by ``EmbeddedBackend.run`` — the same IR and
compiler as ``POST /api/v1/query``. Rows (``bucket, group fields..., value``) are split into series by
their group values and put on a regular grid of ``step`` seconds; only complete buckets are kept.
A query with a sample floor (``QuerySpec.sample_floor``: ``min_samples``, by default 20 events for a p95)
also reads each bucket's event count, as a second function of the same query (one scan), and a bucket
with fewer events is missing (NaN): the models neither score it nor see its value. A ratio composite's
count is its denominator's events (an ``error_rate``'s requests: ``hubcore.query.model.with_samples``).

    from analytics.service.series import load_series
    series = load_series(store, spec, "acme", start_s, end_s)
    series[0].labels      # {"environment": "production", "gen_ai_request_model": "gpt-4o"}
    series[0].ts, series[0].values    # epoch seconds (int64), floats (NaN where a bucket is empty)
    series[0].counts                  # events per bucket (None when the query has no sample floor)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.service.config import MAX_SERIES_BUCKETS, QuerySpec
from hubcore.query.compile_promql import COMMON_LABELS
from hubcore.query.executor import EmbeddedBackend
from hubcore.query.model import QueryError, parse_query, with_samples
from hubcore.storage.embedded import EmbeddedStore

__all__ = ["MAX_SERIES_BUCKETS", "Series", "check_window", "labels_key", "load_series", "tenants_with_data"]

#: Aggregates whose empty bucket means zero (not "unknown").
_ZERO_FILLED = ("count", "sum")
#: Buckets per query (below the query layer's MAX_BUCKETS).
CHUNK_BUCKETS = 9_000


def check_window(span_s: float, step_s: float, field: str) -> int:
    """The number of ``step_s`` buckets in ``span_s``; :class:`QueryError` naming ``field`` (a 422,
    ``range_too_large``) when it exceeds :data:`MAX_SERIES_BUCKETS`.

    >>> check_window(86_400, 60, "history")
    1440
    """
    buckets = int(span_s // step_s) if step_s > 0 else 0
    if buckets > MAX_SERIES_BUCKETS:
        raise QueryError(field, f"{buckets:,} steps of {step_s:g} s (at most {MAX_SERIES_BUCKETS:,}); use a shorter "
                         "window or a coarser step", reason="range_too_large")  # fmt: skip
    return buckets


@dataclass(frozen=True)
class Series:
    """One input series: its labels, bucket start times (epoch s) and values; ``counts``: the events of
    each bucket when the query has a sample floor (its buckets with fewer events have a NaN value)."""

    labels: dict[str, str]
    ts: np.ndarray
    values: np.ndarray
    step: int
    counts: np.ndarray | None = None

    @property
    def key(self) -> str:
        return labels_key(self.labels)


def labels_key(labels: dict[str, str]) -> str:
    """Canonical JSON of a label set (sorted keys): the series' identity."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _label_name(field: str, spec: QuerySpec) -> str:
    if field in spec.labels:
        return spec.labels[field]
    if spec.prom_labels and field in COMMON_LABELS:
        return COMMON_LABELS[field]
    return field.replace(".", "_")


def load_series(
    store: EmbeddedStore,
    spec: QuerySpec,
    tenant: str,
    start_s: float,
    end_s: float,
    *,
    timeout_s: float = 30.0,
    max_series: int = 1000,
) -> list[Series]:
    """The series of ``spec`` for ``tenant`` over ``[start_s, end_s)``, complete buckets only.

    Raises :class:`hubcore.query.model.QueryError` (a 422 naming the field) for a bad spec or a window of
    more than :data:`MAX_SERIES_BUCKETS` buckets. A bucket with fewer events than ``spec.sample_floor()``
    is NaN (and its count is in ``Series.counts``).
    """
    step = spec.step_seconds
    check_window(end_s - start_s, step, "time_range")
    first = int(start_s // step) * step
    last = int(end_s // step) * step - step  # the last complete bucket
    if last < first:
        return []
    floor = spec.sample_floor()
    rows: list[tuple[Any, ...]] = []
    # the query layer caps a query at MAX_BUCKETS buckets: a long window is read in chunks
    for lo in range(first, last + step, CHUNK_BUCKETS * step):
        hi = min(lo + CHUNK_BUCKETS * step, last + step)
        body = spec.body(float(lo), float(hi), with_count=floor > 0)
        query = parse_query(body, tenant=tenant, now_us=int(end_s * 1e6), paged=False)
        if floor > 0 and query.metric.composite:  # a ratio's samples: its denominator's events, same scan
            query = with_samples(query)
        if len(query.value_columns) != 1 + (floor > 0 and query.value_columns[0] != "count"):
            raise QueryError("aggregation.functions", "an analytics query needs exactly one function per bucket")
        if query.aggregation.time_bucket is None:
            raise QueryError("aggregation.time_bucket", "an analytics query needs a time bucket")
        rows += EmbeddedBackend(store).run(query, timeout_s=timeout_s).rows
    # the value, then (with a floor, unless the value is the count itself) the bucket's event count
    n_values = len(query.value_columns)
    groups = [g.label for g in query.aggregation.group_by]
    names = [_label_name(g, spec) for g in groups]
    zero = spec.per_second or (not query.metric.composite and query.aggregation.functions[0] in _ZERO_FILLED)
    grid = np.arange(first, last + step, step, dtype=np.int64)
    by_group: dict[tuple[Any, ...], list[tuple[int, float, float]]] = {}
    for row in rows:
        bucket, value, count = row[0], row[-n_values], row[-1]
        t = int(np.datetime64(bucket, "s").astype(np.int64))
        if t < first or t > last:
            continue
        by_group.setdefault(tuple(row[1:-n_values]), []).append(
            (t, float("nan") if value is None else float(value), float(count or 0))
        )
    out: list[Series] = []
    # Counts and sums fill empty buckets with 0, but only from the query's first data on: before it the
    # hub had nothing (a fresh install, a backfill), which is no data rather than zero requests or spend.
    known = min((p[0] for pts in by_group.values() for p in pts), default=first)
    for gvals, points in sorted(by_group.items(), key=lambda kv: [str(v) for v in kv[0]]):
        values = np.full(grid.size, 0.0 if zero else np.nan)
        values[grid < known] = np.nan
        idx = ((np.array([p[0] for p in points]) - first) // step).astype(np.int64)
        values[idx] = [p[1] for p in points]
        counts = None
        if floor > 0:  # too few events: no value (an empty bucket has none either)
            counts = np.zeros(grid.size)
            counts[idx] = [p[2] for p in points]
            values[counts < floor] = np.nan
        if spec.per_second:
            values = values / step
        labels = {n: "" if v is None else str(v) for n, v in zip(names, gvals, strict=True)}
        out.append(Series(labels, grid, values, step, counts))
        if len(out) >= max_series:
            break
    return out


def tenants_with_data(store: EmbeddedStore, since_s: float) -> list[str]:
    """Tenants that have events since ``since_s`` (the scheduler's work list)."""
    rows = store.read(
        "SELECT DISTINCT tenant_id FROM events WHERE ts >= make_timestamp(CAST(? AS BIGINT)) ORDER BY 1",
        [int(since_s * 1e6)],
    ).fetchall()
    return [str(r[0]) for r in rows if r[0] is not None]
