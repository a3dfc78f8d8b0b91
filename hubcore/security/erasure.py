"""GDPR erasure for the embedded store and the dead-letter queue, and its VictoriaMetrics counterpart.

    counts = erase_user(store, "acme", "user-42", dlq=dlq)   # {"events": 3, "spans": 1, ..., "dlq": 0}
    counts = erase_tenant(store, "acme", dlq=dlq)
    url, params = vm_delete_series_request("http://vm:8428", "acme")
    httpx.post(url, params=params)                           # VictoriaMetrics drops the tenant's series

What ``erase_user`` matches, always within ``tenant_id``. A "user key" is any of :data:`USER_KEYS`
(``user_id``, ``user.id``, ``enduser.id`` — the OTel semantic convention — and ``user``):

* ``events``: the ``user_id`` column, a user key in ``tags``, in ``payload`` or in ``payload.dimensions``.
  The OTel points and spans derived from events are views over ``events`` (``event_metric_points``,
  ``event_spans``), so they go with the events;
* ``spans`` (OTLP): a user key in ``attributes`` or ``resource`` (and any span whose ``event_id`` is one
  of the erased events, for stores that materialised them);
* ``metric_points`` (OTLP): a user key in ``attributes`` or ``resource``. Points derived from
  cost/security/governance/policy events carry no user identity (model, team, project...) once the
  event is gone;
* ``logs``: a user key in ``attributes``, ``resource`` or a JSON ``body``;
* the dead-letter queue: entries of the tenant whose raw JSON has a user key equal to the user anywhere
  in it (or, when the raw text is not JSON, that contains the quoted user id).

What the hub derived from that data goes too, in the same transaction, where the table exists: for a
tenant, every row of :data:`DERIVED_TABLES` (correlations, incidents and their root-cause hypotheses,
anomaly records, derived series, alerts and pending alerts); for a user, the correlations and incidents
that name the user (their dimensions, explanations, impact and hypotheses hold user ids and source IPs).
The tenant's configuration — alert rules, budgets, API keys — and the audit log are kept. Every cached
query result of the tenant is dropped (the store's commit listeners are told), so an erased row is not
served from the cache afterwards.

Rows that arrive *during* the erasure are not covered: stop the tenant's or user's traffic first (revoke
their keys). Not covered here: write-ahead-log segments still on disk (they hold batches already applied and are
deleted as the log rolls over), DuckDB blocks freed by the delete (reused; ``CHECKPOINT`` is run), backups.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from hubcore.dlq import DeadLetterQueue
from hubcore.errors import InvalidParameter, RetryableError
from hubcore.storage.embedded import EmbeddedStore
from hubcore.storage.tables import TABLES

USER_KEYS = ("user_id", "user.id", "enduser.id", "user")
#: What the hub derives from a tenant's data (created by their subsystems when first used).
DERIVED_TABLES = ("correlations", "incidents", "analytics_anomalies", "derived_series", "alerts", "alert_pending")
#: Derived tables whose text columns can name a user (``user_id=u-42`` in an explanation or hypothesis).
_NAMING_USER = {
    "correlations": ("dimensions", "explanation", "impact"),
    "incidents": ("title", "impact", "hypotheses"),
}
_JSON_USER_COLUMNS = {
    "events": ("tags", "payload"),
    "metric_points": ("attributes", "resource"),
    "logs": ("attributes", "resource", "body"),
    "spans": ("attributes", "resource"),
}


def _json_user_match(column: str, paths: tuple[str, ...] = ("$",)) -> str:
    """SQL: ``column`` is JSON with a user key equal to the parameter ``$user`` at one of ``paths``."""
    extracts = ", ".join(f"json_extract_string({column}, '{p}.\"{k}\"')" for p in paths for k in USER_KEYS)
    return f"(CASE WHEN json_valid({column}) THEN list_contains([{extracts}], $user) ELSE false END)"


def user_predicate(table: str) -> str:
    """The WHERE clause (named parameters ``$tenant``, ``$user``) that :func:`erase_user` uses on ``table``."""
    parts = []
    for col in _JSON_USER_COLUMNS[table]:
        parts.append(_json_user_match(col, ("$", "$.dimensions") if col == "payload" else ("$",)))
    if table == "events":
        parts.insert(0, "user_id = $user")
    if table == "spans":
        parts.insert(0, f"event_id IN (SELECT event_id FROM events WHERE tenant_id = $tenant AND ({_events_user()}))")
    return f"tenant_id = $tenant AND ({' OR '.join(parts)})"


def _events_user() -> str:
    return " OR ".join(
        ["user_id = $user", _json_user_match("tags"), _json_user_match("payload", ("$", "$.dimensions"))]
    )


def check_user_id(user_id: str) -> str:
    """``user_id`` if :func:`erase_user` can take it; :class:`InvalidParameter` (422 ``bad_user_id``) when it
    is blank (empty or only whitespace: no one's id, and nothing would be erased) or ``*``, which is no
    wildcard here (it would erase only a user literally named ``*``): a tenant's every user goes with the
    tenant's erasure. The hub has no user-id grammar beyond that: any other text an event's field or tag, or an
    OTLP attribute, can carry may name a user.

    >>> check_user_id("u-42")
    'u-42'
    >>> check_user_id(" ")
    Traceback (most recent call last):
    ...
    hubcore.errors.InvalidParameter: user_id must not be blank (empty or only whitespace): name the user to erase
    """
    if not user_id or user_id.isspace():
        raise InvalidParameter(
            "user_id must not be blank (empty or only whitespace): name the user to erase",
            reason="bad_user_id",
        )
    if user_id == "*":
        raise InvalidParameter(
            "user_id '*' is not a wildcard: an erasure names one user; to erase every user's data, erase the "
            "tenant (DELETE /api/v1/tenants/{tenant_id}/data)",
            reason="bad_user_id",
        )
    return user_id


def erase_user(
    store: EmbeddedStore, tenant_id: str, user_id: str, *, dlq: DeadLetterQueue | None = None
) -> dict[str, int]:
    """Delete everything of ``user_id`` in ``tenant_id`` (see the module docstring); rows per table.
    :func:`check_user_id` refuses a blank id and ``*``."""
    check_user_id(user_id)
    params = {"tenant": tenant_id, "user": user_id}
    # spans first: they are found through the events that are about to go
    order = ["spans", *[t for t in TABLES if t != "spans"]]
    predicates = {t: user_predicate(t) for t in order}
    for table, columns in _NAMING_USER.items():  # derived analyses that name the user
        text = " || ' ' || ".join(f"coalesce({c}, '')" for c in columns)
        predicates[table] = f"tenant_id = $tenant AND regexp_matches({text}, $pattern)"
    params["pattern"] = r"(^|[^A-Za-z0-9_.@-])" + re.escape(user_id) + r"($|[^A-Za-z0-9_.@-])"
    counts = _delete(store, predicates, params)
    if dlq is not None:
        counts["dlq"] = _erase_dlq(dlq, tenant_id, user_id)
    return counts


def erase_tenant(store: EmbeddedStore, tenant_id: str, *, dlq: DeadLetterQueue | None = None) -> dict[str, int]:
    """Delete every row of ``tenant_id`` from every table (and its dead-letter entries); rows per table."""
    tables = [*TABLES, *DERIVED_TABLES]
    counts = _delete(store, {t: "tenant_id = $tenant" for t in tables}, {"tenant": tenant_id})
    if dlq is not None:
        counts["dlq"] = dlq.replay(lambda entries: [True] * len(entries), tenant_id=tenant_id)[1]
    return counts


def _delete(store: EmbeddedStore, predicates: dict[str, str], params: dict[str, Any]) -> dict[str, int]:
    if not store.flush(60.0):  # what is acknowledged but still queued must be in the tables first
        raise RetryableError("the store did not catch up with its write-ahead log in 60 s; retry the erasure")
    cur = store.cursor()
    existing = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    counts: dict[str, int] = {}
    cur.execute("BEGIN TRANSACTION")
    try:
        for table, where in predicates.items():
            if table not in existing:  # a derived table its subsystem has not created (yet)
                continue
            used = {k: v for k, v in params.items() if f"${k}" in where}
            row = cur.execute(f"DELETE FROM {table} WHERE {where}", used).fetchone()
            counts[table] = int(row[0]) if row else 0
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise
    with contextlib.suppress(Exception):  # best effort (another transaction may be open)
        cur.execute("CHECKPOINT")
    tenant = params["tenant"]
    for kind in TABLES:  # the query cache drops the tenant's results (whatever their time range)
        store.notify_changed(kind, frozenset({tenant}), 0, 2**62)
    return counts


def _erase_dlq(dlq: DeadLetterQueue, tenant_id: str, user_id: str) -> int:
    def handler(entries: list[dict[str, Any]]) -> list[bool]:
        return [_raw_mentions_user(str(e.get("raw", "")), user_id) for e in entries]

    return dlq.replay(handler, tenant_id=tenant_id)[1]


def _raw_mentions_user(raw: str, user_id: str) -> bool:
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return msgspec.json.encode(user_id).decode() in raw
    return any(d.get(k) == user_id for d in _dicts(doc) for k in USER_KEYS)


def _dicts(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        yield doc
        for v in doc.values():
            yield from _dicts(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _dicts(v)


def vm_delete_series_request(base_url: str, tenant_id: str) -> tuple[str, dict[str, str]]:
    """URL and query parameters of VictoriaMetrics' ``/api/v1/admin/tsdb/delete_series`` for every series
    with ``tenant_id="<tenant>"`` (send as GET or POST; VictoriaMetrics answers 204)."""
    escaped = tenant_id.replace("\\", "\\\\").replace('"', '\\"')
    return base_url.rstrip("/") + "/api/v1/admin/tsdb/delete_series", {"match[]": f'{{tenant_id="{escaped}"}}'}
