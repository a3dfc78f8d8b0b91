"""Whose feedback state a feedback route of :mod:`api.routers.analytics` may teach, read or reset.

``_check_anomaly_team`` applies the permission guard's rule 4 to the team of the anomaly being marked (or
unmarked), not to ``?team=``; ``_feedback_team`` picks the team whose state a ``GET``/``DELETE
/api/v1/anomalies/feedback`` is about (a caller limited to a team: its own, never another's)::

    await _check_anomaly_team(request, svc, tenant, anomaly_id)       # raises ForbiddenError (403)
    scope = _feedback_team(request, svc, tenant, query, team, "reads")  # a team, None (the query) or a 403
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.service import AnalyticsService
from analytics.service.teams import anomaly_teams, teaches_other_teams
from api.deps import audit_target, ensure_team_access, principal_of, team_limited
from api.errors import error_response
from hubcore.security.rbac import ForbiddenError


async def _check_anomaly_team(
    request: Request, svc: AnalyticsService, tenant: str, anomaly_id: str, *, marked: bool = False
) -> None:
    """Rule 4 on the anomaly's own team (its series' team label, the query's team filter), not on ?team=;
    anomaly ids are derived from (tenant, query, model, series, time), so the record cannot change meanwhile.
    ``marked`` (an undo): also a point a mark made no longer anomalous, as the service finds it. An unknown
    id passes (the service answers 404). A series naming no team in a query of teams' series is scored with
    the query-wide state, which scores every team's series: marking it, or undoing its mark, needs
    teams:all (as ``"scope": "query"`` does), else a 403 that says why (audited)."""
    rec = await run_in_threadpool(lambda: svc.find_anomaly(tenant, anomaly_id, marked=marked))
    if rec is None:
        return
    spec = svc.config.queries.get(rec["query"])
    for team in sorted(anomaly_teams(spec, rec["labels"], tenant)):
        ensure_team_access(request, "anomalies:feedback", "anomalies", tenant, team, what=f"anomaly {anomaly_id!r}")
    p = principal_of(request)
    if p is not None and team_limited(request) and teaches_other_teams(spec, rec["labels"], tenant):
        reason = (f"anomaly {anomaly_id!r}: its series names no team, so its mark is kept in the query-wide feedback "
                  f"state of query {rec['query']!r}, which scores every team's series of the query; "
                  f"{'undoing' if marked else 'marking'} it needs teams:all")  # fmt: skip
        audit_target(request, p, tenant, denied=reason)
        raise ForbiddenError(reason)


def _feedback_team(
    request: Request, svc: AnalyticsService, tenant: str, query: str, team: str | None, verb: str
) -> str | Response | None:
    """The team whose feedback state a GET/DELETE is about: ``team=``, or for a caller limited to a team
    (no teams:all) its own team (when the query can hold it), and never another (403). None: the query."""
    if not team_limited(request):
        return team
    p = principal_of(request)
    own = p.team if p is not None else None
    if team is not None and team != own:
        return error_response(403, "forbidden", f"team: a caller limited to team {own!r} {verb} only its own team's "
                                                f"feedback state, not team {team!r}'s (or needs teams:all)")  # fmt: skip
    if team is None and own is not None and not svc.holds_team(query, own, tenant):
        own = None  # a query whose series name no team (or only others): its state is query-wide
    if own is None and verb == "resets":
        # the query-wide state serves every team's series of the query: resetting it is not one team's call
        return error_response(403, "forbidden", "resetting a query's feedback needs teams:all (it is shared by every "
                                                "team's series of the query); undo single marks with DELETE "
                                                "/api/v1/anomalies/{id}/feedback")  # fmt: skip
    return own
