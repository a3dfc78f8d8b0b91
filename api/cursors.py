"""Opaque page cursors of the listings that page by position (``GET /api/v1/dlq``, ``GET
/api/v1/analytics/series``): URL-safe base64 of a small JSON object naming the listing kind, the position and
the listing's scope (a digest of its tenant and filters), so that a cursor cannot resume another listing.

    >>> scope = listing_scope("acme", "anomaly_score", None)
    >>> raw = encode_cursor("series", {"k": [1, "a", "", "{}"], "n": 1}, scope)
    >>> decode_cursor(raw, "series", scope)
    {'k': [1, 'a', '', '{}'], 'n': 1}
    >>> decode_cursor(raw, "dlq", scope) is None, decode_cursor("%%%", "series", scope) is None
    (True, True)
    >>> decode_cursor(raw, "series", listing_scope("other", "anomaly_score", None))
    Traceback (most recent call last):
    ...
    api.cursors.ForeignCursor: cursor of another listing
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec

from hubcore.query.model import QueryError


class ForeignCursor(ValueError):
    """A well-formed cursor of the same kind of listing, but of another tenant or other filters."""

    def __init__(self) -> None:
        super().__init__("cursor of another listing")


def listing_scope(*parts: str | None) -> str:
    """What a cursor is bound to: the listing's tenant and filters, as a short digest."""
    return hashlib.sha256(msgspec.json.encode(list(parts))).hexdigest()[:16]


def encode_cursor(kind: str, position: dict[str, Any], scope: str) -> str:
    """The cursor of listing ``kind`` at ``position`` (JSON-able), bound to ``scope``."""
    data = msgspec.json.encode({"x": kind, **position, "s": scope})
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(raw: str, kind: str, scope: str) -> dict[str, Any] | None:
    """The position in ``raw`` (the object :func:`encode_cursor` was given); None if ``raw`` is not a cursor
    of listing ``kind``; :class:`ForeignCursor` if it is one of another ``scope``. The caller checks the
    position's fields."""
    try:
        data = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except Exception:
        return None
    if not isinstance(data, dict) or data.pop("x", None) != kind or not isinstance(data.get("s"), str):
        return None
    if data.pop("s") != scope:
        raise ForeignCursor()
    return data


def read_series_cursor(raw: str, scope: str, max_rows: int) -> tuple[tuple[int, str, str, str], int]:
    """The row key (:data:`analytics.service.derived.SeriesKey`) and count of a ``GET /api/v1/analytics/series``
    cursor ``raw`` (at most ``max_rows`` rows of the key sent); a 422 ``bad_cursor`` naming ``cursor`` if it
    is not one of a listing of ``scope``."""
    not_one = QueryError("cursor", "not a cursor of this API; pass next_cursor unchanged", reason="bad_cursor")
    try:
        data = decode_cursor(raw, "series", scope)
    except ForeignCursor:
        raise QueryError("cursor", "belongs to another listing: send it with the same tenant, name and query",
                         reason="bad_cursor") from None  # fmt: skip
    if data is None:
        raise not_one
    key, sent = data.get("k"), data.get("n")
    if not (isinstance(key, list) and len(key) == 4 and type(key[0]) is int and 0 <= key[0] < 2**62
            and all(isinstance(v, str) for v in key[1:]) and type(sent) is int and 0 < sent <= max_rows):  # fmt: skip
        raise not_one
    return (key[0], key[1], key[2], key[3]), sent
