"""Decoding a JSON request body that a router reads itself (the query, analytics and alerts routers).

Malformed JSON, text that is not UTF-8 and nesting deeper than :data:`MAX_DEPTH` are one
:class:`BadJsonError` (HTTP 400 ``bad_json``), never a ``RecursionError`` or ``UnicodeDecodeError`` that
would surface as a 500. No body these routers take nests more than a few levels, so the depth limit also
keeps deep values away from code that walks them recursively (``repr``, hashing, error messages).

    >>> decode_json(b'{"a": [1, {"b": null}]}')
    {'a': [1, {'b': None}]}
    >>> decode_json(b"[" * 65 + b"]" * 65)
    Traceback (most recent call last):
    ...
    api.jsonbody.BadJsonError: the body is nested more than 64 levels deep
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from hubcore.errors import PermanentError

MAX_DEPTH: Final = 64


class BadJsonError(PermanentError):
    """The body cannot be read as JSON: HTTP 400, reason ``bad_json``."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="bad_json")


def decode_json(body: bytes) -> Any:
    """``body`` decoded (``{}`` when empty); raises :class:`BadJsonError`."""
    try:
        value = msgspec.json.decode(body or b"{}")
    except msgspec.DecodeError as exc:
        raise BadJsonError(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BadJsonError(f"the body is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise BadJsonError(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    if _deeper_than(value, MAX_DEPTH):
        raise BadJsonError(f"the body is nested more than {MAX_DEPTH} levels deep")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iteratively: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
