"""POST /api/v1/correlations/analyze takes its span from the query or from a JSON body {"start", "end"}."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.hub import RunningHub, running_hub

URL = "/api/v1/correlations/analyze"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("analyze"), grpc=False, otlp_http=False) as h:
        yield h


def _post(hub: RunningHub, body: str | None = None, params: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return httpx.post(f"{hub.api}{URL}", content=body or b"", params=params, headers=headers, timeout=30)


def test_a_body_span_is_used_like_the_query_span(hub: RunningHub) -> None:
    r = _post(hub, '{"start": "-6h", "end": "-5h"}')
    assert r.status_code == 200, r.text
    assert set(r.json()) >= {"correlations", "incidents", "events"}
    # the body is read: a span too long is refused as it is from the query
    too_long = _post(hub, '{"start": "-400d", "end": "-1h"}')
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "range_too_large"
    assert _post(hub, params={"start": "-400d", "end": "-1h"}).json()["error"]["code"] == "range_too_large"


@pytest.mark.parametrize("body", [None, "", "{}", '{"start": null}'])
def test_an_empty_body_is_fine(hub: RunningHub, body: str | None) -> None:
    assert _post(hub, body).status_code == 200


def test_the_same_value_in_both_places_is_fine(hub: RunningHub) -> None:
    assert _post(hub, '{"start": "-2h"}', {"start": "-2h"}).status_code == 200


def test_different_values_in_query_and_body_are_a_422_naming_the_field(hub: RunningHub) -> None:
    r = _post(hub, '{"start": "-6h", "end": "-5h"}', {"end": "-4h"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("conflicting_parameter", "end")
    assert "?end=-4h" in err["message"] and "'-5h'" in err["message"]


def test_an_unknown_body_key_is_a_422_listing_the_allowed_keys(hub: RunningHub) -> None:
    r = _post(hub, '{"start": "-6h", "begin": "-5h"}')
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("validation_error", "begin")
    assert '"start"' in err["message"] and '"end"' in err["message"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ('{"start": 5}', 422, "validation_error"),
    ("[]", 422, "validation_error"),
    ('{"start": "not a time"}', 422, None),
    ("{not json", 400, "bad_json"),
])  # fmt: skip
def test_bad_bodies_are_clear_4xx(hub: RunningHub, body: str, status: int, code: str | None) -> None:
    r = _post(hub, body)
    assert r.status_code == status, r.text
    assert "error" in r.json()
    if code is not None:
        assert r.json()["error"]["code"] == code
