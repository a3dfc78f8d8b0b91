"""Every answer, a fault included, has the one error shape ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from hubcore.errors import InvalidParameter


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fault")
    async def fault() -> None:
        raise ValueError("year 57868 is out of range")

    @app.get("/bad")
    async def bad() -> None:
        raise InvalidParameter("level: must be between 0 and 100")

    return app


def test_an_unexpected_fault_is_a_json_500_that_leaks_nothing() -> None:
    # Starlette's default was a text/plain "Internal Server Error" that no client could parse as an error
    with TestClient(_app(), raise_server_exceptions=False) as client:
        r = client.get("/fault")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "internal_error"
    assert "57868" not in r.text and "ValueError" not in r.text


def test_a_bad_parameter_keeps_its_own_status() -> None:
    with TestClient(_app()) as client:
        r = client.get("/bad")
    assert r.status_code == 422 and r.json()["error"] == {"code": "invalid_parameter",
                                                          "message": "level: must be between 0 and 100"}  # fmt: skip
