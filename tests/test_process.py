"""`hub run` as a real process: clean SIGTERM (also during the startup replay), nothing acknowledged lost on kill -9,
and one line (no traceback) for a bad config or a corrupt state file.

The process that is stopped or killed is a real `hub run`; the hub that then reads the data directory back is
the same service started in-process (`running_hub`: the same startup and write-ahead log replay, without the
seconds a new interpreter spends importing it). `hub run` on an existing data directory is itself exercised by
the replay and audit-log tests below."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.events import make_event
from tests.helpers.hub import running_hub, start_hub_process, stop_hub_process


def stored_ids(api: str) -> set[str]:
    """Every stored event id, read through the API's cursor pagination."""
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{api}/api/v1/events", params=params).json()
        ids |= {e["event_id"] for e in page["events"]}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


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
    with running_hub(tmp_path / "data", grpc=False, otlp_http=False) as again:
        got = httpx.get(f"{again.api}/api/v1/events", params={"limit": 100}).json()["events"]
        assert len(got) == 50


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
    with running_hub(tmp_path / "data", grpc=False, otlp_http=False) as again:
        assert stored_ids(again.api) == set(acked)


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
    assert f"hub run: cannot listen on 127.0.0.1:{port} (service.api.port): address already in use" in out.stderr
    assert "--api-port chooses another port" in out.stderr and "Traceback" not in out.stderr
    # refused before the service is loaded (it had come after "hub starting" and "hub loaded", seconds later),
    # and before anything is written to the data directory (the key store, the DLQ and the audit log had been)
    assert len(out.stderr.strip().splitlines()) == 1
    assert not data.exists()


def _hub_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", "run", *args], capture_output=True, text=True, timeout=120)


def _plain_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def _corrupt_checksum(path: Path) -> None:
    from hubcore.storage.embedded import EmbeddedStore

    store = EmbeddedStore(path.parent, wal_fsync=False)
    store.start()
    store.shutdown()
    with open(path, "r+b") as fh:  # a block of the catalog: "Corrupt database file: computed checksum ..."
        fh.seek(12288)
        fh.write(bytes(range(256)) * 32)


@pytest.mark.parametrize(
    ("name", "damage", "says"),
    [
        ("hub.duckdb", lambda p: p.write_text("x\n"), "not a valid DuckDB database file"),
        ("hub.duckdb", _corrupt_checksum, "Corrupt database file"),
        ("auth.sqlite", lambda p: p.write_bytes(bytes(range(256)) * 48), "file is not a database"),
    ],
)
def test_a_corrupt_state_file_exits_1_in_one_line_naming_it(
    tmp_path: Path, name: str, damage: Callable[[Path], None], says: str
) -> None:
    # each was a Python traceback (_duckdb.IOException, _duckdb.Error, sqlite3.DatabaseError)
    data = tmp_path / "data"
    data.mkdir()
    damage(data / name)
    out = _hub_run("--data-dir", str(data), "--api-port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = _plain_lines(out.stderr)
    assert line.startswith("hub run: ") and str(data / name) in line and says in line
    assert "restore it from a backup" in line
    # the first line comes before the seconds of loading the service (`hub run` had been silent for ~5 s)
    first = json.loads(out.stderr.splitlines()[0])
    assert first["msg"] == "hub starting" and first["data_dir"] == str(data)
    assert any(json.loads(x).get("msg") == "hub loaded" for x in out.stderr.splitlines() if x.startswith("{"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"\xff\xfe", "is not UTF-8 text"),
        (b"exporters: {embedded: {memory_limit: lots}}\n", "exporters.embedded.memory_limit: expected a size"),
    ],
)
def test_a_bad_config_file_exits_2_in_one_line_before_the_data_dir_is_made(
    tmp_path: Path, text: bytes, says: str
) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_bytes(text)
    data = tmp_path / "data"
    out = _hub_run("--config", str(cfg), "--data-dir", str(data))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    (line,) = _plain_lines(out.stderr)
    assert line.startswith("hub run: invalid configuration: ") and says in line
    assert not data.exists()


def test_a_directory_as_config_is_named_a_directory(tmp_path: Path) -> None:
    out = _hub_run("--config", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert _plain_lines(out.stderr) == [f"hub run: invalid configuration: config file {str(tmp_path)!r} is a directory; "
                                        "pass the YAML file in it"]  # fmt: skip


def test_garbage_after_the_last_audit_record_is_set_aside_and_the_hub_starts(tmp_path: Path) -> None:
    # `echo garbage >> audit.jsonl` was a JSONDecodeError traceback at startup
    from hubcore.security.audit import AuditLog, verify

    data = tmp_path / "data"
    log = AuditLog(data, fsync=False)
    log.append(subject="alice", tenant_id="acme", action="keys:manage")
    log.close()
    with open(log.path, "ab") as fh:
        fh.write(b"garbage\n")
    hp = start_hub_process(data)
    rc = stop_hub_process(hp)
    assert rc == 0, hp.log()
    assert "Traceback" not in hp.log()
    assert verify(log.path).ok
    assert log.path.with_name("audit.jsonl.damaged").read_bytes() == b"garbage\n"


def test_sigterm_during_the_startup_replay_stops_without_serving_and_loses_nothing(tmp_path: Path) -> None:
    # The startup waited up to 300 s for the WAL replay without looking at the stop event, then bound its ports
    # and logged "hub started" although SIGTERM had come. flush_interval 60 keeps acknowledged batches in the WAL
    # only (the writer waits that long to gather rows), so the next start's replay waits as long.
    slow = tmp_path / "slow.yaml"
    slow.write_text("exporters: {embedded: {flush_interval: 60}}\n")
    data = tmp_path / "data"
    hp = start_hub_process(data, "--config", str(slow), fsync=False)
    acked: list[str] = []
    try:
        for _ in range(5):
            batch = [make_event("telemetry") for _ in range(100)]
            assert httpx.post(f"{hp.api}/api/v1/events", json=batch).status_code == 202
            acked += [e["event_id"] for e in batch]
    finally:
        hp.proc.send_signal(signal.SIGKILL)
        hp.proc.wait(10)
    hp2 = start_hub_process(data, "--config", str(slow), fsync=False, wait=False)
    for _ in range(1200):  # a deadline against a hang, not a timing check
        if "replaying write-ahead log" in hp2.log() or hp2.proc.poll() is not None:
            break
        time.sleep(0.05)
    rc = stop_hub_process(hp2, signal.SIGTERM, timeout=120)
    log = hp2.log()
    assert rc == 0, log
    assert "stop requested during the write-ahead log replay" in log
    assert '"msg": "hub started"' not in log and "Traceback" not in log
    with running_hub(data, grpc=False, otlp_http=False) as again:
        assert stored_ids(again.api) == set(acked)
