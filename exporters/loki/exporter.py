"""The Loki exporter: native events and OTLP log records → Loki's push API.

    exporter = LokiExporter(LokiExporterConfig(endpoint="http://loki:3100"))
    exporter.start()
    exporter.export("events", event_columns)   # the rows the pipeline appends to the ``events`` table
    exporter.export("logs", log_columns)       # OTLP log rows (``logs`` table)
    exporter.shutdown(10.0)

The line of a native event is JSON with nested ``payload``/``tags`` objects, so LogQL's ``| json``
yields ``payload_threat_type``, ``tags_team``...; see ``README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from exporters._common import scope_org_headers
from exporters.loki.config import LokiExporterConfig
from exporters.loki.push import JSON_HEADERS, PROTOBUF_HEADERS, Entry, encode_json, encode_protobuf, render_labels
from exporters.queue.base import Batch, QueuedExporter

_encode = msgspec.json.encode
_SEVERITY_BY_NUMBER = ((21, "fatal"), (17, "error"), (13, "warning"), (9, "info"), (5, "debug"), (1, "trace"))


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _raw_json(text: str | None) -> Any:
    """A JSON text column embedded as-is when it is an object, else as a string."""
    if text and text[0] == "{":
        return msgspec.Raw(text.encode())
    return text


def _cols(cols: dict[str, list[Any]], names: Sequence[str]) -> list[list[Any]]:
    n = len(next(iter(cols.values())))
    none = [None] * n
    return [cols.get(c) or none for c in names]


def event_entries(cols: dict[str, list[Any]]) -> list[tuple[str, Entry]]:
    """(tenant, entry) per native event row."""
    out: list[tuple[str, Entry]] = []
    rows = zip(
        *_cols(
            cols,
            (
                "tenant_id",
                "ts",
                "received_at",
                "event_id",
                "source_module",
                "event_type",
                "severity",
                "environment",
                "correlation_id",
                "schema_version",
                "tags",
                "payload",
                "enrichment",
            ),
        ),
        strict=True,
    )
    for tenant, ts, received, event_id, source, etype, severity, env, corr, version, tags, payload, enrichment in rows:
        if ts is None:
            continue
        labels = render_labels(
            (k, v)
            for k, v in (
                ("tenant_id", tenant),
                ("source_module", source),
                ("event_type", etype),
                ("severity", severity),
                ("environment", env),
            )
            if v
        )
        line: dict[str, Any] = {"event_id": event_id, "timestamp": _iso(ts), "schema_version": version}
        if corr:
            line["correlation_id"] = corr
        if received is not None:
            line["received_at"] = _iso(received)
        if tags:
            line["tags"] = _raw_json(tags)
        line["payload"] = _raw_json(payload) if payload else {}
        if enrichment:
            line["enrichment"] = _raw_json(enrichment)
        out.append((tenant or "", (labels, int(ts) * 1000, _encode(line).decode())))
    return out


def _environment(resource: str | None) -> str | None:
    if not resource:
        return None
    try:
        data = json.loads(resource)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    env = data.get("deployment.environment.name") or data.get("deployment.environment")
    return env if isinstance(env, str) else None


def _severity(text: str | None, number: int | None) -> str | None:
    if text:
        return text.lower()
    if number:
        for floor, name in _SEVERITY_BY_NUMBER:
            if number >= floor:
                return name
    return None


def log_entries(cols: dict[str, list[Any]]) -> list[tuple[str, Entry]]:
    """(tenant, entry) per OTLP log row; the line is JSON (body, ids, attributes, resource)."""
    out: list[tuple[str, Entry]] = []
    rows = zip(
        *_cols(
            cols,
            (
                "tenant_id",
                "ts",
                "observed_ts",
                "service_name",
                "severity_number",
                "severity_text",
                "body",
                "event_name",
                "trace_id",
                "span_id",
                "scope_name",
                "attributes",
                "resource",
            ),
        ),
        strict=True,
    )
    for (
        tenant,
        ts,
        observed,
        service,
        sev_num,
        sev_text,
        body,
        event_name,
        trace_id,
        span_id,
        scope,
        attrs,
        res,
    ) in rows:
        stamp = ts or observed
        if stamp is None:
            continue
        labels = render_labels(
            (k, v)
            for k, v in (
                ("tenant_id", tenant),
                ("service_name", service),
                ("severity", _severity(sev_text, sev_num)),
                ("environment", _environment(res)),
            )
            if v
        )
        line: dict[str, Any] = {"body": body}
        for key, value in (("severity_number", sev_num), ("event_name", event_name), ("trace_id", trace_id),
                           ("span_id", span_id), ("scope_name", scope)):  # fmt: skip
            if value:
                line[key] = value
        if attrs:
            line["attributes"] = _raw_json(attrs)
        if res:
            line["resource"] = _raw_json(res)
        out.append((tenant or "", (labels, int(stamp) * 1000, _encode(line).decode())))
    return out


class LokiExporter(QueuedExporter):
    name: ClassVar[str] = "loki"
    kinds: ClassVar[frozenset[str]] = frozenset({"events", "logs"})
    config: LokiExporterConfig

    def __init__(self, config: LokiExporterConfig, *, default_directory: str = "") -> None:
        headers = PROTOBUF_HEADERS if config.encoding == "protobuf" else JSON_HEADERS
        super().__init__(config, headers=headers, default_directory=default_directory)
        self._encode = encode_protobuf if config.encoding == "protobuf" else encode_json
        self.entries_sent = 0

    def process(self, batches: list[Batch]) -> None:
        by_tenant: dict[str, list[Entry]] = {}
        for _seq, body in batches:
            for tenant, entry in _entries(body):
                by_tenant.setdefault(tenant, []).append(entry)
        for entries in by_tenant.values():
            entries.sort(key=lambda e: e[1])  # time order, so that halves of a split stay ordered
        cfg = self.config
        done = self.deliver_by_tenant(
            batches,
            by_tenant,
            self._encode,
            url=cfg.push_url,
            headers_for=lambda t: scope_org_headers(
                self.headers, t, org_id=cfg.org_id, tenant_header=cfg.tenant_header
            ),
        )
        self.entries_sent += sum(len(by_tenant[t]) for t in done)

    def check_batch(self, body: Any) -> None:
        self._encode([entry for _tenant, entry in _entries(body)])


def _entries(body: Any) -> list[tuple[str, Entry]]:
    convert = event_entries if body["kind"] == "events" else log_entries
    return convert(body["cols"])
