"""/ws/events: acks per message, errors that keep the socket open, ping/pong, back-pressure."""

from __future__ import annotations

import json
from pathlib import Path

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
