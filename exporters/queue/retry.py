"""Classifying HTTP outcomes once, and the jittered exponential backoff that honours ``Retry-After``.

>>> classify_status(429), classify_status(400), classify_status(413), classify_status(204)
(<Outcome.RETRYABLE: 'retryable'>, <Outcome.PERMANENT: 'permanent'>, <Outcome.TOO_LARGE: 'too_large'>, <Outcome.OK: 'ok'>)
>>> parse_retry_after("7")
7.0
>>> b = Backoff(RetryConfig(randomization_factor=0)); [b.next_delay() for _ in range(3)]
[0.5, 1.0, 2.0]
"""

from __future__ import annotations

import enum
import random
import time
from email.utils import parsedate_to_datetime

from exporters.queue.config import RetryConfig


class Outcome(enum.Enum):
    """What one attempt to deliver a request came to."""

    OK = "ok"
    RETRYABLE = "retryable"  # 429, 5xx, connection errors, timeouts: try again later
    PERMANENT = "permanent"  # other 4xx: the request is wrong; dead-letter it
    TOO_LARGE = "too_large"  # 413: split the request and send the halves


def classify_status(status: int) -> Outcome:
    """2xx → OK; 413 → TOO_LARGE; 408/425/429 and 5xx → RETRYABLE; other 4xx (and 1xx/3xx) → PERMANENT."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 413:
        return Outcome.TOO_LARGE
    if status in (408, 425, 429) or status >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Backoff:
    """The waits of one request's retries. ``hint`` (a server's Retry-After) is a floor over the schedule.

    A hint never shortens the wait: ``Retry-After: 0`` or a date in the past would otherwise retry in a
    tight loop. The wait is ``max(hint capped at max_retry_after, the jittered exponential delay,
    initial_interval)``; without a hint it is the jittered exponential delay.

    >>> b = Backoff(RetryConfig(initial_interval=0.5, randomization_factor=0))
    >>> b.next_delay(hint=0.0), b.next_delay(hint=0.0), b.next_delay(hint=7.0), b.next_delay(hint=1e9)
    (0.5, 1.0, 7.0, 300.0)
    """

    def __init__(self, config: RetryConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self, hint: float | None = None) -> float:
        c = self.config
        base = min(c.max_interval, c.initial_interval * (c.multiplier**self.attempt))
        self.attempt += 1
        if c.randomization_factor:
            delta = c.randomization_factor * base
            base = self._rng.uniform(base - delta, base + delta)
        delay = max(0.0, min(base, c.max_interval))
        if hint is None:
            return delay
        return max(min(hint, c.max_retry_after), delay, c.initial_interval)

    def reset(self) -> None:
        self.attempt = 0
