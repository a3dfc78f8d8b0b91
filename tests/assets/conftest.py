"""Fixtures for the tests of the static observability assets (grafana/, rules/, docs/runbooks/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# `tests.helpers` and `grafana.generator` are imported from the repository root, also under a bare
# `pytest` (which, unlike `python -m pytest`, does not put the working directory on sys.path).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
