"""The embedded exporter: the DuckDB store behind a write-ahead log (see README.md).

>>> from exporters.embedded import create_exporter, EmbeddedExporterConfig
>>> store = create_exporter(EmbeddedExporterConfig(data_dir="/tmp/hub-doc"))
>>> store.data_dir.name
'hub-doc'
"""

from exporters.embedded.factory import TYPE, EmbeddedExporterConfig, create_exporter, default_config

__all__ = ["TYPE", "EmbeddedExporterConfig", "create_exporter", "default_config"]
