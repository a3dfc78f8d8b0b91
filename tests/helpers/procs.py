"""Start real VictoriaMetrics / Alertmanager processes for tests.

Each helper starts the Debian-packaged binary on a free loopback port with a temporary data
directory, waits until it answers its readiness endpoint, and kills it on exit::

    from tests.helpers.procs import run_victoriametrics, run_alertmanager, require_binary

    def test_roundtrip(tmp_path):
        with run_victoriametrics(tmp_path) as vm:
            httpx.post(f"{vm.url}/api/v1/import", content=lines)
            vm.flush()
            httpx.get(f"{vm.url}/api/v1/query", params={"query": "up"})

A missing binary raises ``pytest.skip`` with the name of the Debian package that provides it
(``make apt`` installs them). Output of the process goes to a log file in the temp directory and
is included in the error when the process fails to start.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

#: binary name -> Debian package that ships it
_PACKAGES = {
    "victoria-metrics": "victoria-metrics",
    "vmalert": "victoria-metrics",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}

DEFAULT_START_TIMEOUT_S = 15.0


def find_binary(*names: str) -> str | None:
    """Return the path of the first of ``names`` found on PATH (or /usr/bin), else None."""
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    return None


def require_binary(*names: str) -> str:
    """Like :func:`find_binary`, but skip the calling test with a clear reason when absent."""
    path = find_binary(*names)
    if path is None:
        package = _PACKAGES.get(names[0], "?")
        pytest.skip(f"{' / '.join(names)} not installed (Debian package {package!r}; run `make apt`)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class VMHandle:
    """A running single-node VictoriaMetrics."""

    url: str
    data_dir: Path
    log_path: Path

    def flush(self) -> None:
        """Make freshly imported samples searchable (``/internal/force_flush``)."""
        _http_get(f"{self.url}/internal/force_flush", timeout=10)


@dataclass(frozen=True)
class AMHandle:
    """A running Alertmanager."""

    url: str
    data_dir: Path
    log_path: Path


def _http_get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        resp.read()
        return int(resp.status)


@contextlib.contextmanager
def _run_process(
    argv: Sequence[str], ready_url: str, log_path: Path, timeout_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    log = log_path.open("wb")
    proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{argv[0]} exited with {proc.returncode} before it was ready:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            try:
                if _http_get(ready_url) == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{argv[0]} not ready at {ready_url} after {timeout_s}s:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()


@contextlib.contextmanager
def run_victoriametrics(
    tmp_path: Path, *extra_flags: str, timeout_s: float = DEFAULT_START_TIMEOUT_S, port: int | None = None
) -> Iterator[VMHandle]:
    """Run ``victoria-metrics`` on a free loopback port with data under ``tmp_path``.

    Pass the ``port`` of an earlier run with the same ``tmp_path`` to restart it on its data (outages).

    Flags suit tests: samples of any age are accepted (``-retentionPeriod=100y``), fresh samples
    are visible at once (``-search.latencyOffset=0s``) and the response cache is off.
    """
    binary = require_binary("victoria-metrics")
    port = port or free_port()
    data_dir = tmp_path / f"vm-data-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data_dir}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
        *extra_flags,
    ]
    log_path = tmp_path / f"victoria-metrics-{port}.log"
    with _run_process(argv, f"{url}/health", log_path, timeout_s):
        yield VMHandle(url=url, data_dir=data_dir, log_path=log_path)


@contextlib.contextmanager
def run_alertmanager(
    tmp_path: Path, config_path: Path, *extra_flags: str, timeout_s: float = DEFAULT_START_TIMEOUT_S
) -> Iterator[AMHandle]:
    """Run Alertmanager with ``config_path`` on a free loopback port (clustering off)."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    data_dir = tmp_path / f"am-data-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
        *extra_flags,
    ]
    log_path = tmp_path / f"alertmanager-{port}.log"
    with _run_process(argv, f"{url}/-/ready", log_path, timeout_s):
        yield AMHandle(url=url, data_dir=data_dir, log_path=log_path)
