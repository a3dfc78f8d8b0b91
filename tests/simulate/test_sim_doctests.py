"""The docstring examples of hub.simulate run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "hub.simulate.traces",
        "hub.simulate.catalog",
        "hub.simulate.tables",
        "hub.simulate.state",
        "hub.simulate.events",
        "hub.simulate.traffic",
        "hub.simulate.generator",
        "hub.simulate.scenarios",
        "hub.simulate.spans",
        "hub.simulate.senders",
        "hub.simulate.senders.base",
        "hub.simulate.senders.rest",
        "hub.simulate.senders.file",
        "hub.simulate.senders.concurrent",
        "hub.simulate.arguments",
        "hub.simulate.progress",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
