"""The hub's analytic alerts → Alertmanager ``/api/v2/alerts`` (fire, re-post, resolve). See ``README.md``."""

from exporters.alertmanager.client import Alert, AlertmanagerExporter
from exporters.alertmanager.config import AlertmanagerExporterConfig

__all__ = ["Alert", "AlertmanagerExporter", "AlertmanagerExporterConfig"]
