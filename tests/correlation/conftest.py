"""Session fixtures: normal traffic (see ``_data``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.correlation._data import noise, process


@pytest.fixture(scope="session")
def noise_events() -> list[dict[str, Any]]:
    return noise()


@pytest.fixture(scope="session")
def noise_columns(noise_events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return process(noise_events)
