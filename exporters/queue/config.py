"""Settings shared by the stack exporters, with the Collector's key names.

sending_queue:   {directory: ./data/queue/victoriametrics, max_bytes: 268435456, fsync: true}
retry_on_failure: {initial_interval: 0.5, max_interval: 30, multiplier: 2, randomization_factor: 0.5}

>>> RetryConfig().initial_interval
0.5

An exporter's own config extends :class:`QueuedExporterConfig` (``endpoint`` and the queue, flush and
HTTP keys) with its keys, and names its section for the errors:

>>> class DemoConfig(QueuedExporterConfig, frozen=True):
...     section: ClassVar[str] = "exporters.demo"
...     org_id: str = ""
>>> DemoConfig("http://demo:8080", flush_interval=2.0).max_request_bytes
4194304
>>> DemoConfig("demo:8080").validate()
Traceback (most recent call last):
...
hubcore.errors.ConfigError: exporters.demo.endpoint: must be an http(s) URL, got 'demo:8080'
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

import msgspec

from hubcore.errors import ConfigError

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class QueueConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """The exporter's bounded on-disk queue (``sending_queue``).

    * ``directory``: where the queue's segments, acknowledgement and dead-letter file live; one exporter
      process per directory. Empty: ``<embedded data_dir>/queue/<exporter>`` (the wiring decides).
    * ``max_bytes``: encoded size of the batches waiting; ``export`` raises ``QueueFullError`` beyond it.
    * ``max_batches``: the same bound counted in ``export`` calls.
    * ``fsync``: fsync every ``export`` (durable against power loss, not just a process crash).
    * ``segment_bytes``: size of one segment file; acknowledged segments are deleted whole.
    """

    directory: str = ""
    max_bytes: PositiveInt = 256 << 20
    max_batches: PositiveInt = 100_000
    fsync: bool = True
    segment_bytes: PositiveInt = 8 << 20


class RetryConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Jittered exponential backoff for retryable failures (``retry_on_failure``).

    * ``initial_interval`` / ``max_interval`` (seconds), ``multiplier``, ``randomization_factor`` (0..1):
      the n-th wait is ``min(max_interval, initial_interval * multiplier**n)`` ± the factor.
    * A server's ``Retry-After`` (seconds or HTTP date, capped by ``max_retry_after``) is a floor over
      the computed wait, never below ``initial_interval``: ``Retry-After: 0`` or a past date does not
      turn the backoff off.
    * ``max_elapsed_time`` (seconds): give up on a request after this long and dead-letter it;
      ``0`` (the default) retries for as long as the exporter runs — the queue applies back-pressure.
    """

    initial_interval: PositiveFloat = 0.5
    max_interval: PositiveFloat = 30.0
    multiplier: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    randomization_factor: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    max_elapsed_time: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    max_retry_after: PositiveFloat = 300.0


def require_http_url(key: str, url: str) -> None:
    """Raise ``ConfigError`` naming ``key`` unless ``url`` is an http(s) URL."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(key, f"must be an http(s) URL, got {url!r}")


class _EndpointConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    endpoint: str = ""  # positional (first), as in each exporter's config


class QueuedExporterConfig(_EndpointConfig, kw_only=True, frozen=True):
    """The keys every queued exporter has (an exporter's own keys come after ``endpoint``; these are
    keyword-only). :class:`exporters.queue.base.QueuedExporter` takes its settings from them.

    * ``endpoint``: the backend's base URL. Required.
    * ``flush_interval`` (s): how often queued batches are converted and sent.
    * ``max_batches_per_flush``: queued ``export`` calls taken per flush.
    * ``max_request_bytes``: encoded request size above which a request is split in halves (a 413 from
      the server splits too).
    * ``timeout`` (s): per HTTP request.
    * ``headers``: extra HTTP headers (e.g. ``Authorization``), over the protocol's own.
    * ``sending_queue`` / ``retry_on_failure``: :class:`QueueConfig`, :class:`RetryConfig`.
    """

    section: ClassVar[str] = "exporters.queued"  # the YAML key of the subclass, for errors

    flush_interval: Annotated[float, msgspec.Meta(gt=0, le=300)] = 1.0
    max_batches_per_flush: Annotated[int, msgspec.Meta(gt=0)] = 1000
    max_request_bytes: Annotated[int, msgspec.Meta(gt=1024)] = 4 << 20
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    headers: dict[str, str] = {}
    sending_queue: QueueConfig = msgspec.field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = msgspec.field(default_factory=RetryConfig)

    def validate(self, key: str = "") -> Self:
        """Check what the types cannot (``key``: the YAML key; default :attr:`section`); returns self."""
        require_http_url(f"{key or self.section}.endpoint", self.endpoint)
        return self
