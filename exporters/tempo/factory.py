"""Factory of the Tempo exporter: a type name, a default config, a constructor."""

from __future__ import annotations

from exporters.tempo.config import TempoExporterConfig
from exporters.tempo.exporter import TempoExporter

TYPE = "tempo"


def default_config() -> TempoExporterConfig:
    return TempoExporterConfig(endpoint="http://127.0.0.1:4318")


def create_exporter(config: TempoExporterConfig, *, default_directory: str = "") -> TempoExporter:
    return TempoExporter(config, default_directory=default_directory)
