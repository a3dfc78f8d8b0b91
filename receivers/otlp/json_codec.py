"""OTLP/JSON (the OTLP spec's JSON Protobuf encoding) to and from protobuf messages.

OTLP/JSON differs from protobuf's canonical JSON mapping in one way that matters: ``traceId``,
``spanId`` and ``parentSpanId`` (in spans, links, log records and exemplars) are hex, not base64.
Everything else is the canonical mapping, which :mod:`google.protobuf.json_format` handles: lowerCamelCase
or original field names, int64 as string or number, enums as integers (or names), unknown fields and
unknown enum names ignored (forward compatibility), wrong JSON types refused.

    >>> from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    >>> body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",'
    >>> body += b' "spanId": "eee19b7ec3c1b174", "name": "chat", "kind": 3, "startTimeUnixNano": "1"}]}]}]}'
    >>> req = decode_json(ExportTraceServiceRequest, body)
    >>> req.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    '5b8efff798038103d269b633813fc60c'
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import msgspec
from google.protobuf import json_format
from google.protobuf.message import Message

from hubcore.errors import PermanentError

M = TypeVar("M", bound=Message)

#: JSON keys holding trace/span ids, in both spellings json_format accepts.
ID_KEYS = frozenset({"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"})
_ID_HEX_LENGTHS = (32, 16)
_HEX = frozenset("0123456789abcdefABCDEF")

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def _fix_ids(root: Any) -> None:
    """Rewrite hex ids as base64 in place (iteratively: deep nesting cannot exhaust the stack).

    In OTLP/JSON every object key is a field name (attribute keys are values of ``"key"``), so any
    ``traceId``/``spanId``/``parentSpanId`` key is an id. A value that is not 32/16 hex digits is left
    alone: json_format then reads it as base64 (what some exporters send) or rejects it.
    """
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            for key, value in node.items():
                if type(value) is str:
                    if key in ID_KEYS and len(value) in _ID_HEX_LENGTHS and _HEX.issuperset(value):
                        node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                elif type(value) is dict or type(value) is list:
                    push(value)
        elif type(node) is list:
            for value in node:
                if type(value) is dict or type(value) is list:
                    push(value)


def decode_json(message_type: type[M], body: bytes) -> M:
    """Parse an OTLP/JSON request body; :class:`PermanentError` (reason ``malformed``) when invalid."""
    try:
        obj = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 is a UnicodeDecodeError
        raise PermanentError(f"request body is not valid JSON: {exc}", reason="malformed") from None
    if type(obj) is not dict:
        raise PermanentError("request body must be a JSON object", reason="malformed")
    _fix_ids(obj)
    message = message_type()
    try:
        json_format.ParseDict(obj, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise PermanentError(
            f"request body is not a valid OTLP/JSON {message_type.__name__}: {exc}", reason="malformed"
        ) from None
    return message


def encode_json(message: Message) -> bytes:
    """A response message as OTLP/JSON (lowerCamelCase, int64 as strings, defaults omitted)."""
    data: bytes = _encoder.encode(json_format.MessageToDict(message))
    return data
