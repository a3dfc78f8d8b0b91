"""API keys for key managers: ``POST/GET /api/v1/keys``, ``DELETE /api/v1/keys/{key_id}``.

A tenant admin manages its own tenant's keys; a platform admin may name another tenant.
The secret is returned once, at creation. A key's ``created_at``, ``expires_at`` and ``revoked_at`` are
ISO-8601 UTC strings (:func:`hubcore.times.iso_s`; ``null`` when not set), as ``hub keys list --json`` prints
them (they were epoch seconds before: a response-format change).

The creation body takes the names of the other interfaces too: ``tenant`` for ``tenant_id`` (the CLI's
``--tenant``, the query body's ``"tenant"``) and ``expires_in``, a duration such as ``"90m"`` or ``"30d"``
(the CLI's ``--expires-in``; a number is seconds), for ``expires_in_seconds``; a body names each at most
once. A body error is a 422 ``validation_error`` whose ``field`` names the culprit and whose message lists
the fields the body takes (and the closest one to an unknown field).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import audit_target, check_known_params, ensure_tenant_access, get_state, principal_of, read_tenant
from api.errors import error_response, json_response
from api.jsonbody import struct_error
from api.openapi_bodies import Schema, struct_body
from api.state import ApiState
from hubcore.durations import DurationError, parse_duration
from hubcore.security.apikeys import MAX_KEY_LIFETIME_S, MIN_KEY_LIFETIME_S, ApiKeyInfo, lifetime_error
from hubcore.security.rbac import ForbiddenError
from hubcore.times import iso_s

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    role: Annotated[str, msgspec.Meta(max_length=128)]
    tenant_id: str | None = None
    #: ``tenant_id`` by the name the CLI (``--tenant``) and the query body use
    tenant: str | None = None
    team: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    #: seconds, 1 to 10 years (checked after decoding, for one message naming both bounds)
    expires_in_seconds: float | None = None
    #: the lifetime as the CLI's ``--expires-in`` takes it: ``"90m"``, ``"12h"``, ``"30d"``, ``"1y"`` (a number: seconds)
    expires_in: str | float | None = None


#: The fields of :class:`CreateKey`, and how an error lists them (each alias beside its field).
_FIELDS = ("role", "tenant_id", "tenant", "team", "description", "expires_in_seconds", "expires_in")
_LISTING = 'role, tenant_id (or tenant), team, description, expires_in_seconds (or expires_in, e.g. "90m")'


def _lifetime_bounds(schema: Schema) -> None:
    bounds = {"minimum": MIN_KEY_LIFETIME_S, "maximum": MAX_KEY_LIFETIME_S}
    schema["properties"]["expires_in_seconds"]["anyOf"][0].update(bounds)  # checked after decoding


def _one_of(req: CreateKey, name: str, alias: str) -> Response | None:
    """A 422 when the body gives both ``name`` and its ``alias``."""
    if getattr(req, name) is not None and getattr(req, alias) is not None:
        return error_response(422, "validation_error", f"{alias}: the same as {name}; give one of them",
                              field=alias)  # fmt: skip
    return None


def _lifetime(req: CreateKey) -> float | Response | None:
    """The key's lifetime in seconds (None: never expires), or the 422 naming the field at fault."""
    name, value = "expires_in_seconds", req.expires_in_seconds
    if req.expires_in is not None:
        name = "expires_in"
        try:
            value = parse_duration(req.expires_in)
        except DurationError as exc:
            return error_response(422, "validation_error", f"expires_in: {exc}", field="expires_in")
    if value is not None and not MIN_KEY_LIFETIME_S <= value <= MAX_KEY_LIFETIME_S:
        return error_response(422, "validation_error", lifetime_error(name, value), field=name)
    return value


_CREATE_BODY = struct_body(
    CreateKey, adjust=_lifetime_bounds,
    example={"role": "ingest", "team": "search", "description": "search team's gateway", "expires_in_seconds": 7776000},
)  # fmt: skip


_KEY_EXAMPLE = {
    "key_id": "3f9a1c2e5b7d4a60", "tenant_id": "acme", "role": "ingest", "team": "search",
    "description": "search team's gateway", "created_at": "2026-11-27T09:00:00.123456Z",
    "expires_at": "2027-02-25T09:00:00.123456Z", "revoked_at": None,
}  # fmt: skip


def key_json(info: ApiKeyInfo) -> dict[str, object]:
    """A key as the API shows it: its fields, the times as ISO-8601 UTC strings (None stays null)."""
    times = {"created_at": info.created_at, "expires_at": info.expires_at, "revoked_at": info.revoked_at}
    return {**dataclasses.asdict(info), **{k: None if v is None else iso_s(v) for k, v in times.items()}}


@router.post(
    "", status_code=201, summary="Create an API key (the secret is shown once)", openapi_extra=_CREATE_BODY,
    responses={201: {"description": "the key (secret once) and its record; times are ISO-8601 UTC",
                     "content": {"application/json": {"example": {"key": "lah_3f9a1c2e5b7d4a60_…", **_KEY_EXAMPLE}}}}},
)  # fmt: skip
async def create_key(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, (), hint=" (the tenant goes in the body's tenant_id, or tenant)")
    store = state.security.key_store
    if store is None:
        return error_response(404, "not_found", "API keys are disabled (service.auth.api_keys: false)")
    try:
        req = msgspec.json.decode(await request.body(), type=CreateKey)
    except msgspec.ValidationError as exc:  # {"tenantid": ...}, {"role": 1}, {}
        field, message = struct_error(exc, _FIELDS, listing=_LISTING)
        return error_response(422, "validation_error", message, field=field)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return error_response(422, "validation_error", f"body: {exc}; the body is a JSON object of {_LISTING}")
    both = _one_of(req, "tenant_id", "tenant") or _one_of(req, "expires_in_seconds", "expires_in")
    if both is not None:
        return both
    tenant = read_tenant(request, state, req.tenant_id if req.tenant_id is not None else req.tenant)
    caller = principal_of(request)
    if caller is not None and req.role == "platform_admin" and "platform_admin" not in caller.roles:
        raise ForbiddenError("denied: only a platform_admin may create platform_admin keys")
    lifetime = _lifetime(req)
    if isinstance(lifetime, Response):
        return lifetime
    try:
        created = await run_in_threadpool(
            store.create, tenant_id=tenant, role=req.role, team=req.team, description=req.description,
            expires_in=lifetime,
        )  # fmt: skip
    except ValueError as exc:  # the store's checks: each message starts with what it is about
        text = str(exc)
        culprit = next((f for f, lead in _STORE_FIELDS if text.startswith(lead)), None)
        return error_response(422, "validation_error", text, **({"field": culprit} if culprit else {}))
    return json_response({"key": created.key, **key_json(created.info)}, 201)


#: The body field each of the key store's refusals is about, by how its message begins.
_STORE_FIELDS = (("role", "unknown role"), ("tenant_id", "bad tenant"), ("expires_in_seconds", "expires_in"),
                 ("team", "team "))  # fmt: skip


@router.get(
    "", summary="List the tenant's API keys (never their secrets)",
    responses={200: {"description": "the keys; times are ISO-8601 UTC (null: no expiry, not revoked)",
                     "content": {"application/json": {"example": {"keys": [_KEY_EXAMPLE]}}}}},
)  # fmt: skip
async def list_keys(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant",))
    store = state.security.key_store
    if store is None:
        return json_response({"keys": []})
    tenant_id = read_tenant(request, state, tenant)
    keys = await run_in_threadpool(store.list, tenant_id=tenant_id)
    return json_response({"keys": [key_json(k) for k in keys]})


@router.delete("/{key_id}", summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, ())
    store = state.security.key_store
    info = await run_in_threadpool(store.get, key_id) if store is not None else None
    if store is None or info is None:
        return error_response(404, "not_found", f"no API key {key_id!r}")
    caller = principal_of(request)
    if caller is not None and info.tenant_id != caller.tenant_id and not caller.cross_tenant:
        # the same answer as an unknown id: a key id must not reveal that the key exists, nor its tenant
        audit_target(request, caller, info.tenant_id, denied=f"denied: {caller.subject} may not revoke key {key_id}")
        return error_response(404, "not_found", f"no API key {key_id!r}")
    ensure_tenant_access(request, info.tenant_id)
    if caller is not None and info.role == "platform_admin" and "platform_admin" not in caller.roles:
        # the rule of creation: a tenant admin can neither make nor unmake a platform admin
        raise ForbiddenError("denied: only a platform_admin may revoke platform_admin keys")
    revoked = await run_in_threadpool(store.revoke, key_id)
    return json_response({"key_id": key_id, "revoked": revoked})
