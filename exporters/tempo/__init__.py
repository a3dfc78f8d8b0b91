"""Spans → Tempo over OTLP/HTTP (protobuf). See ``README.md``."""

from exporters.tempo.config import TempoExporterConfig
from exporters.tempo.exporter import TempoExporter

__all__ = ["TempoExporter", "TempoExporterConfig"]
