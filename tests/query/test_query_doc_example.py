"""The example body of docs/query.md, copied as a first user would, answers rows on ``hub simulate`` traffic.

It had filtered on ``payload.dimensions.endpoint`` (simulated events have no ``dimensions``) and on a team
``ads`` (the simulated teams are support, devtools, search, research and marketing): ``data: []``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from hub.simulate import GeneratorState, encode_batch, generate_timed, synthetic_traces
from hub.simulate import catalog as sim
from tests.helpers.hub import RunningHub, running_hub

DOC = Path(__file__).resolve().parents[2] / "docs" / "query.md"
TENANT = "simulated"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """A hub of its own: the package's (tests/query/conftest.py) holds the data set that other modules count."""
    with running_hub(tmp_path_factory.mktemp("dochub"), grpc=False, otlp_http=False) as h:
        yield h


@pytest.fixture
def client(hub: RunningHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.api, timeout=30) as c:
        yield c


def doc_example_body() -> dict[str, Any]:
    """The first JSON block under the heading of ``POST /api/v1/query``: the example body."""
    text = DOC.read_text()
    section = text[text.index("## `POST /api/v1/query`") :]
    match = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert match is not None, "docs/query.md has no example body under POST /api/v1/query"
    body: dict[str, Any] = json.loads(match.group(1))
    return body


def test_the_documented_example_body_answers_rows_on_simulated_traffic(client: httpx.Client, hub: RunningHub) -> None:
    state = GeneratorState.create(synthetic_traces(), rate=500.0, t0=time.time() - 1800, tenant=TENANT)
    events, _ = generate_timed(3000, np.random.default_rng(5), state)
    headers = {"X-Scope-OrgID": TENANT, "Content-Type": "application/json"}
    for i in range(0, len(events), 1000):
        r = client.post("/api/v1/events", content=encode_batch(events[i : i + 1000]), headers=headers)
        assert r.status_code == 202 and not r.json()["rejected"], r.text
    hub.flush()

    body = doc_example_body()
    r = client.post("/api/v1/query", json=body, headers={"X-Scope-OrgID": TENANT})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data, "the documented example answers no rows on simulated traffic"
    models = {m.name for m in sim.MODELS}
    assert all(row["model"] in models and row["count"] > 0 and row["p95"] > 0 for row in data), data
    p95 = [row["p95"] for row in data]
    assert p95 == sorted(p95, reverse=True)  # the example sorts on p95, descending
    # every filter of the example holds back some simulated requests: each one is exercised
    unfiltered = client.post("/api/v1/query", json={**body, "filters": []}, headers={"X-Scope-OrgID": TENANT})
    assert sum(row["count"] for row in unfiltered.json()["data"]) > sum(row["count"] for row in data)
    for flt in body["filters"]:
        alone = client.post("/api/v1/query", json={**body, "filters": [flt]}, headers={"X-Scope-OrgID": TENANT})
        assert alone.status_code == 200 and alone.json()["data"], (flt, alone.text)
