"""The hub's stop: a stop request, then the shutdown sequence within one deadline.

:class:`ShutdownMixin` holds :class:`~hub.service.HubService`'s :meth:`~ShutdownMixin.request_stop` (what
SIGTERM/SIGINT call) and :meth:`~ShutdownMixin.shutdown`: servers first (no new input), then the correlation
thread, analytics and alerting, the tracer, the audit log, the stack exporters (in parallel) and last the store,
which gets only :data:`UNSERVED_STORE_TIMEOUT` when the hub never served.

    >>> UNSERVED_STORE_TIMEOUT
    2.0
    >>> import inspect
    >>> inspect.signature(ShutdownMixin.shutdown).parameters["timeout"].default
    30.0
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider

    from analytics.service import AnalyticsService
    from api.state import SecurityContext
    from hub.servers import _Server
    from hubcore.dlq import DeadLetterQueue
    from hubcore.storage.embedded import EmbeddedStore
    from processors.alerting.service import AlertingService

log = logging.getLogger("hub")

#: The store's shutdown deadline when the hub never served: nothing was acknowledged by this process, and the
#: write-ahead log keeps whatever the startup replay has not applied yet.
UNSERVED_STORE_TIMEOUT = 2.0


class ShutdownMixin:
    """Stopping the hub (part of :class:`~hub.service.HubService`, which sets this state)."""

    store: EmbeddedStore
    dlq: DeadLetterQueue
    security: SecurityContext
    analytics: AnalyticsService
    alerting: AlertingService
    tracer_provider: TracerProvider
    stack_exporters: list[tuple[str, Any]]
    _servers: list[_Server]
    _grpc: grpc.aio.Server | None
    _corr_thread: threading.Thread | None
    _corr_stop: threading.Event
    _stop: asyncio.Event
    _started: bool

    def request_stop(self) -> None:
        log.info("stop requested")
        self._stop.set()

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop receivers (no new input), then flush and close the store. Idempotent; safe unstarted.

        ``timeout`` bounds the whole stop, not each step: the stack exporters drain in parallel, and what
        they or the store cannot finish in time stays in their on-disk queues and the write-ahead log for
        the next start (a stop used to take 30 s per unreachable backend, one after another, past the
        grace period of Kubernetes or systemd)."""
        deadline = time.monotonic() + timeout

        def left(cap: float = timeout) -> float:
            return max(0.5, min(cap, deadline - time.monotonic()))

        for server in self._servers:
            server.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace=left(5.0))
            self._grpc = None
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.shutdown_task, left())  # type: ignore[attr-defined]
        self._servers.clear()
        self._corr_stop.set()
        if self._corr_thread is not None:
            await asyncio.to_thread(self._corr_thread.join, left(10.0))
            self._corr_thread = None
        await asyncio.gather(asyncio.to_thread(self.analytics.shutdown, left(10.0)),
                             asyncio.to_thread(self.alerting.shutdown, left(10.0)))  # fmt: skip
        await asyncio.to_thread(self.tracer_provider.shutdown)
        if self.security.audit is not None:
            self.security.audit.close()  # the head sidecar names the last record (ingest moves it lazily)
        if self.stack_exporters:
            await asyncio.gather(*(asyncio.to_thread(ex.shutdown, left()) for _name, ex in self.stack_exporters))
        # never served (a stop during the startup replay): no flush to wait for, the WAL keeps the rest
        await asyncio.to_thread(self.store.shutdown, left() if self._started else min(left(), UNSERVED_STORE_TIMEOUT))
        await asyncio.to_thread(self.dlq.close)  # its index, saved: the next start reads only what is appended after
        if self._started:
            log.info("hub stopped", extra={"applied_rows": self.store.stats.applied_rows,
                                           "seconds": round(timeout - (deadline - time.monotonic()), 2)})  # fmt: skip
        self._started = False
