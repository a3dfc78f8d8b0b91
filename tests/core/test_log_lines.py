"""The hub's JSON log lines: uvicorn's console-only fields and per-server duplicates stay out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hubcore.telemetry import JsonFormatter, configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging's handler and filters, writing into a buffer; the logging setup restored after."""
    root, uv = logging.getLogger(), logging.getLogger("uvicorn.error")
    saved = (root.handlers[:], root.level, uv.filters[:], uv.handlers[:], uv.propagate)
    out = io.StringIO()
    try:
        configure_logging("info")
        configure_logging("info")  # a second call adds no second filter
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        yield out
    finally:
        root.handlers[:], uv.filters[:], uv.handlers[:] = saved[0], saved[2], saved[3]
        root.setLevel(saved[1])
        uv.propagate = saved[4]


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_uvicorns_coloured_copy_of_the_message_is_left_out(captured: io.StringIO) -> None:
    # uvicorn passes extra={"color_message": ...} (its message with ANSI escapes) on its info lines; every line
    # carried it, escape codes and all
    uv = logging.getLogger("uvicorn.error")
    uv.info("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", "http", "127.0.0.1", 8080,
            extra={"color_message": "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)"})  # fmt: skip
    logging.getLogger("hub").info("hub started", extra={"ports": {"api": 8080}})
    [running, started] = lines(captured)
    assert running["msg"] == "Uvicorn running on http://127.0.0.1:8080 (Press CTRL+C to quit)"
    assert "color_message" not in running and "\x1b" not in captured.getvalue()
    assert started["ports"] == {"api": 8080}  # the hub's own extra fields are kept


def test_the_per_server_process_lines_are_dropped_and_nothing_else(captured: io.StringIO) -> None:
    # the hub runs two uvicorn servers (API, OTLP/HTTP) in one process: "Started server process [pid]" came twice
    uv = logging.getLogger("uvicorn.error")
    assert sum(type(f).__name__ == "_PerServerProcessFilter" for f in uv.filters) == 1
    for _server in ("api", "otlp_http"):
        uv.info("Started server process [%d]", 4242)
        uv.info("Finished server process [%d]", 4242)
    uv.info("Shutting down")
    uv.error("Exception in ASGI application")
    logging.getLogger("hub").info("Started server process [%d]", 4242)  # only uvicorn's own lines go
    assert [(r["logger"], r["msg"]) for r in lines(captured)] == [
        ("uvicorn.error", "Shutting down"),
        ("uvicorn.error", "Exception in ASGI application"),
        ("hub", "Started server process [4242]"),
    ]
