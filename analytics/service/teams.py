"""The team an anomaly belongs to, for the team-scoped ``anomalies:feedback`` (RBAC rule 4).

An anomaly is a point of one series of a configured query. It belongs to a team when its series is one
team's: the query groups by the team (``team`` or ``tags.team``; the series then carries that value under
its label name, ``team`` by default or the query's ``labels`` rename), or the query filters on it
(``{"field": "tags.team", "operator": "eq", "value": "search"}``; ``in`` names several). A label literally
called ``team`` counts too. A series that names no team (``latency_p95`` by model) belongs to none.

    >>> from analytics.service.config import QuerySpec
    >>> spec = QuerySpec(event_type="cost", field="value", group_by=["environment", "team"])
    >>> sorted(anomaly_teams(spec, {"environment": "prod", "team": "search"}, "acme"))
    ['search']
    >>> spec = QuerySpec(event_type="cost", field="value", group_by=["tags.team"], labels={"tags.team": "owner"},
    ...                  filters=[{"field": "team", "operator": "in", "value": ["ads", "search"]}])
    >>> sorted(anomaly_teams(spec, {"owner": "ads"}, "acme"))
    ['ads', 'search']
    >>> anomaly_teams(None, {"gen_ai_request_model": "gpt-4o"}, "acme")
    frozenset()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analytics.service.config import QuerySpec
from analytics.service.series import _label_name
from hubcore.query.model import FieldRef, QueryError, parse_query

__all__ = ["anomaly_teams"]

#: The event fields that hold a team: the ``team`` column (``tags.team``, or a cost event's
#: ``payload.team``) and the tag itself.
_TEAM_FIELDS = frozenset({("column", "team"), ("tag", "team")})


def _is_team(ref: FieldRef) -> bool:
    return (ref.kind, ref.name) in _TEAM_FIELDS


def anomaly_teams(spec: QuerySpec | None, labels: Mapping[str, Any], tenant: str) -> frozenset[str]:
    """The teams the series ``labels`` of query ``spec`` (None: no longer configured) belongs to."""
    found: set[Any] = {labels.get("team")}
    if spec is not None:
        try:
            query = parse_query(spec.body(0.0, float(spec.step_seconds)), tenant=tenant,
                                now_us=spec.step_seconds * 1_000_000, paged=False)  # fmt: skip
        except QueryError:  # a spec that does not parse has no series, hence no anomalies
            query = None
        if query is not None:
            for ref in query.aggregation.group_by:
                if _is_team(ref):
                    found.add(labels.get(_label_name(ref.label, spec)))
            for f in query.filters:
                if _is_team(f.field) and f.op in ("eq", "in"):
                    found.update(f.value if isinstance(f.value, list | tuple) else [f.value])
    return frozenset(t for t in found if isinstance(t, str) and t)
