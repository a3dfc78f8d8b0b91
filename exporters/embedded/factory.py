"""Factory of the embedded exporter: a type name, a default config, a constructor."""

from __future__ import annotations

from hubcore.config import EmbeddedExporterConfig
from hubcore.storage.embedded import EmbeddedStore

TYPE = "embedded"


def default_config() -> EmbeddedExporterConfig:
    return EmbeddedExporterConfig()


def create_exporter(config: EmbeddedExporterConfig) -> EmbeddedStore:
    """The store is the exporter: receivers' rows are appended durably, then written in bulk."""
    return EmbeddedStore(
        config.data_dir,
        wal_fsync=config.wal_fsync,
        max_pending_rows=config.max_pending_rows,
        flush_rows=config.flush_rows,
        flush_interval=config.flush_interval,
        retention_days=config.retention_days,
        tenant_retention_days=config.tenant_retention_days,
        memory_limit=config.memory_limit,
    )
