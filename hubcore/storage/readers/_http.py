"""GET/POST with retries for the readers: retryable = connection errors, timeouts, 429, 5xx."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from hubcore.errors import HubError


class ReaderError(HubError):
    """A query failed: HTTP status (None for transport errors), the backend's message, the query."""

    def __init__(self, message: str, *, status: int | None = None, query: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.query = query


class QueryError(ReaderError):
    """The backend refused the query (HTTP 4xx, or ``status: error``): fix the query, do not retry."""


class BackendUnavailable(ReaderError):
    """The backend could not answer after the configured retries (5xx, 429, timeouts, refused)."""


class ResponseParseError(ReaderError):
    """The answer was not what the API documents."""


def request_json(
    client: httpx.Client,
    url: str,
    params: dict[str, Any],
    *,
    retries: int,
    backoff: float,
    query: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST form ``params`` (long queries fit) and return the decoded JSON, retrying what can succeed."""
    last = ""
    status: int | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
        try:
            resp = client.post(url, data=params, headers=headers)
        except httpx.TransportError as exc:
            last, status = f"{type(exc).__name__}: {exc}", None
            continue
        status = resp.status_code
        if resp.status_code == 429 or resp.status_code >= 500:
            last = f"HTTP {resp.status_code}: {resp.text[:300]}"
            continue
        if resp.status_code >= 400:
            raise QueryError(f"{url}: HTTP {resp.status_code}: {resp.text[:500]}", status=resp.status_code, query=query)
        try:
            return resp.json()
        except ValueError as exc:
            raise ResponseParseError(f"{url}: not JSON: {resp.text[:200]!r}", status=status, query=query) from exc
    raise BackendUnavailable(f"{url}: failed after {retries + 1} attempts: {last}", status=status, query=query)
