"""The usage examples in docstrings run (so they stay true)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hubcore.config",
    "hubcore.config_env",
    "hubcore.contracts",
    "hubcore.dlq",
    "hubcore.durations",
    "hubcore.times",
    "hubcore.files",
    "hubcore.lru",
    "hubcore.errors",
    "hubcore.mapping",
    "hubcore.model.events",
    "hubcore.model.schema",
    "hubcore.query.events",
    "hubcore.query.otlp",
    "hubcore.query.otlp_metrics",
    "hubcore.storage.embedded",
    "hubcore.storage.tables",
    "hubcore.storage.wal",
    "hubcore.storage.lock",
    "analytics.cli_files",
    "hub.components",
    "hubcore.telemetry",
    "processors.native_events",
    "processors.native_events.dedup",
    "processors.native_events.processor",
    "processors.native_events.registry",
    "processors.native_events.units",
    "api.errors",
    "api.openapi_bodies",
    "api.routers.ingest_body",
    "api.jsonbody",
    "api.negotiation",
    "api.deps",
    "hubcore.query.model",
    "hubcore.query.ir",
    "hubcore.query.export",
    "hub.pipeline",
    "exporters.embedded",
    "analytics.service.config",
    "analytics.service.warm_config",
    "analytics.service.warm_file",
    "analytics.service.related",
    "analytics.correlation.timeutil",
    "analytics.correlation.window",
    "analytics.forecast.ensemble",
    "analytics.forecast.cache",
    "analytics.forecast.calibration",
    "analytics.service.handlers",
    "analytics.anomaly._rolling",
    "analytics.anomaly.feedback",
    "analytics.anomaly.ensemble",
    "analytics.anomaly.inputs",
    "analytics.anomaly.bands",
    "analytics.anomaly.raw_cache",
    "analytics.service.series",
    "analytics.service.teams",
    "analytics.service.feedback",
    "hub.service",
    "hub.servers",
    "hub.startup_replay",
    "hub.shutdown",
    "hub.exporter_hooks",
    "hub.security_setup",
    "hub.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
