"""The catalogue lists only what the unified query can address, and every key it lists can be queried."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers.events import make_event, now_iso
from tests.helpers.hub import RunningHub

TENANT = "catalog-keys"
ORG = {"X-Scope-OrgID": TENANT}
TWO_DAYS_AGO = -2 * 86400.0  # outside the 24 h / 3 h windows the other tests of this hub count over
# JSON keys a tags./payload. field cannot name: a dot is the path separator; spaces, a leading digit,
# ':' or '/' are outside the field grammar (letters, digits, '_', '-')
UNADDRESSABLE = ("k8s.namespace", "cost center", "9th", "a:b", "http/route")


@pytest.fixture(scope="module")
def loaded(hub: RunningHub) -> None:
    awkward = {k: "v" for k in UNADDRESSABLE}
    events = [
        make_event("telemetry", timestamp=now_iso(TWO_DAYS_AGO), tags={"team": "t1", "ok-tag": "x", **awkward},
                   payload={"dimensions": {"endpoint": "/v1/chat", "region_2": "eu", **awkward}}),
        make_event("metadata", timestamp=now_iso(TWO_DAYS_AGO), tags={"team": "t1"},
                   payload={"attributes": {"max-context": "128k", **awkward}}),
        make_event("security", timestamp=now_iso(TWO_DAYS_AGO), tags={"team": "t1"},
                   payload={"indicators": {"pattern": "ignore previous", **awkward}}),
    ]  # fmt: skip
    with httpx.Client(base_url=hub.api, timeout=30) as c:
        r = c.post("/api/v1/events", json=events, headers=ORG)
        assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text
    hub.flush()


def _count(client: httpx.Client, event_type: str | None, body: dict[str, Any]) -> Any:
    metric = {"metric": {"event_type": event_type}} if event_type else {}
    r = client.post("/api/v1/query", json={"time_range": {"last": "7d"}, **metric, **body}, headers=ORG)
    assert r.status_code == 200, (body, r.text)
    return r.json()["data"]


def test_every_key_the_catalogue_lists_can_be_queried(loaded: None, client: httpx.Client) -> None:
    cat = client.get("/api/v1/metrics/catalog", params={"last": "7d"}, headers=ORG).json()
    listed = [(None, k) for k in cat["tag_keys"]]
    listed += [(etype, k) for etype, keys in cat["payload_fields"].items() for k in keys]
    assert ("telemetry", "payload.dimensions.region_2") in listed and (None, "tags.ok-tag") in listed
    assert ("metadata", "payload.attributes.max-context") in listed
    for etype, key in listed:
        # the key names a value of this tenant's events: a filter on it finds them, a group_by returns them
        present = {"field": key, "operator": "regex", "value": "^"}
        assert _count(client, etype, {"filters": [present]})[0]["count"] >= 1, key
        groups = _count(client, etype, {"aggregation": {"group_by": [key], "functions": ["count"]}})
        assert any(g[key] is not None for g in groups), (key, groups)
    for key in cat["event_fields"]["string"] + cat["event_fields"]["numeric"]:
        assert _count(client, None, {"filters": [{"field": key, "operator": "ne", "value": 1}]}) is not None
    for etype, names in cat["events"].items():
        for n in names:
            assert _count(client, etype, {"metric": {"event_type": etype, "name": n["name"]}})[0]["count"] == n["count"]


def test_the_catalogue_leaves_out_keys_a_query_cannot_name(loaded: None, client: httpx.Client) -> None:
    # they were listed (tags.k8s.namespace, payload.dimensions.cost center...) but a query either refused
    # the name (422) or read it as a nested path and found nothing
    cat = client.get("/api/v1/metrics/catalog", params={"last": "7d"}, headers=ORG).json()
    names = cat["tag_keys"] + [k for keys in cat["payload_fields"].values() for k in keys]
    for key in UNADDRESSABLE:
        assert not [n for n in names if n.endswith("." + key)], (key, names)
    assert "tags.team" in names and "payload.dimensions" in names
