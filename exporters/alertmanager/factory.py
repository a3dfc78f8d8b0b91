"""Factory of the Alertmanager client: a type name, a default config, a constructor."""

from __future__ import annotations

from exporters.alertmanager.client import AlertmanagerExporter
from exporters.alertmanager.config import AlertmanagerExporterConfig

TYPE = "alertmanager"


def default_config() -> AlertmanagerExporterConfig:
    return AlertmanagerExporterConfig(endpoint="http://127.0.0.1:9093")


def create_exporter(config: AlertmanagerExporterConfig) -> AlertmanagerExporter:
    return AlertmanagerExporter(config)
