"""``--api URL``: batches to the hub's REST ingest endpoint, ``POST {api}/api/v1/events`` (a JSON array).

429/503 are retried after ``Retry-After`` (the same batch is resent, at most ``max_throttle_retries``
times, then dropped), other 5xx and connection errors with jittered exponential backoff (at most
``max_retries`` times); when the API cannot be reached at all, or refuses the credentials, a
:class:`~hub.simulate.senders.base.SendError` is raised (exit code 1).

    >>> import httpx
    >>> answer = httpx.MockTransport(lambda request: httpx.Response(202, json={"accepted": 1, "rejected": []}))
    >>> sender = RestSender("http://127.0.0.1:8080", tenant="acme", transport=answer)
    >>> sender.send([{"event_id": "e1"}]); sender.stats.accepted, sender.url
    (1, 'http://127.0.0.1:8080/api/v1/events')
    >>> sender.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import httpx
import msgspec

from hub.simulate.events import Event, encode_batch
from hub.simulate.senders.base import RetryingSender, RetryOptions, SendError, parse_retry_after

EVENTS_PATH = "/api/v1/events"


def read_answer(resp: httpx.Response, n: int) -> tuple[int, int, int, str | None]:
    """(accepted, rejected, duplicates, error) of a batch of ``n`` from the hub's answer
    ``{"accepted": n, "rejected": [...], "duplicates": n}``, or from the status code without one."""
    info: Any = None
    try:
        info = msgspec.json.decode(resp.content) if resp.content else None
    except msgspec.DecodeError:
        info = None
    if isinstance(info, dict) and ("accepted" in info or "rejected" in info):
        acc = info.get("accepted")
        rej = info.get("rejected")
        dup = info.get("duplicates", 0)
        n_rej = len(rej) if isinstance(rej, list) else int(rej or 0)
        n_dup = int(dup) if isinstance(dup, int) else 0
        n_acc = int(acc) if isinstance(acc, int) else max(0, n - n_rej - n_dup)
        error = None
        if n_rej and isinstance(rej, list) and isinstance(rej[0], dict):
            error = f"rejected: {str(rej[0].get('reason', rej[0]))[:200]}"
        return n_acc, n_rej, n_dup, error
    if resp.status_code < 300:
        return n, 0, 0, None
    return 0, n, 0, f"HTTP {resp.status_code}: {resp.text[:200]}"


class RestSender(RetryingSender):
    """Synchronous batches to the hub's REST ingest endpoint, with retries that honour Retry-After."""

    def __init__(
        self,
        api: str,
        *,
        tenant: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        **retry: Unpack[RetryOptions],
    ) -> None:
        super().__init__(**retry)
        self.url = api.rstrip("/") + EVENTS_PATH
        headers = {"Content-Type": "application/json", "User-Agent": "hub-simulate/1.0"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def send(self, events: Sequence[Event]) -> None:
        """Send one batch until it is answered (2xx/4xx); raises SendError if the API is unreachable.

        Thread-safe: ``--concurrency`` calls it from several threads (the counters take a lock).
        """
        body = encode_batch(events)
        n = len(events)
        failures = 0  # connection errors and 5xx other than 503
        throttles = 0
        while True:
            try:
                resp = self.client.post(self.url, content=body)
            except httpx.TransportError as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
                if failures >= self.max_retries:
                    raise SendError(
                        f"cannot reach the hub API at {self.url} after {failures + 1} attempts "
                        f"({type(exc).__name__}: {exc}); is `hub run` up and --api right?"
                    ) from exc
                self._retry_after(self._backoff(failures))
                failures += 1
                continue
            code = resp.status_code
            self._status(str(code))
            if code in (429, 503):
                if not self._throttled(
                    n, throttles, f"HTTP {code}: still throttled after {throttles} resends; batch dropped"
                ):
                    return
                wait = parse_retry_after(resp.headers.get("Retry-After"), self._backoff(throttles))
                self._retry_after(min(wait, 60.0))
                throttles += 1
                continue
            if code >= 500:
                self._failed(f"HTTP {code}: {resp.text[:200]}")
                if failures >= self.max_retries:
                    self._give_up(n)
                    return
                self._retry_after(self._backoff(failures))
                failures += 1
                continue
            if code in (401, 403):
                self._failed()
                raise SendError(f"the hub API refused the credentials (HTTP {code}): {resp.text[:200]}")
            accepted, rejected, duplicates, error = read_answer(resp, n)
            self._answered(n, len(body), accepted=accepted, rejected=rejected, duplicates=duplicates, error=error)
            return

    def close(self) -> None:
        self.client.close()
