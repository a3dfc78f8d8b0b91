"""Prometheus remote write to VictoriaMetrics (single node or cluster). See ``README.md``."""

from exporters.victoriametrics.config import ClusterConfig, VictoriaMetricsExporterConfig
from exporters.victoriametrics.exporter import VictoriaMetricsExporter

__all__ = ["ClusterConfig", "VictoriaMetricsExporter", "VictoriaMetricsExporterConfig"]
