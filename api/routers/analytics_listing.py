"""The pages of ``GET /api/v1/anomalies`` and the ``team=`` filter of it and of ``GET /api/v1/budgets``.

A listing answers at most ``limit`` anomalies, newest first; ``truncated`` says whether more match, and
``next_cursor`` (null on the last page) resumes it right after the page's last anomaly. The order is the
anomalies' keys (:data:`analytics.service.derived.AnomalyKey`: time, then id), which never change, so a page
resumed after a rescore, or after new anomalies were written, neither loses nor repeats one of those that
match. A page ends at a time's end where it can (so one time's anomalies are shown together, the highest
score first); only when one time holds more than ``limit`` does it split them, by id. A cursor is bound to
its listing (tenant, ``start``, ``end``, ``query``, ``severity``, ``alerts``, ``team``, as written) and
keeps the window's start as the first page resolved it (a relative ``start=-24h`` does not move under
it); another listing's cursor, or a damaged one, is a 422 ``bad_cursor`` naming ``cursor``::

    page = anomaly_page(svc, "acme", start="-3d", end=None, query=None, severity=None, limit=100,
                        alerts=False, team=None, cursor=None)
    page["anomalies"], page["truncated"], page["next_cursor"]

``team=`` (the parameter the permission guard reads for the team-scoped actions; these reads are not
team-scoped, docs/security.md) filters: an anomaly is a team's when its series is
(:func:`analytics.service.teams.anomaly_teams`), a budget when its ``team`` is that team.
"""

from __future__ import annotations

import math
import time
from typing import Any

from analytics.service import AnalyticsService
from analytics.service.config import AnalyticsConfig
from analytics.service.derived import AnomalyKey, AnomalyTeamPlaces
from analytics.service.handlers import SEVERITIES, parse_time_param
from analytics.service.teams import MAX_TEAM_LEN, check_team, team_dimensions
from api.cursors import ForeignCursor, decode_cursor, encode_cursor, listing_scope
from hubcore.errors import InvalidParameter
from hubcore.query.model import QueryError

__all__ = ["anomaly_page", "anomaly_team_places", "check_team_name"]

_MAX_US = 2**62


def check_team_name(team: str) -> str:
    """``team`` if it can be a team's name (1 to :data:`MAX_TEAM_LEN` characters, not blank), else a 422
    naming ``team``."""
    if not team.strip() or len(team) > MAX_TEAM_LEN:
        raise QueryError("team", f"must be a team name (1 to {MAX_TEAM_LEN} characters), got {team!r}",
                         reason="invalid_parameter")  # fmt: skip
    return team


def anomaly_team_places(config: AnalyticsConfig, tenant: str, team: str, query: str | None) -> AnomalyTeamPlaces:
    """Where the anomalies of ``team`` are (for ``list_anomalies_keyed``): each configured query (``query``
    only, when given) whose series can be that team's, with the labels holding a team and whether its own
    team filter names ``team``; and, without ``query``, the queries no longer configured (a ``team`` label).
    A 422 naming ``team`` when no series of ``query`` (or of any configured query) can be that team's."""
    check_team_name(team)
    if query is not None:
        try:
            check_team(query, config.queries[query], team, tenant, teamless="its anomalies are no team's")
        except InvalidParameter as exc:
            raise QueryError("team", str(exc).removeprefix("team: "), reason="invalid_parameter") from None
    places: list[tuple[str | None, tuple[str, ...], bool]] = []
    named: set[str] = set()
    for alias, spec in config.queries.items():
        if query is not None and alias != query:
            continue
        dims = team_dimensions(spec, tenant)
        named |= dims.filtered
        if dims.grouped or team in dims.filtered:
            places.append((alias, dims.labels, team in dims.filtered))
    if not places:
        held = f"their team filters name only {', '.join(sorted(named))}" if named else "none filters on a team"
        raise QueryError("team", f"no configured query's series can belong to team {team!r} (no query groups by "
                                 f"team; {held}); leave team out", reason="invalid_parameter")  # fmt: skip
    if query is None:
        places.append((None, ("team",), False))
    return places


def _read_cursor(raw: str, scope: str) -> tuple[AnomalyKey, float]:
    """The last key a page sent and the window's start (epoch s) of an anomalies cursor of listing ``scope``."""
    not_one = QueryError("cursor", "not a cursor of this API; pass next_cursor unchanged", reason="bad_cursor")
    try:
        data = decode_cursor(raw, "anomalies", scope)
    except ForeignCursor:
        raise QueryError("cursor", "belongs to another listing: send it with the same tenant, start, end, query, "
                                   "severity, alerts and team", reason="bad_cursor") from None  # fmt: skip
    if data is None:
        raise not_one
    key, start_us = data.get("k"), data.get("a")
    if not (isinstance(key, list) and len(key) == 2 and type(key[0]) is int and -_MAX_US < key[0] < _MAX_US
            and isinstance(key[1], str) and type(start_us) is int and -_MAX_US < start_us < _MAX_US):  # fmt: skip
        raise not_one
    return (key[0], key[1]), start_us / 1e6


def anomaly_page(
    svc: AnalyticsService, tenant: str, *, start: str | None, end: str | None, query: str | None,
    severity: str | None, limit: int, alerts: bool, team: str | None, cursor: str | None,
) -> dict[str, Any]:  # fmt: skip
    """One page of ``GET /api/v1/anomalies`` (see the module docstring); 422s name the parameter."""
    scope = listing_scope(tenant, start, end, query, severity, "alerts" if alerts else None, team)
    after, start_s = _read_cursor(cursor, scope) if cursor is not None else (None, None)
    now = time.time()
    end_s = parse_time_param(end, "end", now + 1)
    if start_s is None:
        start_s = parse_time_param(start, "start", end_s - 86_400)
    if end_s <= start_s:
        raise InvalidParameter("end: must be after start", reason="bad_time")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidParameter(f"severity: must be one of {', '.join(SEVERITIES)} (the minimum shown), "
                               f"got {severity!r}")  # fmt: skip
    if query is not None and query not in svc.config.queries:
        raise InvalidParameter(f"query: unknown query alias {query!r}; configured: "
                               f"{', '.join(sorted(svc.config.queries))}")  # fmt: skip
    places = anomaly_team_places(svc.config, tenant, team, query) if team is not None else ()
    if not svc.running:
        svc.run_once(tenants=[tenant])
    shown = SEVERITIES[SEVERITIES.index(severity) :] if severity else None
    keyed = svc.repo.list_anomalies_keyed(tenant, start_s=start_s, end_s=end_s, query=query, min_severity=shown,
                                          limit=limit + 1, alerts_only=alerts, after=after, team=team,
                                          team_places=places)  # fmt: skip
    page, truncated = keyed[:limit], len(keyed) > limit
    if truncated:
        cut = keyed[limit][0][0]  # the time of the first anomaly left out: end the page before it if one can
        page = [kr for kr in page if kr[0][0] != cut] or page
    next_cursor = None
    if truncated:
        next_cursor = encode_cursor("anomalies", {"k": list(page[-1][0]), "a": round(start_s * 1e6)}, scope)
    # shown newest first, one time's anomalies the highest score first (a page holds whole times but where
    # one time's anomalies are more than limit); a score too large for JSON (null) counts as the highest
    rows = sorted(page, key=lambda kr: (-kr[0][0], -_score(kr[1])))
    return {"anomalies": [row for _, row in rows], "truncated": truncated, "next_cursor": next_cursor}


def _score(row: dict[str, Any]) -> float:
    score = row.get("anomaly_score")
    return math.inf if score is None else float(score)
