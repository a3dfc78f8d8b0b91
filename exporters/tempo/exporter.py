"""The Tempo exporter: spans (OTLP, and the correlation-id spans of native events) → OTLP/HTTP protobuf.

exporter = TempoExporter(TempoExporterConfig(endpoint="http://tempo:4318"))
exporter.start()
exporter.export("spans", span_columns)   # rows of the ``spans`` table
exporter.export("events", event_columns) # native events: EVENTS_TO_SPANS_SQL makes their spans
exporter.shutdown(10.0)

The event spans of a correlation id hang under a synthetic root span (``source='event_root'``), which is
sent with the first batch of that trace this process delivers (ahead of its children, so a 413 split sends
it first) and then left out: :attr:`TempoExporter.sent_roots` remembers the last :data:`MAX_SENT_ROOTS`
roots delivered. Its ids are deterministic, so a root sent again (after a restart) is the same span.
"""

from __future__ import annotations

import gzip
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

from exporters._common import EventMapping, scope_org_headers
from exporters.queue.base import Batch, QueuedExporter
from exporters.tempo.config import TempoExporterConfig
from exporters.tempo.otlp import SpanRecord, span_from_row, spans_request
from hubcore.mapping import EVENTS_TO_SPANS_SQL

log = logging.getLogger(__name__)
#: How many delivered root spans (tenant, span id) the exporter remembers so as not to send them again.
MAX_SENT_ROOTS = 100_000
HEADERS = {"Content-Type": "application/x-protobuf", "User-Agent": "llm-analytics-hub"}


class TempoExporter(QueuedExporter):
    name: ClassVar[str] = "tempo"
    kinds: ClassVar[frozenset[str]] = frozenset({"spans", "events"})
    config: TempoExporterConfig

    def __init__(self, config: TempoExporterConfig, *, default_directory: str = "") -> None:
        headers = {**HEADERS, "Content-Encoding": "gzip"} if config.gzip else HEADERS
        super().__init__(config, headers=headers, default_directory=default_directory)
        self._events_to_spans = EventMapping(EVENTS_TO_SPANS_SQL)
        self.spans_sent = 0
        self.skipped_spans = 0
        #: ``tenant/span id`` of the synthetic root spans delivered (the most recent :data:`MAX_SENT_ROOTS`)
        self.sent_roots: OrderedDict[str, None] = OrderedDict()

    def _encode(self, records: Sequence[SpanRecord]) -> bytes:
        body = spans_request(records).SerializeToString()
        return gzip.compress(body, compresslevel=5) if self.config.gzip else body

    def process(self, batches: list[Batch]) -> None:
        by_tenant: dict[str, list[SpanRecord]] = {}
        roots: dict[str, list[SpanRecord]] = {}  # a trace's root first, once, unless delivered before
        new_roots: dict[str, set[str]] = {}
        for _seq, body in batches:
            for tenant, record, is_root in self._records(body):
                if not is_root:
                    by_tenant.setdefault(tenant, []).append(record)
                    continue
                key = f"{tenant}/{record[2].span_id.hex()}"
                if key in self.sent_roots or key in new_roots.setdefault(tenant, set()):
                    continue
                new_roots[tenant].add(key)
                roots.setdefault(tenant, []).append(record)
        for tenant, records in roots.items():
            by_tenant[tenant] = records + by_tenant.get(tenant, [])
        cfg = self.config
        done = self.deliver_by_tenant(
            batches,
            by_tenant,
            self._encode,
            url=cfg.traces_url,
            headers_for=lambda t: scope_org_headers(
                self.headers, t, org_id=cfg.org_id, tenant_header=cfg.tenant_header
            ),
        )
        self.spans_sent += sum(len(by_tenant[t]) for t in done)
        for tenant in done:  # delivered or dead-lettered: a held tenant's roots go again with its rows
            for key in new_roots.get(tenant, ()):
                self.sent_roots[key] = None
        while len(self.sent_roots) > MAX_SENT_ROOTS:
            self.sent_roots.popitem(last=False)

    def check_batch(self, body: Any) -> None:
        skipped = self.skipped_spans
        try:
            self._encode([record for _tenant, record, _root in self._records(body)])
        finally:
            self.skipped_spans = skipped  # counted when the batch is processed

    def _records(self, body: Any) -> list[tuple[str, SpanRecord, bool]]:
        """(tenant, span, whether it is a synthetic root) per row of one queued batch; rows with bad ids are
        skipped (and counted)."""
        cols = body["cols"]
        if body["kind"] == "events":
            cols = self._events_to_spans(cols)
        names = list(cols)
        out: list[tuple[str, SpanRecord, bool]] = []
        for values in zip(*(cols[n] for n in names), strict=True):
            row = dict(zip(names, values, strict=True))
            if not row.get("trace_id") or not row.get("span_id") or row.get("start_ts") is None:
                continue
            try:
                record = span_from_row(row)
            except (ValueError, TypeError) as exc:  # bad ids: skip the span, keep the batch
                self.skipped_spans += 1
                log.warning("tempo: skipping span %r: %s", row.get("span_id"), exc)
                continue
            out.append((row.get("tenant_id") or "", record, row.get("source") == "event_root"))
        return out

    def shutdown(self, timeout: float = 30.0) -> None:
        super().shutdown(timeout)
        self._events_to_spans.close()
