"""Fixtures of the query tests: one running hub loaded with the data set of :mod:`tests.query.dataset`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.hub import RunningHub, running_hub
from tests.query.dataset import acme_events, globex_events


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("qhub"), grpc=False, otlp_http=False) as h:
        with httpx.Client(base_url=h.api, timeout=30) as c:
            for tenant, events in (("acme", acme_events()), ("globex", globex_events())):
                r = c.post("/api/v1/events", json=events, headers={"X-Scope-OrgID": tenant})
                assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text
        h.flush()
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.api, timeout=30) as c:
        yield c
