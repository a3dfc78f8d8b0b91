"""Simulated traces end to end: the OTel SDK's OTLP/HTTP exporter → the hub's OTLP receiver → the embedded
store → ``GET /api/v1/traces/{trace_id}``, ``/dependencies`` and the Tempo exporter's wire shape."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from hub.simulate import GeneratorState, encode_batch, generate_timed, synthetic_traces
from hub.simulate.senders import OtlpSender
from hub.simulate.spans import GATEWAY, trace_id_for
from tests.simulate._trees import assert_trees, from_api, wire_spans

hub_helpers = pytest.importorskip("tests.helpers.hub", reason="the hub service is not available")
MODULES = ("llm-observatory", "llm-costops", "llm-policy-engine", "llm-governance")


def test_simulated_traces_are_stored_and_read_back_as_trees(tmp_path: Path) -> None:
    from exporters.tempo.otlp import span_from_row, spans_request

    state = GeneratorState.create(synthetic_traces(), rate=500.0, t0=time.time() - 120, tenant="acme")
    events, _ = generate_timed(500, np.random.default_rng(21), state)
    by_corr: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        if ev.get("correlation_id"):
            by_corr[ev["correlation_id"]].append(ev)
    requests = {c: evs for c, evs in by_corr.items() if any(e["event_type"] == "telemetry" for e in evs)}
    headers = {"X-Scope-OrgID": "acme", "Content-Type": "application/json"}
    with hub_helpers.running_hub(tmp_path / "hub", grpc=False, otlp_http=True) as hub:
        sender = OtlpSender(hub.otlp_http, tenant="acme", span_sample=1.0, sample=1.0, seed=4,
                            export_interval_s=60.0)  # fmt: skip
        # in two batches cut inside a request: its events are joined across record() calls; recorded before
        # they are sent, as `hub simulate` does, so that they carry their traceparent
        cut = next(i for i, e in enumerate(events) if e["event_type"] == "cost")
        sender.record(events[:cut])
        sender.record(events[cut:])
        r = httpx.post(f"{hub.api}/api/v1/events", content=encode_batch(events), headers=headers, timeout=30)
        assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text
        sender.shutdown()
        stats = sender.stats()
        assert stats["export_failures"]["traces"] == 0 and stats["traces"] == len(requests)
        stored = hub.sql("SELECT count(*), count(DISTINCT trace_id) FROM spans WHERE tenant_id = 'acme'")
        assert stored == [(stats["spans"], len(requests))]

        # every trace read back through the API is one tree, as it was sent (a sample: failed requests, ones
        # with a policy check, a security finding or an audit record, and plain ones)
        def having(test: Callable[[dict[str, Any]], bool], n: int) -> list[str]:
            return [c for c, evs in requests.items() if any(test(e) for e in evs)][:n]

        chosen = list(dict.fromkeys([
            *having(lambda e: bool(e["payload"].get("error_type")), 3), *having(lambda e: e["event_type"] == "policy", 4),
            *having(lambda e: e["event_type"] in ("security", "governance"), 3), *list(requests)[:2],
        ]))  # fmt: skip
        api_spans = []
        for corr in chosen:
            evs = requests[corr]
            tid = f"{trace_id_for('acme', corr):032x}"
            r = httpx.get(f"{hub.api}/api/v1/traces/{tid}", headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["span_count"] == len(body["spans"]) and not body["truncated"]
            # the trace also holds the spans of the request's native events, in the request's tree (their
            # traceparent): under the SERVER span of the module that emitted them, a policy check's or security
            # scan's (over before the model call starts) under the gateway's root; no synthetic `correlation` root
            by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for sp in body["spans"]:
                by_source[sp["source"]].append(sp)
            assert set(by_source) == {"otlp", "event"}
            (root,) = [sp for sp in body["spans"] if sp["parent_span_id"] is None]
            assert (root["service_name"], root["kind"], root["source"]) == (GATEWAY, "SERVER", "otlp")
            assert {sp["event_id"] for sp in by_source["event"]} == {e["event_id"] for e in evs}
            emitter = {sp["attributes"].get("hub.event_id"): sp for sp in by_source["otlp"] if sp["kind"] == "SERVER"}
            etype = {e["event_id"]: e["event_type"] for e in evs}
            for sp in by_source["event"]:
                parent = root if etype[sp["event_id"]] in ("policy", "security") else emitter[sp["event_id"]]
                assert sp["parent_span_id"] == parent["span_id"] and sp["trace_id"] == tid
                assert parent["start_time"] <= sp["start_time"] <= sp["end_time"] <= parent["end_time"], (parent, sp)
                if parent is not root:
                    assert parent["service_name"] == sp["service_name"]
            spans = from_api(by_source["otlp"])
            api_spans += spans
            # a span per module call: the gateway's root, a CLIENT and a SERVER span per event of the request,
            # the inference span, and one INTERNAL span per policy rule
            rules = sum(len(e["payload"]["rule_ids"]) for e in evs if e["event_type"] == "policy")
            module_events = sum(e["event_type"] != "metadata" for e in evs)
            assert len(spans) == 1 + 2 * module_events + 1 + rules, (corr, [s.name for s in spans])
            assert {s.attributes.get("hub.event_id") for s in spans if s.kind == "SERVER"} - {None} == {
                e["event_id"] for e in evs if e["event_type"] != "metadata"
            }
        roots = assert_trees(api_spans)
        assert len(roots) == len(chosen) >= 8
        assert any(s.error for s in api_spans) and {s.kind for s in api_spans} == {"SERVER", "CLIENT", "INTERNAL"}
        model = [s for s in api_spans if s.name.startswith("chat ")]
        assert len(model) == len(chosen) and all(s.kind == "CLIENT" and s.service == "llm-observatory" for s in model)
        # the receiver indexes the GenAI attributes of every inference span
        indexed = hub.sql("SELECT count(*) FROM spans WHERE tenant_id = 'acme' AND name LIKE 'chat %' "
                          "AND model IS NOT NULL AND provider IS NOT NULL AND operation = 'chat'")  # fmt: skip
        assert indexed == [(len(requests),)]

        # the hub's spans of the native events are in the same traces (the embedded store's all_spans)
        joined = hub.sql("SELECT count(DISTINCT e.trace_id) FROM all_spans e JOIN spans o "
                         "ON e.tenant_id = o.tenant_id AND e.trace_id = o.trace_id "
                         "WHERE e.source = 'event' AND o.source = 'otlp' AND e.tenant_id = 'acme'")  # fmt: skip
        assert joined == [(len(requests),)]

        # the dependency graph gets the gateway's calls from the traces, next to the events' order
        r = httpx.get(f"{hub.api}/api/v1/dependencies", headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        calls = {(e["source"], e["target"]) for e in r.json()["edges"] if e["kind"] == "calls"}
        assert {(GATEWAY, m) for m in MODULES} <= calls
        assert all(e["evidence"] == "traces" for e in r.json()["edges"] if e["kind"] == "calls")
        assert any(e["kind"] == "precedes" for e in r.json()["edges"])

        # what the Tempo exporter would send of the stored spans: the same trees, each module its service
        cols = ("tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "status_code",
                "status_message", "service_name", "model", "provider", "operation", "error_type", "attributes",
                "resource", "events")  # fmt: skip
        rows = hub.sql(f"SELECT {', '.join(cols)}, epoch_us(start_ts), epoch_us(end_ts) FROM spans "
                       "WHERE tenant_id = 'acme'")  # fmt: skip
        records = [span_from_row({**dict(zip(cols, row[:-2], strict=True)), "start_ts": row[-2], "end_ts": row[-1]})
                   for row in rows]  # fmt: skip
        tempo = wire_spans(spans_request(records))
        assert len(assert_trees(tempo)) == len(requests)
        assert {s.service for s in tempo} >= {GATEWAY, *MODULES}
        for s in tempo:
            assert s.attributes.get("service.name") is None  # a resource attribute, not a span attribute

        # an unknown trace is a 404 in the API's error shape; a malformed id a 422
        r = httpx.get(f"{hub.api}/api/v1/traces/{'ab' * 16}", headers=headers, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = httpx.get(f"{hub.api}/api/v1/traces/not-a-trace", headers=headers, timeout=10)
        assert r.status_code == 422, r.text
