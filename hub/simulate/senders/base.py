"""What every sender shares: the counters (:class:`SendStats`), :class:`SendError`, ``Retry-After``
parsing, and :class:`RetryingSender` — the retry settings and thread-safe bookkeeping of the REST and
gRPC senders (throttled resends, failed attempts with exponential backoff, answered batches).

    >>> parse_retry_after("3", 1.0), parse_retry_after(None, 1.5), parse_retry_after("soon", 2.0)
    (3.0, 1.5, 2.0)
    >>> s = RetryingSender(backoff_base=0.25)
    >>> s.jitter = False
    >>> [s._backoff(k) for k in range(7)]
    [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    >>> s._answered(4, 100, accepted=3, rejected=1, duplicates=0, error="rejected: bad")
    >>> s.stats.as_dict()["accepted"], s.stats.last_error
    (3, 'rejected: bad')
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict, Unpack

from exporters.queue.retry import parse_retry_after as _retry_after_hint


class SendError(RuntimeError):
    """The destination cannot take events at all (unreachable, authentication refused)."""


@dataclass(slots=True)
class SendStats:
    batches: int = 0
    sent: int = 0  # events handed over in answered requests
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    throttled: int = 0  # 429/503 answers (each followed by a resend of the same batch)
    retries: int = 0  # resends for any reason
    errors: int = 0  # failed requests (connection errors, 5xx...), retried or not
    failed_events: int = 0  # events given up on after the retries
    bytes_sent: int = 0
    last_error: str | None = None
    status_counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches, "sent": self.sent, "accepted": self.accepted, "rejected": self.rejected,
            "duplicates": self.duplicates, "throttled": self.throttled, "retries": self.retries,
            "errors": self.errors, "failed_events": self.failed_events, "bytes_sent": self.bytes_sent,
            "status_counts": dict(sorted(self.status_counts.items())), "last_error": self.last_error,
        }  # fmt: skip


def parse_retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``default`` without one."""
    hint = _retry_after_hint(value)
    return default if hint is None else hint


class RetryOptions(TypedDict, total=False):
    """The keyword arguments that set a REST or gRPC sender's retries (see :class:`RetryingSender`)."""

    max_retries: int
    max_throttle_retries: int
    backoff_base: float
    backoff_max: float
    sleep: Callable[[float], None]


class RetryingSender:
    """Retry settings and counters (which ``--concurrency`` threads update under a lock).

    Subclasses run their own attempt loop and report each outcome through the helpers below. Failed
    attempts (connection errors, 5xx) are retried ``max_retries`` times, throttled ones
    ``max_throttle_retries`` times; the backoff before retry ``k`` is ``min(backoff_max, backoff_base *
    2**k)``, times a uniform jitter in ``[0.5, 1]`` where the class sets ``jitter``. ``sleep`` is
    replaceable for tests.
    """

    url: str
    jitter: ClassVar[bool] = True

    def __init__(self, **options: Unpack[RetryOptions]) -> None:
        self.max_retries = options.get("max_retries", 5)
        self.max_throttle_retries = options.get("max_throttle_retries", 60)
        self.backoff_base = options.get("backoff_base", 0.25)
        self.backoff_max = options.get("backoff_max", 10.0)
        self.sleep = options.get("sleep", time.sleep)
        self.stats = SendStats()
        self._lock = threading.Lock()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay * (0.5 + random.random() / 2) if self.jitter else delay

    def _status(self, key: str, error: str | None = None) -> None:
        """Count an answer (or failure) by its status; ``error`` becomes ``last_error``."""
        with self._lock:
            st = self.stats
            st.status_counts[key] = st.status_counts.get(key, 0) + 1
            if error is not None:
                st.last_error = error

    def _throttled(self, n: int, throttles: int, dropped: str | None) -> bool:
        """Count a throttled answer; once ``max_throttle_retries`` resends are spent, give the ``n`` events
        up with the ``dropped`` message and return False. With ``dropped=None`` (the caller checked the
        budget) only count it."""
        with self._lock:
            st = self.stats
            st.throttled += 1
            if dropped is not None and throttles >= self.max_throttle_retries:
                st.failed_events += n
                st.last_error = dropped
                return False
        return True

    def _failed(self, error: str | None = None) -> None:
        """Count a failed attempt (connection error, 5xx, refused credentials...)."""
        with self._lock:
            self.stats.errors += 1
            if error is not None:
                self.stats.last_error = error

    def _give_up(self, n: int) -> None:
        with self._lock:
            self.stats.failed_events += n

    def _retry_after(self, seconds: float) -> None:
        """Wait, then count the resend that follows."""
        self.sleep(seconds)
        with self._lock:
            self.stats.retries += 1

    def _answered(self, n: int, size: int, *, accepted: int, rejected: int, duplicates: int, error: str | None) -> None:
        """Count an answered batch of ``n`` events (``size`` bytes); ``error`` (if any) becomes ``last_error``."""
        with self._lock:
            st = self.stats
            st.batches += 1
            st.sent += n
            st.bytes_sent += size
            st.accepted += accepted
            st.rejected += rejected
            st.duplicates += duplicates
            if error is not None:
                st.last_error = error
