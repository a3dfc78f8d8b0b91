"""Helpers of the exporter tests: fast retries, a queue directory per test, a poller for VictoriaMetrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from exporters.queue import QueueConfig, RetryConfig

T = TypeVar("T")

FAST_RETRY = RetryConfig(initial_interval=0.05, max_interval=0.2, randomization_factor=0.2)


def queue_in(path: object) -> QueueConfig:
    return QueueConfig(directory=str(path), fsync=False)


def wait_for(fn: Callable[[], T], ok: Callable[[T], bool], timeout: float = 15.0, interval: float = 0.25) -> T:
    """Call ``fn`` until ``ok(result)`` (VictoriaMetrics makes samples searchable about a second late)."""
    deadline = time.monotonic() + timeout
    result = fn()
    while not ok(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fn()
    return result
