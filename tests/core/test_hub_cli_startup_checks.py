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
         "grpc", "analytics", "api", "hub.service", "processors")  # fmt: skip


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
