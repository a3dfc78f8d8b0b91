"""`hub run` as a real process: clean SIGTERM, and nothing acknowledged lost on kill -9."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.helpers.events import make_event
from tests.helpers.hub import start_hub_process, stop_hub_process


def test_sigterm_flushes_and_exits_zero(tmp_path: Path) -> None:
    hp = start_hub_process(tmp_path / "data")
    try:
        events = [make_event("cost") for _ in range(50)]
        assert httpx.post(f"{hp.api}/api/v1/events", json=events).status_code == 202
    finally:
        rc = stop_hub_process(hp, signal.SIGTERM)
    assert rc == 0, hp.log()
    log = hp.log()
    assert '"msg": "hub stopped"' in log
    hp2 = start_hub_process(tmp_path / "data")
    try:
        got = httpx.get(f"{hp2.api}/api/v1/events", params={"limit": 100}).json()["events"]
        assert len(got) == 50
    finally:
        stop_hub_process(hp2)


def test_kill_9_after_ack_loses_nothing(tmp_path: Path) -> None:
    hp = start_hub_process(tmp_path / "data", "--log-level", "warning")
    acked: list[str] = []
    try:
        for _ in range(20):
            batch = [make_event("telemetry") for _ in range(100)]
            r = httpx.post(f"{hp.api}/api/v1/events", json=batch)
            assert r.status_code == 202
            acked += [e["event_id"] for e in batch]
    finally:
        hp.proc.send_signal(signal.SIGKILL)
        hp.proc.wait(10)
    hp2 = start_hub_process(tmp_path / "data")
    try:
        ids: set[str] = set()
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(f"{hp2.api}/api/v1/events", params=params).json()
            ids |= {e["event_id"] for e in page["events"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert ids == set(acked)
    finally:
        stop_hub_process(hp2)


def test_invalid_config_exits_2_with_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "hub.yaml"
    cfg.write_text("service: {api: {port: nope}}\n")
    out = subprocess.run([sys.executable, "-m", "hub.cli", "run", "--config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "service.api.port" in out.stderr


def test_a_port_in_use_exits_1_in_one_line_before_opening_the_store(tmp_path: Path) -> None:
    # uvicorn's own failure was a SystemExit(3) inside a task: "Task exception was never retrieved" and a
    # traceback, after the store had started on the data directory.
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        out = subprocess.run(
            [sys.executable, "-m", "hub.cli", "run", "--data-dir", str(data), "--api-port", str(port),
             "--otlp-grpc-port", "0", "--otlp-http-port", "0"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert f"hub run: cannot listen on 127.0.0.1:{port} (service.api.host): address already in use" in out.stderr
    assert "--api-port chooses another port" in out.stderr and "Traceback" not in out.stderr
    assert not (data / "hub.duckdb").exists() and not (data / "wal").exists()
