"""The only way in, as for a Collector component: a type name, a default config, a constructor.

For example::

    >>> from receivers.native_grpc.factory import TYPE, default_config
    >>> TYPE, default_config().max_in_flight
    ('native_grpc', 8)
"""

from __future__ import annotations

from typing import Any

import msgspec

from hubcore.contracts import EventsConsumer
from receivers.native_grpc.config import CONFIG_KEY, NativeGrpcConfig
from receivers.native_grpc.receiver import NativeGrpcReceiver

TYPE = "native_grpc"


def default_config() -> NativeGrpcConfig:
    return NativeGrpcConfig()


def config_from_mapping(data: dict[str, Any] | None, key: str = CONFIG_KEY) -> NativeGrpcConfig:
    """Build and validate the config from its YAML mapping; errors name the key."""
    from hubcore.errors import ConfigError

    try:
        cfg = msgspec.convert(data or {}, NativeGrpcConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(key, str(exc)) from exc
    return cfg.validate(key)


def create_events_receiver(config: NativeGrpcConfig, consumer: EventsConsumer) -> NativeGrpcReceiver:
    """A receiver serving ``EventIngestionService`` on ``config.endpoint`` (start/shutdown it)."""
    return NativeGrpcReceiver(config, consumer)
