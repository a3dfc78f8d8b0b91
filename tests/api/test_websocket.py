"""/ws/events: acks per message, errors that keep the socket open, ping/pong, back-pressure."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub


def test_websocket_ingest_acks_errors_and_keepalive(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        url = hub.api.replace("http://", "ws://") + "/ws/events"
        with connect(url, additional_headers={"X-Scope-OrgID": "ws-tenant"}) as ws:
            ws.send(
                json.dumps(
                    {"batch_id": "b1", "events": [make_event("cost"), make_event("cost", payload={"amount": 0})]}
                )
            )
            ack = json.loads(ws.recv(10))
            assert ack["type"] == "ack" and ack["batch_id"] == "b1"
            assert ack["accepted"] == 1 and ack["rejected"][0]["index"] == 1
            ws.send(json.dumps([make_event("telemetry")]))
            assert json.loads(ws.recv(10))["accepted"] == 1
            ws.send("{not json")
            err = json.loads(ws.recv(10))
            assert err["type"] == "error" and err["code"] == "bad_json"
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(10)) == {"type": "pong"}
            ws.send(json.dumps([]))
            assert json.loads(ws.recv(10))["code"] == "empty_batch"
            pong = ws.ping()
            assert pong.wait(5)  # protocol-level keepalive
            ws.send(json.dumps([make_event("policy")]))
            assert json.loads(ws.recv(10))["accepted"] == 1  # still serving after errors
        rows = hub.sql("SELECT tenant_id, count(*) FROM events GROUP BY 1")
        assert rows == [("ws-tenant", 3)]


def test_websocket_queue_full_says_retry(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, exporters__embedded__max_pending_rows=1) as hub:
        url = hub.api.replace("http://", "ws://") + "/ws/events"
        with connect(url) as ws:
            ws.send(json.dumps({"batch_id": "big", "events": [make_event("cost"), make_event("cost")]}))
            msg = json.loads(ws.recv(10))
            assert msg == {"type": "retry", "batch_id": "big", "retry_after": msg["retry_after"]}
            assert msg["retry_after"] > 0


def test_websocket_refuses_a_ping_with_events_and_a_non_string_batch_id(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        url = hub.api.replace("http://", "ws://") + "/ws/events"
        with connect(url, additional_headers={"X-Scope-OrgID": "ws-t"}) as ws:
            ws.send(json.dumps({"type": "ping", "batch_id": "p1", "events": [make_event("cost")]}))
            err = json.loads(ws.recv(10))
            assert err["type"] == "error" and err["code"] == "ping_with_events" and err["batch_id"] == "p1"
            assert "a ping carries no events" in err["message"]
            for bad_id in (7, 1.5, True, ["b"], {"id": "b"}):
                ws.send(json.dumps({"batch_id": bad_id, "events": [make_event("cost")]}))
                err = json.loads(ws.recv(10))
                assert err["type"] == "error" and err["code"] == "bad_batch_id", err
                assert err["batch_id"] is None and "batch_id must be a string" in err["message"]
            ws.send(json.dumps({"type": "ping", "events": None}))
            assert json.loads(ws.recv(10)) == {"type": "pong"}
            good = make_event("cost")
            ws.send(json.dumps({"batch_id": "b2", "events": [good]}))
            ack = json.loads(ws.recv(10))
            assert ack["type"] == "ack" and ack["batch_id"] == "b2" and ack["accepted"] == 1
        assert hub.sql("SELECT event_id FROM events") == [(good["event_id"],)]  # nothing else was stored


def _refusal(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    """The HTTP answer to a refused handshake: status, error body, headers (a raw ``websockets`` client)."""
    with pytest.raises(InvalidStatus) as info, connect(url, additional_headers=headers):
        pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}"), response.headers


def test_websocket_handshake_refusals_answer_like_the_http_api(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        ingest = f"Bearer {store.create(tenant_id='ws-a', role='ingest').key}"
        viewer = f"Bearer {store.create(tenant_id='ws-a', role='analytics_viewer').key}"
        url = hub.api.replace("http://", "ws://") + "/ws/events"

        status, body, headers = _refusal(url, {})
        assert status == 401 and body["error"]["code"] == "missing_credentials", body
        assert headers["WWW-Authenticate"].startswith("Bearer realm=")
        assert headers["Content-Type"] == "application/json"
        status, body, headers = _refusal(url, {"Authorization": "Bearer lah_0000_not-a-key"})
        assert status == 401 and body["error"]["code"] == "invalid_api_key", body
        assert 'error="invalid_token"' in headers["WWW-Authenticate"]
        # a valid key without the permission, or for another tenant: 403, as on POST /api/v1/events
        status, body, _ = _refusal(url, {"Authorization": viewer})
        assert status == 403 and body["error"]["code"] == "forbidden" and "events:write" in body["error"]["message"]
        status, body, _ = _refusal(url, {"Authorization": ingest, "X-Scope-OrgID": "ws-b"})
        assert status == 403 and body["error"]["code"] == "forbidden" and "ws-b" in body["error"]["message"]
        status, body, _ = _refusal(url, {"Authorization": ingest, "X-Scope-OrgID": "not a tenant"})
        assert status == 400 and body["error"]["code"] == "bad_tenant", body
        for headers in ({}, {"Authorization": viewer}, {"Authorization": ingest, "X-Scope-OrgID": "ws-b"}):
            http = httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost")], headers=headers)
            status, body, _ = _refusal(url, headers)
            assert (status, body["error"]["code"]) == (http.status_code, http.json()["error"]["code"])

        with connect(url, additional_headers={"Authorization": ingest}) as ws:
            ws.send(json.dumps([make_event("cost")]))
            assert json.loads(ws.recv(10))["accepted"] == 1
        assert hub.sql("SELECT tenant_id FROM events") == [("ws-a",)]


async def _handshake_without_denial_responses(app: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """What the app sends to a server that does not offer ``websocket.http.response`` (no ``extensions``)."""
    scope = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "scheme": "ws", "path": "/ws/events", "raw_path": b"/ws/events", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"hub"), *headers], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        "subprotocols": [], "state": {}, "extensions": {},
    }  # fmt: skip
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_websocket_refusal_falls_back_to_a_close_code_without_the_extension(tmp_path: Path) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        viewer = f"Bearer {store.create(tenant_id='ws-a', role='analytics_viewer').key}".encode()

        def handshake(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
            run = asyncio.run_coroutine_threadsafe(_handshake_without_denial_responses(hub.service.app, headers),
                                                   hub.loop)  # fmt: skip
            return run.result(10)

        for headers, code, words in (
            ([], 4401, "authentication"),
            ([(b"authorization", viewer)], 4403, "events:write"),
        ):
            sent = handshake(headers)
            assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"], sent
            assert sent[1]["code"] == code and words in sent[1]["reason"], sent
            assert len(sent[1]["reason"].encode()) <= 123


def test_websocket_rate_limited_handshake_answers_429(tmp_path: Path) -> None:
    quotas = {"enabled": True, "api_calls_per_second": 0.001, "api_calls_burst": 1,
              "key_calls_per_second": 0.001, "key_calls_burst": 1}  # fmt: skip
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__quotas=quotas) as hub:
        url = hub.api.replace("http://", "ws://") + "/ws/events"
        with connect(url) as ws:  # the one call of the burst
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(10)) == {"type": "pong"}
        status, body, headers = _refusal(url, {})
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert int(headers["Retry-After"]) >= 1


def test_uvicorns_spurious_error_after_a_refused_handshake_is_dropped_and_nothing_else() -> None:
    """uvicorn 0.54 logs "ASGI callable returned without completing handshake." at ERROR after every
    handshake the hub answers with a 401/403/429/400 (uvicorn PR #3138): noise in an operator's error log."""
    import logging

    from hubcore.telemetry import SPURIOUS_HANDSHAKE_ERROR, configure_logging

    root, uv = logging.getLogger(), logging.getLogger("uvicorn.error")
    saved = (root.handlers[:], root.level, uv.filters[:], uv.handlers[:], uv.propagate)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    try:
        configure_logging("info")
        configure_logging("info")  # configuring twice adds the filter once
        assert sum(type(f).__name__ == "_AnsweredHandshakeFilter" for f in uv.filters) == 1
        root.handlers[:] = [Keep()]
        uv.error(SPURIOUS_HANDSHAKE_ERROR)
        uv.error("Exception in ASGI application")
        logging.getLogger("hub").error(SPURIOUS_HANDSHAKE_ERROR)  # only uvicorn's own line is dropped
        assert seen == ["Exception in ASGI application", SPURIOUS_HANDSHAKE_ERROR]
    finally:
        root.handlers[:], uv.filters[:], uv.handlers[:] = saved[0], saved[2], saved[3]
        root.setLevel(saved[1])
        uv.propagate = saved[4]
