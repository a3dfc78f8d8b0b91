"""Run a real hub (the whole service: API, receivers, store) in-process or as a subprocess for tests.

    with running_hub(tmp_path) as hub:
        httpx.post(f"{hub.api}/api/v1/events", json=[...])
        hub.flush()

Ports are chosen by the OS (port 0) in-process; subprocesses get free ports picked beforehand.

In-process hubs run on the loop their config's ``service.event_loop`` names, and :func:`hub_config` names
asyncio's own unless a test sets ``service__event_loop`` or the environment sets ``HUB_TEST_EVENT_LOOP``
(``HUB_TEST_EVENT_LOOP=uvloop pytest tests/receivers`` runs those on uvloop). ``hub run`` subprocesses get the
default, ``auto``: uvloop, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.cli import new_event_loop, resolve_event_loop
from hub.service import HubService
from hubcore.config import HubConfig, config_from_dict

REPO = Path(__file__).resolve().parents[2]


def hub_config(data_dir: Path, *, grpc: bool = True, otlp_http: bool = True, **overrides: Any) -> HubConfig:
    """A test config on port 0 everywhere, fsync off (tests that check durability turn it on), no forecast
    warm-up at start (``processors.analytics.warm_up``)."""
    data: dict[str, Any] = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "127.0.0.1:0", "enabled": grpc},
                    "http": {"endpoint": "127.0.0.1:0", "enabled": otlp_http},
                }
            }
        },
        "exporters": {"embedded": {"data_dir": str(data_dir), "wal_fsync": False, "flush_interval": 0.05}},
        "service": {"api": {"host": "127.0.0.1", "port": 0}},
    }
    for dotted, value in overrides.items():
        node = data
        *path, last = dotted.split("__")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    service = data.setdefault("service", {})
    if isinstance(service, dict):
        service.setdefault("event_loop", os.environ.get("HUB_TEST_EVENT_LOOP", "asyncio"))
    # no forecast warm-up thread per test hub (tests that want it set processors__analytics={"warm_up": True})
    processors = data.setdefault("processors", {})
    analytics = processors.get("analytics") or {}
    if isinstance(analytics, dict):
        processors["analytics"] = {"warm_up": False, **analytics}
    return config_from_dict(data)


@dataclass
class RunningHub:
    service: HubService
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.service.bound['api']}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.service.bound['otlp_http']}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.service.bound['otlp_grpc']}"

    def flush(self, timeout: float = 30.0) -> None:
        assert self.service.store.flush(timeout), "store did not flush in time"

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        self.flush()
        return self.service.store.read(query, params).fetchall()


@contextlib.contextmanager
def running_hub(data_dir: Path, config: HubConfig | None = None, **kwargs: Any) -> Iterator[RunningHub]:
    cfg = config or hub_config(data_dir, **kwargs)
    service = HubService(cfg, install_signal_handlers=False)
    loop = new_event_loop(resolve_event_loop(cfg.service.event_loop))
    ready = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await service.start()
        except BaseException as exc:  # surface start errors to the test
            failure.append(exc)
            ready.set()
            await service.shutdown()
            return
        ready.set()
        await service._stop.wait()
        await service.shutdown()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(60)
    if failure:
        thread.join(10)
        raise failure[0]
    try:
        yield RunningHub(service, loop, thread)
    finally:
        loop.call_soon_threadsafe(service.request_stop)
        thread.join(60)
        loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubProcess:
    proc: subprocess.Popen[bytes]
    api: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_hub_process(data_dir: Path, *extra: str, fsync: bool = True, wait: bool = True) -> HubProcess:
    """``hub run`` as a real subprocess (for SIGTERM and kill -9 tests)."""
    api_port, grpc_port, http_port = free_port(), free_port(), free_port()
    args = [
        sys.executable, "-m", "hub.cli", "run", "--data-dir", str(data_dir), "--api-port", str(api_port),
        "--otlp-grpc-port", str(grpc_port), "--otlp-http-port", str(http_port), *extra,
    ]  # fmt: skip
    if not fsync:
        args.append("--no-fsync")
    log_path = data_dir.parent / f"hub-{api_port}.log"
    fh = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ})
    hp = HubProcess(proc, f"http://127.0.0.1:{api_port}", log_path)
    if wait:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"hub exited early ({proc.returncode}):\n{hp.log()}")
            try:
                if httpx.get(f"{hp.api}/readyz", timeout=1).status_code == 200:
                    return hp
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"hub did not become ready:\n{hp.log()}")
    return hp


def stop_hub_process(hp: HubProcess, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if hp.proc.poll() is None:
        hp.proc.send_signal(sig)
        try:
            hp.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            hp.proc.kill()
            hp.proc.wait()
    return int(hp.proc.returncode)
