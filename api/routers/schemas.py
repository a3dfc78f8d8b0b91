"""``GET /api/v1/schemas`` (versions) and ``GET /api/v1/schemas/{version}`` (the JSON Schema)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import check_known_params
from api.errors import error_response, json_response
from hubcore.model.events import CURRENT_SCHEMA_VERSION, EVENT_TYPES, SOURCE_MODULES
from hubcore.model.schema import PUBLISHED_VERSIONS, event_json_schema

router = APIRouter(prefix="/api/v1", tags=["schemas"])


@router.get("/schemas", summary="Published native-event schema versions")
async def list_schemas(request: Request, version: str | None = None) -> Response:
    check_known_params(request, ("version",))
    if version is not None:
        return _schema(version)
    return json_response(
        {
            "current": CURRENT_SCHEMA_VERSION,
            "versions": [
                {"version": v, "url": f"/api/v1/schemas/{v}", "accepts_major": int(v.split(".")[0])}
                for v in PUBLISHED_VERSIONS
            ],
            "event_types": list(EVENT_TYPES),
            "source_modules": list(SOURCE_MODULES),
            "compatibility": "minor versions add optional fields; other majors are rejected",
        }
    )


@router.get("/schemas/{version}", summary="The JSON Schema (2020-12) of one version")
async def get_schema(request: Request, version: str) -> Response:
    check_known_params(request, ())
    return _schema(version)


def _schema(version: str) -> Response:
    if version == "latest":
        version = CURRENT_SCHEMA_VERSION
    try:
        return json_response(event_json_schema(version))
    except KeyError:
        return error_response(404, "not_found", f"no schema version {version!r}; published: {list(PUBLISHED_VERSIONS)}")
