"""The REST and gRPC senders' retry rules and counters, against scripted answers (no server, no waiting)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from hub.simulate.senders import GrpcSender, RestSender, SendError

EVENTS = [{"event_id": f"e{i}", "event_type": "telemetry"} for i in range(4)]


def rest(script: list[Any], **kwargs: Any) -> tuple[RestSender, list[float], list[bytes]]:
    """A RestSender whose requests get the scripted answers: (status, headers, json) or an exception."""
    sleeps: list[float] = []
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers, answer = item
        content = b"" if answer is None else msgspec.json.encode(answer)
        return httpx.Response(status, headers=headers, content=content)

    sender = RestSender("http://hub", sleep=sleeps.append, transport=httpx.MockTransport(handler), **kwargs)
    return sender, sleeps, bodies


def test_rest_throttling_then_success_counts_and_waits() -> None:
    ok = {"accepted": 3, "rejected": [{"reason": "bad timestamp"}], "duplicates": 0}
    sender, sleeps, bodies = rest([(429, {"Retry-After": "2"}, None), (503, {"Retry-After": "120"}, None),
                                   (202, {}, ok)])  # fmt: skip
    sender.send(EVENTS)
    assert sleeps == [2.0, 60.0]  # Retry-After honoured, capped at 60 s
    assert len(set(bodies)) == 1 and len(bodies) == 3  # the same batch resent
    assert sender.stats.as_dict() == {
        "batches": 1, "sent": 4, "accepted": 3, "rejected": 1, "duplicates": 0, "throttled": 2, "retries": 2,
        "errors": 0, "failed_events": 0, "bytes_sent": len(bodies[0]),
        "status_counts": {"202": 1, "429": 1, "503": 1}, "last_error": "rejected: bad timestamp",
    }  # fmt: skip


def test_rest_throttled_too_often_drops_the_batch() -> None:
    sender, sleeps, _ = rest([(429, {"Retry-After": "0"}, None)] * 3, max_throttle_retries=2)
    sender.send(EVENTS)
    st = sender.stats
    assert (st.throttled, st.retries, st.failed_events, st.batches, st.sent) == (3, 2, 4, 0, 0)
    assert st.last_error == "HTTP 429: still throttled after 2 resends; batch dropped"
    assert sleeps == [0.0, 0.0]


def test_rest_server_errors_back_off_then_give_up() -> None:
    random.seed(1)
    sender, sleeps, _ = rest([(500, {}, {"error": "boom"})] * 3, max_retries=2, backoff_base=1.0, backoff_max=1.5)
    sender.send(EVENTS)
    st = sender.stats
    assert (st.errors, st.retries, st.failed_events, st.batches) == (3, 2, 4, 0)
    assert st.last_error == 'HTTP 500: {"error":"boom"}'
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 0.75 <= sleeps[1] <= 1.5  # jittered, capped
    assert st.status_counts == {"500": 3}


def test_rest_unreachable_raises_after_the_retries() -> None:
    sender, sleeps, _ = rest([httpx.ConnectError("refused")] * 2 + [(202, {}, None)], max_retries=1)
    with pytest.raises(SendError, match=r"cannot reach the hub API at http://hub/api/v1/events after 2 attempts"):
        sender.send(EVENTS)
    st = sender.stats
    assert (st.errors, st.retries, st.failed_events) == (2, 1, 0) and len(sleeps) == 1
    assert st.last_error == "ConnectError: refused"


def test_rest_refused_credentials_raise_at_once() -> None:
    sender, sleeps, _ = rest([(401, {}, {"error": "no"})])
    with pytest.raises(SendError, match=r"refused the credentials \(HTTP 401\)"):
        sender.send(EVENTS)
    assert sender.stats.errors == 1 and sleeps == [] and sender.stats.status_counts == {"401": 1}


def test_rest_answers_without_counts() -> None:
    sender, _, _ = rest([(202, {}, None), (422, {}, {"detail": "no"}), (200, {}, {"accepted": 1, "duplicates": 2})])
    for _ in range(3):
        sender.send(EVENTS)
    st = sender.stats
    assert (st.batches, st.sent, st.accepted, st.rejected, st.duplicates) == (3, 12, 5, 4, 2)
    assert st.last_error == 'HTTP 422: {"detail":"no"}'


class FakeRpcError:
    """Built lazily so that the module imports without grpc."""

    @staticmethod
    def make(code_name: str, details: str = "down") -> Exception:
        import grpc

        class _Err(grpc.RpcError):
            def code(self) -> Any:
                return getattr(grpc.StatusCode, code_name)

            def details(self) -> str:
                return details

        return _Err()


def grpc_sender(script: list[Any], **kwargs: Any) -> tuple[GrpcSender, list[float], list[Any]]:
    pytest.importorskip("receivers.native_grpc.client")
    sleeps: list[float] = []
    requests: list[Any] = []
    sender = GrpcSender("127.0.0.1:1", sleep=sleeps.append, **kwargs)

    def fake_send(request: Any, **_kw: Any) -> Any:
        requests.append(request)
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    sender.client._send = fake_send
    return sender, sleeps, requests


def ack(status: str, **fields: Any) -> Any:
    from receivers.native_grpc.protos import events_pb2

    rejected = [events_pb2.Rejection(index=0, reason=r) for r in fields.pop("rejected", [])]
    return events_pb2.Ack(status=getattr(events_pb2.Ack, status), rejected=rejected, **fields)


def test_grpc_retry_acks_and_exhaustion_then_success() -> None:
    mk: Callable[..., Exception] = FakeRpcError.make
    sender, sleeps, requests = grpc_sender([
        ack("RETRY", retry_after_seconds=1.5), mk("RESOURCE_EXHAUSTED"), mk("INTERNAL", "oops"),
        ack("PARTIAL", accepted=2, duplicates=1, rejected=["bad"]),
    ])  # fmt: skip
    sender.send(EVENTS)
    assert sleeps == [1.5, 0.5, 0.25]  # the ack's hint; throttle backoff (attempt 1); failure backoff (attempt 0)
    assert len(requests) == 4 and len({r.SerializeToString() for r in requests}) == 1
    d = sender.stats.as_dict()
    assert d == {
        "batches": 1, "sent": 4, "accepted": 2, "rejected": 1, "duplicates": 1, "throttled": 2, "retries": 3,
        "errors": 1, "failed_events": 0, "bytes_sent": requests[0].ByteSize(),
        "status_counts": {"INTERNAL": 1, "PARTIAL": 1, "RESOURCE_EXHAUSTED": 1, "RETRY": 1},
        "last_error": "rejected: bad",
    }  # fmt: skip
    sender.close()


def test_grpc_retry_acks_exhausted_drop_the_batch() -> None:
    sender, sleeps, _ = grpc_sender([ack("RETRY", retry_after_seconds=0.1)] * 3, max_throttle_retries=2)
    sender.send(EVENTS)
    st = sender.stats
    assert (st.throttled, st.retries, st.failed_events, st.batches) == (3, 2, 4, 0)
    assert st.last_error == "gRPC RETRY: still busy after 2 resends; batch dropped" and sleeps == [0.1, 0.1]
    sender.close()


def test_grpc_resource_exhausted_past_the_throttle_budget_counts_as_an_error() -> None:
    mk = FakeRpcError.make
    sender, sleeps, _ = grpc_sender([mk("RESOURCE_EXHAUSTED")] * 3, max_throttle_retries=1, max_retries=1)
    sender.send(EVENTS)
    st = sender.stats
    assert (st.throttled, st.errors, st.retries, st.failed_events) == (1, 2, 2, 4)
    assert sleeps == [0.25, 0.25]
    sender.close()


def test_grpc_unavailable_raises_and_credentials_raise_at_once() -> None:
    mk = FakeRpcError.make
    sender, sleeps, _ = grpc_sender([mk("UNAVAILABLE")] * 3, max_retries=2)
    with pytest.raises(SendError, match=r"cannot reach the hub's gRPC receiver at grpc://127\.0\.0\.1:1 after 3"):
        sender.send(EVENTS)
    assert sender.stats.errors == 3 and sleeps == [0.25, 0.5] and sender.stats.retries == 2
    sender.close()
    sender, sleeps, _ = grpc_sender([mk("UNAUTHENTICATED")])
    with pytest.raises(SendError, match=r"refused the credentials \(UNAUTHENTICATED\)"):
        sender.send(EVENTS)
    assert sender.stats.errors == 1 and sleeps == []
    sender.close()


def test_grpc_rejected_ack_message() -> None:
    sender, _, _ = grpc_sender([ack("REJECTED", accepted=0, message="schema")])
    sender.send(EVENTS)
    st = sender.stats
    assert (st.rejected, st.accepted, st.last_error) == (4, 0, "rejected: schema")
    sender.close()
