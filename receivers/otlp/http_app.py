"""OTLP/HTTP: ``POST /v1/metrics``, ``/v1/logs``, ``/v1/traces`` as a small Starlette (ASGI) app.

Bodies are ``application/x-protobuf`` (also ``application/protobuf``) or ``application/json`` (OTLP/JSON),
optionally ``Content-Encoding: gzip`` or ``deflate``. The response uses the request's encoding and holds
the Export*ServiceResponse (with ``partialSuccess`` when some items were refused). Errors carry a
``google.rpc.Status`` body in the request's encoding (JSON when the content type was not understood):

======  ==========================================================================================
200     accepted (maybe partially: see ``partial_success``)
400     not a valid request (bad protobuf/JSON, wrong types, bad gzip, bad ``x-scope-orgid``)
405     not POST (Starlette's answer, with ``Allow: POST``)
413     body larger than ``max_body_bytes`` (compressed or decompressed)
415     unsupported ``Content-Type`` or ``Content-Encoding``
503     ingest queue full or store busy (retryable) with ``Retry-After`` (seconds)
======  ==========================================================================================

    >>> app = create_otlp_http_app(consumer=None, default_tenant="default", max_body_bytes=4 << 20)  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=4318)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from typing import Any

from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubcore.contracts import SignalsConsumer
from hubcore.errors import PermanentError, QueueFullError, RetryableError
from receivers.otlp._core import SIGNALS, TENANT_HEADER, RejectHook, Signal, decode_protobuf, export, resolve_tenant
from receivers.otlp.json_codec import decode_json, encode_json

log = logging.getLogger(__name__)

RECEIVER = "otlp_http"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {"application/x-protobuf": False, "application/protobuf": False, "application/json": True}
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})

# google.rpc.Code numbers
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE, _INTERNAL = 3, 8, 14, 13

__all__ = ["JSON", "PROTOBUF", "RECEIVER", "create_otlp_http_app", "decompress"]


class _HttpError(Exception):
    def __init__(self, status: int, message: str, reason: str, code: int = _INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.status, self.reason, self.code = status, reason, code


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``gzip``/``deflate`` (zlib or raw) with at most ``limit`` bytes out.

    Raises ``ValueError`` for a corrupt or truncated stream and ``OverflowError`` past ``limit``.
    """
    if encoding in ("", "identity"):
        return body
    # RFC 9110's deflate is zlib-wrapped; some clients send raw deflate.
    wbits_options: tuple[int, ...] = (
        (zlib.MAX_WBITS, -zlib.MAX_WBITS) if encoding == "deflate" else (zlib.MAX_WBITS | 16,)
    )
    for i, wbits in enumerate(wbits_options):
        try:
            return _inflate(body, wbits, limit, multi_member=wbits > 16)
        except zlib.error as exc:
            if i == len(wbits_options) - 1:
                raise ValueError(f"invalid {encoding} stream: {exc}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _inflate(data: bytes, wbits: int, limit: int, *, multi_member: bool) -> bytes:
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        out += d.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise OverflowError(f"decompressed body is larger than {limit} bytes")
        if d.unconsumed_tail:
            raise OverflowError(f"decompressed body is larger than {limit} bytes")
        if not d.eof:
            raise ValueError("compressed stream is truncated")
        data = d.unused_data
        if not multi_member or not data.strip(b"\0"):
            return bytes(out)


def _status_body(code: int, message: str, as_json: bool, retry_after: float | None = None) -> bytes:
    status = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        frac, whole = math.modf(max(0.0, retry_after))
        detail = AnyProto()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=Duration(seconds=int(whole), nanos=int(frac * 1e9))))
        status.details.append(detail)
    return encode_json(status) if as_json else status.SerializeToString()


class _SignalEndpoint:
    """``POST /v1/<signal>``: read, check, then decode + translate + consume in a worker thread."""

    def __init__(
        self,
        signal: Signal,
        consumer: SignalsConsumer,
        *,
        default_tenant: str,
        max_body_bytes: int,
        on_reject: RejectHook | None,
    ) -> None:
        self.signal = signal
        self.consumer = consumer
        self.default_tenant = default_tenant
        self.max_body_bytes = max_body_bytes
        self.on_reject = on_reject

    def _reject(self, reason: str) -> None:
        if self.on_reject is not None:
            try:
                self.on_reject(RECEIVER, reason)
            except Exception:  # pragma: no cover
                log.exception("on_reject hook failed")

    async def handle(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        as_json = _MEDIA_TYPES.get(media)
        try:
            if as_json is None:
                raise _HttpError(
                    415, f"unsupported Content-Type {media!r}: use {PROTOBUF} or {JSON}", "unsupported_media_type"
                )
            encoding = request.headers.get("content-encoding", "").strip().lower()
            if encoding not in _ENCODINGS:
                raise _HttpError(
                    415,
                    f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or identity",
                    "unsupported_encoding",
                )
            tenant, resource_tenant = resolve_tenant(request.headers.get(TENANT_HEADER), self.default_tenant)
            body = await self._read_body(request)
            response = await asyncio.to_thread(self._process, body, encoding, as_json, tenant, resource_tenant)
        except _HttpError as exc:
            self._reject(exc.reason)
            return self._error(exc.status, exc.code, str(exc), bool(as_json) or as_json is None)
        except PermanentError as exc:
            self._reject(exc.reason)
            return self._error(400, _INVALID_ARGUMENT, str(exc), bool(as_json))
        except RetryableError as exc:
            retry = max(1, math.ceil(exc.retry_after))
            code = _RESOURCE_EXHAUSTED if isinstance(exc, QueueFullError) else _UNAVAILABLE
            body_bytes = _status_body(code, str(exc), bool(as_json), exc.retry_after)
            return Response(
                body_bytes,
                status_code=503,
                media_type=JSON if as_json else PROTOBUF,
                headers={"Retry-After": str(retry)},
            )
        except Exception:
            log.exception("OTLP/HTTP export failed", extra={"signal": self.signal.name})
            return self._error(500, _INTERNAL, "internal error", bool(as_json))
        if response.HasField("partial_success") and getattr(response.partial_success, self.signal.rejected_field):
            self._reject("partial_success")
        if as_json:
            return Response(encode_json(response), media_type=JSON)
        return Response(response.SerializeToString(), media_type=PROTOBUF)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise _HttpError(413, f"body is larger than {limit} bytes", "too_large")
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise _HttpError(413, f"body is larger than {limit} bytes", "too_large")
        return bytes(chunks)

    def _process(self, body: bytes, encoding: str, as_json: bool, tenant: str, resource_tenant: bool) -> Any:
        try:
            data = decompress(body, encoding, self.max_body_bytes)
        except OverflowError as exc:
            raise _HttpError(413, str(exc), "too_large") from None
        except ValueError as exc:
            raise _HttpError(400, str(exc), "malformed") from None
        message = decode_json(self.signal.request, data) if as_json else decode_protobuf(self.signal, data)
        return export(self.consumer, self.signal, message, tenant, resource_tenant=resource_tenant, receiver=RECEIVER)

    @staticmethod
    def _error(status: int, code: int, message: str, as_json: bool) -> Response:
        return Response(
            _status_body(code, message, as_json), status_code=status, media_type=JSON if as_json else PROTOBUF
        )


def create_otlp_http_app(
    consumer: SignalsConsumer,
    *,
    default_tenant: str,
    max_body_bytes: int,
    on_reject: RejectHook | None = None,
) -> Starlette:
    """The OTLP/HTTP app (mount it, or serve it alone with uvicorn on the OTLP/HTTP endpoint).

    ``on_reject(receiver, reason)`` is called once per refused request (reasons ``malformed``,
    ``too_large``, ``unsupported_media_type``, ``unsupported_encoding``, ``invalid_tenant``) and once per
    partial success (``partial_success``). Back-pressure is counted by the consumer.
    """
    if not default_tenant:
        raise ValueError("default_tenant must not be empty")
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    routes = [
        Route(
            f"/v1/{signal.name}",
            _SignalEndpoint(
                signal, consumer, default_tenant=default_tenant, max_body_bytes=max_body_bytes, on_reject=on_reject
            ).handle,
            methods=["POST"],
        )
        for signal in SIGNALS.values()
    ]
    return Starlette(routes=routes)
