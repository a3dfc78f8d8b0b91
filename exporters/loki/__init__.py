"""Native events and OTLP logs → Loki's push API (protobuf+snappy or JSON). See ``README.md``."""

from exporters.loki.config import LokiExporterConfig
from exporters.loki.exporter import LokiExporter

__all__ = ["LokiExporter", "LokiExporterConfig"]
