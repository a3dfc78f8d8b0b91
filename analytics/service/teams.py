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

The learned feedback state of a query is kept per team too (:mod:`analytics.service.feedback`):
:func:`series_team` names the one team whose state scores a series (None: the query-wide state), and
:func:`check_team` refuses a ``team=`` that no series of the query can belong to. A series naming no team
in a query of teams' series (``team`` empty: events without one) is scored with the query-wide state,
which scores every team's series: :func:`teaches_other_teams` says so, and a mark on it needs
``teams:all`` (the API's 403 for a caller limited to a team).

    >>> series_team(QuerySpec(event_type="cost", field="value", group_by=["team"]), {"team": "ml"}, "acme")
    'ml'
    >>> series_team(spec, {"owner": "ads"}, "acme")  # its own label, not every team of the filter
    'ads'
    >>> series_team(None, {"gen_ai_request_model": "gpt-4o"}, "acme") is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from analytics.service.config import QuerySpec
from analytics.service.series import _label_name
from hubcore.errors import InvalidParameter
from hubcore.query.model import FieldRef, QueryError, parse_query

__all__ = ["anomaly_teams", "check_team", "series_team", "teaches_other_teams"]

#: The event fields that hold a team: the ``team`` column (``tags.team``, or a cost event's
#: ``payload.team``) and the tag itself.
_TEAM_FIELDS = frozenset({("column", "team"), ("tag", "team")})


def _is_team(ref: FieldRef) -> bool:
    return (ref.kind, ref.name) in _TEAM_FIELDS


class TeamDimensions(NamedTuple):
    """Where a query's series carry a team: the label names holding it (``team`` always counts) and the
    teams of its ``team``/``tags.team`` ``eq``/``in`` filter."""

    labels: tuple[str, ...]
    filtered: frozenset[str]
    grouped: bool  # the query groups by a team field (a label holds any team)


def team_dimensions(spec: QuerySpec | None, tenant: str) -> TeamDimensions:
    """The :class:`TeamDimensions` of query ``spec`` (None: no longer configured: only a ``team`` label)."""
    labels, filtered, grouped = ["team"], set[Any](), False
    if spec is not None:
        try:
            query = parse_query(spec.body(0.0, float(spec.step_seconds)), tenant=tenant,
                                now_us=spec.step_seconds * 1_000_000, paged=False)  # fmt: skip
        except QueryError:  # a spec that does not parse has no series, hence no anomalies
            query = None
        if query is not None:
            for ref in query.aggregation.group_by:
                name = _label_name(ref.label, spec)
                if _is_team(ref) or name == "team":
                    grouped = True
                    labels.append(name)
            for f in query.filters:
                if _is_team(f.field) and f.op in ("eq", "in"):
                    filtered.update(f.value if isinstance(f.value, list | tuple) else [f.value])
    return TeamDimensions(tuple(dict.fromkeys(labels)), frozenset(t for t in filtered if isinstance(t, str) and t),
                          grouped)  # fmt: skip


def anomaly_teams(spec: QuerySpec | None, labels: Mapping[str, Any], tenant: str) -> frozenset[str]:
    """The teams the series ``labels`` of query ``spec`` (None: no longer configured) belongs to."""
    dims = team_dimensions(spec, tenant)
    found = {labels.get(name) for name in dims.labels} | set(dims.filtered)
    return frozenset(t for t in found if isinstance(t, str) and t)


def series_team(
    spec: QuerySpec | None, labels: Mapping[str, Any], tenant: str, dims: TeamDimensions | None = None
) -> str | None:
    """The team whose feedback state scores the series ``labels``: the value of its team label, else the
    one team the query filters on; None (the query-wide state) when it names none, or several.
    ``dims``: :func:`team_dimensions` of the query, when the caller resolves many series."""
    dims = dims if dims is not None else team_dimensions(spec, tenant)
    named = {v for v in (labels.get(name) for name in dims.labels) if isinstance(v, str) and v}
    if not named and len(dims.filtered) == 1:
        named = set(dims.filtered)
    return next(iter(named)) if len(named) == 1 else None


def teaches_other_teams(
    spec: QuerySpec | None, labels: Mapping[str, Any], tenant: str, dims: TeamDimensions | None = None
) -> bool:
    """Whether a mark on the series ``labels`` of query ``spec`` changes how other teams' series are
    scored: the series names no one team (its marks go to the query-wide state) while the query holds
    teams' series (it groups or filters by a team), which that state scores too. A query whose series name
    no team at all has only the query-wide state, shared by series that are no team's: False.

    >>> by_team = QuerySpec(event_type="cost", field="value", group_by=["team"])
    >>> teaches_other_teams(by_team, {"team": ""}, "acme"), teaches_other_teams(by_team, {"team": "ml"}, "acme")
    (True, False)
    >>> teaches_other_teams(QuerySpec(event_type="cost", field="value", group_by=["model"]), {"model": "m"}, "acme")
    False
    """
    dims = dims if dims is not None else team_dimensions(spec, tenant)
    return series_team(spec, labels, tenant, dims) is None and (dims.grouped or bool(dims.filtered))


#: The longest ``team=`` accepted (team names are short identifiers).
MAX_TEAM_LEN = 200


def check_team(query: str, spec: QuerySpec, team: str, tenant: str, *,
               teamless: str = "its feedback is query-wide") -> str:
    """``team`` if some series of query ``spec`` (alias ``query``) can belong to it (the query groups by
    a team, or filters on it); else :class:`InvalidParameter` (422) naming what the query holds
    (``teamless`` says what that means when the query has no team label at all)."""
    if not team.strip() or len(team) > MAX_TEAM_LEN:
        raise InvalidParameter(f"team: must be a team name (1 to {MAX_TEAM_LEN} characters), got {team!r}")
    dims = team_dimensions(spec, tenant)
    if dims.grouped or team in dims.filtered:
        return team
    if dims.filtered:
        raise InvalidParameter(f"team: unknown team {team!r} for query {query!r}: its series are team "
                               f"{', '.join(sorted(dims.filtered))}'s")  # fmt: skip
    raise InvalidParameter(f"team: query {query!r} has no team label; {teamless} (leave out team)")
