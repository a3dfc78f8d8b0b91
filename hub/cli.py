"""The ``hub`` command.

hub --version
hub run [--config FILE] [--data-dir DIR] [--host H] [--api-port P] [--otlp-grpc-port P] [--otlp-http-port P]
        [--event-loop auto|asyncio|uvloop]
hub simulate --api URL [--otlp URL] --rate N --duration S
hub detect --input FILE.csv --output OUT.csv
hub forecast --input FILE.csv --horizon H --level 95 --output OUT.csv
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from hubcore.config import HubConfig

# Imports are deferred to the command that needs them: ``hub --help``, ``hub --version`` and ``hub run --help``
# import no more than argparse, and ``hub run`` reports a configuration error or refusal (another hub on its data
# directory or ports included) before the service (the analytic packages: pandas, scipy, statsforecast...) is
# imported. The delegated commands do the same: each checks its arguments (and that its input file exists; detect
# and forecast also its columns and the output path) before importing its engine (tests/core/test_hub_cli_imports.py).

DISTRIBUTION = "llm-analytics-hub"


def hub_version() -> str:
    """The installed distribution's version (``unknown`` when running from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: prints ``hub <version>`` and exits 0; the version is looked up only when asked."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        print(f"hub {hub_version()}")
        parser.exit()


#: Subcommands implemented elsewhere: name -> (module, help). Each module has ``main(argv) -> int``.
DELEGATED: dict[str, tuple[str, str]] = {
    "simulate": ("hub.simulate.cli", "send realistic traffic from all six modules to a hub"),
    "detect": ("analytics.anomaly.cli", "score a timestamp,value (or ds,y) CSV for anomalies"),
    "forecast": ("analytics.forecast.cli", "forecast a CSV series with 95%% intervals"),
    "keys": ("hub.keys_cli", "create, list and revoke API keys (hub keys create --tenant T --role R)"),
    "audit": ("hub.audit_cli", "verify or list the hash-chained audit log"),
    "eval": ("hub.eval_cli", "evaluate correlation and root-cause analysis on injected incidents"),
}


def _run_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the hub (embedded DuckDB store by default)")
    p.add_argument("--config", help="Collector-style YAML config file (every key optional)")
    p.add_argument("--data-dir", help="data directory of the embedded store (default ./data)")
    p.add_argument("--host", help="address to bind every receiver and the API to (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, help="REST API, WebSocket, /metrics, /healthz (default 8080)")
    p.add_argument("--otlp-grpc-port", type=int, help="OTLP gRPC + native event stream (default 4317)")
    p.add_argument("--otlp-http-port", type=int, help="OTLP HTTP (default 4318)")
    p.add_argument("--retention-days", type=int, help="keep data this many days (default 30)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    p.add_argument("--no-fsync", action="store_true", help="do not fsync the write-ahead log (faster, less safe)")
    p.add_argument("--victoriametrics-url", help="also write metrics to VictoriaMetrics (Prometheus remote write)")
    p.add_argument("--loki-url", help="also write raw events and OTLP logs to Loki")
    p.add_argument("--tempo-url", help="also write traces to Tempo (OTLP/HTTP)")
    p.add_argument("--alertmanager-url", help="send the hub's analytic alerts to Alertmanager")
    p.add_argument("--stack-only", action="store_true", help="keep no raw data locally: export only")
    p.add_argument("--auth", choices=["on", "off"], help="require API keys / JWTs (default off; a non-loopback --host needs it on)")
    p.add_argument("--tls-cert", help="server certificate (PEM): TLS on every listener")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="CA (PEM) that client certificates must chain to: mTLS")
    p.add_argument("--event-loop", choices=["auto", "asyncio", "uvloop"],
                   help="the event loop the hub runs on (default auto: uvloop when installed, else asyncio)")  # fmt: skip
    return p


def apply_flags(cfg: HubConfig, args: argparse.Namespace) -> HubConfig:
    """Flags win over the file. Returns a new config, validated by :meth:`HubConfig.validate`; the sections the
    core keeps raw are validated by :func:`hub.components.validate_components`, which :func:`cmd_run` calls
    after :func:`hub.components.check_startable` (they need the analytic packages: seconds to import)."""
    import msgspec

    from hubcore.config import HubConfig, config_from_dict

    data = msgspec.to_builtins(cfg)
    recv = data.setdefault("receivers", {})
    protocols = recv.setdefault("otlp", {}).setdefault("protocols", {})
    grpc_ep = protocols.setdefault("grpc", {}).get("endpoint") or "127.0.0.1:4317"
    http_ep = protocols.setdefault("http", {}).get("endpoint") or "127.0.0.1:4318"
    service = data.setdefault("service", {})
    api = service.setdefault("api", {})
    emb = data.setdefault("exporters", {}).setdefault("embedded", {})

    def split(ep: str) -> tuple[str, str]:
        host, _, port = ep.rpartition(":")
        return host, port

    if args.host:
        api["host"] = args.host
        grpc_ep = f"{args.host}:{split(grpc_ep)[1]}"
        http_ep = f"{args.host}:{split(http_ep)[1]}"
    if args.otlp_grpc_port is not None:
        grpc_ep = f"{split(grpc_ep)[0]}:{args.otlp_grpc_port}"
    if args.otlp_http_port is not None:
        http_ep = f"{split(http_ep)[0]}:{args.otlp_http_port}"
    protocols["grpc"]["endpoint"] = grpc_ep
    protocols["http"]["endpoint"] = http_ep
    if args.api_port is not None:
        api["port"] = args.api_port
    if args.data_dir:
        emb["data_dir"] = args.data_dir
    if args.retention_days is not None:
        emb["retention_days"] = args.retention_days
    if args.no_fsync:
        emb["wal_fsync"] = False
    if args.log_level:
        service.setdefault("telemetry", {})["log_level"] = args.log_level
    if args.event_loop:
        service["event_loop"] = args.event_loop
    if args.auth:
        service.setdefault("auth", {})["enabled"] = args.auth == "on"
    if args.tls_cert or args.tls_key:
        tls = service.setdefault("tls", {})
        tls.update({"enabled": True, "cert_file": args.tls_cert or "", "key_file": args.tls_key or ""})
        if args.tls_client_ca:
            tls.update({"ca_file": args.tls_client_ca, "client_auth": "require"})
    exporters = data["exporters"]
    pipelines = service.setdefault("pipelines", msgspec.to_builtins(HubConfig().service.pipelines))
    for name, url in (("victoriametrics", args.victoriametrics_url), ("loki", args.loki_url),
                      ("tempo", args.tempo_url), ("alertmanager", args.alertmanager_url)):  # fmt: skip
        if not url:
            continue
        exporters[name] = {**(exporters.get(name) or {}), "endpoint": url}
        if name != "alertmanager":
            for pipe in pipelines.values():
                if name not in pipe["exporters"]:
                    pipe["exporters"].append(name)
    if args.stack_only:
        for pipe in pipelines.values():
            if len(pipe["exporters"]) > 1 and "embedded" in pipe["exporters"]:
                pipe["exporters"].remove("embedded")
    return config_from_dict(data)


def resolve_event_loop(choice: str) -> str:
    """The loop ``service.event_loop`` = ``choice`` runs the hub on: ``"uvloop"`` or ``"asyncio"``. ``auto`` is
    uvloop when it is installed (``uvicorn[standard]`` installs it on Linux and macOS); ``uvloop`` without it
    is a :class:`~hubcore.errors.ConfigError` naming the key. Finds the module without importing it.

    >>> resolve_event_loop("asyncio")
    'asyncio'
    """
    from importlib.util import find_spec

    from hubcore.errors import ConfigError

    if choice == "asyncio":
        return "asyncio"
    installed = find_spec("uvloop") is not None
    if choice == "uvloop" and not installed:
        raise ConfigError("service.event_loop", "uvloop is not installed (pip install uvloop), or set auto or asyncio")
    return "uvloop" if installed else "asyncio"


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new loop of the kind :func:`resolve_event_loop` named (``asyncio.Runner``'s ``loop_factory``).

    >>> loop = new_event_loop("asyncio"); type(loop).__module__.split(".")[0]; loop.close()
    'asyncio'
    """
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    import asyncio

    return asyncio.new_event_loop()


def cmd_run(args: argparse.Namespace) -> int:
    from hub.components import check_startable, startup_conflict, validate_components
    from hubcore.config import load_config
    from hubcore.errors import ConfigError

    try:
        cfg = apply_flags(load_config(args.config), args)
        loop_name = resolve_event_loop(cfg.service.event_loop)
    except ConfigError as exc:
        print(f"hub run: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        check_startable(cfg)  # from the configuration alone, before anything heavy is imported
    except ConfigError as exc:
        print(f"hub run: refusing to start: {exc}", file=sys.stderr)
        return 2
    # another process in the way (a running hub on this data directory or these ports): said at once, exit 1 as
    # when the service finds it (it asks again: a hub that loses the race is refused there), not after ~5 s
    conflict = startup_conflict(cfg)
    if conflict is not None:
        print(f"hub run: {conflict}", file=sys.stderr)
        return 1
    import logging
    import time

    from hubcore.telemetry import configure_logging

    configure_logging(cfg.service.telemetry.log_level)
    # the first line at once: loading the service and its analytic packages takes seconds ("hub started"
    # follows with startup_seconds); before, `hub run` was silent for about 5 s
    began = time.perf_counter()
    logging.getLogger("hub").info("hub starting", extra={"data_dir": cfg.exporters.embedded.data_dir,
                                                         "api": f"{cfg.service.api.host}:{cfg.service.api.port}",
                                                         "event_loop": loop_name})  # fmt: skip
    try:
        validate_components(cfg)  # the stack exporters' and analytic processors' sections (errors name the key)
    except ConfigError as exc:
        print(f"hub run: invalid configuration: {exc}", file=sys.stderr)
        return 2
    import asyncio
    import functools
    import sqlite3

    import duckdb

    from hub.service import HubService

    logging.getLogger("hub").info("hub loaded", extra={"load_seconds": round(time.perf_counter() - began, 3)})

    try:
        # uvicorn's own loop choice never applies: it serves inside this loop (the knob: service.event_loop)
        with asyncio.Runner(loop_factory=functools.partial(new_event_loop, loop_name)) as runner:
            runner.run(HubService(cfg).run())
    except ConfigError as exc:
        print(f"hub run: refusing to start: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"hub run: {exc}", file=sys.stderr)
        return 1
    except (duckdb.Error, sqlite3.DatabaseError) as exc:  # a state file the service did not name (it names most)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"hub run: a state file in {cfg.exporters.embedded.data_dir} cannot be used: {first}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        module, _ = DELEGATED[argv[0]]
        entry: Callable[[list[str]], int] = importlib.import_module(module).main
        return int(entry(argv[1:]))
    parser = argparse.ArgumentParser(prog="hub", description="LLM Analytics Hub")
    parser.add_argument("--version", action=_VersionAction, help="print the hub's version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    for name, (_module, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
