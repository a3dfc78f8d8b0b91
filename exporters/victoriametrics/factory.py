"""Factory of the VictoriaMetrics exporter: a type name, a default config, a constructor."""

from __future__ import annotations

from exporters.victoriametrics.config import VictoriaMetricsExporterConfig
from exporters.victoriametrics.exporter import VictoriaMetricsExporter

TYPE = "victoriametrics"


def default_config() -> VictoriaMetricsExporterConfig:
    return VictoriaMetricsExporterConfig(endpoint="http://127.0.0.1:8428")


def create_exporter(config: VictoriaMetricsExporterConfig, *, default_directory: str = "") -> VictoriaMetricsExporter:
    return VictoriaMetricsExporter(config, default_directory=default_directory)
