"""HubService startup: a stop request during the write-ahead log replay is honoured (no servers bound), and a
long replay logs its progress. A corrupt ``hub.duckdb`` is one line that names the file."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

import hub.startup_replay as replay_mod  # the module whose constants the replay reads
from hub.service import HubService
from tests.helpers.hub import hub_config


async def _start_then_shut_down(svc: HubService) -> None:
    """Start the hub (what a refusal raises, it raises) and shut it down in any case."""
    try:
        await svc.start()
    finally:
        await svc.shutdown()


def test_a_stop_during_the_startup_replay_stops_without_serving_and_progress_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The replay used to be one store.flush(300.0) that ignored the stop event, after which the servers were bound
    # and "hub started" was logged although a stop had been requested; nothing said how far the replay was.
    monkeypatch.setattr(replay_mod, "REPLAY_PROGRESS_SECONDS", 0.05)
    svc = HubService(hub_config(tmp_path / "data"), install_signal_handlers=False)
    waits: list[float] = []

    def replay_never_done(timeout: float = 30.0) -> bool:  # a replay that does not finish (a stuck writer)
        waits.append(timeout)
        time.sleep(min(timeout, 0.01))
        return False

    monkeypatch.setattr(svc.store, "flush", replay_never_done)

    def progress() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "hub" and r.getMessage() == "replaying write-ahead log"]

    async def main() -> None:
        run = asyncio.create_task(svc.run())
        for _ in range(3000):  # a deadline against a hang, not a timing check
            if progress() or run.done():
                break
            await asyncio.sleep(0.01)
        svc.request_stop()
        await asyncio.wait_for(run, 60)

    with caplog.at_level(logging.INFO, logger="hub"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "hub"]
    assert progress(), messages
    assert {"applied_rows", "pending_rows", "elapsed_seconds"} <= set(vars(progress()[0]))
    assert any(m.startswith("stop requested during the write-ahead log replay") for m in messages), messages
    assert "hub started" not in messages
    assert svc.bound == {} and not svc._servers and svc._grpc is None
    assert waits[0] <= replay_mod._REPLAY_POLL_SECONDS  # the replay is waited for in short slices


def test_a_replay_that_ends_starts_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_mod, "REPLAY_PROGRESS_SECONDS", 0.0)
    svc = HubService(hub_config(tmp_path / "data"), install_signal_handlers=False)
    real_flush = svc.store.flush
    answers = iter([False, False])

    def slow_then_done(timeout: float = 30.0) -> bool:
        return next(answers, None) or real_flush(timeout)

    monkeypatch.setattr(svc.store, "flush", slow_then_done)

    async def main() -> None:
        await svc.start()
        try:
            assert set(svc.bound) == {"api", "otlp_grpc", "otlp_http"}
        finally:
            await svc.shutdown()

    asyncio.run(main())


def test_a_corrupt_database_is_one_error_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.duckdb").write_text("x\n")
    svc = HubService(hub_config(data), install_signal_handlers=False)

    with pytest.raises(RuntimeError) as info:
        asyncio.run(_start_then_shut_down(svc))
    msg = str(info.value)
    assert str(data / "hub.duckdb") in msg and "not a valid DuckDB database file" in msg
    assert "restore it from a backup" in msg and "\n" not in msg


def test_stack_exporters_drain_in_parallel_within_one_deadline(tmp_path: Path) -> None:
    """A stop used to give each unreachable backend the whole timeout, one after another (90 s for three)."""
    import threading

    from tests.helpers.hub import running_hub

    barrier = threading.Barrier(3, timeout=20)
    seen: list[tuple[str, float, bool]] = []

    class Stuck:
        def __init__(self, name: str) -> None:
            self.name = name

        def shutdown(self, timeout: float) -> None:  # a backend that is down: drains until its deadline
            try:
                barrier.wait()  # passes only if all three are draining at the same time
                seen.append((self.name, timeout, True))
            except threading.BrokenBarrierError:
                seen.append((self.name, timeout, False))

    with running_hub(tmp_path, grpc=False, otlp_http=False) as hub:
        hub.service.stack_exporters.extend((n, Stuck(n)) for n in ("victoriametrics", "loki", "tempo"))
    assert sorted(n for n, _t, _ok in seen) == ["loki", "tempo", "victoriametrics"]
    assert all(ok for _n, _t, ok in seen), seen
    assert all(t <= 30.0 for _n, t, _ok in seen)


def test_an_open_bind_without_auth_is_refused_before_the_data_directory_is_touched(tmp_path: Path) -> None:
    # the same check as `hub run` (hub.components.check_startable); it used to run in start(), after the
    # constructor had made the key store, the dead-letter queue and the audit log in the data directory
    from hubcore.errors import ConfigError

    data = tmp_path / "data"
    with pytest.raises(ConfigError) as info:
        HubService(hub_config(data, service__api__host="0.0.0.0"), install_signal_handlers=False)
    assert info.value.key == "service.api.host" and "without authentication" in str(info.value)
    assert not data.exists()


def test_what_a_crash_left_mid_rewrite_is_removed_once_the_hub_holds_the_data_directory(tmp_path: Path) -> None:
    # the dead-letter queue's rewrite and the audit head's leave a .tmp when a crash comes before the rename;
    # it is never read, and the hub removes it at start, once the store holds the directory's lock: not in
    # the constructor, which a second hub (refused on that lock) also runs while the first one may be
    # mid-rewrite
    data = tmp_path / "data"
    leftovers = [data / "dlq" / "dlq.jsonl.tmp", data / "dlq" / "dlq.tmp", data / "audit" / "audit.jsonl.head.tmp"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    svc = HubService(hub_config(data, grpc=False, otlp_http=False, service__audit__enabled=True),
                     install_signal_handlers=False)  # fmt: skip
    assert all(path.exists() for path in leftovers)

    async def main() -> None:
        await svc.start()
        try:
            assert not any(path.exists() for path in leftovers)
        finally:
            await svc.shutdown()

    asyncio.run(main())


def _audit_log_with_a_torn_tail(data: Path) -> tuple[Path, bytes]:
    """An audit log of two records and a half-written third line (a running hub mid-append, or a crash)."""
    from hubcore.security.audit import AuditLog

    log = AuditLog(data, fsync=False)
    for n in range(2):
        log.append(subject="alice", tenant_id="acme", action="keys:manage", resource=f"key/{n}")
    log.close()
    with open(log.path, "ab") as fh:
        fh.write(b'{"seq": 3, "ts": "2026-')
    return log.path, log.path.read_bytes()


def test_a_hub_refused_on_the_data_directory_lock_leaves_the_audit_logs_last_line_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # AuditLog's constructor used to cut a torn last line, and the hub constructs it before the store takes the
    # data directory's lock: a second hub, then refused on that lock, cut the running hub's record in mid-write
    import subprocess
    import sys

    data = tmp_path / "data"
    path, before = _audit_log_with_a_torn_tail(data)
    holder = subprocess.Popen(  # another process holds hub.duckdb, as a running hub does
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(data / "hub.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        svc = HubService(hub_config(data, grpc=False, otlp_http=False, service__audit__enabled=True),
                         install_signal_handlers=False)  # fmt: skip

        with caplog.at_level(logging.WARNING, logger="hub"), pytest.raises(RuntimeError, match="in use by another"):
            asyncio.run(_start_then_shut_down(svc))
    finally:
        holder.communicate("", timeout=30)
    assert path.read_bytes() == before
    assert not [r for r in caplog.records if r.name == "hub"]  # the refusal alone: no "AUTHENTICATION IS OFF"


def test_a_hub_refused_on_a_busy_port_says_only_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the loud "AUTHENTICATION IS OFF" warning came first, then the one line saying this hub does not start
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        svc = HubService(hub_config(tmp_path / "data", grpc=False, otlp_http=False, service__api__port=port),
                         install_signal_handlers=False)  # fmt: skip

        with caplog.at_level(logging.WARNING, logger="hub"), pytest.raises(RuntimeError, match="--api-port"):
            asyncio.run(_start_then_shut_down(svc))
    assert not [r.getMessage() for r in caplog.records if r.name == "hub"]


def test_an_open_hub_that_starts_still_warns_that_authentication_is_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.helpers.hub import running_hub

    with caplog.at_level(logging.WARNING, logger="hub"), running_hub(tmp_path, grpc=False, otlp_http=False):
        pass
    assert any(r.getMessage().startswith("AUTHENTICATION IS OFF") for r in caplog.records if r.name == "hub")


def test_the_audit_logs_torn_last_line_is_cut_once_the_hub_holds_the_data_directory(tmp_path: Path) -> None:
    from hubcore.security.audit import verify

    data = tmp_path / "data"
    path, before = _audit_log_with_a_torn_tail(data)
    svc = HubService(hub_config(data, grpc=False, otlp_http=False, service__audit__enabled=True),
                     install_signal_handlers=False)  # fmt: skip
    assert path.read_bytes() == before  # constructing the hub touches nothing

    async def main() -> None:
        await svc.start()
        try:
            assert path.read_bytes() == before[: before.rindex(b"\n") + 1]
            assert svc.security.audit is not None and svc.security.audit.count == 2
        finally:
            await svc.shutdown()

    asyncio.run(main())
    assert verify(path).ok
