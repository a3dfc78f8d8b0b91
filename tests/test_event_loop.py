"""The loop the hub runs on (``service.event_loop``, ``hub run --event-loop``): uvloop by default when installed.

Every receiver the service wires serves on uvloop (REST, WebSocket, OTLP gRPC and HTTP, the native gRPC stream
and unary call: grpc.aio's server, uvicorn's protocols and the ``asyncio.to_thread`` hand-offs), ``hub run``
picks uvloop by default and stops cleanly on SIGINT and SIGTERM on either loop, and a value it cannot use is
refused with the key named, before anything is written."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult
from websockets.sync.client import connect

from hub.cli import main, new_event_loop, resolve_event_loop
from hubcore.errors import ConfigError
from receivers.native_grpc.client import EventStreamClient
from receivers.native_grpc.protos import events_pb2
from tests.helpers.events import make_event
from tests.helpers.hub import running_hub, start_hub_process, stop_hub_process
from tests.receivers.test_otlp_support import sdk_metrics, sdk_spans


def _loop_module(loop: object) -> str:
    return type(loop).__module__.partition(".")[0]


def test_every_receiver_serves_on_uvloop_and_the_hub_stops(tmp_path: Path) -> None:
    with running_hub(tmp_path, service__event_loop="uvloop") as hub:
        assert _loop_module(hub.loop) == "uvloop"
        assert httpx.post(f"{hub.api}/api/v1/events", json=[make_event("cost") for _ in range(3)]).status_code == 202
        with connect(hub.api.replace("http://", "ws://") + "/ws/events") as ws:
            ws.send(json.dumps({"batch_id": "w1", "events": [make_event("policy"), make_event("policy")]}))
            ack = json.loads(ws.recv(10))
            assert (ack["type"], ack["batch_id"], ack["accepted"]) == ("ack", "w1", 2)
        with EventStreamClient(hub.grpc_target) as client:
            acks = list(client.stream([[make_event("telemetry") for _ in range(4)] for _ in range(3)]))
            unary = client.send([make_event("security")], batch_id="u1")
        assert [(a.status, a.accepted) for a in acks] == [(events_pb2.Ack.OK, 4)] * 3
        assert (unary.batch_id, unary.status, unary.accepted) == ("u1", events_pb2.Ack.OK, 1)
        metrics = GrpcMetricExporter(endpoint=hub.grpc_target, insecure=True, timeout=10)
        assert metrics.export(sdk_metrics({"service.name": "svc-uvloop"})) is MetricExportResult.SUCCESS
        metrics.shutdown()
        spans = HttpSpanExporter(endpoint=f"{hub.otlp_http}/v1/traces", timeout=10)
        assert spans.export(sdk_spans({"service.name": "svc-uvloop-http"})) is SpanExportResult.SUCCESS
        spans.shutdown()
        rows = dict(hub.sql("SELECT event_type, count(*) FROM events GROUP BY 1"))
        assert rows == {"cost": 3, "policy": 2, "telemetry": 12, "security": 1}
        assert hub.sql("SELECT count(*) FROM metric_points WHERE service_name = 'svc-uvloop'")[0][0] >= 7
        assert hub.sql("SELECT count(*) FROM spans WHERE service_name = 'svc-uvloop-http'") == [(2,)]
        thread = hub.thread
    assert not thread.is_alive()  # the shutdown (gRPC server, uvicorn, store) finished on uvloop


def test_auto_is_uvloop_when_installed_and_asyncio_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_event_loop("auto") == "uvloop"  # installed with uvicorn[standard]
    assert resolve_event_loop("uvloop") == "uvloop"
    assert resolve_event_loop("asyncio") == "asyncio"
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed (Windows, a slim install)
    assert resolve_event_loop("auto") == "asyncio"
    with pytest.raises(ConfigError) as info:
        resolve_event_loop("uvloop")
    assert info.value.key == "service.event_loop"
    assert "uvloop is not installed" in str(info.value)


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_new_event_loop_makes_the_loop_named(name: str) -> None:
    loop = new_event_loop(name)
    try:
        assert _loop_module(loop) == name
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("argv", "config", "expected"),
    [
        (["--event-loop", "uvloop"], None, "service.event_loop: uvloop is not installed"),
        ([], "service: {event_loop: trio}\n", "service.event_loop: expected one of auto, asyncio, uvloop; got 'trio'"),
        ([], "service: {event_loop: [uvloop]}\n", "service.event_loop: Expected `str`, got `array`"),
    ],
)
def test_an_unusable_event_loop_exits_2_naming_the_key_before_the_data_dir_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], config: str | None, expected: str,
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "uvloop", None)  # uvloop not installed
    data = tmp_path / "data"
    extra = []
    if config is not None:
        (tmp_path / "hub.yaml").write_text(config)
        extra = ["--config", str(tmp_path / "hub.yaml")]
    assert main(["run", "--data-dir", str(data), *extra, *argv]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"hub run: invalid configuration: {expected}")
    assert not data.exists()


def test_an_unknown_event_loop_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--event-loop", "trio"])
    assert info.value.code == 2
    assert "argument --event-loop: invalid choice: 'trio'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "loop", "sig"),
    [([], "uvloop", signal.SIGINT), (["--event-loop", "asyncio"], "asyncio", signal.SIGTERM)],
    ids=["default-uvloop-sigint", "asyncio-sigterm"],
)
def test_hub_run_serves_on_the_loop_named_and_stops_cleanly(
    tmp_path: Path, argv: list[str], loop: str, sig: signal.Signals
) -> None:
    hp = start_hub_process(tmp_path / "data", *argv)
    try:
        assert httpx.post(f"{hp.api}/api/v1/events", json=[make_event("cost") for _ in range(20)]).status_code == 202
    finally:
        rc = stop_hub_process(hp, sig)
    assert rc == 0, hp.log()
    lines = [json.loads(line) for line in hp.log().splitlines() if line.startswith("{")]
    by_msg = {rec["msg"]: rec for rec in lines}
    assert by_msg["hub starting"]["event_loop"] == loop
    assert by_msg["hub started"]["event_loop"] == loop
    assert "hub stopped" in by_msg and "Traceback" not in hp.log()
    con = duckdb.connect(str(tmp_path / "data" / "hub.duckdb"), read_only=True)  # flushed before the exit
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (20,)
    finally:
        con.close()
