"""Every route that reads a JSON body itself answers an unreadable one (malformed, not UTF-8, nested too
deeply for the decoder) with a 4xx, never a 500 (RecursionError / UnicodeDecodeError had escaped)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from api.jsonbody import MAX_DEPTH, BadJsonError, decode_json
from tests.helpers.hub import RunningHub, running_hub

DEEP = b"[" * 2000 + b"]" * 2000
NOT_UTF8 = b'{"by": "\xff\xfe"}'
# routes whose body is read by api/jsonbody.decode_json: 400 bad_json
DECODED = [
    "/api/v1/query", "/api/v1/query/batch", "/api/v1/query/export",
    "/api/v1/alerts/some-alert/acknowledge", "/api/v1/alerts/some-alert/resolve", "/api/v1/alerts/rules",
    "/api/v1/whatif", "/api/v1/budgets", "/api/v1/anomalies/some-anomaly/feedback",
]  # fmt: skip
# routes that decode into a typed struct keep their own code for an unreadable body; the invalid UTF-8 sits
# in a field the struct has (msgspec refuses an unknown key before it reads the value). The replay answers
# 422 for a body of the wrong shape (an array where its object goes, an unknown key: msgspec stops there)
# and 400 bad_json for one it cannot read (not UTF-8).
TYPED: dict[str, tuple[int | dict[str, int], bytes]] = {
    "/api/v1/dlq/replay": ({"deep": 422, "deep field": 422, "utf8": 400}, b'{"ids": ["\xff"]}'),
    "/api/v1/alerts/alertmanager": (422, b'{"version": "\xff"}'),
    "/api/v1/keys": (422, b'{"tenant_id": "\xfe"}'),
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("jb"), grpc=False, otlp_http=False) as h:
        yield h


@pytest.mark.parametrize("body", [DEEP, NOT_UTF8, b"[" * 100_000 + b"]" * 100_000], ids=["deep", "utf8", "deeper"])
@pytest.mark.parametrize("path", DECODED)
def test_unreadable_bodies_are_400_bad_json(hub: RunningHub, path: str, body: bytes) -> None:
    r = httpx.post(hub.api + path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert r.json()["error"]["code"] == "bad_json"


def test_malformed_alert_bodies_are_400_like_everywhere(hub: RunningHub) -> None:
    r = httpx.post(hub.api + "/api/v1/alerts/rules", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"  # was 422 here, 400 elsewhere


@pytest.mark.parametrize("kind", ["deep", "deep field", "utf8"])
@pytest.mark.parametrize("path", list(TYPED))
def test_typed_bodies_refuse_unreadable_json(hub: RunningHub, path: str, kind: str) -> None:
    status, not_utf8 = TYPED[path]
    body = {"deep": DEEP, "deep field": b'{"version": "4", "x": ' + DEEP + b"}", "utf8": not_utf8}[kind]
    r = httpx.post(hub.api + path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == (status[kind] if isinstance(status, dict) else status), (path, r.status_code, r.text)


def test_websocket_control_message_that_is_not_utf8(hub: RunningHub) -> None:
    url = hub.api.replace("http://", "ws://") + "/ws/events"
    with connect(url, additional_headers={"X-Scope-OrgID": "ws-utf8"}) as ws:
        ws.send(b'{"type": "\xff"}')  # a binary frame: it had closed the socket with an error
        err = json.loads(ws.recv(10))
        assert err["type"] == "error" and err["code"] == "bad_json"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(10)) == {"type": "pong"}


def test_decode_json_depth_limit() -> None:
    assert decode_json(b"") == {}
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert decode_json(ok) is not None
    nested = b'{"a": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    decode_json(nested)
    with pytest.raises(BadJsonError, match="nested more than 64"):
        decode_json(b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))
    with pytest.raises(BadJsonError, match="not valid UTF-8"):
        decode_json(NOT_UTF8)
    with pytest.raises(BadJsonError, match="not valid JSON"):
        decode_json(b"{nope")
