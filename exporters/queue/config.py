"""Settings shared by the stack exporters, with the Collector's key names.

sending_queue:   {directory: ./data/queue/victoriametrics, max_bytes: 268435456, fsync: true}
retry_on_failure: {initial_interval: 0.5, max_interval: 30, multiplier: 2, randomization_factor: 0.5}

>>> RetryConfig().initial_interval
0.5
"""

from __future__ import annotations

from typing import Annotated

import msgspec

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
    * A server's ``Retry-After`` (seconds or HTTP date) replaces the computed wait (capped by
      ``max_retry_after``).
    * ``max_elapsed_time`` (seconds): give up on a request after this long and dead-letter it;
      ``0`` (the default) retries for as long as the exporter runs — the queue applies back-pressure.
    """

    initial_interval: PositiveFloat = 0.5
    max_interval: PositiveFloat = 30.0
    multiplier: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    randomization_factor: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    max_elapsed_time: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    max_retry_after: PositiveFloat = 300.0
