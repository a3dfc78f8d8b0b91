"""Which exporters run, built from the config by their factories (the Collector's component registry).

The core config keeps the stack exporters' sections as raw mappings; here each is converted into its
own config model (errors name the YAML key) and handed to its factory.

    >>> from hubcore.config import HubConfig
    >>> [n for n, _ in stack_exporter_configs(HubConfig())]
    []
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from hubcore.config import STACK_EXPORTERS, HubConfig, config_error
from hubcore.errors import ConfigError
from hubcore.security.authenticator import check_bind_safety
from hubcore.storage.lock import database_holder, in_use_message


def _factories() -> dict[str, tuple[type[Any], Callable[..., Any]]]:
    from exporters.alertmanager import factory as am
    from exporters.alertmanager.config import AlertmanagerExporterConfig
    from exporters.loki import factory as loki
    from exporters.loki.config import LokiExporterConfig
    from exporters.tempo import factory as tempo
    from exporters.tempo.config import TempoExporterConfig
    from exporters.victoriametrics import factory as vm
    from exporters.victoriametrics.config import VictoriaMetricsExporterConfig

    return {
        "victoriametrics": (VictoriaMetricsExporterConfig, vm.create_exporter),
        "loki": (LokiExporterConfig, loki.create_exporter),
        "tempo": (TempoExporterConfig, tempo.create_exporter),
        "alertmanager": (AlertmanagerExporterConfig, am.create_exporter),
    }


def typed_section(raw: dict[str, Any] | None, config_type: type[Any], key: str) -> Any:
    """Convert a raw YAML mapping into ``config_type`` (defaults when None) and validate it; errors name
    the key under ``key``."""
    try:
        typed = msgspec.convert(raw or {}, config_type, strict=False)
    except msgspec.ValidationError as exc:
        raise config_error(exc, key) from None
    validate = getattr(typed, "validate", None)
    return validate(key) if callable(validate) else typed


def alerting_config(cfg: HubConfig) -> Any:
    """``processors.alerting``; without an ``external_url`` the alerts' links (Alertmanager's
    ``generatorURL``) point at the API this hub serves, not at a fixed ``127.0.0.1:8080``."""
    from processors.alerting.config import AlertingConfig

    raw = dict(cfg.processors.alerting or {})
    if "external_url" not in raw:
        api = cfg.service.api
        host = api.host if api.host not in ("", "0.0.0.0", "::") else socket.getfqdn()
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if cfg.service.tls.enabled else "http"
        raw["external_url"] = f"{scheme}://{host}:{api.port}"
    return typed_section(raw, AlertingConfig, "processors.alerting")


def correlation_config(cfg: HubConfig) -> tuple[bool, float, Any]:
    """``(enabled, flush_interval, EngineConfig)`` from ``processors.correlation``::

    processors:
      correlation: {enabled: true, flush_interval: 1.0, window_s: 60, max_events_per_window: 50000}
    """
    from analytics.correlation import EngineConfig

    raw = dict(cfg.processors.correlation or {})
    enabled = raw.pop("enabled", True)
    flush_interval = raw.pop("flush_interval", 1.0)
    key = "processors.correlation"
    if not isinstance(enabled, bool):
        raise ConfigError(f"{key}.enabled", "must be true or false")
    if not isinstance(flush_interval, int | float) or not 0 < flush_interval <= 60:
        raise ConfigError(f"{key}.flush_interval", "must be a number of seconds in (0, 60]")
    try:
        engine_cfg = msgspec.convert(raw, EngineConfig, strict=False)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise ConfigError(key, str(exc)) from None
    return enabled, float(flush_interval), engine_cfg


def analytics_config(cfg: HubConfig) -> Any:
    """``processors.analytics`` as the analytics service's config (``None``: the built-in one)."""
    from analytics.service.config import config_from_dict

    raw = cfg.processors.analytics
    return config_from_dict(raw, "processors.analytics") if raw else None


def check_startable(cfg: HubConfig) -> None:
    """Raise :class:`ConfigError` when the hub must refuse to run with ``cfg``: a listener on an address other
    than loopback while authentication is off (:func:`check_bind_safety`), or ``service.query.backend``
    naming a stack backend that is not configured (it had answered from the embedded store instead).

    It reads the configuration only (no file, no port) and needs no heavy module: ``hub run`` calls it before it
    imports the service, so the refusal is printed at once, and ``HubService`` calls it before it touches the
    data directory, for code that builds the service itself. Port conflicts and unreadable files are found
    later, when the service starts.
    """
    auth_on = cfg.service.auth.enabled
    for key, host in cfg.bind_hosts().items():
        refusal = check_bind_safety(host, auth_on)
        if refusal is not None:
            raise ConfigError(key, refusal)
    backend = cfg.service.query.backend
    if backend in ("victoriametrics", "loki") and getattr(cfg.exporters, backend) is None:
        raise ConfigError(
            "service.query.backend",
            f"{backend} needs exporters.{backend} (--{backend}-url URL, or exporters.{backend}.endpoint in the "
            "file); or use auto or embedded",
        )


#: The setting that holds each listener's port (the API's host and port are two keys), named when it is taken.
PORT_KEYS = {"service.api.host": "service.api.port"}
#: The flag that moves each listener, named when its port is taken.
PORT_FLAGS = {
    "service.api.host": "--api-port",
    "receivers.otlp.protocols.grpc.endpoint": "--otlp-grpc-port",
    "receivers.otlp.protocols.http.endpoint": "--otlp-http-port",
}


def port_unavailable(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now (``None`` when it can; port 0 always can).

    >>> port_unavailable("127.0.0.1", 0) is None
    True
    """
    if port == 0:
        return None
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
        try:
            probe.bind(addr)
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
    return None


def port_conflict(cfg: HubConfig) -> str | None:
    """The refusal for the first listener of ``cfg`` whose port cannot be listened on now, else ``None``."""
    for key, (host, port) in cfg.listeners().items():
        reason = port_unavailable(host, port)
        if reason is not None:
            return (f"cannot listen on {host}:{port} ({PORT_KEYS.get(key, key)}): {reason}; is another hub running? "
                    f"{PORT_FLAGS[key]} chooses another port")  # fmt: skip
    return None


def startup_conflict(cfg: HubConfig) -> str | None:
    """Why another process stops a hub with ``cfg`` from starting now, else ``None``: its data directory's
    database held by another process (a running hub: named by its pid), or a listener's port taken.

    ``hub run`` asks before it imports the service (seconds), so a second hub is refused at once; the service
    asks again when it starts (ports) and the store refuses a held database when it opens it (a hub that
    lost the race). Call it only from a process that does not have the database open itself
    (:func:`hubcore.storage.lock.database_holder`)."""
    data_dir = cfg.exporters.embedded.data_dir
    holder = database_holder(Path(data_dir) / "hub.duckdb")
    if holder is not None:
        return in_use_message(data_dir, holder)
    return port_conflict(cfg)


def validate_components(cfg: HubConfig) -> None:
    """Validate every section the core keeps raw (exporters, analytic processors) now, at load.

    The analytic processors' sections need their packages (pandas, scipy, statsforecast: seconds to import),
    so ``hub run`` calls this after :func:`check_startable`, and the cheap sections are checked first."""
    stack_exporter_configs(cfg)
    alerting_config(cfg)
    correlation_config(cfg)
    analytics_config(cfg)


def stack_exporter_configs(cfg: HubConfig) -> list[tuple[str, Any]]:
    """``[(name, typed config)]`` for every configured stack exporter, validated."""
    out: list[tuple[str, Any]] = []
    factories = _factories() if any(getattr(cfg.exporters, n) is not None for n in STACK_EXPORTERS) else {}
    for name in STACK_EXPORTERS:
        raw = getattr(cfg.exporters, name)
        if raw is None:
            continue
        config_type, _ = factories[name]
        out.append((name, typed_section(raw, config_type, f"exporters.{name}")))
    return out


def build_stack_exporters(cfg: HubConfig) -> list[tuple[str, Any]]:
    """The configured stack exporters, not started. Queues live under ``<data_dir>/queue/<name>``."""
    factories = _factories() if cfg.exporters.configured() != ["embedded"] else {}
    built: list[tuple[str, Any]] = []
    for name, typed in stack_exporter_configs(cfg):
        _, create = factories[name]
        if name == "alertmanager":
            built.append((name, create(typed)))
        else:
            directory = str(Path(cfg.exporters.embedded.data_dir) / "queue" / name)
            built.append((name, create(typed, default_directory=directory)))
    return built


def pipeline_exporters(cfg: HubConfig) -> dict[str, set[str]]:
    """Exporter names per input: ``{"events": {...}, "otlp": {...}}`` from ``service.pipelines``."""
    out: dict[str, set[str]] = {"events": set(), "otlp": set()}
    for pipe in cfg.service.pipelines.values():
        for receiver in pipe.receivers:
            key = "events" if receiver == "native" else "otlp"
            out[key].update(pipe.exporters)
    return out
