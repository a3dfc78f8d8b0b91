"""List stored native events newest first, with filters and keyset (cursor) pagination.

>>> q = EventListQuery(tenant_id="t1", filters={"source_module": "llm-costops"},
...                    payload_filters={"model": "gpt-4o"}, limit=2)
>>> sql, params = q.to_sql()
>>> "json_extract_string(payload, ?) = ?" in sql, params[:3]
(True, ['t1', 'llm-costops', '$.model'])
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hubcore.errors import InvalidParameter

FILTERABLE = ("source_module", "event_type", "severity", "environment", "correlation_id", "model", "team",
              "project", "name", "status", "event_id", "asset_id", "user_id")  # fmt: skip
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*){0,4}$")
MAX_LIMIT = 1000

_COLUMNS = ("event_id", "ts", "received_at", "tenant_id", "source_module", "event_type", "severity",
            "environment", "correlation_id", "schema_version", "tags", "payload", "enrichment")  # fmt: skip


@dataclass
class EventListQuery:
    """``tenant_id=None`` means every tenant (platform admins only; the API decides who may)."""

    tenant_id: str | None
    filters: dict[str, str] = field(default_factory=dict)
    tag_filters: dict[str, str] = field(default_factory=dict)
    payload_filters: dict[str, str] = field(default_factory=dict)
    start_us: int | None = None
    end_us: int | None = None
    limit: int = 100
    cursor: str | None = None

    def validate(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}", reason="bad_limit")
        for key in self.filters:
            if key not in FILTERABLE:
                raise InvalidParameter(
                    f"unknown filter {key!r}; filterable: {', '.join(FILTERABLE)}, tags.<k>, payload.<path>"
                )
        for prefix, keys in (("tags.", self.tag_filters), ("payload.", self.payload_filters)):
            for key in keys:
                if not _PATH.match(key):
                    raise InvalidParameter(
                        f"{prefix}{key}: bad field path {key!r}: letters, digits, '_' or '-', up to 5 dotted parts"
                    )
        if self.start_us is not None and self.end_us is not None and self.start_us > self.end_us:
            raise InvalidParameter("start must not be after end", reason="bad_time")

    def to_sql(self) -> tuple[str, list[Any]]:
        self.validate()
        where: list[str] = []
        params: list[Any] = []
        if self.tenant_id is not None:
            where.append("tenant_id = ?")
            params.append(self.tenant_id)
        for key, value in self.filters.items():
            where.append(f"{key} = ?")  # key is from the FILTERABLE allow-list
            params.append(value)
        for key, value in self.tag_filters.items():
            where.append("json_extract_string(tags, ?) = ?")
            params += [_json_path(key), value]
        for key, value in self.payload_filters.items():
            where.append("json_extract_string(payload, ?) = ?")
            params += [_json_path(key), value]
        if self.start_us is not None:
            where.append("ts >= make_timestamp(?)")
            params.append(self.start_us)
        if self.end_us is not None:
            where.append("ts < make_timestamp(?)")
            params.append(self.end_us)
        if self.cursor:
            ts_us, event_id = decode_cursor(self.cursor)
            where.append("(ts < make_timestamp(?) OR (ts = make_timestamp(?) AND event_id < ?))")
            params += [ts_us, ts_us, event_id]
        sql = (
            f"SELECT {', '.join(_COLUMNS)}, epoch_us(ts) AS ts_us FROM events"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY ts DESC, event_id DESC LIMIT ?"
        )
        params.append(self.limit + 1)
        return sql, params


def _json_path(key: str) -> str:
    return "$." + ".".join(f'"{part}"' if "-" in part else part for part in key.split("."))


def encode_cursor(ts_us: int, event_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([ts_us, event_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts_us, event_id = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(ts_us, int) or not isinstance(event_id, str):
            raise ValueError
        return ts_us, event_id
    except (ValueError, TypeError, msgspec.DecodeError):
        raise InvalidParameter(
            "cursor is not valid; pass next_cursor from a previous answer unchanged", reason="bad_cursor"
        ) from None


def rows_to_events(rows: list[tuple[Any, ...]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Shape result rows as API events and compute ``next_cursor``."""
    more = len(rows) > limit
    rows = rows[:limit]
    out = []
    dec = msgspec.json.decode
    for r in rows:
        ev = dict(zip(_COLUMNS, r[: len(_COLUMNS)], strict=True))
        ev["timestamp"] = ev.pop("ts").isoformat() + "Z"
        ev["received_at"] = ev["received_at"].isoformat() + "Z"
        ev["tags"] = dec(ev["tags"]) if ev["tags"] else {}
        ev["payload"] = dec(ev["payload"]) if ev["payload"] else {}
        ev["enrichment"] = dec(ev["enrichment"]) if ev["enrichment"] else None
        out.append(ev)
    next_cursor = encode_cursor(rows[-1][-1], rows[-1][0]) if more and rows else None
    return out, next_cursor
