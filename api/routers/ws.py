"""``/ws/events``: native events over a WebSocket, with an ack per message and keepalive.

Client → server (text frames): a JSON array of events, ``{"events": [...], "batch_id": "b1"}``, or
``{"type": "ping"}``. Server → client: ``{"type": "ack", "batch_id", "accepted", "rejected", "duplicates"}``,
``{"type": "retry", "batch_id", "retry_after"}`` when the queue is full (nothing was stored: resend),
``{"type": "error", "batch_id", "code", "message"}`` for a message that could not be read, and
``{"type": "pong"}``. Protocol-level pings are also sent by the server every 20 s.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, WebSocketException
from starlette.concurrency import run_in_threadpool

from api.deps import write_tenant
from api.routers.ingest_body import BodyError, split_events
from api.state import ApiState
from hubcore.errors import PermanentError, QueueFullError
from hubcore.security.rbac import ForbiddenError

router = APIRouter(tags=["events"])
RECEIVER = "websocket"


class _Control(msgspec.Struct):
    type: str | None = None
    batch_id: str | None = None


_control = msgspec.json.Decoder(_Control)


@router.websocket("/ws/events")
async def events_socket(ws: WebSocket) -> None:
    state: ApiState = ws.app.state.hub
    native = state.config.receivers.native
    try:
        tenant = write_tenant(ws, ws.query_params.get("tenant"))
    except (PermanentError, ForbiddenError) as exc:
        raise WebSocketException(code=1008, reason=str(exc)[:120]) from None
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
                    ctl = _control.decode(data)
                    batch_id = ctl.batch_id
                    if ctl.type == "ping":
                        await send(_dump({"type": "pong"}))
                        continue
                except (msgspec.DecodeError, msgspec.ValidationError):
                    pass
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


def _dump(obj: object) -> str:
    return msgspec.json.encode(obj).decode()
