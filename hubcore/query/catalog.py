"""What a tenant can query: metric names, label and attribute keys, payload fields and tag keys.

For query builders (``GET /api/v1/metrics/catalog``). Every statement is scoped to one tenant and a
time window, so a tenant never learns another tenant's names.

    >>> import tempfile
    >>> from hubcore.storage.embedded import EmbeddedStore
    >>> store = EmbeddedStore(tempfile.mkdtemp(), wal_fsync=False); store.start()
    >>> sorted(build_catalog(store, "t1", since_us=0))[:3]
    ['attribute_keys', 'composites', 'event_fields']
    >>> store.shutdown()
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from hubcore.query.composite import COMPOSITES
from hubcore.query.ir import misspelt_composite
from hubcore.query.model import (
    ALL_TENANTS,
    BUCKETS,
    FUNCTIONS,
    KEY_PATTERN,
    NUMERIC_COLUMNS,
    OPERATORS,
    STRING_COLUMNS,
    Query,
    QueryError,
)
from hubcore.storage.embedded import EmbeddedStore

_METRIC_LABELS = ("service_name", "model", "provider", "operation", "token_type", "error_type", "team", "project",
                  "environment")  # fmt: skip
MAX_NAMES = 1000
SAMPLE_ROWS = 20_000


def build_catalog(store: EmbeddedStore, tenant: str, *, since_us: int) -> dict[str, Any]:
    """The tenant's catalogue over rows newer than ``since_us`` (µs since the epoch)."""
    cur = store.cursor()
    try:
        points_src = _points_source(cur)
        where = "tenant_id = ? AND ts >= make_timestamp(?)"
        params = [tenant, since_us]
        events = cur.execute(
            f"SELECT event_type, name, any_value(unit), count(*) FROM events WHERE {where} AND name IS NOT NULL "
            f"GROUP BY 1, 2 ORDER BY 1, 4 DESC LIMIT {MAX_NAMES}",
            params,
        ).fetchall()
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for etype, name, unit, n in events:
            by_type[etype].append({"name": name, "unit": unit, "count": n})
        points = cur.execute(
            f"SELECT name, any_value(kind), any_value(unit), count(*) FROM {points_src} WHERE {where} "
            f"GROUP BY 1 ORDER BY 1 LIMIT {MAX_NAMES}",
            params,
        ).fetchall()
        labels = _metric_labels(cur, points_src, where, params)
        attr_keys = cur.execute(
            f"SELECT DISTINCT unnest(json_keys(attributes)) AS k FROM (SELECT attributes FROM {points_src} "
            f"WHERE {where} AND attributes IS NOT NULL LIMIT {SAMPLE_ROWS}) ORDER BY 1 LIMIT {MAX_NAMES}",
            params,
        ).fetchall()
        # keys are read from a bounded sample of the tenant's rows (any SAMPLE_ROWS of them); only keys that
        # a query can name are listed (KEY_PATTERN: a key with a dot, a space... is not a tags./payload. field)
        sample = f"(SELECT event_type, tags, payload FROM events WHERE {where} LIMIT {SAMPLE_ROWS})"
        tag_keys = cur.execute(
            f"SELECT k FROM (SELECT DISTINCT unnest(json_keys(tags)) AS k FROM {sample} WHERE tags IS NOT NULL) "
            f"WHERE regexp_full_match(k, ?) ORDER BY 1 LIMIT {MAX_NAMES}",
            [*params, KEY_PATTERN],
        ).fetchall()
        payload = cur.execute(
            f"""
            WITH s AS MATERIALIZED {sample},
            top AS (
                SELECT event_type, k FROM (
                    SELECT DISTINCT event_type, unnest(json_keys(payload)) AS k FROM s WHERE payload IS NOT NULL
                ) WHERE regexp_full_match(k, ?)
            ),
            children AS (
                SELECT DISTINCT t.event_type, t.k AS parent,
                       unnest(json_keys(json_extract(s.payload, '$."' || t.k || '"'))) AS child
                FROM s JOIN top t ON s.event_type = t.event_type
                WHERE json_type(json_extract(s.payload, '$."' || t.k || '"')) = 'OBJECT'
            )
            SELECT event_type, k FROM top
            UNION SELECT event_type, parent || '.' || child FROM children WHERE regexp_full_match(child, ?)
            ORDER BY 1, 2 LIMIT {MAX_NAMES}
            """,
            [*params, KEY_PATTERN, KEY_PATTERN],
        ).fetchall()
    finally:
        cur.close()
    payload_fields: dict[str, list[str]] = defaultdict(list)
    for etype, key in payload:
        payload_fields[etype].append(f"payload.{key}")
    return {
        "tenant": tenant,
        "events": {k: v for k, v in sorted(by_type.items())},
        "metric_points": [{"name": n, "kind": k, "unit": u, "count": c} for n, k, u, c in points],
        "metric_labels": labels,
        "attribute_keys": [r[0] for r in attr_keys],
        "tag_keys": [f"tags.{r[0]}" for r in tag_keys],
        "payload_fields": dict(payload_fields),
        "event_fields": {"string": list(STRING_COLUMNS), "numeric": list(NUMERIC_COLUMNS)},
        "operators": list(OPERATORS),
        "functions": list(FUNCTIONS),
        "time_buckets": list(BUCKETS),
        "composites": [{"name": c.name, "unit": c.unit, "description": c.description} for c in COMPOSITES.values()],
    }


def stored_name_probe(query: Query) -> tuple[str, list[Any]] | None:
    """SQL (and its parameters) whose answer has a row if the tenant has ever stored the metric name of
    ``query``, for a name given as a bare string close to a composite's (``"metric": "error_rat"``); None for
    any other query. Without such a row the name is a typo of the composite: :func:`unknown_name_error`.

    The look-up reads every time, not only the range queried, and runs only for such names, which are rare.

        >>> from hubcore.query.model import parse_query
        >>> stored_name_probe(parse_query({"metric": "error_rat"}, tenant="t1", now_us=10**15))
        ('SELECT 1 FROM events WHERE tenant_id = ? AND name = ? LIMIT 1', ['t1', 'error_rat'])
        >>> stored_name_probe(parse_query({"metric": "gen_ai.client.token.usage"}, tenant="t1", now_us=10**15))
    """
    if query.metric.near_composite is None or query.metric.name is None:
        return None
    where, params = "name = ?", [query.metric.name]
    if query.tenant != ALL_TENANTS:
        where, params = "tenant_id = ? AND " + where, [query.tenant, *params]
    return f"SELECT 1 FROM events WHERE {where} LIMIT 1", params


def unknown_name_error(query: Query) -> QueryError:
    """The 422 on ``metric`` for a bare-string name close to a composite's that the tenant never stored: a typo
    of the composite, which had read as a metric with no data (200, count 0)."""
    read_as = f'a name not yet stored is read with "metric": {{"name": {json.dumps(query.metric.name)}}}'
    return misspelt_composite(query.metric, "a metric name stored for this tenant", read_as)


def _metric_labels(cur: Any, points_src: str, where: str, params: list[Any]) -> list[str]:
    """The labels of :data:`_METRIC_LABELS` some point has. A sample of :data:`SAMPLE_ROWS` points shows most of
    them in one pass; a label it lacks is looked for in every point (``LIMIT 1``: a scan of the rows until one
    has it). That look-up for every label, over the view of event-derived points, was 0.6-3 s of a 1-3 s
    catalogue on two days of simulated traffic (900 k events), as most of a label's rows are behind the view."""
    seen = cur.execute(
        "SELECT " + ", ".join(f"bool_or({c} IS NOT NULL)" for c in _METRIC_LABELS)
        + f" FROM (SELECT {', '.join(_METRIC_LABELS)} FROM {points_src} WHERE {where} LIMIT {SAMPLE_ROWS})",
        params,
    ).fetchone()
    found = {c for c, hit in zip(_METRIC_LABELS, seen or (), strict=False) if hit}
    rest = [c for c in _METRIC_LABELS if c not in found]
    if rest:
        exists = " UNION ALL ".join(
            f"SELECT '{c}' AS k FROM (SELECT 1 FROM {points_src} WHERE {where} AND {c} IS NOT NULL LIMIT 1)"
            for c in rest
        )
        found.update(r[0] for r in cur.execute(exists, params * len(rest)).fetchall())
    return [c for c in _METRIC_LABELS if c in found]


def _points_source(cur: Any) -> str:
    """``all_metric_points`` (OTLP points + the view of event-derived points) where the store has it."""
    found = cur.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'all_metric_points'").fetchone()
    return "all_metric_points" if found and found[0] else "metric_points"
