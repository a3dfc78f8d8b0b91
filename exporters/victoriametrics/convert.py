"""metric_points rows (OTLP-shaped, or mapped from native events) → Prometheus series and samples.

* gauge → a gauge sample; cumulative sums → counters (``_total`` when monotonic) as they are;
  cumulative histograms → ``_bucket{le}`` (cumulative), ``_sum``, ``_count``; summaries → ``_sum``/``_count``.
* delta sums and delta histograms are accumulated into cumulative series per label set;
* ``observation`` rows (one event's measurement) are aggregated into histograms with fixed bucket
  boundaries per metric (GenAI semantic-convention buckets), ms converted to seconds;
* accumulated series get one sample per flush at ``max(previous sample + 1 ms, min(newest row, now))``,
  so they never go back in time (which Prometheus would read as a counter reset).

The running totals are the converter's *state*: :meth:`PointsConverter.snapshot` /
:meth:`PointsConverter.restore` (msgpack), persisted with the queue's acknowledgement. The converter
tracks the series changed since :meth:`PointsConverter.clear_dirty` (:attr:`PointsConverter.dirty`), so
that the exporter persists only those at each acknowledgement (``snapshot(keys)``, ``merge``) and the
whole state only now and then. The series model (keys, bucket boundaries, labels, the state's types) is in
:mod:`exporters.victoriametrics.series`; its public names are importable from here too.

    >>> c = PointsConverter()
    >>> out = c.convert({"tenant_id": ["t"], "ts": [2_000_000], "name": ["llm.cost.usd"], "kind": ["sum"],
    ...                  "temporality": ["delta"], "monotonic": [True], "value": [0.5], "unit": ["USD"],
    ...                  "service_name": ["llm-costops"], "attributes": ['{"cost_type": "token"}']})
    >>> [(dict(k)["__name__"], v) for k, v in out.items()]
    [('llm_cost_usd_total', [(2000, 0.5)])]
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from exporters.prom_naming import label_name, metric_name
from exporters.victoriametrics.forgotten import FORGOTTEN_LIMIT, series_digest
from exporters.victoriametrics.series import (
    _TIME_TO_SECONDS,
    DEFAULT_BUCKETS,
    DEFAULT_LABEL_ATTRIBUTES,
    DURATION_BUCKETS,
    INDEXED_LABELS,
    TOKEN_BUCKETS,
    Samples,
    SeriesKey,
    SeriesKeyMixin,
    SeriesStats,
    _Hist,
    _State,
    _with_name,
)

#: the series model (:mod:`exporters.victoriametrics.series`) stays importable from here, as before the split
__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_LABEL_ATTRIBUTES",
    "DURATION_BUCKETS",
    "INDEXED_LABELS",
    "TOKEN_BUCKETS",
    "PointsConverter",
    "Samples",
    "SeriesKey",
    "SeriesStats",
]

log = logging.getLogger(__name__)


class PointsConverter(SeriesKeyMixin):
    """Stateful (delta → cumulative); used from one thread."""

    def __init__(
        self,
        *,
        buckets: Mapping[str, Sequence[float]] | None = None,
        label_attributes: Iterable[str] = DEFAULT_LABEL_ATTRIBUTES,
        external_labels: Mapping[str, str] | None = None,
        clock: Any = time.time,
        series_ttl: float = 0.0,
        max_series: int = 0,
    ) -> None:
        """``series_ttl`` (s): forget an accumulated series not updated for this long (0: never);
        ``max_series``: forget the least recently updated ones beyond this many (0: no bound). A
        forgotten series that comes back starts from 0, after a 0 sample (see :meth:`finish`)."""
        self.buckets = {k: tuple(sorted(float(b) for b in v)) for k, v in (buckets or {}).items()}
        self.label_attributes = tuple(label_attributes)
        self.external_labels = tuple(sorted((label_name(k), v) for k, v in (external_labels or {}).items()))
        self.clock = clock
        self.series_ttl = float(series_ttl)
        self.max_series = int(max_series)
        self.state = _State()
        self.expired_total = 0
        self.evicted_total = 0
        self._attr_cache: dict[str | None, tuple[tuple[str, str], ...]] = {}
        self._key_cache: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
        self._touched: dict[SeriesKey, int] = {}
        self._dirty: set[SeriesKey] = set()
        self._removed: set[SeriesKey] = set()
        self._forgotten: dict[int, None] = {}  # digests of forgotten series, oldest first (see _forget)
        self.forgotten_changes = 0  # bumped whenever ``_forgotten`` changes (the exporter saves it then)
        self._next_sweep = 0.0

    # -- state ------------------------------------------------------------------------------------
    def snapshot(self, keys: Iterable[SeriesKey] | None = None, *, removed: Iterable[SeriesKey] = ()) -> bytes:
        """The state (msgpack); only the series ``keys`` when given, and the series ``removed`` (forgotten)
        as removals (see :meth:`merge`)."""
        s = self.state
        totals: Iterable[tuple[SeriesKey, float]]
        hists: Iterable[tuple[SeriesKey, _Hist]]
        last_ms: Iterable[tuple[SeriesKey, int]]
        if keys is None:
            totals, hists, last_ms = s.totals.items(), s.hists.items(), s.last_ms.items()
        else:
            keys = list(keys)
            totals = [(k, s.totals[k]) for k in keys if k in s.totals]
            hists = [(k, s.hists[k]) for k in keys if k in s.hists]
            last_ms = [(k, s.last_ms[k]) for k in keys if k in s.last_ms]
        now = int(self.clock())
        return msgspec.msgpack.encode(
            {
                "totals": [[list(map(list, k)), v, 1] if k in s.updown else [list(map(list, k)), v] for k, v in totals],
                "hists": [[list(map(list, k)), list(h.bounds), h.counts, h.sum, h.count] for k, h in hists],
                "last_ms": [[list(map(list, k)), v, s.seen.get(k, now)] for k, v in last_ms],
                "removed": [list(map(list, k)) for k in removed],
            }
        )

    def restore(self, blob: bytes) -> None:
        """Replace the state with a :meth:`snapshot` (nothing is dirty then)."""
        self.reset()
        self.merge(blob)
        self._dirty.clear()
        self._removed.clear()

    def merge(self, blob: bytes) -> None:
        """Apply a partial :meth:`snapshot` over the state (its removals first); its series are dirty
        (or removed). States written before ``seen`` was kept count as updated now."""
        data = msgspec.msgpack.decode(blob)
        key = lambda raw: tuple((a, b) for a, b in raw)  # noqa: E731
        s = self.state
        for k in data.get("removed", []):
            self._forget(key(k))
            self._remember(series_digest(key(k)))  # (also when it was not in the state merged so far)
        now = int(self.clock())
        for k, v, *updown in data.get("totals", []):
            sk = key(k)
            s.totals[sk] = float(v)
            if updown and updown[0]:
                s.updown.add(sk)
            self._mark_dirty(sk)
        for k, b, c, total, n in data.get("hists", []):
            s.hists[key(k)] = _Hist(tuple(b), list(c), float(total), int(n))
            self._mark_dirty(key(k))
        for k, v, *seen in data.get("last_ms", []):
            sk = key(k)
            s.last_ms[sk] = int(v)
            s.seen[sk] = int(seen[0]) if seen else now
            self._mark_dirty(sk)

    def reset(self) -> None:
        """The initial, empty state."""
        self.state = _State()
        self._dirty = set()
        self._removed = set()
        self._touched = {}

    @property
    def dirty(self) -> set[SeriesKey]:
        """Series changed (or merged) since :meth:`clear_dirty` / :meth:`restore`."""
        return self._dirty

    @property
    def removed(self) -> set[SeriesKey]:
        """Series forgotten (idle past ``series_ttl``, or over ``max_series``) since :meth:`clear_dirty`."""
        return self._removed

    def clear_dirty(self) -> None:
        self._dirty = set()
        self._removed = set()

    @property
    def series_count(self) -> int:
        """Accumulated series held (delta counters and histograms)."""
        return max(len(self.state.last_ms), len(self.state.totals) + len(self.state.hists))

    @property
    def stats(self) -> SeriesStats:
        return SeriesStats(self.series_count, self.expired_total, self.evicted_total)

    def expire(self, now: float | None = None) -> int:
        """Forget the accumulated series not updated for ``series_ttl`` seconds (monotonic counters and
        histograms; non-monotonic sums are levels, kept), then the least recently updated ones beyond
        ``max_series``. Returns how many were forgotten. :meth:`finish` calls it every minute or so."""
        now = self.clock() if now is None else now
        s = self.state
        dropped = 0
        if self.series_ttl > 0:
            cutoff = now - self.series_ttl
            idle = [k for k, t in s.seen.items() if t < cutoff and k not in s.updown]
            for k in idle:
                self._forget(k)
            self.expired_total += len(idle)
            dropped += len(idle)
        if self.max_series > 0 and len(s.seen) > self.max_series:
            keep = int(self.max_series * 0.95)  # evict in bulk: a sort now and then, not at every new series
            order = sorted(s.seen, key=lambda k: (k in s.updown, s.seen[k]))
            victims = order[: len(order) - keep]
            newest_idle = int(now - s.seen[victims[-1]]) if victims else 0
            for k in victims:
                self._forget(k)
            self.evicted_total += len(victims)
            dropped += len(victims)
            log.warning(
                "victoriametrics: more than max_series=%d accumulated series; forgot the %d least recently "
                "updated (idle %ds or more): if they come back they start again from 0, which PromQL reads "
                "as a counter reset; raise max_series or bound label_attributes",
                self.max_series, len(victims), newest_idle,
            )  # fmt: skip
        return dropped

    def _forget(self, k: SeriesKey) -> None:
        s = self.state
        if s.last_ms.pop(k, None) is None and k not in s.totals and k not in s.hists:
            return
        s.totals.pop(k, None)
        s.hists.pop(k, None)
        s.seen.pop(k, None)
        s.updown.discard(k)
        self._dirty.discard(k)
        self._removed.add(k)
        # remembered (a 64-bit digest, bounded) so that the series, if it comes back, restarts from 0
        self._remember(series_digest(k))

    def _remember(self, digest: int) -> None:
        self._forgotten.pop(digest, None)  # the newest last: the bound drops the longest forgotten first
        self._forgotten[digest] = None
        self.forgotten_changes += 1
        while len(self._forgotten) > FORGOTTEN_LIMIT:
            del self._forgotten[next(iter(self._forgotten))]

    @property
    def forgotten(self) -> list[int]:
        """Digests (:func:`~exporters.victoriametrics.forgotten.series_digest`) of the series forgotten (back
        since or not), oldest first: what :meth:`remember` takes again after a restart."""
        return list(self._forgotten)

    def remember(self, digests: Iterable[int]) -> None:
        """Add forgotten series' digests (saved before a restart; oldest first): when one of them comes back
        it gets its 0 sample (see :meth:`finish`) instead of starting like a new series."""
        for digest in digests:
            self._remember(int(digest))

    def _mark_dirty(self, k: SeriesKey) -> None:
        self._dirty.add(k)
        self._removed.discard(k)

    # -- conversion -------------------------------------------------------------------------------
    def convert(self, cols: Mapping[str, Sequence[Any]]) -> dict[SeriesKey, Samples]:
        """Series → samples for one flush (several batches may be converted into the same dict)."""
        out: dict[SeriesKey, Samples] = {}
        self.begin()
        self.convert_into(cols, out)
        self.finish(out)
        return out

    def convert_into(self, cols: Mapping[str, Sequence[Any]], out: dict[SeriesKey, Samples]) -> None:
        n = len(cols.get("name") or ())
        if not n:
            return
        none = [None] * n
        col = lambda c: cols.get(c) or none  # noqa: E731
        touched = self._touched
        for row in zip(
            col("ts"), col("name"), col("kind"), col("temporality"), col("monotonic"), col("value"), col("count"),
            col("sum"), col("bounds"), col("bucket_counts"), col("unit"), col("attributes"),
            *(col(c) for c, _ in INDEXED_LABELS), strict=True,
        ):  # fmt: skip
            ts_us, name, kind, temporality, monotonic, value, count, total, bounds, bucket_counts, unit, attrs = row[
                :12
            ]
            if not name or ts_us is None:
                continue
            ms = int(ts_us) // 1000
            unit = unit or ""
            kind = kind or "gauge"
            if kind == "observation":
                if value is None or not math.isfinite(value):
                    continue
                factor = _TIME_TO_SECONDS.get(unit)
                if factor is not None:
                    value, unit = value * factor, "s"
                base = metric_name(name, unit, "histogram")
                key = self._key(base, row[12:], attrs)
                h = self.state.hists.get(key)
                if h is None:
                    b = self._bounds_for(name, unit)
                    h = self.state.hists[key] = _Hist(b, [0] * (len(b) + 1))
                h.counts[bisect.bisect_left(h.bounds, value)] += 1
                h.sum += value
                h.count += 1
                touched[key] = max(touched.get(key, 0), ms)
            elif kind == "histogram":
                if not bounds or bucket_counts is None:
                    continue
                base = metric_name(name, unit, "histogram")
                key = self._key(base, row[12:], attrs)
                if temporality == "delta":
                    h = self.state.hists.get(key)
                    if h is None or h.bounds != tuple(bounds):
                        h = self.state.hists[key] = _Hist(tuple(bounds), [0] * (len(bounds) + 1))
                    for i, c in enumerate(bucket_counts[: len(h.counts)]):
                        h.counts[i] += int(c)
                    h.sum += float(total or 0.0)
                    h.count += int(count or 0)
                    touched[key] = max(touched.get(key, 0), ms)
                else:
                    self._emit_hist(
                        out, key, _Hist(tuple(bounds), list(bucket_counts), float(total or 0.0), int(count or 0)), ms
                    )
            elif kind == "summary":
                base = metric_name(name, unit, "summary")
                key = self._key(base, row[12:], attrs)
                out.setdefault(_with_name(key, base + "_sum"), []).append((ms, float(total or 0.0)))
                out.setdefault(_with_name(key, base + "_count"), []).append((ms, float(count or 0)))
            else:  # gauge / sum
                if value is None:
                    continue
                prom = metric_name(name, unit, kind, monotonic=bool(monotonic))
                key = self._key(prom, row[12:], attrs)
                if kind == "sum" and temporality == "delta":
                    self.state.totals[key] = self.state.totals.get(key, 0.0) + float(value)
                    touched[key] = max(touched.get(key, 0), ms)
                    if not monotonic:
                        self.state.updown.add(key)
                else:
                    out.setdefault(key, []).append((ms, float(value)))

    def begin(self) -> None:
        """Start a flush (accumulated series touched since are emitted by :meth:`finish`)."""
        self._touched = {}

    def finish(self, out: dict[SeriesKey, Samples]) -> None:
        """Emit one sample per accumulated series touched in this flush.

        A series this converter forgot (idle past ``series_ttl``, or over ``max_series``) that comes back
        starts with a 0 sample 1 ms before its first one, so that PromQL sees its predecessor's drop as a
        reset whatever the values (VictoriaMetrics takes a drop of less than an eighth for jitter, and a
        new value at least the old one hides the reset in any PromQL); and its first sample is no older
        than half ``series_ttl``, so it never lands among a predecessor's. A brand-new series gets no 0
        sample: VictoriaMetrics' rate() divides by the time its samples span, and a 0 one millisecond
        before the first value made a new, rarely updated series' rate a thousand times too high (the
        shipped compliance ratio, pass / all evaluations, read 2 % on healthy traffic).
        """
        now = self.clock()
        now_ms = int(now * 1000)
        floor_ms = now_ms - int(self.series_ttl * 500) if self.series_ttl > 0 else None
        s = self.state
        for key, newest in self._touched.items():
            last = s.last_ms.get(key)
            ms = min(newest, now_ms)
            if last is not None and ms <= last:
                ms = last + 1
            h = s.hists.get(key)
            # (the digest stays: should this flush be rolled back, or the state restored from an earlier
            # acknowledgement, the series is missing from the state again and needs its 0 sample again)
            returning = last is None and series_digest(key) in self._forgotten
            if returning:
                if floor_ms is not None and ms < floor_ms:
                    ms = floor_ms
                if h is not None:
                    self._emit_hist(out, key, _Hist(h.bounds, [0] * len(h.counts)), ms - 1)
                elif key not in s.updown:
                    out.setdefault(key, []).append((ms - 1, 0.0))
            s.last_ms[key] = ms
            s.seen[key] = int(now)
            if h is not None:
                self._emit_hist(out, key, h, ms)
            else:
                out.setdefault(key, []).append((ms, s.totals.get(key, 0.0)))
            self._mark_dirty(key)
        self._touched = {}
        if (self.series_ttl > 0 or self.max_series > 0) and now >= self._next_sweep:
            self._next_sweep = now + (min(60.0, max(1.0, self.series_ttl / 8)) if self.series_ttl > 0 else 60.0)
            self.expire(now)
        elif self.max_series > 0 and len(s.seen) > self.max_series:
            self.expire(now)
