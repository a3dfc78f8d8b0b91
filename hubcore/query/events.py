"""List stored native events newest first, with filters and keyset (cursor) pagination.

A cursor is bound to the listing it was made for (:meth:`EventListQuery.scope`: the tenant, the filters and
``start``/``end`` as the request wrote them, not the page size): sent with another, it is a 422
``bad_cursor``, as the OTLP lists' cursors are (:mod:`hubcore.query.otlp`).

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
from hubcore.model.events import EVENT_TYPES, SEVERITIES, SOURCE_MODULES
from hubcore.query.export import export_scope

FILTERABLE = ("source_module", "event_type", "severity", "environment", "correlation_id", "model", "team",
              "project", "name", "status", "event_id", "asset_id", "user_id")  # fmt: skip
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*){0,4}$")
MAX_LIMIT = 1000
#: The filters whose values are enumerated: a typo (``severity=critcal``) matches no row, so it is a 422 that
#: names the allowed values rather than an empty answer.
ENUMERATED: dict[str, tuple[str, ...]] = {
    "source_module": SOURCE_MODULES, "event_type": EVENT_TYPES, "severity": SEVERITIES,
}  # fmt: skip


def check_enumerated(key: str, value: str) -> None:
    """422 ``invalid_parameter`` for a value of an enumerated filter that no event can have.

    >>> check_enumerated("severity", "critical")
    >>> check_enumerated("severity", "critcal")
    Traceback (most recent call last):
    ...
    hubcore.errors.InvalidParameter: severity must be one of debug, info, warning, error, critical, got 'critcal'
    """
    allowed = ENUMERATED.get(key)
    if allowed is not None and value not in allowed:
        raise InvalidParameter(f"{key} must be one of {', '.join(allowed)}, got {value[:64]!r}", field=key)


_COLUMNS = ("event_id", "ts", "received_at", "tenant_id", "source_module", "event_type", "severity",
            "environment", "correlation_id", "schema_version", "tags", "payload", "enrichment")  # fmt: skip
#: The total order of a listing (newest first): two rows may share a time and an event id — the same event
#: sent again after the de-duplication window, or (every tenant's listing) by two tenants — so the tenant and
#: the receipt time (-1 when unknown) break the tie; a cursor holds the last row's four values.
LIST_KEY = ("ts", "event_id", "tenant_id", "coalesce(epoch_us(received_at), -1)")
_KEY_OUT = ("epoch_us(ts) AS ts_us", "coalesce(epoch_us(received_at), -1) AS received_us")


@dataclass
class EventListQuery:
    """``tenant_id=None`` means every tenant (platform admins only; the API decides who may).

    ``window``: ``start`` and ``end`` as the request wrote them, which a cursor is bound to (a relative
    ``-1h`` is the same text from page to page while its time moves); None: ``(start_us, end_us)``.
    """

    tenant_id: str | None
    filters: dict[str, str] = field(default_factory=dict)
    tag_filters: dict[str, str] = field(default_factory=dict)
    payload_filters: dict[str, str] = field(default_factory=dict)
    start_us: int | None = None
    end_us: int | None = None
    limit: int = 100
    cursor: str | None = None
    window: tuple[str | None, str | None] | None = None

    def scope(self) -> str:
        """A short digest of what a cursor is bound to: tenant, filters and time window (not the page size).

        >>> a = EventListQuery(tenant_id="t1", filters={"model": "gpt-4o"}, window=("-1h", None))
        >>> a.scope() == EventListQuery(tenant_id="t1", filters={"model": "gpt-4o"}, window=("-1h", None)).scope()
        True
        >>> a.scope() == EventListQuery(tenant_id="t1", filters={"model": "gpt-4"}, window=("-1h", None)).scope()
        False
        """
        window = list(self.window) if self.window is not None else [self.start_us, self.end_us]
        return export_scope("events", self.tenant_id, sorted(self.filters.items()), sorted(self.tag_filters.items()),
                            sorted(self.payload_filters.items()), window)  # fmt: skip

    def validate(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}", reason="bad_limit")
        for key in self.filters:
            if key not in FILTERABLE:
                raise InvalidParameter(
                    f"unknown filter {key!r}; filterable: {', '.join(FILTERABLE)}, tags.<k>, payload.<path>"
                )
            check_enumerated(key, self.filters[key])
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
            last = decode_cursor(self.cursor)
            # bound to its listing (a cursor of an earlier hub is not: it resumes as it did)
            if len(last) == 5 and last.pop() != self.scope():
                raise InvalidParameter(
                    "cursor belongs to another listing (other filters, start/end or tenant): repeat the request "
                    "that returned it with the same parameters, or drop the cursor to start from the first page",
                    reason="bad_cursor",
                )
            where.append("ts <= make_timestamp(?)")  # the plain bound lets the store skip row groups
            params.append(last[0])
            if len(last) == 2:  # a cursor of a hub before the full key: (time, event id)
                where.append("(ts < make_timestamp(?) OR (ts = make_timestamp(?) AND event_id < ?))")
                params += [last[0], last[0], last[1]]
            else:
                where.append(f"({', '.join(LIST_KEY)}) < (make_timestamp(?), ?, ?, ?)")
                params += last
        sql = (
            f"SELECT {', '.join(_COLUMNS)}, {', '.join(_KEY_OUT)} FROM events"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {', '.join(k + ' DESC' for k in LIST_KEY)} LIMIT ?"
        )
        params.append(self.limit + 1)
        return sql, params


def _json_path(key: str) -> str:
    return "$." + ".".join(f'"{part}"' if "-" in part else part for part in key.split("."))


def encode_cursor(ts_us: int, event_id: str, tenant_id: str, received_us: int, scope: str | None = None) -> str:
    """The cursor of a listing whose last row is the one given, bound to ``scope`` (:meth:`EventListQuery.scope`)."""
    key: list[Any] = [ts_us, event_id, tenant_id, received_us]
    return base64.urlsafe_b64encode(msgspec.json.encode(key if scope is None else [*key, scope])).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """``[time µs, event id, tenant, receipt µs, scope]`` of a cursor; ``[time µs, event id, tenant, receipt µs]``
    or ``[time µs, event id]`` for a cursor of an earlier hub, bound to no listing (it still resumes, on its key)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) not in (2, 4, 5):
            raise ValueError
        kinds = (int, str, str, int, str)[: len(key)]
        if not all(type(v) is t for v, t in zip(key, kinds, strict=True)) or not -(2**62) < key[0] < 2**62:
            raise ValueError
        if len(key) >= 4 and not -(2**62) < key[3] < 2**62:
            raise ValueError
        return key
    except (ValueError, TypeError, msgspec.DecodeError):
        raise InvalidParameter(
            "cursor is not valid; pass next_cursor from a previous answer unchanged", reason="bad_cursor"
        ) from None


def rows_to_events(
    rows: list[tuple[Any, ...]], limit: int, scope: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Shape result rows as API events and compute ``next_cursor`` (bound to ``scope``, the query's
    :meth:`EventListQuery.scope`)."""
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
    next_cursor = None
    if more and rows:
        last = dict(zip(_COLUMNS, rows[-1][: len(_COLUMNS)], strict=True))
        ts_us, received_us = rows[-1][len(_COLUMNS) :]
        next_cursor = encode_cursor(ts_us, last["event_id"], last["tenant_id"], received_us, scope)
    return out, next_cursor
