"""Factory of the alerting processor: a type name, a default config, a constructor.

Usage: ``create_service(config.processors.alerting, store, metrics.registry, alertmanager_exporter)``, then
``start()`` and, at the end, ``shutdown()``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

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
    manage_client: bool = True,
) -> AlertingService:
    """The service. ``alertmanager_client``: e.g. the hub's ``exporters.alertmanager`` exporter; with
    ``manage_client=False`` the caller starts and shuts it down (the hub does so for its stack exporters)."""
    return AlertingService(
        config, store, metrics_registry, alertmanager_client, default_tenant=default_tenant, manage_client=manage_client
    )
