"""Shared plumbing of the stack exporters: a bounded on-disk queue with acknowledgement, HTTP delivery
with classified errors, jittered exponential backoff honouring Retry-After, splitting on 413, and a
dead-letter file. See ``README.md``.

    >>> from exporters.queue import classify_status, Outcome
    >>> classify_status(503) is Outcome.RETRYABLE
    True
"""

from exporters.queue.base import QueuedExporter
from exporters.queue.config import QueueConfig, QueuedExporterConfig, RetryConfig
from exporters.queue.deadletter import DeadLetterFile
from exporters.queue.disk_queue import DiskQueue
from exporters.queue.retry import Backoff, Outcome, classify_status, parse_retry_after
from exporters.queue.sender import Aborted, Attempt, HttpDelivery

__all__ = [
    "Aborted",
    "Attempt",
    "Backoff",
    "DeadLetterFile",
    "DiskQueue",
    "HttpDelivery",
    "Outcome",
    "QueueConfig",
    "QueuedExporter",
    "QueuedExporterConfig",
    "RetryConfig",
    "classify_status",
    "parse_retry_after",
]
