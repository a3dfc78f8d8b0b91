"""The hub's configuration: one Collector-style YAML file, every key optional, flags on top.

    receivers:
      otlp:
        protocols:
          grpc: {endpoint: 127.0.0.1:4317}
          http: {endpoint: 127.0.0.1:4318}
      native: {max_batch_events: 1000}
    processors:
      native_events: {max_age: 604800, exchange_rates: {EUR: 1.08}}
    exporters:
      embedded: {data_dir: ${env:HUB_DATA_DIR:-./data}, retention_days: 30}
    service:
      api: {host: 127.0.0.1, port: 8080}
      pipelines:
        events: {receivers: [native], processors: [native_events], exporters: [embedded]}
        otlp: {receivers: [otlp], exporters: [embedded]}

``${env:VAR}`` and ``${env:VAR:-default}`` are expanded after parsing, in string values only (comments and
keys are never touched; ``$$`` is a literal ``$``); a value that is exactly one reference is typed as YAML
would type it (``port: ${env:PORT}`` is an int). Errors name the YAML key:

    >>> try:
    ...     load_config_text("service: {api: {port: 'x'}}")
    ... except ConfigError as e:
    ...     print(e)
    service.api.port: Expected `int`, got `str`
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from hubcore.config_env import EnvExpansion as EnvExpansion  # re-exported: the env expansion lived here
from hubcore.config_env import expand_env as expand_env
from hubcore.config_env import parse_config_text
from hubcore.config_env import substitute_env as substitute_env
from hubcore.errors import ConfigError
from hubcore.security.config import AuditConfig, AuthConfig, QuotasConfig, TlsConfig
from hubcore.tenants import TENANT_RE

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
T = TypeVar("T")

#: USD per unit; override with ``processors.native_events.exchange_rates``.
DEFAULT_EXCHANGE_RATES = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "JPY": 0.0067,
    "CAD": 0.73,
    "AUD": 0.66,
    "CHF": 1.13,
    "INR": 0.012,
    "CNY": 0.14,
}


class NativeEventsConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Bounds, units and de-duplication for native events.

    * ``max_age`` / ``max_future`` (seconds): timestamps outside ``[now - max_age, now + max_future]``
      are rejected (after the per-source ``clock_skew`` correction, seconds added to the source's clock).
    * ``exchange_rates``: USD per unit of each accepted currency.
    * ``dedup_window`` (seconds): the same ``event_id`` again within it is dropped and counted.
    * ``default_tenant``: used when neither the credential/header nor ``tags.tenant_id`` names one.
    """

    max_age: PositiveFloat = 7 * 86_400.0
    max_future: PositiveFloat = 3_600.0
    clock_skew: dict[str, float] = {}
    exchange_rates: dict[str, PositiveFloat] = msgspec.field(default_factory=lambda: dict(DEFAULT_EXCHANGE_RATES))
    dedup_window: PositiveFloat = 300.0
    dedup_max_ids: Annotated[int, msgspec.Meta(gt=0)] = 2_000_000
    default_tenant: Annotated[str, msgspec.Meta(pattern=TENANT_RE.pattern)] = "default"  # hubcore.tenants
    max_batch_events: Annotated[int, msgspec.Meta(gt=0, le=100_000)] = 1000




class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class Endpoint(_Base):
    endpoint: str = ""
    enabled: bool = True
    max_message_bytes: Annotated[int, msgspec.Meta(gt=0)] = 16 << 20

    def host_port(self, key: str) -> tuple[str, int]:
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
            raise ConfigError(key, f"endpoint must be host:port, got {self.endpoint!r}")
        return host.strip("[]") or "127.0.0.1", int(port)


class GrpcEndpoint(Endpoint):
    endpoint: str = "127.0.0.1:4317"


class HttpEndpoint(Endpoint):
    endpoint: str = "127.0.0.1:4318"


class OtlpProtocols(_Base):
    grpc: GrpcEndpoint = msgspec.field(default_factory=GrpcEndpoint)
    http: HttpEndpoint = msgspec.field(default_factory=HttpEndpoint)


class OtlpReceiverConfig(_Base):
    protocols: OtlpProtocols = msgspec.field(default_factory=OtlpProtocols)


class NativeReceiverConfig(_Base):
    """REST ``POST /api/v1/events``, WebSocket ``/ws/events`` and the gRPC ``StreamEvents`` stream."""

    max_batch_events: Annotated[int, msgspec.Meta(gt=0, le=100_000)] = 1000
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 8 << 20
    websocket: bool = True
    grpc_stream: bool = True
    grpc_max_in_flight: Annotated[int, msgspec.Meta(gt=0, le=1024)] = 8


class ReceiversConfig(_Base):
    otlp: OtlpReceiverConfig = msgspec.field(default_factory=OtlpReceiverConfig)
    native: NativeReceiverConfig = msgspec.field(default_factory=NativeReceiverConfig)


class ProcessorsConfig(_Base):
    """``native_events`` is typed here; the analytic processors' sections (``alerting``, ``analytics``,
    ``correlation``) are validated by their own config models when the service assembles them."""

    native_events: NativeEventsConfig = msgspec.field(default_factory=NativeEventsConfig)
    alerting: dict[str, Any] | None = None
    analytics: dict[str, Any] | None = None
    correlation: dict[str, Any] | None = None


class EmbeddedExporterConfig(_Base):
    """The embedded DuckDB store (the default)."""

    data_dir: str = "./data"
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    tenant_retention_days: dict[str, Annotated[int, msgspec.Meta(ge=1, le=3650)]] = {}
    wal_fsync: bool = True
    max_pending_rows: Annotated[int, msgspec.Meta(gt=0)] = 2_000_000
    flush_rows: Annotated[int, msgspec.Meta(gt=0)] = 100_000
    flush_interval: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    #: DuckDB's ``memory_limit``: a size (``4GB``, ``512MiB``, ``1.5 GB``) or a share of RAM (``80%``)
    memory_limit: str | None = None

    def validate(self, key: str = "exporters.embedded") -> EmbeddedExporterConfig:
        if self.memory_limit is not None:
            reason = memory_limit_problem(self.memory_limit)
            if reason is not None:
                raise ConfigError(f"{key}.memory_limit", reason)
        return self


class ExportersConfig(_Base):
    """``embedded`` is typed here; the stack exporters' sections are validated by their own config
    models when the service assembles them (``hub/components.py``), so the core knows none of them."""

    embedded: EmbeddedExporterConfig = msgspec.field(default_factory=EmbeddedExporterConfig)
    victoriametrics: dict[str, Any] | None = None
    loki: dict[str, Any] | None = None
    tempo: dict[str, Any] | None = None
    alertmanager: dict[str, Any] | None = None

    def configured(self) -> list[str]:
        """Exporter names that are defined (the embedded store always is)."""
        return ["embedded"] + [n for n in STACK_EXPORTERS if getattr(self, n) is not None]


#: Stack exporters, in start order.
STACK_EXPORTERS = ("victoriametrics", "loki", "tempo", "alertmanager")


class ApiConfig(_Base):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 8 << 20


class TelemetryConfig(_Base):
    """``service.telemetry``. ``metrics_public``: whether ``/metrics`` answers without a credential. Unset,
    it follows ``service.auth.enabled``: public when auth is off, ``metrics:read`` needed when it is on
    (its series name every tenant and its ingest volume). Set ``true`` for a scraper that cannot send a
    bearer token, on a network only it reaches."""

    log_level: str = "info"
    metrics_public: bool | None = None


class QueryServiceConfig(_Base):
    """``service.query``: which backend answers ``POST /api/v1/query``.

    * ``backend``: ``auto`` (the embedded store when it keeps the events, else VictoriaMetrics, else Loki),
      ``embedded``, ``victoriametrics`` (PromQL/MetricsQL) or ``loki`` (LogQL); naming a stack backend
      whose exporter is not configured is refused at start (``hub.components.check_startable``).
    * ``redis_url``: share the result cache between hub replicas (``redis://host:6379/0``).
    * ``export_time_limit``: seconds an events export (``GET /api/v1/events/export``) may hold its store
      cursor; one still streaming then ends with a ``truncated`` marker and a ``next_cursor`` to resume
      from (docs/query.md, "Exports").
    """

    backend: Literal["auto", "embedded", "victoriametrics", "loki"] = "auto"
    redis_url: str | None = None
    export_time_limit: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 300.0


class PipelineConfig(_Base):
    receivers: list[str]
    exporters: list[str]
    processors: list[str] = []


def _default_pipelines() -> dict[str, PipelineConfig]:
    return {
        "events": PipelineConfig(receivers=["native"], processors=["native_events"], exporters=["embedded"]),
        "otlp": PipelineConfig(receivers=["otlp"], exporters=["embedded"]),
    }


#: ``service.event_loop`` values: ``auto`` runs on uvloop when it is importable (it is with ``uvicorn[standard]``
#: on Linux and macOS), else on asyncio's own loop.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")


class ServiceConfig(_Base):
    """``service``. ``event_loop``: the loop the whole hub runs on (the API, every receiver and the gRPC server):
    ``auto`` (uvloop when installed, else asyncio), ``asyncio`` or ``uvloop`` (refused at start when uvloop is
    not installed). ``hub run --event-loop`` overrides it."""

    event_loop: str = "auto"
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)
    pipelines: dict[str, PipelineConfig] = msgspec.field(default_factory=_default_pipelines)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    quotas: QuotasConfig = msgspec.field(default_factory=QuotasConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    query: QueryServiceConfig = msgspec.field(default_factory=QueryServiceConfig)


class HubConfig(_Base):
    receivers: ReceiversConfig = msgspec.field(default_factory=ReceiversConfig)
    processors: ProcessorsConfig = msgspec.field(default_factory=ProcessorsConfig)
    exporters: ExportersConfig = msgspec.field(default_factory=ExportersConfig)
    service: ServiceConfig = msgspec.field(default_factory=ServiceConfig)

    def validate(self) -> HubConfig:
        """Cross-checks that need the whole file (pipelines naming undefined components...)."""
        defined = {
            "receivers": set(ReceiversConfig.__struct_fields__),
            "processors": set(ProcessorsConfig.__struct_fields__),
            "exporters": set(self.exporters.configured()),
        }
        for name, pipe in self.service.pipelines.items():
            for section in ("receivers", "processors", "exporters"):
                for ref in getattr(pipe, section):
                    if ref not in defined[section]:
                        raise ConfigError(
                            f"service.pipelines.{name}.{section}",
                            f"references {ref!r}, which is not a known {section[:-1]} "
                            f"(known: {sorted(defined[section])})",
                        )
            if not pipe.receivers or not pipe.exporters:
                raise ConfigError(f"service.pipelines.{name}", "needs at least one receiver and one exporter")
        self.receivers.otlp.protocols.grpc.host_port("receivers.otlp.protocols.grpc.endpoint")
        self.receivers.otlp.protocols.http.host_port("receivers.otlp.protocols.http.endpoint")
        self.exporters.embedded.validate()
        if self.service.event_loop not in EVENT_LOOPS:
            raise ConfigError(
                "service.event_loop", f"expected one of {', '.join(EVENT_LOOPS)}; got {self.service.event_loop!r}"
            )
        self.service.auth.validate()
        self.service.tls.validate()
        self.service.quotas.validate()
        self.service.audit.validate()
        return self

    def bind_hosts(self) -> dict[str, str]:
        """Every address a listener binds to, by YAML key."""
        return {key: host for key, (host, _) in self.listeners().items()}

    def listeners(self) -> dict[str, tuple[str, int]]:
        """Every ``(host, port)`` a listener binds to, by YAML key (port 0: any free port)."""
        out = {"service.api.host": (self.service.api.host, self.service.api.port)}
        for name in ("grpc", "http"):
            ep: Endpoint = getattr(self.receivers.otlp.protocols, name)
            if ep.enabled:
                key = f"receivers.otlp.protocols.{name}.endpoint"
                out[key] = ep.host_port(key)
        return out


_MEMORY_UNITS = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 1000, "kb": 1000, "kilobyte": 1000, "kilobytes": 1000, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "megabyte": 1000**2, "megabytes": 1000**2, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gigabyte": 1000**3, "gigabytes": 1000**3, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "terabyte": 1000**4, "terabytes": 1000**4, "tib": 1 << 40,
}  # fmt: skip
_MEMORY = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*|%)\s*")
#: Below this DuckDB cannot even open the database (it needs a few buffers).
_MIN_MEMORY_BYTES = 1 << 20


def memory_limit_problem(value: str) -> str | None:
    """Why ``value`` is not a DuckDB ``memory_limit`` the hub accepts (``None`` when it is one).

    >>> [memory_limit_problem(v) for v in ("4GB", "512MiB", "1.5 GB", "80%")]
    [None, None, None, None]
    >>> memory_limit_problem("lots")
    "expected a size such as '4GB' or '512MiB', or a share of RAM such as '80%'; got 'lots'"
    """
    expected = f"expected a size such as '4GB' or '512MiB', or a share of RAM such as '80%'; got {value!r}"
    m = _MEMORY.fullmatch(value)
    if m is None:
        return expected
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit == "%":
        return None if 0 < number <= 100 else f"a share of RAM must be more than 0% and at most 100%; got {value!r}"
    if unit not in _MEMORY_UNITS:
        return expected
    if number * _MEMORY_UNITS[unit] < _MIN_MEMORY_BYTES:
        return f"too small for DuckDB (at least 1MiB); got {value!r}"
    return None


def load_config_text(text: str, env: dict[str, str] | None = None) -> HubConfig:
    expanded = parse_config_text(text, env)
    return config_from_dict(expanded.data, expanded.raw)


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]")


def _error_path(exc: msgspec.ValidationError) -> list[str] | None:
    """The path of a msgspec error (``*`` for a dict key msgspec writes as ``[...]``)."""
    m = re.search(r" - at `\$(.*)`$", str(exc))
    if m is None:
        return None
    parts = [a or b or "*" for a, b, _ in _PATH_PART.findall(m.group(1))]
    return parts


def convert_expanded(data: Any, typ: type[T], raw: dict[tuple[str, ...], str], prefix: tuple[str, ...] = ()) -> T:
    """``msgspec.convert`` of expanded config ``data`` (found at ``prefix``) into ``typ``.

    Where a ``str`` field got a YAML-typed whole-value reference, its text is put back and the
    conversion retried, so ``hs256_secret: ${env:S}`` with ``S=0123...`` stays a string.
    """
    pending = {p[len(prefix) :]: text for p, text in raw.items() if p[: len(prefix)] == prefix}
    while True:
        try:
            return msgspec.convert(data, typ, strict=False)
        except msgspec.ValidationError as exc:
            parts = _error_path(exc)
            if parts is None or not str(exc).startswith("Expected `str"):
                raise
            hits = [
                p for p in pending if len(p) == len(parts) and all(a in ("*", b) for a, b in zip(parts, p, strict=True))
            ]
            if not hits:
                raise
            for path in hits:
                data = _put(data, path, pending.pop(path))


def _put(node: Any, path: tuple[str, ...], value: str) -> Any:
    """A copy of ``node`` with ``value`` at ``path`` (keys compared as text)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        return [_put(v, rest, value) if str(i) == head else v for i, v in enumerate(node)]
    return {k: _put(v, rest, value) if str(k) == head else v for k, v in node.items()}


def config_from_dict(data: dict[str, Any], raw: dict[tuple[str, ...], str] | None = None) -> HubConfig:
    try:
        cfg = convert_expanded(data, HubConfig, raw or {})
    except msgspec.ValidationError as exc:
        raise config_error(exc) from None
    return cfg.validate()


def load_config(path: str | Path | None) -> HubConfig:
    """Load ``path`` (or the defaults when None)."""
    if path is None:
        return HubConfig().validate()
    p = Path(path)
    if p.is_dir():
        raise ConfigError("", f"config file {str(p)!r} is a directory; pass the YAML file in it")
    if not p.is_file():
        raise ConfigError("", f"config file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:  # permission denied, an I/O error
        raise ConfigError("", f"config file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        reason = f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        raise ConfigError("", reason) from None
    return load_config_text(text)


def config_error(exc: msgspec.ValidationError, prefix: str = "") -> ConfigError:
    """A msgspec validation error as a :class:`ConfigError` naming the YAML key (under ``prefix``)."""
    msg = str(exc)
    m = re.search(r" - at `\$(.*)`$", msg)
    if not m:
        unknown = re.match(r"Object contains unknown field `([^`]*)`", msg)
        if unknown:
            return ConfigError(f"{prefix}.{unknown.group(1)}".strip("."), "unknown key")
        return ConfigError(prefix, msg)
    path = m.group(1)
    key = re.sub(r"\[(\d+)\]", r".\1", re.sub(r"\['([^']*)'\]", r".\1", path)).replace("[...]", "").lstrip(".")
    key = f"{prefix}.{key}".strip(".") if prefix else key
    text = msg[: m.start()]
    unknown = re.match(r"Object contains unknown field `([^`]*)`", text)
    if unknown:
        return ConfigError(f"{key}.{unknown.group(1)}".lstrip("."), "unknown key")
    return ConfigError(key, text)
