"""The analytic processors as a service: scheduled anomaly and forecast series, budgets, what-if.

    from analytics.service import AnalyticsConfig, AnalyticsService
    svc = AnalyticsService(AnalyticsConfig(), store, metrics_registry)   # config: processors.analytics
    svc.start(); ...; svc.shutdown()

See docs/analytics_service.md.
"""

from analytics.service.config import AnalyticsConfig, ModelSpec, QuerySpec, SchedulerSpec, default_config
from analytics.service.derived import AnomalyRecord, DerivedRepository, DerivedRow
from analytics.service.service import AnalyticsService, NotFound, SeriesListener

__all__ = [
    "AnalyticsConfig",
    "AnalyticsService",
    "AnomalyRecord",
    "DerivedRepository",
    "DerivedRow",
    "ModelSpec",
    "NotFound",
    "QuerySpec",
    "SchedulerSpec",
    "SeriesListener",
    "default_config",
]
