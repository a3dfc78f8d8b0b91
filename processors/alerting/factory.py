"""Factory of the alerting processor: a type name, a default config, a constructor.

Usage: ``create_service(config.processors.alerting, store, metrics.registry)``, then ``start()`` and, at
the end, ``shutdown()``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporters.alertmanager.client import AlertmanagerExporter
from processors.alerting.config import AlertingConfig
from processors.alerting.evaluator import StoreLike
from processors.alerting.service import AlertingService, AlertmanagerLike

TYPE = "alerting"


def default_config() -> AlertingConfig:
    return AlertingConfig()


def create_service(
    config: AlertingConfig,
    store: StoreLike,
    metrics_registry: CollectorRegistry | None = None,
    alertmanager_client: AlertmanagerLike | None = None,
    *,
    default_tenant: str = "default",
) -> AlertingService:
    """The service; with ``config.alertmanager`` set and no client given, an Alertmanager client is made."""
    if alertmanager_client is None and config.alertmanager is not None:
        alertmanager_client = AlertmanagerExporter(config.alertmanager)
    return AlertingService(config, store, metrics_registry, alertmanager_client, default_tenant=default_tenant)
