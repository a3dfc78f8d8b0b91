"""The forecast cache's counts as hub metrics (``hub_analytics_forecast_cache_*``), read at scrape time.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from analytics.forecast.cache import ForecastCache
>>> registry = CollectorRegistry()
>>> registry.register(_ForecastCacheCollector(ForecastCache()))
>>> "hub_analytics_forecast_cache_entries 0.0" in generate_latest(registry).decode()
True
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics.forecast.cache import ForecastCache


class _ForecastCacheCollector(Collector):
    """The forecast cache's counts as hub metrics, read at scrape time."""

    def __init__(self, cache: ForecastCache) -> None:
        self.cache = cache

    def collect(self) -> list[Metric]:
        stats = self.cache.stats()
        hits = CounterMetricFamily("hub_analytics_forecast_cache_hits", "Forecasts answered from the cache")
        misses = CounterMetricFamily("hub_analytics_forecast_cache_misses", "Forecasts not in the cache (fitted)")
        entries = GaugeMetricFamily("hub_analytics_forecast_cache_entries", "Forecasts held in the cache")
        size = GaugeMetricFamily("hub_analytics_forecast_cache_bytes", "Bytes the cached forecasts hold")
        for family, value in ((hits, stats["hits"]), (misses, stats["misses"]), (entries, stats["entries"]),
                              (size, stats["bytes"])):  # fmt: skip
            family.add_metric([], float(value))
        return [hits, misses, entries, size]
