"""The native gRPC receiver as a component: config, lifecycle, proto compilation, robustness."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from hubcore.contracts import IngestOutcome
from hubcore.errors import ConfigError, PermanentError
from receivers.native_grpc import (
    NativeGrpcConfig,
    config_from_mapping,
    create_events_receiver,
    default_config,
    outcome_to_ack,
)
from receivers.native_grpc.client import EventStreamClient
from receivers.native_grpc.protos import ensure_compiled, events_pb2, events_pb2_grpc
from receivers.native_grpc.service import EventIngestionServicer, FlowWindow

REPO = Path(__file__).resolve().parents[2]
Ack = events_pb2.Ack


def event() -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "source_module": "llm-observatory",
        "event_type": "telemetry",
        "payload": {"metric_name": "latency", "value": 12.5, "unit": "ms"},
    }


class Recorder:
    """A consumer that accepts everything and remembers what it got; ``gate`` can hold it."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[bytes], str | None, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def consume_events(self, raw_events: Sequence[Any], *, tenant_id: str | None, receiver: str) -> IngestOutcome:
        self.gate.wait(10)
        self.batches.append(([bytes(e) for e in raw_events], tenant_id, receiver))
        return IngestOutcome(accepted=len(raw_events))


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"endpoint": "nohost"}, "receivers.native.grpc.endpoint"),
        ({"endpoint": "127.0.0.1:99999"}, "receivers.native.grpc.endpoint"),
        ({"max_batch_events": 0}, "receivers.native.grpc.max_batch_events"),
        ({"max_message_bytes": 10}, "receivers.native.grpc.max_message_bytes"),
        ({"max_in_flight": 0}, "receivers.native.grpc.max_in_flight"),
        ({"max_concurrent_streams": 0}, "receivers.native.grpc.max_concurrent_streams"),
    ],
)
def test_config_errors_name_the_yaml_key(fields: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(fields)
    assert info.value.key == key


def test_config_from_mapping_and_defaults() -> None:
    assert default_config() == NativeGrpcConfig()
    cfg = config_from_mapping({"max_in_flight": 2, "max_batch_events": 50})
    assert (cfg.max_in_flight, cfg.max_batch_events, cfg.max_message_bytes) == (2, 50, 8 << 20)
    with pytest.raises(ConfigError, match=r"receivers\.native\.grpc"):
        config_from_mapping({"max_inflight": 2})
    with pytest.raises(ConfigError, match=r"receivers\.native\.grpc"):
        config_from_mapping({"max_in_flight": "many"})


def test_servicer_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        EventIngestionServicer(Recorder(), max_in_flight=0)
    with pytest.raises(TypeError, match="EventsConsumer"):
        EventIngestionServicer(object())  # type: ignore[arg-type]


def test_flow_window_halves_on_retry_and_grows_back() -> None:
    w = FlowWindow(8)
    assert [w.update(s) for s in (Ack.RETRY, Ack.RETRY, Ack.RETRY, Ack.RETRY, Ack.OK, Ack.REJECTED)] == [
        4,
        2,
        1,
        1,
        2,
        3,
    ]


def test_outcome_to_ack_status() -> None:
    assert outcome_to_ack("b", IngestOutcome(accepted=0, duplicates=2)).status == Ack.OK
    partial = outcome_to_ack("b", IngestOutcome(accepted=1, rejected=[{"index": 1, "event_id": None, "reason": "x"}]))
    assert (partial.status, partial.rejected[0].index, partial.rejected[0].event_id) == (Ack.PARTIAL, 1, "")
    assert outcome_to_ack("b", IngestOutcome(accepted=0, rejected=[{"index": 0, "reason": "x"}])).status == Ack.REJECTED


# -- component lifecycle ---------------------------------------------------------------------------
async def test_receiver_starts_serves_and_shuts_down_twice() -> None:
    consumer = Recorder()
    receiver = create_events_receiver(NativeGrpcConfig(endpoint="127.0.0.1:0", max_in_flight=2), consumer)
    await receiver.shutdown()  # safe without start
    await receiver.start()
    await receiver.start()  # idempotent
    assert receiver.port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        stub = events_pb2_grpc.EventIngestionServiceStub(channel)
        request = events_pb2.EventBatch(batch_id="x", events_json=[b"{}"], tenant_id="t1")
        ack = await stub.SendEvents(request)
        call = stub.StreamEvents(metadata=(("x-scope-orgid", "t2"),))
        await call.write(request)
        streamed = await call.read()
        await call.done_writing()
    assert (ack.status, ack.accepted, streamed.credits) == (Ack.OK, 1, 2)
    assert [(b[1], b[2]) for b in consumer.batches] == [("t1", "grpc_stream"), ("t2", "grpc_stream")]
    await receiver.shutdown()
    await receiver.shutdown()


async def test_receiver_reports_an_unusable_endpoint() -> None:
    receiver = create_events_receiver(NativeGrpcConfig(endpoint="203.0.113.1:1"), Recorder())
    with pytest.raises(ConfigError, match=r"receivers\.native\.grpc\.endpoint"):
        await receiver.start()
    await receiver.shutdown()


# -- robustness ------------------------------------------------------------------------------------
def test_a_cancelled_stream_does_not_hurt_the_server_and_credits_bound_read_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from receivers.native_grpc import service

    decoded: list[int] = []

    class CountingBatch:
        @staticmethod
        def FromString(data: bytes) -> Any:
            decoded.append(len(data))
            return events_pb2.EventBatch.FromString(data)

    monkeypatch.setattr(service, "EventBatch", CountingBatch)
    consumer = Recorder()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = create_events_receiver(NativeGrpcConfig(endpoint="127.0.0.1:0", max_in_flight=2), consumer)
    asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
    target = f"127.0.0.1:{receiver.port}"
    try:
        consumer.gate.clear()  # the consumer blocks: nothing is acknowledged
        with grpc.insecure_channel(target) as channel:
            stub = events_pb2_grpc.EventIngestionServiceStub(channel)

            def requests() -> Any:
                for i in range(50):  # ignores credits
                    yield events_pb2.EventBatch(batch_id=str(i), events_json=[b"{}" * 2000])

            call = stub.StreamEvents(requests())
            deadline = time.monotonic() + 10
            while len(decoded) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # time enough to read more, were it not bounded
            call.cancel()
        consumer.gate.set()
        # a client ignoring credits is held by flow control: the server read max_in_flight batches only
        assert len(decoded) == 2
        assert len(consumer.batches) <= 1
        with EventStreamClient(target) as client:
            acks = list(client.stream([[event()] for _ in range(5)]))
        assert [a.status for a in acks] == [Ack.OK] * 5
        assert all(a.credits <= 2 for a in acks)
    finally:
        consumer.gate.set()
        asyncio.run_coroutine_threadsafe(receiver.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


# -- proto compilation -----------------------------------------------------------------------------
def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("compile_protos_under_test", REPO / "scripts" / "compile_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compile_protos_is_idempotent_and_fixes_imports(tmp_path: Path) -> None:
    script = _load_script()
    out = tmp_path / "pkgx" / "_gen"
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx" / "__init__.py").write_text("")
    first = {p.relative_to(out): p.read_bytes() for p in script.compile_protos(REPO / "proto", out, "pkgx._gen")}
    second = {p.relative_to(out): p.read_bytes() for p in script.compile_protos(REPO / "proto", out, "pkgx._gen")}
    assert first == second
    assert Path("llm_analytics_hub/v1/events_pb2_grpc.py") in first
    assert Path("llm_analytics_hub/v1/__init__.py") in first
    assert (
        b"from pkgx._gen.llm_analytics_hub.v1 import events_pb2"
        in first[Path("llm_analytics_hub/v1/events_pb2_grpc.py")]
    )
    assert not [p for p in tmp_path.joinpath("pkgx").iterdir() if p.name.startswith(".gen")]  # no leftovers
    # a fresh interpreter imports the result by its package name (own descriptor pool: separate process)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from pkgx._gen.llm_analytics_hub.v1 import events_pb2, events_pb2_grpc\n"
        "assert events_pb2_grpc.EventIngestionServiceStub\n"
        "print(events_pb2.Ack.Status.Name(events_pb2.Ack.RETRY))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "RETRY"


def test_compile_protos_without_grpc_tools_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _load_script()
    monkeypatch.setitem(sys.modules, "grpc_tools", None)
    with pytest.raises(script.ProtoCompileError, match=r"grpc_tools is missing.*pip install grpcio-tools"):
        script.compile_protos(REPO / "proto", tmp_path / "_gen", "x._gen")
    assert script.main(["--out", str(tmp_path / "_gen"), "--quiet"]) == 1


def test_ensure_compiled_builds_missing_or_stale_modules_only(tmp_path: Path) -> None:
    gen = tmp_path / "_gen"
    kwargs: dict[str, Any] = {"gen_dir": gen, "package": "pkgy._gen"}
    assert ensure_compiled(**kwargs) is True  # missing: compiled
    assert ensure_compiled(**kwargs) is False  # up to date
    protos = tmp_path / "proto"
    (protos / "llm_analytics_hub" / "v1").mkdir(parents=True)
    source = (REPO / "proto" / "llm_analytics_hub" / "v1" / "events.proto").read_text()
    (protos / "llm_analytics_hub" / "v1" / "events.proto").write_text(source + "\n// changed\n")
    assert ensure_compiled(proto_root=protos, **kwargs) is True  # stale: recompiled
    with pytest.raises(ImportError, match="make proto"):
        ensure_compiled(gen_dir=tmp_path / "nothing", proto_root=tmp_path / "absent", package="z._gen")


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def consume_events(self, raw_events: Sequence[Any], *, tenant_id: str | None, receiver: str) -> IngestOutcome:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (PermanentError("tenant is suspended", reason="tenant_suspended"), Ack.REJECTED, "tenant is suspended"),
        (RuntimeError("disk on fire"), Ack.RETRY, "internal error"),
    ],
)
async def test_consumer_errors_become_acks_not_broken_streams(error: Exception, status: int, text: str) -> None:
    receiver = create_events_receiver(NativeGrpcConfig(endpoint="127.0.0.1:0"), Failing(error))
    await receiver.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            stub = events_pb2_grpc.EventIngestionServiceStub(channel)
            batches = [events_pb2.EventBatch(batch_id=f"b{i}", events_json=[b"{}"]) for i in range(2)]
            acks = [ack async for ack in stub.StreamEvents(iter(batches))]
        assert [(a.batch_id, a.status) for a in acks] == [("b0", status), ("b1", status)]
        assert text in acks[0].message
    finally:
        await receiver.shutdown()
