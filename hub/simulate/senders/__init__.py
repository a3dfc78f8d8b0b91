"""Where simulated events go: the hub's REST ingest API (or its native gRPC receiver), a JSON Lines
file, and OTLP/HTTP. One module per transport:

* :class:`RestSender` (:mod:`~hub.simulate.senders.rest`) — ``POST {api}/api/v1/events`` with a JSON
  array; 429/503 are retried after ``Retry-After`` (the same batch is resent), other 5xx and connection
  errors with jittered exponential backoff; when the API cannot be reached at all a :class:`SendError`
  is raised (exit code 1).
* :class:`GrpcSender` (:mod:`~hub.simulate.senders.native_grpc`) — ``--grpc HOST:PORT``:
  ``EventIngestionService.SendEvents``, same retry rules.
* :class:`ConcurrentSender` (:mod:`~hub.simulate.senders.concurrent`) — ``--concurrency N`` batches in
  flight around either of them.
* :class:`FileSink` (:mod:`~hub.simulate.senders.file`) — ``--dry-run --output FILE.jsonl``.
* :class:`OtlpSender` (:mod:`~hub.simulate.senders.otlp`) — the OpenTelemetry SDK's OTLP/HTTP
  exporters: GenAI metrics for every request, spans for a sample, log records for errors and security
  findings.

The counters (:class:`SendStats`), :class:`SendError`, ``Retry-After`` parsing and the retry bookkeeping
the REST and gRPC senders share are in :mod:`~hub.simulate.senders.base`.

    >>> from hub.simulate.senders import FileSink, RestSender, parse_retry_after
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1.0)
    0.0
"""

from hub.simulate.senders.base import RetryingSender, RetryOptions, SendError, SendStats, parse_retry_after
from hub.simulate.senders.concurrent import ConcurrentSender
from hub.simulate.senders.file import FileSink
from hub.simulate.senders.native_grpc import GrpcSender
from hub.simulate.senders.otlp import OtlpSender
from hub.simulate.senders.rest import EVENTS_PATH, RestSender, read_answer

__all__ = [
    "EVENTS_PATH",
    "ConcurrentSender",
    "FileSink",
    "GrpcSender",
    "OtlpSender",
    "RestSender",
    "RetryOptions",
    "RetryingSender",
    "SendError",
    "SendStats",
    "parse_retry_after",
    "read_answer",
]
