"""``--concurrency N``: up to N batches in flight (threads) around a REST or gRPC sender, so that
generation overlaps the server's work. The inner sender's counters are shared (they take a lock).

    >>> import httpx
    >>> from hub.simulate.senders.rest import RestSender
    >>> ok = httpx.MockTransport(lambda request: httpx.Response(202))
    >>> sender = ConcurrentSender(RestSender("http://hub", transport=ok), concurrency=2)
    >>> for _ in range(5): sender.send([{"event_id": "e"}])
    >>> sender.drain(); sender.close(); sender.stats.batches
    5
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from hub.simulate.events import Event
from hub.simulate.senders.native_grpc import GrpcSender
from hub.simulate.senders.rest import RestSender


class ConcurrentSender:
    """Up to ``concurrency`` batches in flight (threads), so generation overlaps the server's work."""

    def __init__(self, inner: RestSender | GrpcSender, concurrency: int) -> None:
        self.inner = inner
        self.stats = inner.stats
        self.url = inner.url
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="hub-simulate-send")
        self.inflight: deque[Future[None]] = deque()

    def send(self, events: Sequence[Event]) -> None:
        """Queue one batch; blocks while ``concurrency`` batches are in flight; re-raises SendError."""
        while self.inflight and (len(self.inflight) >= self.concurrency or self.inflight[0].done()):
            self.inflight.popleft().result()
        self.inflight.append(self.pool.submit(self.inner.send, list(events)))

    def drain(self) -> None:
        while self.inflight:
            self.inflight.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.inner.close()
