"""Native events over gRPC: ``llm_analytics_hub.v1.EventIngestionService`` (stream with acks and credits).

    from receivers.native_grpc import add_event_stream_servicer, server_options
    server = grpc.aio.server(options=server_options())
    add_event_stream_servicer(server, pipeline)

The generated modules live in ``_gen/`` (``make proto``; compiled on first import when missing). See
README.md for the protocol.
"""

from receivers.native_grpc.config import NativeGrpcConfig
from receivers.native_grpc.factory import TYPE, config_from_mapping, create_events_receiver, default_config
from receivers.native_grpc.receiver import NativeGrpcReceiver
from receivers.native_grpc.service import (
    RECEIVER,
    EventIngestionServicer,
    add_event_stream_servicer,
    outcome_to_ack,
    server_options,
)

__all__ = [
    "RECEIVER",
    "TYPE",
    "EventIngestionServicer",
    "NativeGrpcConfig",
    "NativeGrpcReceiver",
    "add_event_stream_servicer",
    "config_from_mapping",
    "create_events_receiver",
    "default_config",
    "outcome_to_ack",
    "server_options",
]
