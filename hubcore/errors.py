"""Errors, classified once where they happen (the Collector's ``consumererror``).

* :class:`PermanentError` — bad input; never retried; 4xx / INVALID_ARGUMENT; dead-lettered.
* :class:`RetryableError` — the hub or a backend is busy or down; 429/503 / UNAVAILABLE, with a hint.

    >>> try:
    ...     raise QueueFullError("ingest queue is full", retry_after=2.0)
    ... except RetryableError as e:
    ...     e.retry_after
    2.0
"""

from __future__ import annotations


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class PermanentError(HubError):
    """Retrying cannot help: the input is wrong."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class InvalidParameter(PermanentError):
    """A query parameter or body field has a value the hub cannot use: HTTP 422 on every endpoint, with
    ``reason`` ``bad_time`` for times and ``invalid_parameter`` (or a more specific code) otherwise. A
    request that cannot be read at all (bad JSON, a bad tenant) stays a plain :class:`PermanentError`, 400."""

    status = 422

    def __init__(self, message: str, *, reason: str = "invalid_parameter", field: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.field = field  # the parameter at fault, where one is: the answer's ``error.field``


class RetryableError(HubError):
    """Retrying later can help. ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFullError(RetryableError):
    """The hub's bounded ingest queue is full (back-pressure)."""


class StoreUnavailableError(QueueFullError):
    """The store cannot take writes now (the disk is full, an I/O error): nothing of the batch was kept;
    it is answered like a full queue (503 + Retry-After, UNAVAILABLE, a RETRY ack) so clients resend it."""


class RateLimitedError(QueueFullError):
    """A tenant or key is over its quota (events/s, storage): HTTP 429; receivers that speak no
    HTTP treat it like a full queue (RESOURCE_EXHAUSTED, a RETRY ack)."""


class ConfigError(HubError):
    """The configuration is invalid; the message names the YAML key (``receivers.otlp.grpc.port``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
