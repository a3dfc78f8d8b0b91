"""The series model of :class:`~exporters.victoriametrics.convert.PointsConverter`: keys, bucket boundaries,
labels, and the running state it keeps between flushes.

A series is keyed by its sorted labels, ``__name__`` included (:data:`SeriesKey`), and gets samples
``(ms, value)`` (:data:`Samples`). Histograms aggregated from ``observation`` rows use fixed bucket
boundaries per metric (:data:`DURATION_BUCKETS`, :data:`TOKEN_BUCKETS`, :data:`DEFAULT_BUCKETS`); the
attributes in :data:`DEFAULT_LABEL_ATTRIBUTES` and the columns of :data:`INDEXED_LABELS` become labels
(:class:`SeriesKeyMixin`, the converter's key and histogram helpers). ``_State`` holds the running totals,
histograms and last samples that the converter persists with the queue's acknowledgement:

    >>> key = (("__name__", "llm_latency_seconds"), ("job", "llm-sentinel"))
    >>> _with_name(key, "llm_latency_seconds_bucket", ("le", _fmt_le(DURATION_BUCKETS[-1])))
    (('__name__', 'llm_latency_seconds_bucket'), ('job', 'llm-sentinel'), ('le', '81.92'))
    >>> _fmt_le(1.0), _fmt_le(float("inf"))
    ('1', '+Inf')
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from exporters.prom_naming import label_name

SeriesKey = tuple[tuple[str, str], ...]  # sorted labels, __name__ included
Samples = list[tuple[int, float]]  # (ms, value)

#: GenAI semantic conventions, recommended explicit bucket boundaries.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # Prometheus' defaults

#: Attributes that become labels (bounded cardinality); the rest stay out of the series.
DEFAULT_LABEL_ATTRIBUTES = (
    "cost_type",
    "threat_type",
    "threat_level",
    "action",
    "policy_id",
    "result",
    "violation_type",
    "regulation",
    "asset_id",
    "asset_type",
    "name",
    "version",
    # derived series (anomaly_score, yhat..., budget_exhaustion_timestamp_seconds): vmanomaly's labels
    # and the input series' labels, already in Prometheus form
    "for",
    "model_alias",
    "budget_id",
    "gen_ai_request_model",
    "team",
    "project",
    "environment",
)

#: metric_points column → label
INDEXED_LABELS = (
    ("tenant_id", "tenant_id"),
    ("service_name", "job"),
    ("environment", "environment"),
    ("model", "gen_ai_request_model"),
    ("provider", "gen_ai_provider_name"),
    ("operation", "gen_ai_operation_name"),
    ("token_type", "gen_ai_token_type"),
    ("error_type", "error_type"),
    ("team", "team"),
    ("project", "project"),
)

_TIME_TO_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def _fmt_le(bound: float) -> str:
    """Bucket bounds as Prometheus clients print them (``1.0``→``1``, ``0.01``→``0.01``)."""
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound)).removesuffix(".0") if float(bound).is_integer() else repr(float(bound))


@dataclass(slots=True)
class _Hist:
    bounds: tuple[float, ...]
    counts: list[int]  # per bucket (not cumulative), len(bounds) + 1
    sum: float = 0.0
    count: int = 0


@dataclass
class _State:
    totals: dict[SeriesKey, float] = field(default_factory=dict)
    hists: dict[SeriesKey, _Hist] = field(default_factory=dict)
    last_ms: dict[SeriesKey, int] = field(default_factory=dict)
    #: wall-clock second each accumulated series was last updated (for ``series_ttl``)
    seen: dict[SeriesKey, int] = field(default_factory=dict)
    #: non-monotonic delta sums: their running value is a level, not a counter; never forgotten for idleness
    updown: set[SeriesKey] = field(default_factory=set)


@dataclass(slots=True)
class SeriesStats:
    """What :class:`PointsConverter` tracks (``hub_export_tracked_series``) and has forgotten since start."""

    tracked: int = 0
    expired: int = 0  # idle longer than ``series_ttl``
    evicted: int = 0  # over ``max_series``


def _with_name(key: SeriesKey, name: str, extra: tuple[str, str] | None = None) -> SeriesKey:
    labels = dict(key)
    labels["__name__"] = name
    if extra:
        labels[extra[0]] = extra[1]
    return tuple(sorted(labels.items()))


class SeriesKeyMixin:
    """How :class:`~exporters.victoriametrics.convert.PointsConverter` (its only subclass) names its series
    and writes its histograms: label sets (cached), bucket boundaries, cumulative bucket samples."""

    # -- set by PointsConverter.__init__ ------------------------------------------------------------
    buckets: dict[str, tuple[float, ...]]
    label_attributes: tuple[str, ...]
    external_labels: tuple[tuple[str, str], ...]
    _attr_cache: dict[str | None, tuple[tuple[str, str], ...]]
    _key_cache: dict[tuple[Any, ...], tuple[tuple[str, str], ...]]

    # -- helpers ----------------------------------------------------------------------------------
    def _bounds_for(self, name: str, unit: str) -> tuple[float, ...]:
        configured = self.buckets.get(name)
        if configured:
            return configured
        if unit == "s":
            return DURATION_BUCKETS
        if "token" in name or unit in ("{token}", "token", "{tokens}"):
            return tuple(float(b) for b in TOKEN_BUCKETS)
        return DEFAULT_BUCKETS

    def _emit_hist(self, out: dict[SeriesKey, Samples], key: SeriesKey, h: _Hist, ms: int) -> None:
        base = dict(key)["__name__"]
        cumulative = 0
        for bound, c in zip((*h.bounds, math.inf), h.counts, strict=False):
            cumulative += int(c)
            out.setdefault(_with_name(key, base + "_bucket", ("le", _fmt_le(bound))), []).append(
                (ms, float(cumulative))
            )
        out.setdefault(_with_name(key, base + "_sum"), []).append((ms, float(h.sum)))
        out.setdefault(_with_name(key, base + "_count"), []).append((ms, float(h.count)))

    def _attr_labels(self, attrs: str | None) -> tuple[tuple[str, str], ...]:
        cached = self._attr_cache.get(attrs)
        if cached is not None:
            return cached
        pairs: list[tuple[str, str]] = []
        if attrs:
            try:
                data = json.loads(attrs)
            except ValueError:
                data = None
            if isinstance(data, dict):
                for k in self.label_attributes:
                    v = data.get(k)
                    if v is not None and v != "":
                        pairs.append((label_name(k), v if isinstance(v, str) else json.dumps(v)))
        result = tuple(pairs)
        if len(self._attr_cache) > 100_000:
            self._attr_cache.clear()
        self._attr_cache[attrs] = result
        return result

    def _key(self, prom_name: str, indexed: Sequence[Any], attrs: str | None) -> SeriesKey:
        ck = (prom_name, attrs, *indexed)
        cached = self._key_cache.get(ck)
        if cached is not None:
            return cached
        labels = dict(self.external_labels)
        labels.update(self._attr_labels(attrs))
        for (_col, label), v in zip(INDEXED_LABELS, indexed, strict=True):
            if v is not None and v != "":
                labels[label] = str(v)
        labels["__name__"] = prom_name
        key = tuple(sorted(labels.items()))
        if len(self._key_cache) > 200_000:
            self._key_cache.clear()
        self._key_cache[ck] = key
        return key
