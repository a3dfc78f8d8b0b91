"""Every route that reads a JSON body by hand publishes it in /openapi.json (requestBody with a schema and an
example), the examples validate against their schemas and are accepted by their routes, and bodies that
the schemas refuse are refused by the handlers too (the schemas describe the parsers)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.helpers.hub import RunningHub, running_hub

WRITES = ("post", "put", "patch")
#: POST/PUT/PATCH routes that take no body, and why (a body sent to them is ignored).
BODILESS: dict[tuple[str, str], str] = {}
#: Path parameters of the example requests (ids that do not exist: a documented 404, not a 422).
PATH_PARAMS = {"alert_id": "no-such-alert", "anomaly_id": "no-such-anomaly", "budget_id": "no-such-budget"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("bodies"), grpc=False, otlp_http=False,
                     service__auth__enabled=True) as h:  # fmt: skip
        yield h


@pytest.fixture(scope="module")
def auth(hub: RunningHub) -> dict[str, str]:
    store = hub.service.security.key_store
    assert store is not None
    return {"Authorization": f"Bearer {store.create(tenant_id='bodies', role='platform_admin').key}"}


@pytest.fixture(scope="module")
def doc(hub: RunningHub) -> dict[str, Any]:
    r = httpx.get(f"{hub.api}/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _writes(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in WRITES:
                yield method, path, op


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    root = {"allOf": [schema], "components": doc["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def test_every_write_route_that_takes_a_body_publishes_it(doc: dict[str, Any]) -> None:
    missing, seen = [], set()
    for method, path, op in _writes(doc):
        seen.add((method, path))
        if (method, path) in BODILESS:
            assert "requestBody" not in op, f"{method.upper()} {path} is allow-listed as bodiless but has a body"
            continue
        media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "schema" not in media or "example" not in media:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes without a published JSON body (schema and example): {missing}"
    assert set(BODILESS) <= seen, f"stale BODILESS entries: {sorted(set(BODILESS) - seen)}"
    assert len(seen) - len(BODILESS) >= 14


def test_every_example_validates_against_its_own_schema(doc: dict[str, Any]) -> None:
    checked = 0
    for method, path, op in _writes(doc):
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            if media_type == "application/x-ndjson":  # each line is one event
                events = [json.loads(line) for line in media["example"].splitlines() if line.strip()]
                examples, schema = events, {"$ref": "#/components/schemas/NativeEvent"}
            else:
                examples, schema = [media["example"]], media["schema"]
            for example in examples:
                errors = [e.message for e in _validator(doc, schema).iter_errors(example)]
                assert not errors, (method, path, media_type, errors)
                checked += 1
    assert checked >= 15


def _fresh_events(body: str) -> str:
    """The example events with a new id and the current time: a fixed timestamp ages past the hub's bounds
    (7 days), and the second media type would resend a duplicate."""
    now = datetime.now(UTC).isoformat()
    return re.sub(r'"timestamp": ?"[^"]*"', f'"timestamp": "{now}"',
                  re.sub(r'"event_id": ?"[^"]*"', lambda _: f'"event_id": "{uuid.uuid4()}"', body))  # fmt: skip


def test_every_example_is_accepted_by_its_route(hub: RunningHub, auth: dict[str, str], doc: dict[str, Any]) -> None:
    for method, path, op in _writes(doc):
        if (method, path) in BODILESS:
            continue
        url = hub.api + path.format(**PATH_PARAMS)
        for media_type, media in op["requestBody"]["content"].items():
            body = media["example"] if isinstance(media["example"], str) else json.dumps(media["example"])
            if path == "/api/v1/events":
                body = _fresh_events(body)
            r = httpx.request(method, url, content=body, headers={**auth, "Content-Type": media_type}, timeout=30)
            where = (method, path, media_type, r.status_code, r.text[:300])
            if "{" in path:
                assert r.status_code in (200, 201, 404), where  # 404: the example's id does not exist
            elif path == "/api/v1/whatif":
                # a fresh hub has no request history to forecast: the example's shape passed every check
                assert r.status_code == 422 and r.json()["error"]["message"].startswith("history:"), where
            else:
                assert 200 <= r.status_code < 300, where


#: Bodies the published schema refuses, with the status the handler answers them with.
REFUSED: list[tuple[str, str, Any, int]] = [
    ("post", "/api/v1/events", [], 422),
    ("post", "/api/v1/events", {"batch": []}, 422),
    ("post", "/api/v1/query", {"time_range": {"stat": "2026-01-01T00:00:00Z"}}, 422),
    ("post", "/api/v1/query", {"time_range": {"last": "24 hours"}}, 422),
    ("post", "/api/v1/query", {"aggregation": {"functions": ["median"]}}, 422),
    ("post", "/api/v1/query", {"limit": 0}, 422),
    ("post", "/api/v1/query", {"filters": [{"field": "model", "operator": "like", "value": "gpt"}]}, 422),
    ("post", "/api/v1/query", {"colour": "blue"}, 422),
    ("post", "/api/v1/query/batch", {"queries": []}, 422),
    ("post", "/api/v1/query/batch", {"queries": [{}], "limit": 5}, 422),
    ("post", "/api/v1/query/export", {"offset": -1}, 422),
    ("post", "/api/v1/keys", {"role": "ingest", "expires_in_seconds": 0}, 422),
    ("post", "/api/v1/keys", {"role": "ingest", "owner": "me"}, 422),
    ("post", "/api/v1/keys", {}, 422),
    ("post", "/api/v1/dlq/replay", {"ids": "e1"}, 422),  # was 400 bad_request
    ("post", "/api/v1/anomalies/{anomaly_id}/feedback", {"label": "true_positive"}, 422),
    ("post", "/api/v1/anomalies/{anomaly_id}/feedback", {"label": "false_positive", "why": "x"}, 422),
    ("post", "/api/v1/whatif", {"scenario": []}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "scale_traffic", "factor": -1}]}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "price_change", "percent": -150}]}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": 0}, 422),
    ("post", "/api/v1/anomalies/{anomaly_id}/feedback", {"label": "false_positive", "scope": "everyone"}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "scale_traffic", "factor": 2}], "step": {"every": "1h"}}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "scale_traffic", "factor": 2}], "step": "2h"}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "scale_traffic"}]}, 422),
    ("post", "/api/v1/whatif", {"scenario": [{"type": "move_traffic", "source": "a", "target": "b", "share": 2}]}, 422),
    ("post", "/api/v1/budgets", {"amount": 0}, 422),
    ("post", "/api/v1/budgets", {"amount": 10, "period": "custom"}, 422),
    ("post", "/api/v1/budgets", {"amount": 10, "start": "2026-01-01T00:00:00Z"}, 422),
    ("post", "/api/v1/budgets", {"amount": 10, "period": "weekly"}, 422),
    ("post", "/api/v1/budgets", {"amount": 10, "currency": "EUR"}, 422),
    ("post", "/api/v1/alerts/rules", {"name": "1bad", "condition": {"type": "anomaly"}}, 422),
    (
        "post",
        "/api/v1/alerts/rules",
        {"name": "Slow", "condition": {"type": "threshold", "aggregation": "p42", "window": "5m", "value": 1}},
        422,
    ),
    (
        "post",
        "/api/v1/alerts/rules",
        {"name": "Both", "condition": {"type": "composite", "op": "and", "conditions": [{"type": "anomaly"}]}},
        422,
    ),
    ("post", "/api/v1/alerts/alertmanager", {"version": "4"}, 422),
    ("post", "/api/v1/alerts/alertmanager", {"version": "4", "alerts": [{"status": "firing"}]}, 422),
    ("post", "/api/v1/alerts/{alert_id}/acknowledge", {"by": 7}, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), REFUSED)
def test_a_body_the_schema_refuses_is_refused_by_the_route(
    hub: RunningHub, auth: dict[str, str], doc: dict[str, Any], method: str, path: str, body: Any, status: int
) -> None:
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert not _validator(doc, schema).is_valid(body), "the published schema accepts it"
    r = httpx.request(method, hub.api + path.format(**PATH_PARAMS), json=body, headers=auth, timeout=30)
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) >= {"code", "message"}


#: Bodies at the edges of what the parsers accept: the schemas must accept them too.
ACCEPTED: list[tuple[str, str, Any]] = [
    ("post", "/api/v1/query", {}),
    (
        "post",
        "/api/v1/query",
        {
            "time_range": {"start": 1767225600, "end": None},
            "metric": "error_rate",
            "sort": [{"field": "error_rate", "order": "DESC"}],
            "limit": None,
        },
    ),
    ("post", "/api/v1/query", {"filters": [{"field": "value", "op": "in", "value": [1, 2.5]}], "metric": None}),
    ("post", "/api/v1/budgets", {"amount": 1, "period": "custom", "start": "2026-01-01", "end": 1769904000}),
    ("post", "/api/v1/alerts/rules", {"name": "Up", "for": 0, "condition": {"type": "anomaly", "window": 600}}),
]


@pytest.mark.parametrize(("method", "path", "body"), ACCEPTED)
def test_a_body_the_route_accepts_is_accepted_by_the_schema(
    hub: RunningHub, auth: dict[str, str], doc: dict[str, Any], method: str, path: str, body: Any
) -> None:
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    errors = [e.message for e in _validator(doc, schema).iter_errors(body)]
    assert not errors
    r = httpx.request(method, hub.api + path, json=body, headers=auth, timeout=30)
    assert 200 <= r.status_code < 300, r.text


def test_the_what_if_transforms_are_the_handlers() -> None:
    from analytics.service.handlers import _TRANSFORMS
    from api.openapi_bodies import COMPONENTS

    items = COMPONENTS["WhatIf"]["properties"]["scenario"]["items"]["oneOf"]
    published = {t["properties"]["type"]["const"]: set(t["properties"]) - {"type"} for t in items}
    assert published == {kind: set(fields) for kind, (_, fields) in _TRANSFORMS.items()}


def test_request_body_refuses_an_unknown_schema_name() -> None:
    from api.openapi_bodies import request_body

    with pytest.raises(KeyError, match="no body schema 'Nope'"):
        request_body("Nope")


def test_every_reference_of_the_published_document_resolves(doc: dict[str, Any]) -> None:
    # the event schema's own "#/$defs/..." references were moved to components; none may dangle
    text = json.dumps(doc)
    assert '"#/$defs/' not in text and '"$id"' not in text
    refs = {r.split('"')[0] for r in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= set(doc["components"]["schemas"]), sorted(refs - set(doc["components"]["schemas"]))
