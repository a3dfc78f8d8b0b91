"""``hub simulate`` end to end: dry-run files, a stub API with throttling, failures, OTLP, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from hub.simulate.cli import main
from hub.simulate.senders import parse_retry_after
from processors.native_events import NativeEventsConfig, NativeEventsProcessor
from tests.simulate._trees import WireSpan, assert_trees, wire_spans

REPO = Path(__file__).resolve().parents[2]


class StubHub:
    """A tiny HTTP server: answers POSTs from a script of (status, headers) and records every request."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None, delay: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay = delay
        self.analyze_status = 200
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(stub.delay)
                status, headers = stub.script.pop(0) if stub.script else (202, {})
                if self.path == "/api/v1/events" and status == 202:
                    n = len(msgspec.json.decode(body))
                    out = json.dumps({"accepted": n, "rejected": [], "duplicates": 0}).encode()
                elif self.path.startswith("/v1/"):
                    status, out = 200, b""
                elif self.path.startswith("/api/v1/correlations/analyze"):
                    status, out = (
                        stub.analyze_status,
                        json.dumps({"correlations": [{}], "incidents": [{}], "events": 9, "seconds": 0.5}
                                   if stub.analyze_status == 200 else {"error": {"code": "unavailable"}}).encode(),
                    )  # fmt: skip
                else:
                    out = json.dumps({"error": {"code": "busy"}}).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the simulator gave up waiting (the slow-destination tests): no traceback on stderr

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events_posts(self) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.requests if r[0] == "/api/v1/events"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StubHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def stub() -> Iterator[StubHub]:
    with StubHub() as s:
        yield s


def summary(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0]), err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dry_run_writes_valid_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.jsonl"
    code = main(["--dry-run", "--output", str(out), "--count", "3000", "--rate", "500", "--seed", "1",
                 "--tenant", "acme", "--quiet"])  # fmt: skip
    assert code == 0
    s, _ = summary(capsys)
    assert s["status"] == "ok" and s["sent"] == s["accepted"] == 3000 and s["mode"] == "dry-run"
    lines = out.read_bytes().splitlines()
    assert len(lines) == 3000
    res = NativeEventsProcessor(NativeEventsConfig()).process(lines)
    assert res.rejected == [] and res.accepted == 3000
    assert sum(s["events_by_type"].values()) == 3000
    assert 4.0 < s["simulated_s"] < 8.0  # 3000 events at 500/s


def test_dry_run_duration_and_determinism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--dry-run", "--duration", "4", "--rate", "300", "--seed", "9", "--start-time", "2026-01-01T00:00:00Z",
            "--quiet"]  # fmt: skip
    assert main([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
    a, _ = summary(capsys)
    assert main([*args, "--output", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert 600 < a["sent"] < 1800  # ~1200 with bursty arrivals
    first = json.loads((tmp_path / "a.jsonl").read_bytes().splitlines()[0])
    assert first["timestamp"] == "2026-01-01T00:00:00.000Z"


def test_the_summary_says_why_generated_events_were_not_sent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "generated 10500, sent 10008" left the user guessing whether 492 events were lost: they were generated
    # ahead (a batch at a time) and fell due after the end of --duration
    argv = ["--dry-run", "--output", str(tmp_path / "a.jsonl"), "--duration", "4", "--rate", "300", "--seed", "9",
            "--start-time", "2026-01-01T00:00:00Z"]  # fmt: skip
    assert main(argv) == 0
    s, err = summary(capsys)
    gap = s["generated"] - s["sent"]
    assert gap > 0 and s["not_sent"] == {"total": gap, "after_end": gap, "late": 0, "given_up": 0, "abandoned": 0}
    assert (f"generated {s['generated']:,}, sent {s['sent']:,} (accepted {s['sent']:,}, rejected 0, duplicates 0); "
            f"{gap:,} not sent: {gap:,} generated ahead, due only after the run ended") in err  # fmt: skip
    # everything generated was sent: nothing to explain
    assert main(["--dry-run", "--output", str(tmp_path / "b.jsonl"), "--count", "700", "--seed", "9"]) == 0
    s, err = summary(capsys)
    assert s["not_sent"]["total"] == 0 and "not sent" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--dry-run", "--output", "x.jsonl", "--rate", "-5", "--duration", "1"],
        ["--dry-run", "--output", "x.jsonl", "--rate", "10", "--duration", "0"],
        ["--dry-run", "--output", "x.jsonl", "--count", "0"],
        ["--dry-run", "--output", "x.jsonl", "--rate", "10"],
        ["--rate", "10", "--duration", "1"],
        ["--api", "http://x", "--duration", "1", "--batch", "5000"],
        ["--dry-run", "--duration", "1"],
        ["--dry-run", "--output", "x.jsonl", "--duration", "1", "--scenario", "meteor_strike"],
        ["--api", "ftp://x", "--duration", "1"],
        ["--bogus"],
        ["--api", "http://x", "--backfill", "2d", "--duration", "5"],
        ["--api", "http://x", "--backfill", "2d", "--start-time", "2026-01-01T00:00:00Z"],
        ["--api", "http://x", "--backfill", "2d", "--unpaced"],
        ["--api", "http://x", "--backfill", "soon"],
        ["--api", "http://x", "--backfill", "-2h"],
        ["--api", "http://x", "--backfill", "0"],
        ["--api", "http://x", "--backfill", "10d"],  # past the hub's default max_age (7d): dead letters
        ["--api", "http://x", "--backfill", "2d", "--max-age", "1d"],
        ["--api", "http://x", "--backfill", "2d", "--max-age", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert "error" in err


def test_backfill_spreads_history_that_ends_now(stub: StubHub, capsys: pytest.CaptureFixture[str]) -> None:
    """--backfill 2h at 2 events/s: ~14,400 events stamped over the last two hours, sent unpaced."""
    started = time.time()
    code = main(["--api", stub.url, "--otlp", stub.url, "--backfill", "2h", "--rate", "2", "--batch", "1000",
                 "--seed", "3", "--quiet"])  # fmt: skip
    assert code == 0
    s, err = summary(capsys)
    assert s["status"] == "ok" and s["paced"] is False and s["backfill_s"] == 7200.0
    assert 10_000 < s["sent"] < 19_000 and s["elapsed_s"] < 60
    assert "OTLP is not sent" in err and not [r for r in stub.requests if r[0].startswith("/v1/")]
    assert "correlating the backfilled span" not in err  # --quiet: no progress of the analysis either
    # the streaming engine sees only live data: the span is then correlated through the analyze endpoint
    [analyze] = [r[0] for r in stub.requests if r[0].startswith("/api/v1/correlations/analyze")]
    query = dict(p.split("=") for p in analyze.split("?", 1)[1].split("&"))
    assert float(query["start"]) == pytest.approx(started - 7200, abs=5) and float(query["end"]) >= started
    # seconds: the hub's analysis time; wall_seconds: the client's, as its progress lines say
    assert s["correlated"].pop("wall_seconds") >= 0
    assert s["correlated"] == {"incidents": 1, "correlations": 1, "events": 9, "calls": 1, "seconds": 0.5,
                               "truncated": 0}  # fmt: skip
    stamps = sorted(
        datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        for _, _, body in stub.events_posts()
        for e in json.loads(body)
    )
    assert stamps[0] == pytest.approx(started - 7200, abs=5)  # the history starts SPAN ago ...
    assert started - 300 < stamps[-1] <= time.time()  # ... and ends about now, never in the future
    # the events' stamps are whole milliseconds: the analysed span starts on one, so none falls before it
    start_ms = float(query["start"]) * 1000.0
    assert start_ms == pytest.approx(round(start_ms), abs=1e-3) and float(query["start"]) <= stamps[0]
    hours = np.histogram(stamps, bins=2)[0]
    assert min(hours) > 0.3 * max(hours)  # spread over the span, not bunched at one end


def test_a_backfill_the_hub_cannot_correlate_exits_3(stub: StubHub, capsys: pytest.CaptureFixture[str]) -> None:
    """The events are in, the follow-up analysis failed: not success, and not a reason to resend."""
    stub.analyze_status = 503
    code = main(["--api", stub.url, "--backfill", "1h", "--rate", "1", "--batch", "1000", "--quiet"])
    s, err = summary(capsys)
    assert code == 3 and s["exit_code"] == 3 and s["status"] == "uncorrelated"
    assert s["accepted"] == s["sent"] > 0 and s["correlated"]["error"].startswith("HTTP 503")
    assert "do not resend" in err and "/api/v1/correlations/analyze" in err


def test_a_backfill_past_the_hubs_max_age_is_refused_before_sending(
    stub: StubHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--api", stub.url, "--backfill", "8d", "--rate", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--max-age 7d" in err and "dead-letter" in err and not stub.requests
    # a hub configured to keep older events: say so
    assert main(["--api", stub.url, "--backfill", "8d", "--max-age", "9d", "--rate", "0.001", "--quiet"]) == 0


def test_the_last_second_of_a_backfill_is_not_a_span_of_its_own() -> None:
    """The backfill asks for [t0, t0 + SPAN + 1 s): the second joins the last span (it had its own call and a
    repeated "correlated 24.0 h of 24.0 h" line)."""
    import httpx

    from hub.simulate.cli import correlate_span

    spans: list[tuple[float, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        spans.append((float(request.url.params["start"]), float(request.url.params["end"])))
        return httpx.Response(200, json={"correlations": [], "incidents": [], "events": 1, "seconds": 0.1})

    lines: list[str] = []
    correlate_span("http://hub", 0.0, 12 * 3600.0 + 1.0, tenant=None, token=None,
                   transport=httpx.MockTransport(answer), progress=lines.append)  # fmt: skip
    assert spans == [(0.0, 6 * 3600.0), (6 * 3600.0, 12 * 3600.0 + 1.0)]
    assert [ln.split(" in ")[0] for ln in lines[1:]] == ["correlated 6.0 h of 12.0 h", "correlated 12.0 h of 12.0 h"]


def test_correlating_a_backfill_goes_span_by_span_and_halves_busy_spans() -> None:
    import httpx

    from hub.simulate.cli import correlate_span

    spans: list[tuple[float, float]] = []
    busy = (6 * 3600.0, 12 * 3600.0)  # the hub reads at most max_events per call: this span is too busy

    def answer(request: httpx.Request) -> httpx.Response:
        span = (float(request.url.params["start"]), float(request.url.params["end"]))
        spans.append(span)
        truncated = span == busy
        return httpx.Response(200, json={"correlations": [], "incidents": [{}], "events": 3, "seconds": 0.25,
                                         "truncated": truncated, "max_events": 500_000})  # fmt: skip

    mock = httpx.MockTransport(answer)
    lines: list[str] = []
    out = correlate_span("http://hub", 0.0, 15 * 3600.0, tenant="acme", token="t", transport=mock,
                         progress=lines.append)  # fmt: skip
    h = 3600.0
    assert spans == [(0.0, 6 * h), busy, (6 * h, 9 * h), (9 * h, 12 * h), (12 * h, 15 * h)]
    assert out.pop("wall_seconds") >= 0
    assert out == {"incidents": 4, "correlations": 0, "events": 12, "calls": 5, "seconds": 1.0, "truncated": 0}
    # a line to start and one per finished span (the halved busy span is not one): the user sees it move
    assert lines[0].startswith("correlating the backfilled span (15.0 h)") and len(lines) == 5
    assert [ln.split(" in ")[0] for ln in lines[1:]] == [
        "correlated 6.0 h of 15.0 h", "correlated 9.0 h of 15.0 h", "correlated 12.0 h of 15.0 h",
        "correlated 15.0 h of 15.0 h"]  # fmt: skip
    assert lines[-1].endswith("4 incidents, 0 correlations")
    refused = httpx.MockTransport(lambda request: httpx.Response(403, json={"error": {"code": "forbidden"}}))
    denied = correlate_span("http://hub", 0.0, 60.0, tenant=None, token=None, transport=refused)
    assert denied["error"].startswith("HTTP 403")


def test_help_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "hub simulate" in capsys.readouterr().out
    assert main(["--list-scenarios"]) == 0
    assert "latency_spike" in capsys.readouterr().out


def test_throttling_is_retried_with_the_same_batch(capsys: pytest.CaptureFixture[str]) -> None:
    with StubHub([(202, {}), (429, {"Retry-After": "1"}), (202, {})]) as stub:
        t = time.monotonic()
        code = main(["--api", stub.url, "--count", "1000", "--batch", "500", "--rate", "5000", "--tenant", "acme",
                     "--seed", "2", "--progress-interval", "0.2"])  # fmt: skip
        elapsed = time.monotonic() - t
    assert code == 0
    s, err = summary(capsys)
    posts = stub.events_posts()
    assert len(posts) == 3
    assert posts[1][2] == posts[2][2]  # the throttled batch was resent as is
    assert posts[0][2] != posts[1][2]
    for _, headers, body in posts:
        assert headers["content-type"] == "application/json"
        assert headers["x-scope-orgid"] == "acme"
        assert len(msgspec.json.decode(body)) == 500
    assert s["sent"] == s["accepted"] == 1000 and s["rejected"] == 0
    assert s["throttled"] == 1 and s["retries"] == 1 and s["status_counts"] == {"202": 2, "429": 1}
    assert elapsed >= 1.0  # honoured Retry-After
    assert "throttled 1" in err  # progress on stderr


def test_rejections_reported_by_the_api_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    with StubHub([(422, {})]) as stub:
        code = main(["--api", stub.url, "--count", "200", "--batch", "100", "--rate", "5000", "--quiet"])
    assert code == 0
    s, _ = summary(capsys)
    assert s["sent"] == 200 and s["accepted"] == 100 and s["rejected"] == 100


def test_connection_refused_exits_1_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["--api", url, "--count", "100", "--rate", "1000", "--max-retries", "2", "--quiet"])
    assert code == 1
    s, err = summary(capsys)
    assert "cannot reach the hub API" in err and url in err
    assert s["status"] == "failed" and s["exit_code"] == 1 and s["errors"] == 3


def test_paced_sending_hits_the_rate(stub: StubHub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--api", stub.url, "--rate", "400", "--duration", "1.5", "--seed", "4", "--quiet"])
    assert code == 0
    s, _ = summary(capsys)
    assert 1.4 < s["elapsed_s"] < 3.0
    assert 150 < s["achieved_rate"] < 700  # bursty arrivals around 400/s
    assert len(stub.events_posts()) >= 3  # partial batches flushed every 0.5 s
    # timestamps follow the wall clock
    ts = [json.loads(p[2])[-1]["timestamp"] for p in stub.events_posts()]
    assert ts == sorted(ts)


def test_otlp_metrics_traces_and_logs(stub: StubHub, capsys: pytest.CaptureFixture[str]) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    code = main(["--api", stub.url, "--otlp", stub.url, "--count", "2000", "--rate", "20000", "--span-sample",
                 "1", "--otlp-sample", "1", "--quiet", "--tenant", "acme"])  # fmt: skip
    assert code == 0
    s, _ = summary(capsys)
    # every request traced (--span-sample 1): a tree of at least 4 spans (gateway, its call, observatory, model)
    assert s["otlp"]["requests"] > 500 and s["otlp"]["traces"] == s["otlp"]["requests"]
    assert s["otlp"]["spans"] >= 4 * s["otlp"]["traces"]
    assert s["otlp"]["export_failures"] == {"metrics": 0, "traces": 0, "logs": 0}
    assert s["otlp"]["exports"]["metrics"] >= 1 and s["otlp"]["exports"]["traces"] >= 1
    paths = {r[0] for r in stub.requests}
    assert {"/v1/metrics", "/v1/traces"} <= paths
    names: set[str] = set()
    attrs: set[str] = set()
    wire: list[WireSpan] = []
    for path, headers, body in stub.requests:
        if path == "/v1/metrics":
            assert headers["x-scope-orgid"] == "acme"
            req = ExportMetricsServiceRequest.FromString(body)
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        names.add(f"{m.name}|{m.unit}")
                        for dp in m.histogram.data_points:
                            attrs.update(kv.key for kv in dp.attributes)
        elif path == "/v1/traces":
            assert headers["x-scope-orgid"] == "acme"
            wire += wire_spans(ExportTraceServiceRequest.FromString(body))
    assert {"gen_ai.client.operation.duration|s", "gen_ai.client.token.usage|{token}"} <= names
    # what went over the wire: one tree per request, each module's spans under its own service.name
    assert len(wire) == s["otlp"]["spans"]
    trees = assert_trees(wire)
    assert len(trees) == s["otlp"]["traces"]
    assert {w.service for w in wire} >= {"llm-gateway", "llm-observatory", "llm-costops", "llm-policy-engine"}
    assert {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.token.type"} <= attrs


def test_ctrl_c_prints_the_summary(stub: StubHub) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.simulate", "--api", stub.url, "--rate", "200", "--duration", "60", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not stub.events_posts() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stub.events_posts(), "the simulator never sent anything"
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["status"] == "interrupted" and s["sent"] > 0
    # the first Ctrl-C lets the batch in flight finish: what the hub got is what the summary counts
    assert s["sent"] == sum(len(json.loads(p[2])) for p in stub.events_posts())
    assert s["accepted"] == s["sent"]


def test_a_second_ctrl_c_abandons_the_batches_in_flight(stub: StubHub) -> None:
    stub.delay = 10.0  # the hub never answers in time: only a second Ctrl-C can end the run
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.simulate", "--api", stub.url, "--rate", "200", "--duration", "60", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not stub.events_posts() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None, "the first Ctrl-C waits for the batch in flight"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        stub.delay = 0.0
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["status"] == "interrupted" and s["sent"] == 0
    assert b"Ctrl-C again" in err


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3", 1.0) == 3.0
    assert parse_retry_after(None, 1.5) == 1.5
    assert parse_retry_after("garbage", 2.0) == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1.0) == 0.0


def test_concurrent_batches(stub: StubHub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--api", stub.url, "--count", "5000", "--batch", "250", "--unpaced", "--concurrency", "3",
                 "--quiet"])  # fmt: skip
    assert code == 0
    s, _ = summary(capsys)
    assert s["sent"] == s["accepted"] == 5000 and s["batches"] == 20 and s["status_counts"] == {"202": 20}
    ids = [e["event_id"] for p in stub.events_posts() for e in msgspec.json.decode(p[2])]
    assert len(ids) == len(set(ids)) == 5000


def test_a_slow_destination_ends_on_time_and_reports_the_lag(capsys: pytest.CaptureFixture[str]) -> None:
    with StubHub(delay=0.3) as stub:
        code = main(["--api", stub.url, "--rate", "20000", "--duration", "1", "--batch", "1000", "--quiet"])
    assert code == 0
    s, _ = summary(capsys)
    assert s["elapsed_s"] < 4.0  # 1 s + the batch in flight + the final flush
    assert 0 < s["sent"] < 10_000 and s["lag_s"] > 0.2
    # every event generated and not sent is accounted for (due after the end, or due but too late)
    ns = s["not_sent"]
    assert ns["total"] == s["generated"] - s["sent"] == ns["after_end"] + ns["late"] + ns["given_up"] + ns["abandoned"]
    assert min(ns.values()) >= 0


def test_grpc_unreachable_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("receivers.native_grpc.client")
    target = f"127.0.0.1:{free_port()}"
    assert main(["--grpc", target, "--count", "10", "--max-retries", "1", "--quiet"]) == 1
    s, err = summary(capsys)
    assert "cannot reach the hub's gRPC receiver" in err and s["mode"] == "grpc"
