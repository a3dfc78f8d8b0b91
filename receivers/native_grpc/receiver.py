"""The receiver as a :class:`~hubcore.contracts.Component`: its own gRPC server on ``endpoint``.

Usage::

    receiver = NativeGrpcReceiver(NativeGrpcConfig(endpoint="127.0.0.1:0"), pipeline)
    await receiver.start()          # receiver.port is the bound port
    ...
    await receiver.shutdown()       # idempotent, safe without start
"""

from __future__ import annotations

import grpc

from hubcore.contracts import EventsConsumer
from hubcore.errors import ConfigError
from receivers.native_grpc.config import CONFIG_KEY, NativeGrpcConfig
from receivers.native_grpc.service import add_event_stream_servicer, server_options


class NativeGrpcReceiver:
    """Starts a ``grpc.aio`` server serving ``EventIngestionService``; stops it with a grace period."""

    def __init__(self, config: NativeGrpcConfig, consumer: EventsConsumer, *, grace: float = 5.0) -> None:
        self.config = config.validate()
        self.consumer = consumer
        self.grace = grace
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        if self._server is not None:
            return
        cfg = self.config
        server = grpc.aio.server(
            options=server_options(cfg.max_message_bytes, max_concurrent_streams=cfg.max_concurrent_streams)
        )
        add_event_stream_servicer(
            server,
            self.consumer,
            max_batch_events=cfg.max_batch_events,
            max_in_flight=cfg.max_in_flight,
            max_message_bytes=cfg.max_message_bytes,
        )
        try:
            port = server.add_insecure_port(cfg.endpoint)
        except RuntimeError as exc:
            raise ConfigError(f"{CONFIG_KEY}.endpoint", f"cannot listen on {cfg.endpoint!r}: {exc}") from exc
        if port == 0:
            raise ConfigError(f"{CONFIG_KEY}.endpoint", f"cannot listen on {cfg.endpoint!r}")
        await server.start()
        self._server, self.port = server, port

    async def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(self.grace)
