"""Deliver one request's records over HTTP: retry what can succeed later, split what is too large,
dead-letter what the backend refuses for good.

    delivery = HttpDelivery(httpx.Client(), RetryConfig(), dead_letter, stop_event, exporter="loki")
    delivery.deliver(streams, encode=lambda part: json.dumps(...).encode(), url=..., headers={...})

``deliver`` returns when every record was accepted or dead-lettered, and raises :class:`Aborted` when
the exporter is shutting down past its deadline (the caller then leaves the batch in its queue).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx

from exporters.queue.config import RetryConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.retry import Backoff, Outcome, classify_status, parse_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")


class Aborted(Exception):
    """Delivery was interrupted by shutdown; nothing was acknowledged."""


@dataclass
class DeliveryStats:
    requests: int = 0
    records: int = 0
    retries: int = 0
    splits: int = 0
    dead_lettered: int = 0
    bytes_sent: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    status: int | None
    reason: str
    retry_after: float | None = None


class HttpDelivery:
    """One per exporter; used from its worker thread only."""

    def __init__(
        self,
        client: httpx.Client,
        retry: RetryConfig,
        dead_letter: DeadLetterFile,
        stop: threading.Event,
        *,
        exporter: str,
        max_body_bytes: int = 4 << 20,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.client = client
        self.retry = retry
        self.dead_letter = dead_letter
        self.stop = stop
        self.exporter = exporter
        self.max_body_bytes = max_body_bytes
        self.stats = DeliveryStats()
        self._sleep = sleep or stop.wait  # returns True when stopping

    def deliver(
        self,
        records: Sequence[T],
        encode: Callable[[Sequence[T]], bytes],
        *,
        url: str,
        headers: Mapping[str, str],
        once: bool = False,
    ) -> Attempt | None:
        """Send ``records`` (split when too large); None when every record was accepted or dead-lettered.

        ``once``: do not retry here; the first retryable failure stops the delivery and is returned
        (what was sent before it stays sent; the caller retries the records later, e.g. held in the queue).
        """
        parts: list[Sequence[T]] = [records]
        while parts:
            part = parts.pop()
            if not part:
                continue
            body = encode(part)
            if len(body) > self.max_body_bytes and len(part) > 1:
                parts.extend(self._halves(part))
                continue
            if once:
                if self.stop.is_set():
                    raise Aborted(f"{self.exporter}: shutting down")
                attempt = self.post_once(url, body, headers)
                if attempt.outcome is Outcome.RETRYABLE:
                    return attempt
            else:
                attempt = self._post_with_retry(url, body, headers)
            if attempt.outcome is Outcome.OK:
                self.stats.requests += 1
                self.stats.records += len(part)
                self.stats.bytes_sent += len(body)
            elif attempt.outcome is Outcome.TOO_LARGE and len(part) > 1:
                parts.extend(self._halves(part))
            else:
                reason = (
                    attempt.reason
                    if attempt.outcome is not Outcome.TOO_LARGE
                    else "too large even alone: " + attempt.reason
                )
                self.give_up(part, body, reason, status=attempt.status, url=url)
        return None

    def give_up(self, records: Sequence[T], body: bytes, reason: str, *, status: int | None, url: str) -> None:
        """Dead-letter ``records`` (sent as ``body``), counted in ``stats.dead_lettered``."""
        log.warning("%s: dead-lettering %d records: %s", self.exporter, len(records), reason)
        self.dead_letter.write(reason, status=status, url=url, records=len(records), body=body)
        self.stats.dead_lettered += len(records)

    def _halves(self, part: Sequence[T]) -> list[Sequence[T]]:
        """Two halves, pushed so that the first half is sent first (order kept)."""
        self.stats.splits += 1
        mid = len(part) // 2
        return [part[mid:], part[:mid]]

    def _post_with_retry(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        backoff = Backoff(self.retry)
        started = time.monotonic()
        while True:
            if self.stop.is_set():
                raise Aborted(f"{self.exporter}: shutting down")
            attempt = self.post_once(url, body, headers)
            if attempt.outcome is not Outcome.RETRYABLE:
                return attempt
            delay = backoff.next_delay(attempt.retry_after)
            limit = self.retry.max_elapsed_time
            if limit and time.monotonic() - started + delay > limit:
                return Attempt(Outcome.PERMANENT, attempt.status, f"retries exhausted after {limit}s: {attempt.reason}")
            self.stats.retries += 1
            log.info("%s: %s; retrying in %.2fs", self.exporter, attempt.reason, delay)
            if self._sleep(delay):
                raise Aborted(f"{self.exporter}: shutting down")

    def post_once(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        try:
            resp = self.client.post(url, content=body, headers=dict(headers))
        except httpx.TransportError as exc:  # connect/read errors and timeouts
            return Attempt(Outcome.RETRYABLE, None, f"{type(exc).__name__}: {exc}")
        outcome = classify_status(resp.status_code)
        if outcome is Outcome.OK:
            return Attempt(outcome, resp.status_code, "")
        text = resp.text[:500].strip()
        return Attempt(
            outcome,
            resp.status_code,
            f"HTTP {resp.status_code}: {text}",
            parse_retry_after(resp.headers.get("Retry-After")),
        )
