"""Decoding a native-event request body: a JSON array of events or ``{"events": [...]}``, or NDJSON
(``application/x-ndjson``: one event per line, blank lines ignored).

>>> len(split_events(b'[{"a": 1}, {"b": 2}]', max_events=10))
2
>>> len(split_events(b'{"events": [{"a": 1}]}', max_events=10))
1
>>> len(split_events(b'{"a": 1}\\n\\n{"b": 2}\\n', max_events=10, ndjson=True))
2
"""

from __future__ import annotations

import msgspec

from hubcore.errors import PermanentError


class _Wrapped(msgspec.Struct):
    events: list[msgspec.Raw]


_decoder = msgspec.json.Decoder(list[msgspec.Raw] | _Wrapped)
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)


class BodyError(PermanentError):
    """A whole request refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, reason=code)
        self.status = status


def split_events(body: bytes, *, max_events: int, ndjson: bool = False) -> list[msgspec.Raw]:
    """The events of a body, each still raw JSON; raises :class:`BodyError`."""
    if not body.strip():
        raise BodyError(400, "empty_body", "the body is empty: send a JSON array of 1 to 1000 events")
    try:
        body.decode("utf-8")  # RFC 8259: JSON text is UTF-8; raw event slices are not re-checked later
    except UnicodeDecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not valid UTF-8 (byte {exc.start})") from None
    events = _split_lines(body, max_events) if ndjson else _split_json(body)
    if not events:
        raise BodyError(422, "empty_batch", "the batch holds no events: send 1 to 1000")
    if len(events) > max_events:
        raise BodyError(
            413, "batch_too_large", f"the batch holds {len(events)} events; the limit is {max_events} per request"
        )
    return events


def _split_lines(body: bytes, max_events: int) -> list[msgspec.Raw]:
    """NDJSON: each non-blank line is one event (checked to be one JSON value)."""
    lines = [(number, line) for number, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    if len(lines) > max_events:  # refused before parsing any of it
        raise BodyError(
            413, "batch_too_large", f"the batch holds {len(lines)} events; the limit is {max_events} per request"
        )
    events: list[msgspec.Raw] = []
    for number, line in lines:
        try:
            events.append(_raw_decoder.decode(line))
        except msgspec.DecodeError as exc:
            raise BodyError(400, "bad_json", f"line {number} is not valid JSON: {exc}") from None
        except RecursionError:
            raise BodyError(400, "too_deep", f"line {number}: the JSON is nested too deeply") from None
    return events


def _split_json(body: bytes) -> list[msgspec.Raw]:
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
    return decoded.events if isinstance(decoded, _Wrapped) else decoded
