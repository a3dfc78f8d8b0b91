"""``/ws/events``: native events over a WebSocket, with an ack per message and keepalive.

Client → server (text frames): a JSON array of events, ``{"events": [...], "batch_id": "b1"}``, or
``{"type": "ping"}``. Server → client: ``{"type": "ack", "batch_id", "accepted", "rejected", "duplicates"}``,
``{"type": "retry", "batch_id", "retry_after"}`` when the queue is full (nothing was stored: resend),
``{"type": "error", "batch_id", "code", "message"}`` for a message that could not be read, and
``{"type": "pong"}``. Protocol-level pings are also sent by the server every 20 s.

``batch_id`` must be a string, and a ping carries no events: either mistake is answered with an error
(code ``bad_batch_id`` / ``ping_with_events``) and nothing of the message is stored.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from api.deps import write_tenant
from api.routers.ingest_body import BodyError, split_events
from api.state import ApiState
from hubcore.errors import PermanentError, QueueFullError

router = APIRouter(tags=["events"])
RECEIVER = "websocket"


class _Control(msgspec.Struct):
    type: Any = None
    batch_id: Any = None  # checked to be a string, so that a wrong type is an error, not a lost id
    events: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # only looked at for a ping


_control = msgspec.json.Decoder(_Control)


@router.websocket("/ws/events")
async def events_socket(ws: WebSocket) -> None:
    state: ApiState = ws.app.state.hub
    native = state.config.receivers.native
    # a bad tenant (400) or one the credential may not write (403) refuses the handshake like the guard's
    # 401/403/429: the error handlers answer it with that status and the error body (api.errors.deliver)
    tenant = write_tenant(ws, ws.query_params.get("tenant"))
    await ws.accept()
    send = ws.send_text  # JSON in text frames
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            if len(data) > native.max_body_bytes:
                state.pipeline.reject_request(RECEIVER, "body_too_large")
                await send(
                    _dump(
                        {
                            "type": "error",
                            "batch_id": None,
                            "code": "too_large",
                            "message": f"message exceeds {native.max_body_bytes} bytes",
                        }
                    )
                )
                continue
            batch_id = None
            stripped = data.lstrip()
            if stripped[:1] == b"{":
                try:
                    ctl: _Control | None = _control.decode(data)
                except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
                    ctl = None  # split_events says what is wrong with it
                if ctl is not None:
                    refusal = _control_error(ctl)
                    if refusal is not None:
                        state.pipeline.reject_request(RECEIVER, refusal[0])
                        await send(_dump({"type": "error", "batch_id": refusal[2], "code": refusal[0],
                                          "message": refusal[1]}))  # fmt: skip
                        continue
                    batch_id = ctl.batch_id
                    if ctl.type == "ping":
                        await send(_dump({"type": "pong"}))
                        continue
            try:
                events = split_events(data, max_events=native.max_batch_events)
            except BodyError as exc:
                state.pipeline.reject_request(RECEIVER, exc.reason)
                await send(_dump({"type": "error", "batch_id": batch_id, "code": exc.reason, "message": str(exc)}))
                continue
            try:
                outcome = await run_in_threadpool(
                    state.pipeline.consume_events, events, tenant_id=tenant, receiver=RECEIVER
                )
            except QueueFullError as exc:
                await send(_dump({"type": "retry", "batch_id": batch_id, "retry_after": exc.retry_after}))
                continue
            except PermanentError as exc:
                await send(_dump({"type": "error", "batch_id": batch_id, "code": exc.reason, "message": str(exc)}))
                continue
            await send(
                _dump(
                    {
                        "type": "ack",
                        "batch_id": batch_id,
                        "accepted": outcome.accepted,
                        "rejected": outcome.rejected,
                        "duplicates": outcome.duplicates,
                    }
                )
            )
    except WebSocketDisconnect:
        return


def _control_error(ctl: _Control) -> tuple[str, str, str | None] | None:
    """``(code, message, batch_id)`` when the message's control fields are wrong, else None."""
    if ctl.batch_id is not None and type(ctl.batch_id) is not str:
        kind = type(ctl.batch_id).__name__
        return "bad_batch_id", f"batch_id must be a string, got {kind}: nothing of this message was stored", None
    if ctl.type == "ping" and bytes(ctl.events) not in (b"", b"null", b"[]"):
        return (
            "ping_with_events",
            'a ping carries no events: send them in their own message (a JSON array or {"events": [...]}); '
            "nothing of this message was stored",
            ctl.batch_id,
        )
    return None


def _dump(obj: object) -> str:
    return msgspec.json.encode(obj).decode()
