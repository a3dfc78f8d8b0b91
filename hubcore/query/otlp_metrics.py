"""Read back the OTLP metric points of the embedded store: a filtered list newest first, and the metric names.

Every read is scoped to one tenant. The list pages like spans and log records (:class:`hubcore.query.otlp._Page`):
an opaque keyset cursor over ``(time, key)``, ``key`` a hash of the point's columns, exact duplicates told
apart by how many of them the previous pages returned, the cursor bound to its query (name, service, label
matchers in any order, tenant and time window).

Label matchers select on the data point's attributes, Prometheus style: ``key=value`` (the attribute's value
as text equals ``value``; ``key=`` matches points without the attribute) and ``key!=value``.

>>> q = MetricListQuery("t1", name="gen_ai.client.token.usage", labels=["gen_ai.token.type=input"])
>>> sql, params = q.to_sql()
>>> params[:4]
['t1', 'gen_ai.client.token.usage', '/gen_ai.token.type', 'input']
>>> parse_label_matcher("a/b!=x")
('/a~1b', '<>', 'x')
"""

from __future__ import annotations

from typing import Any, Final

from hubcore.errors import InvalidParameter
from hubcore.query.otlp import _iso, _json, _Page, check_time_range

#: The most ``label`` matchers one request may give, and the longest key and value of one.
MAX_LABELS: Final = 20
MAX_LABEL_KEY: Final = 256
MAX_LABEL_VALUE: Final = 1024
#: The most (name, kind, unit) entries ``GET /api/v1/metrics/names`` returns (more: ``truncated``).
MAX_NAMES: Final = 1000

_POINT_COLUMNS = ("tenant_id", "name", "kind", "temporality", "monotonic", "unit", "value", "count", "sum", "min",
                  "max", "bounds", "bucket_counts", "service_name", "model", "provider", "operation", "token_type",
                  "error_type", "team", "project", "environment", "attributes", "resource")  # fmt: skip
#: Every stored column but the tenant, the time (the other half of the keyset) and the derived indexed ones.
_POINT_KEY = ("hash(name, kind, temporality, monotonic, value, count, sum, min, max, bounds, bucket_counts, unit, "
              "service_name, attributes, resource, start_ts)")  # fmt: skip


def parse_label_matcher(text: str) -> tuple[str, str, str]:
    """``(JSON pointer of the attribute, SQL operator, value)`` from ``key=value`` or ``key!=value``.

    The key is everything before the first ``=`` (a trailing ``!`` makes it ``!=``); 422 naming ``label``
    for a matcher without ``=``, an empty key, or a key or value too long.
    """
    key, sep, value = text.partition("=")
    op = "="
    if key.endswith("!"):
        key, op = key[:-1], "<>"
    if not sep or not key:
        raise InvalidParameter(f"label must be key=value or key!=value (a non-empty key), got {text[:64]!r}")
    if len(key) > MAX_LABEL_KEY or len(value) > MAX_LABEL_VALUE:
        raise InvalidParameter(
            f"label key must be at most {MAX_LABEL_KEY} characters and its value at most {MAX_LABEL_VALUE}"
        )
    return "/" + key.replace("~", "~0").replace("/", "~1"), op, value


def _label_where(labels: list[str] | None) -> tuple[list[str], list[Any]]:
    if not labels:
        return [], []
    if len(labels) > MAX_LABELS:
        raise InvalidParameter(f"at most {MAX_LABELS} label matchers, got {len(labels)}")
    where: list[str] = []
    params: list[Any] = []
    for text in labels:
        pointer, op, value = parse_label_matcher(text)
        # an absent attribute reads as "" (Prometheus: a missing label equals the empty string)
        where.append(f"coalesce(json_extract_string(attributes, ?), '') {op} ?")
        params += [pointer, value]
    return where, params


class MetricListQuery(_Page):
    """Metric points newest first (by the point's time): gauge and sum values, histograms with their buckets."""

    kind = "metric_points"

    def __init__(self, tenant_id: str, *, name: str | None = None, service: str | None = None,
                 labels: list[str] | None = None, start_us: int | None = None, end_us: int | None = None,
                 limit: int = 100, cursor: str | None = None,
                 window: tuple[str | None, str | None] | None = None) -> None:  # fmt: skip
        super().__init__(tenant_id, start_us, end_us, limit, cursor, window)
        self.name, self.service, self.labels = name, service, labels

    def _filters(self) -> list[Any]:
        # the matchers are ANDed: their order does not change the query
        return [self.name, self.service, sorted(self.labels or [])]

    def to_sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("name", self.name), ("service_name", self.service)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        label_where, label_params = _label_where(self.labels)
        columns = ", ".join(_POINT_COLUMNS) + ", ts, start_ts"
        return self._page_sql("metric_points", columns, "ts", _POINT_KEY, where + label_where, params + label_params)


def metric_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """API metric points from rows of :class:`MetricListQuery`."""
    out = []
    n = len(_POINT_COLUMNS)
    for r in rows:
        p = dict(zip(_POINT_COLUMNS, r[:n], strict=True))
        p["timestamp"], p["start_timestamp"] = _iso(r[n]), _iso(r[n + 1])
        p["temporality"] = p["temporality"] or None  # gauges, histograms without one, summaries
        if p["kind"] != "sum":
            p["monotonic"] = None  # only a sum says whether it is monotonic
        p["attributes"] = _json(p["attributes"], {})
        p["resource"] = _json(p["resource"], {})
        out.append(p)
    return out


def metric_names_sql(tenant_id: str, *, service: str | None = None, prefix: str | None = None,
                     start_us: int | None = None, end_us: int | None = None,
                     limit: int = MAX_NAMES) -> tuple[str, list[Any]]:  # fmt: skip
    """One row per (name, kind, unit) with its point count and first and last times, by name; ``limit`` + 1 rows
    at most (one more than asked says the list was cut)."""
    if not 1 <= limit <= MAX_NAMES:
        raise InvalidParameter(f"limit must be between 1 and {MAX_NAMES}", reason="bad_limit")
    check_time_range(start_us, end_us)
    where = ["tenant_id = ?"]
    params: list[Any] = [tenant_id]
    if service is not None:
        where.append("service_name = ?")
        params.append(service)
    if prefix is not None:
        where.append("starts_with(name, ?)")
        params.append(prefix)
    if start_us is not None:
        where.append("ts >= make_timestamp(?)")
        params.append(start_us)
    if end_us is not None:
        where.append("ts < make_timestamp(?)")
        params.append(end_us)
    sql = (
        "SELECT name, kind, coalesce(unit, '') AS unit, count(*) AS points, min(ts), max(ts) FROM metric_points"
        f" WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY name, kind, unit LIMIT ?"
    )
    return sql, [*params, limit + 1]


def name_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """API entries from rows of :func:`metric_names_sql`."""
    return [
        {"name": name, "kind": kind, "unit": unit, "points": points, "first_timestamp": _iso(first),
         "last_timestamp": _iso(last)}
        for name, kind, unit, points, first, last in rows
    ]  # fmt: skip
