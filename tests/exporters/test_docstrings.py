"""The usage examples in the stack exporters' and readers' docstrings run (so they stay true)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "exporters.prom_naming",
    "exporters._common",
    "exporters.queue",
    "exporters.queue.base",
    "exporters.queue.batches",
    "exporters.queue.config",
    "exporters.queue.disk_queue",
    "exporters.queue.retry",
    "exporters.queue.protoc",
    "exporters.victoriametrics.config",
    "exporters.victoriametrics.convert",
    "exporters.victoriametrics.series",
    "exporters.victoriametrics.forgotten",
    "exporters.victoriametrics.remote_write",
    "exporters.victoriametrics.protos",
    "exporters.loki.config",
    "exporters.loki.push",
    "exporters.loki.protos",
    "exporters.tempo.config",
    "exporters.tempo.otlp",
    "exporters.alertmanager.config",
    "hubcore.storage.readers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
