"""``GET /api/v1/dlq`` lists dead-lettered input; ``POST /api/v1/dlq/replay`` re-processes it.

A dead letter's raw input belongs to the team(s) its event names (:func:`hubcore.dlq.entry_teams`): a
caller limited to its team (no ``teams:all``) lists only its own team's entries and those naming no team,
and the answer's ``hidden_other_teams`` counts the others (the field is present only for such a caller).

``dlq:replay`` is team-scoped (rule 4 of :func:`hubcore.security.rbac.decide`): a dead letter belongs to
the team(s) its event names (:func:`hubcore.dlq.entry_teams`), whatever ``?team=`` says. A caller limited
to its team (no ``teams:all``) that names ``ids`` gets a 403 naming the first entry of another team
(nothing is replayed); without ``ids`` it replays its own team's entries and those naming no team, and the
answer's ``skipped_other_teams`` counts the others, left in the queue.

With ``ids``, the answer's ``not_found`` lists the ids that name no entry of the tenant (never one, a typo,
or one already replayed and accepted), in the order given; the call still replays the others (200), as a
replay of every entry answers 200 with ``replayed: 0`` on an empty queue. Without ``ids`` it is ``[]``.

``offset`` is 0 to 1,000,000 (:data:`hubcore.dlq.MAX_LIST_OFFSET`): a larger one is a 422 ``validation_error``
(any integer had been taken, 10**30 included, and answered an empty page).

A listing reads only its page from the queue's file (:mod:`hubcore.dlq_index`; it had decoded the whole file
on each call, 1-1.5 s at 234,000 entries). Its ``next_cursor`` (null on the last page) resumes it exactly, a
replay that removed entries meanwhile included: the next page starts at the newest entry older than the last
one shown. It outlives the hub: the position is an entry's sequence number, kept in the queue's file
(:mod:`hubcore.dlq`), so a cursor from before a restart resumes exactly; the first listing after a start
reads only the entries appended since the queue's index was saved (``dlq.index``). A cursor is bound to its
listing (tenant, ``reason``, the caller's team scope): another listing's, a damaged one, one with an
``offset``, or one of a queue whose file was removed since (a new numbering) is a 422 ``bad_cursor``.

An entry's ``received_at`` is an ISO-8601 UTC string (:func:`hubcore.times.iso_s`), as the other times in the API's
answers; it was epoch seconds before (a response-format change). The queue's file keeps epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.cursors import ForeignCursor, decode_cursor, encode_cursor, listing_scope
from api.deps import (
    check_known_params,
    ensure_team_access,
    get_state,
    principal_of,
    read_tenant,
    team_allowed,
    team_limited,
)
from api.errors import error_response, json_response
from api.jsonbody import body_field
from api.openapi_bodies import struct_body
from api.state import ApiState
from hubcore.dlq import MAX_LIST_OFFSET, Entry, StalePosition, entry_teams
from hubcore.times import iso_s

router = APIRouter(prefix="/api/v1/dlq", tags=["dead-letter queue"])


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None


_ENTRY_EXAMPLE = {
    "id": "3f9a1c2e5b7d4a6081c2d3e4f5a6b7c8", "received_at": "2026-11-27T09:00:00.123456Z", "tenant_id": "acme",
    "receiver": "rest", "reason": "payload.amount: Expected `float`, got `str`", "index": 0,
    "raw": '{"event_type": "cost", "payload": {"amount": "x"}}',
}  # fmt: skip


def entry_json(entry: Entry) -> Entry:
    """A dead letter as the API shows it: ``received_at`` (stored as epoch seconds) as ISO-8601 UTC."""
    received = entry.get("received_at")
    return {**entry, "received_at": iso_s(received) if isinstance(received, int | float) else received}


@router.get(
    "", summary="Dead-lettered items of the caller's tenant, newest first",
    responses={200: {"description": "entries newest first; received_at is ISO-8601 UTC",
                     "content": {"application/json": {"example": {"entries": [_ENTRY_EXAMPLE], "total": 1,
                                                                  "limit": 100, "offset": 0,
                                                                  "next_cursor": None}}}}},
)  # fmt: skip
async def list_dlq(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
    reason: str | None = None,
    cursor: str | None = None,
) -> Response:
    check_known_params(request, ("tenant", "team", "limit", "offset", "reason", "cursor"))
    tenant_id = read_tenant(request, state, tenant)
    visible, scope_team = own_team_entries(request)
    scope = listing_scope(tenant_id, reason or None, scope_team)
    before = None
    if cursor is not None:
        if "offset" in request.query_params:
            return error_response(422, "bad_cursor", "offset: a listing resumed with cursor takes no offset "
                                  "(the cursor says where the page starts)", field="offset")  # fmt: skip
        try:
            position = decode_cursor(cursor, "dlq", scope)
        except ForeignCursor:
            position = None
        before = position.get("p") if position is not None else None
        if not isinstance(before, str):
            return error_response(422, "bad_cursor", "cursor: not a cursor of this listing; pass next_cursor "
                                  "unchanged, with the same tenant and reason", field="cursor")  # fmt: skip
    try:
        page = await run_in_threadpool(
            lambda: state.dlq.list_visible(
                tenant_id=tenant_id, visible=visible, limit=limit, offset=offset, reason_contains=reason,
                before=before,
            )
        )  # fmt: skip
    except StalePosition:
        return error_response(422, "bad_cursor", "cursor: the dead-letter queue was started afresh since (its file "
                              "was removed), or the cursor is damaged; list again without cursor",
                              field="cursor")  # fmt: skip
    shown = [entry_json(e) for e in page.entries]
    next_cursor = encode_cursor("dlq", {"p": page.next_position}, scope) if page.next_position else None
    answer: dict[str, Any] = {"entries": shown, "total": page.total, "limit": limit, "offset": offset,
                              "next_cursor": next_cursor}  # fmt: skip
    if visible is not None:
        answer["hidden_other_teams"] = page.hidden
    return json_response(answer)


def own_team_entries(request: Request) -> tuple[Callable[[frozenset[str]], bool] | None, str | None]:
    """For a team-limited caller (no ``teams:all``), which dead letters it may see: those whose teams
    (:func:`hubcore.dlq.entry_teams`) are all its own team, and those naming no team — the entries it could
    replay; and its team (``""``: none), which its cursors are bound to. (None, None) for every other caller
    (they see every entry of the tenant)."""
    principal = principal_of(request)
    if principal is None or not team_limited(request):
        return None, None
    mine = frozenset({principal.team} if principal.team else ())
    return (lambda teams: teams <= mine), principal.team or ""


@router.post(
    "/replay", summary="Replay dead-lettered items (all of the tenant's, or the given ids; team-scoped)",
    openapi_extra=struct_body(ReplayRequest, required=False, example={"ids": ["3f9a1c2e"]},
                              description="optional: no body (or no ids) replays every entry the caller may"),
    responses={200: {"description": "replayed, accepted (removed from the queue), still_rejected (kept); "
                                    "not_found: the given ids that name no entry of the tenant",
                     "content": {"application/json": {"example": {"replayed": 1, "accepted": 1, "still_rejected": 0,
                                                                  "not_found": ["nope"]}}}}},
)  # fmt: skip
async def replay_dlq(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    tenant_id = read_tenant(request, state, tenant)
    body = await request.body()
    try:
        req = msgspec.json.decode(body, type=ReplayRequest) if body.strip() else ReplayRequest()
    except msgspec.ValidationError as exc:  # readable JSON, a bad field: {"ids": "abc"}, {"ids": [1]}, {"idz": []}
        field = body_field(exc)
        return error_response(422, "validation_error", f'body: {exc}; the body is {{"ids": ["<entry id>", ...]}} '
                              "or empty", field=field)  # fmt: skip
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return error_response(400, "bad_json", f'body must be {{"ids": [...]}} or empty: {exc}')
    entries = await run_in_threadpool(state.dlq.select, tenant_id=tenant_id, ids=req.ids)
    found = {e["id"] for e in entries}
    not_found = list(dict.fromkeys(i for i in req.ids or () if i not in found))
    if not team_limited(request):
        replayed, accepted = await run_in_threadpool(state.pipeline.replay_dlq, tenant_id=tenant_id, ids=req.ids)
        return json_response({"replayed": replayed, "accepted": accepted, "still_rejected": replayed - accepted,
                              "not_found": not_found})  # fmt: skip
    # a team-limited caller: decide on each entry's own team(s), then replay exactly the ids decided on (an
    # entry's event never changes; one dead-lettered meanwhile is not replayed by this call)
    mine: list[str] = []
    for e in entries:
        teams = sorted(entry_teams(e))
        if req.ids:  # asked by id: another team's entry is a 403
            for team in teams:
                ensure_team_access(request, "dlq:replay", "dlq", tenant_id, team, what=f"dead-letter entry {e['id']!r}")
            mine.append(e["id"])
        elif all(team_allowed(request, "dlq:replay", "dlq", tenant_id, team) for team in teams):
            mine.append(e["id"])
    replayed = accepted = 0
    if mine:  # (ids=[] would mean every entry)
        replayed, accepted = await run_in_threadpool(state.pipeline.replay_dlq, tenant_id=tenant_id, ids=mine)
    return json_response({"replayed": replayed, "accepted": accepted, "still_rejected": replayed - accepted,
                          "skipped_other_teams": len(entries) - len(mine), "not_found": not_found})  # fmt: skip
