"""Decoding a native-event request body: a JSON array of events or ``{"events": [...]}``.

>>> len(split_events(b'[{"a": 1}, {"b": 2}]', max_events=10))
2
>>> len(split_events(b'{"events": [{"a": 1}]}', max_events=10))
1
"""

from __future__ import annotations

import msgspec

from hubcore.errors import PermanentError


class _Wrapped(msgspec.Struct):
    events: list[msgspec.Raw]


_decoder = msgspec.json.Decoder(list[msgspec.Raw] | _Wrapped)


class BodyError(PermanentError):
    """A whole request refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, reason=code)
        self.status = status


def split_events(body: bytes, *, max_events: int) -> list[msgspec.Raw]:
    """The events of a body, each still raw JSON; raises :class:`BodyError`."""
    if not body.strip():
        raise BodyError(400, "empty_body", "the body is empty: send a JSON array of 1 to 1000 events")
    try:
        body.decode("utf-8")  # RFC 8259: JSON text is UTF-8; raw event slices are not re-checked later
    except UnicodeDecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        decoded = _decoder.decode(body)
    except msgspec.ValidationError:
        raise BodyError(
            422, "bad_shape", 'the body must be a JSON array of events or an object {"events": [...]}'
        ) from None
    except msgspec.DecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise BodyError(400, "bad_json", "the body is not valid UTF-8") from None
    except RecursionError:
        raise BodyError(400, "too_deep", "the JSON is nested too deeply") from None
    events = decoded.events if isinstance(decoded, _Wrapped) else decoded
    if not events:
        raise BodyError(422, "empty_batch", "the batch holds no events: send 1 to 1000")
    if len(events) > max_events:
        raise BodyError(
            413, "batch_too_large", f"the batch holds {len(events)} events; the limit is {max_events} per request"
        )
    return events
