"""``--grpc HOST:PORT``: batches through the hub's native gRPC receiver (``EventIngestionService.SendEvents``).

The same rules as REST: ``RETRY`` acks are resent after their ``retry_after_seconds`` and
``RESOURCE_EXHAUSTED`` after an exponential backoff (both counted as throttled); other errors are retried
with backoff, then the batch is dropped — or, for ``UNAVAILABLE`` and refused credentials, a
:class:`~hub.simulate.senders.base.SendError` is raised (exit code 1). ``grpc`` is imported lazily.

    >>> sender = GrpcSender("127.0.0.1:4320", tenant="acme", max_retries=0)   # doctest: +SKIP
    >>> sender.send([{"event_id": "e1", ...}]); sender.stats.accepted           # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import msgspec

from hub.simulate.events import Event
from hub.simulate.senders.base import RetryingSender, RetryOptions, SendError


class GrpcSender(RetryingSender):
    """Batches through the hub's native gRPC receiver (``EventIngestionService.SendEvents``).

    ``RETRY`` acks and ``RESOURCE_EXHAUSTED`` are resent after their hint (counted as throttled);
    ``UNAVAILABLE`` is retried with backoff, then raises :class:`SendError`.
    """

    jitter = False

    def __init__(
        self,
        target: str,
        *,
        tenant: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        **retry: Unpack[RetryOptions],
    ) -> None:
        from receivers.native_grpc.client import EventStreamClient

        super().__init__(**retry)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.client = EventStreamClient(target, tenant_id=tenant, timeout=timeout, max_retries=0, metadata=metadata)
        self.url = f"grpc://{target}"

    def send(self, events: Sequence[Event]) -> None:
        import grpc

        from receivers.native_grpc.protos import events_pb2

        request = self.client.batch([msgspec.json.encode(e) for e in events])
        size = request.ByteSize()
        n = len(events)
        failures = throttles = 0
        while True:
            try:
                ack = self.client._send(request, timeout=self.client.timeout, metadata=self.client._metadata)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                name = code.name if code is not None else "UNKNOWN"
                self._status(name, f"gRPC {name}: {exc.details() if hasattr(exc, 'details') else exc}")
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED and throttles < self.max_throttle_retries:
                    self._throttled(n, throttles, dropped=None)
                    self._retry_after(self._backoff(throttles))
                    throttles += 1
                    continue
                self._failed()
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise SendError(f"the hub's gRPC receiver refused the credentials ({name})") from exc
                if failures >= self.max_retries:
                    if code == grpc.StatusCode.UNAVAILABLE:
                        raise SendError(
                            f"cannot reach the hub's gRPC receiver at {self.url} after {failures + 1} attempts "
                            f"({self.stats.last_error}); is `hub run` up and --grpc right?"
                        ) from exc
                    self._give_up(n)
                    return
                self._retry_after(self._backoff(failures))
                failures += 1
                continue
            self._status(events_pb2.Ack.Status.Name(ack.status))
            if ack.status == events_pb2.Ack.RETRY:
                if not self._throttled(
                    n, throttles, f"gRPC RETRY: still busy after {throttles} resends; batch dropped"
                ):
                    return
                self._retry_after(min(60.0, max(0.0, ack.retry_after_seconds)))
                throttles += 1
                continue
            error = None
            if ack.rejected:
                error = f"rejected: {ack.rejected[0].reason[:200]}"
            elif ack.message and ack.status == events_pb2.Ack.REJECTED:
                error = f"rejected: {ack.message[:200]}"
            rejected = len(ack.rejected) if ack.rejected else (n - ack.accepted - ack.duplicates)
            self._answered(n, size, accepted=ack.accepted, rejected=rejected, duplicates=ack.duplicates, error=error)
            return

    def close(self) -> None:
        self.client.close()
