"""``hub run`` reports what the configuration alone rules out (an open bind without auth) before it imports the
service and the analytic packages (pandas, scipy, statsforecast...: seconds), and ``hub --help`` /
``hub run --help`` import nothing but the CLI. ``check_startable`` is the one implementation, also used by
``HubService`` (tests/test_service_startup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.components import check_startable
from hubcore.errors import ConfigError
from tests.helpers.cli_probe import heavy_modules, probe_hub
from tests.helpers.hub import hub_config

#: Packages the service needs and a refusal or a usage text does not (top-level names or dotted modules).
HEAVY = ("scipy", "statsforecast", "statsmodels", "sklearn", "pandas", "numpy", "duckdb", "fastapi", "uvicorn",
         "grpc", "analytics", "api", "hub.service", "processors", "hub.servers", "hub.startup_replay",
         "hub.shutdown", "hub.exporter_hooks", "hub.security_setup")  # fmt: skip


def _probe(*argv: str) -> tuple[dict[str, Any], str]:
    """Run ``hub ARGV`` in a fresh interpreter: (exit code and the modules it imported, stderr)."""
    probe = probe_hub(*argv)
    return {"code": probe.code, "modules": probe.modules}, probe.stderr


def _heavy(modules: list[str]) -> list[str]:
    return heavy_modules(modules, HEAVY)


def test_an_open_bind_without_auth_is_refused_before_the_service_is_imported(tmp_path: Path) -> None:
    # the refusal used to come from HubService.start(): after importing the whole service (~5 s) and after
    # the key store, the dead-letter queue and the audit log had been created in the data directory
    data = tmp_path / "data"
    result, stderr = _probe("run", "--host", "0.0.0.0", "--data-dir", str(data))
    assert result["code"] == 2
    (line,) = stderr.strip().splitlines()
    assert line.startswith("hub run: refusing to start: service.api.host: refusing to listen on '0.0.0.0'")
    assert "statsforecast" not in result["modules"] and "scipy" not in result["modules"]
    assert _heavy(result["modules"]) == []
    assert not data.exists()


def test_an_invalid_configuration_is_reported_before_the_service_is_imported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result, stderr = _probe("run", "--api-port", "99999", "--data-dir", str(data))
    assert result["code"] == 2
    assert stderr.strip().startswith("hub run: invalid configuration: service.api.port")
    assert _heavy(result["modules"]) == []
    assert not data.exists()


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_usage_imports_only_the_cli(argv: list[str]) -> None:
    result, _ = _probe(*argv)
    assert result["code"] == 0
    assert _heavy(result["modules"]) == []
    assert "hubcore.config" not in result["modules"] and "msgspec" not in result["modules"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"service__api__host": "0.0.0.0"}, "service.api.host"),
        ({"receivers__otlp__protocols__grpc__endpoint": "0.0.0.0:0"}, "receivers.otlp.protocols.grpc.endpoint"),
        ({"receivers__otlp__protocols__http__endpoint": "[::]:0"}, "receivers.otlp.protocols.http.endpoint"),
        ({"service__api__host": "hub.example.com"}, "service.api.host"),
    ],
)
def test_check_startable_names_the_open_listener(tmp_path: Path, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_startable(hub_config(tmp_path, **overrides))
    assert info.value.key == key
    assert "without authentication" in str(info.value)


def test_check_startable_accepts_loopback_auth_and_disabled_listeners(tmp_path: Path) -> None:
    check_startable(hub_config(tmp_path))  # loopback, auth off: allowed (with a warning at start)
    check_startable(hub_config(tmp_path, service__api__host="0.0.0.0", service__auth__enabled=True))
    # a disabled receiver binds nothing, whatever its endpoint says
    check_startable(hub_config(tmp_path, otlp_http=False, receivers__otlp__protocols__http__endpoint="0.0.0.0:0"))


@pytest.mark.parametrize("backend", ["victoriametrics", "loki"])
def test_a_query_backend_that_is_not_configured_is_refused(tmp_path: Path, backend: str) -> None:
    """It had silently answered POST /api/v1/query from the embedded store."""
    with pytest.raises(ConfigError) as info:
        check_startable(hub_config(tmp_path, service__query__backend=backend))
    assert info.value.key == "service.query.backend" and f"exporters.{backend}" in str(info.value)
    check_startable(hub_config(tmp_path, service__query__backend=backend,
                               **{f"exporters__{backend}": {"endpoint": "http://127.0.0.1:1"}}))  # fmt: skip
    check_startable(hub_config(tmp_path, service__query__backend="auto"))


def test_a_held_data_directory_is_refused_before_the_service_is_imported(tmp_path: Path) -> None:
    """A second ``hub run`` on a data directory another process has open was refused only by the store, after
    the service had been imported (6-13 s). This process holds the database as a running hub does (DuckDB's
    lock); the refusal names the directory and this pid, and touches nothing in the directory."""
    import os

    import duckdb

    from hubcore.storage.lock import in_use_message

    data = tmp_path / "data"
    data.mkdir()
    with duckdb.connect(str(data / "hub.duckdb")):
        before = sorted(p.name for p in data.iterdir())
        result, stderr = _probe("run", "--data-dir", str(data), "--api-port", "0", "--otlp-grpc-port", "0",
                                "--otlp-http-port", "0")  # fmt: skip
        assert sorted(p.name for p in data.iterdir()) == before
    assert result["code"] == 1
    assert stderr.strip().splitlines() == [f"hub run: {in_use_message(data, os.getpid())}"]
    assert f"is in use by another process (PID {os.getpid()})" in stderr and str(data) in stderr
    assert _heavy(result["modules"]) == []


def test_a_taken_port_is_refused_before_the_service_is_imported(tmp_path: Path) -> None:
    """A second hub with the same ports (another data directory) had imported the service and created the key
    store, the dead-letter queue and the audit log there before the port check refused it."""
    import socket

    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result, stderr = _probe("run", "--data-dir", str(data), "--api-port", str(port), "--otlp-grpc-port", "0",
                                "--otlp-http-port", "0")  # fmt: skip
    assert result["code"] == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"hub run: cannot listen on 127.0.0.1:{port} (service.api.port): ")
    assert line.endswith("is another hub running? --api-port chooses another port")
    assert _heavy(result["modules"]) == []
    assert not data.exists()


def test_database_holder_sees_no_holder_of_a_free_or_missing_file(tmp_path: Path) -> None:
    """(A held one: the test above, where another process asks.)"""
    import duckdb

    from hubcore.storage.lock import database_holder

    assert database_holder(tmp_path / "hub.duckdb") is None  # missing
    duckdb.connect(str(tmp_path / "hub.duckdb")).close()
    assert database_holder(tmp_path / "hub.duckdb") is None  # present, nobody has it open
