"""Configuration of the OTLP receiver (YAML key ``receivers.otlp``).

The model lives in :mod:`hubcore.config` with the rest of the file's schema; it is re-exported here so
the component folder reads like every other one::

    receivers:
      otlp:
        protocols:
          grpc: {endpoint: 127.0.0.1:4317, max_message_bytes: 16777216}   # enabled: true
          http: {endpoint: 127.0.0.1:4318, max_message_bytes: 16777216}   # enabled: true

``max_message_bytes`` is grpc's ``max_receive_message_length`` (gRPC) and the body limit, compressed
and decompressed, of the HTTP receiver.

    >>> validate(OtlpReceiverConfig()).protocols.grpc.endpoint
    '127.0.0.1:4317'
"""

from __future__ import annotations

from hubcore.config import Endpoint, OtlpProtocols, OtlpReceiverConfig

__all__ = ["KEY", "Endpoint", "OtlpProtocols", "OtlpReceiverConfig", "validate"]

#: Where this component's config sits in the YAML file (error messages name keys under it).
KEY = "receivers.otlp"


def validate(config: OtlpReceiverConfig, key: str = KEY) -> OtlpReceiverConfig:
    """Check what the model's types cannot: endpoints are ``host:port`` (ConfigError names the key)."""
    config.protocols.grpc.host_port(f"{key}.protocols.grpc.endpoint")
    config.protocols.http.host_port(f"{key}.protocols.http.endpoint")
    return config
