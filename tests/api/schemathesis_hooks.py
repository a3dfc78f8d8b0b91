"""schemathesis hooks for the hub's schema (``SCHEMATHESIS_HOOKS``, set by ``test_schemathesis.py``).

``POST /api/v1/events`` also takes ``application/x-ndjson`` (one event per line), which schemathesis has no
serializer for: a string goes as is, anything else (negative cases) as one JSON line.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"data": value}
    if isinstance(value, str):
        return {"data": value.encode("utf-8", "surrogatepass")}
    return {"data": (json.dumps(value) + "\n").encode()}
