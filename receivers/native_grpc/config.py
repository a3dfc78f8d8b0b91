"""Configuration of the native-event gRPC receiver (``receivers.native.grpc`` in the hub's YAML).

Errors name the key::

    >>> NativeGrpcConfig(max_in_flight=4).validate().max_in_flight
    4
    >>> NativeGrpcConfig(max_in_flight=0).validate()
    Traceback (most recent call last):
    ...
    hubcore.errors.ConfigError: receivers.native.grpc.max_in_flight: must be between 1 and 1024, got 0
"""

from __future__ import annotations

import msgspec

from hubcore.errors import ConfigError

CONFIG_KEY = "receivers.native.grpc"


class NativeGrpcConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """The ``EventIngestionService`` (``StreamEvents`` stream and ``SendEvents`` unary call).

    * ``endpoint``: ``host:port`` of the receiver's own gRPC server (port 0 picks a free one). The hub may
      instead mount the service on its OTLP gRPC server (``add_event_stream_servicer``).
    * ``max_batch_events``: events per ``EventBatch``; a larger batch is answered ``REJECTED``.
    * ``max_message_bytes``: bytes per serialised ``EventBatch``; a larger one is answered ``REJECTED``
      (up to twice this size; beyond that gRPC itself refuses it with ``RESOURCE_EXHAUSTED``).
    * ``max_in_flight``: credits, the batches a stream client may send before their acks arrive; also the
      batches the server reads ahead per stream, so memory per stream stays bounded.
    * ``max_concurrent_streams``: HTTP/2 streams per client connection.
    """

    endpoint: str = "127.0.0.1:4320"
    max_batch_events: int = 1000
    max_message_bytes: int = 8 << 20
    max_in_flight: int = 8
    max_concurrent_streams: int = 100

    def validate(self, key: str = CONFIG_KEY) -> NativeGrpcConfig:
        """Check every field; errors name the YAML key (``receivers.native.grpc.max_in_flight``)."""
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"{key}.endpoint", f"must be host:port, got {self.endpoint!r}")
        _check_range(f"{key}.max_batch_events", self.max_batch_events, 1, 100_000)
        _check_range(f"{key}.max_message_bytes", self.max_message_bytes, 1024, 512 << 20)
        _check_range(f"{key}.max_in_flight", self.max_in_flight, 1, 1024)
        _check_range(f"{key}.max_concurrent_streams", self.max_concurrent_streams, 1, 100_000)
        return self


def _check_range(key: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value!r}")
