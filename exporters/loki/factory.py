"""Factory of the Loki exporter: a type name, a default config, a constructor."""

from __future__ import annotations

from exporters.loki.config import LokiExporterConfig
from exporters.loki.exporter import LokiExporter

TYPE = "loki"


def default_config() -> LokiExporterConfig:
    return LokiExporterConfig(endpoint="http://127.0.0.1:3100")


def create_exporter(config: LokiExporterConfig, *, default_directory: str = "") -> LokiExporter:
    return LokiExporter(config, default_directory=default_directory)
