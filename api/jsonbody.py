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

import difflib
import re
from collections.abc import Sequence
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


_AT = re.compile(r"at `\$\.?([^`]*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def body_field(exc: msgspec.ValidationError) -> str:
    """The body field a msgspec validation error is about (``ids``, ``ids[0]``, an unknown ``idz``, a missing
    ``role``), else ``body`` (the body itself: an array, a string).

    >>> body_field(msgspec.ValidationError("Object contains unknown field `idz`"))
    'idz'
    >>> body_field(msgspec.ValidationError("Expected `str`, got `int` - at `$.ids[0]`"))
    'ids[0]'
    """
    text = str(exc)
    where = _AT.search(text)
    named = _UNKNOWN.search(text) or _MISSING.search(text)
    path = where.group(1) if where else ""
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or "body"


def struct_error(exc: msgspec.ValidationError, fields: Sequence[str], *, listing: str | None = None) -> tuple[str, str]:
    """(field, message) for a body that msgspec refused against a struct taking ``fields``: the message names
    the field, says what is wrong and lists the fields the body takes (``listing``: that list in words); an
    unknown field also gets the closest accepted name.

    >>> struct_error(msgspec.ValidationError("Object contains unknown field `tenantid`"), ["role", "tenant_id"])
    ('tenantid', 'tenantid: unknown field (did you mean tenant_id?); the body takes role, tenant_id')
    >>> struct_error(msgspec.ValidationError("Object missing required field `role`"), ["role", "team"])
    ('role', 'role: missing; the body takes role, team')
    >>> struct_error(msgspec.ValidationError("Expected `str`, got `int` - at `$.role`"), ["role"])
    ('role', 'role: Expected `str`, got `int`; the body takes role')
    """
    field = body_field(exc)
    takes = f"the body takes {listing or ', '.join(fields)}"
    text = str(exc)
    if _UNKNOWN.search(text):
        close = difflib.get_close_matches(field, list(fields), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return field, f"{field}: unknown field{hint}; {takes}"
    if _MISSING.search(text):
        return field, f"{field}: missing; {takes}"
    detail = _AT.sub("", text).rstrip(" -")
    return field, f"{field}: {detail}; {takes}"
