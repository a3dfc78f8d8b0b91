"""Simulated traces: one tree per request across the platform's modules (``hub.simulate.spans``).

Before, ``hub simulate --otlp`` sent one parentless ``chat {model}`` span per traced request, all under
``service.name=llm-observatory``, ending at the wall clock of the send: no trace tree across the modules,
and no way to join a trace with the request's native events.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from typing import Any

import duckdb
import msgspec
import numpy as np
import pytest

from hub.simulate import GeneratorState, generate_timed, synthetic_traces
from hub.simulate import catalog as C
from hub.simulate.events import Event
from hub.simulate.spans import GATEWAY, PlannedSpan, latency_ns, request_spans, timestamp_ns, trace_id_for
from hubcore.config import NativeEventsConfig
from hubcore.mapping import EVENTS_TO_SPANS_SQL, run_mapping
from processors.native_events.processor import NativeEventsProcessor
from tests.simulate._trees import assert_trees, from_planned

MS = 1_000_000


def _requests(
    n_events: int, seed: int, tenant: str | None = None, t0: float = 1_800_000_000.0
) -> dict[str, list[Event]]:
    state = GeneratorState.create(synthetic_traces(), rate=2000.0, t0=t0, tenant=tenant)
    events, _ = generate_timed(n_events, np.random.default_rng(seed), state)
    by_corr: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        if ev.get("correlation_id"):
            by_corr[ev["correlation_id"]].append(ev)
    return by_corr


def _plan(by_corr: dict[str, list[Event]], tenant: str | None) -> dict[str, list[PlannedSpan]]:
    rng = random.Random(5)
    return {corr: request_spans(evs, tenant=tenant, rng=rng) for corr, evs in by_corr.items()}


def _by_event(spans: list[PlannedSpan]) -> dict[str, PlannedSpan]:
    """The module SERVER span of each event (``hub.event_id``); the telemetry's is the inference span's parent."""
    return {s.attributes["hub.event_id"]: s for s in spans if s.kind == "SERVER" and "hub.event_id" in s.attributes}


def test_every_request_is_one_tree_across_its_modules() -> None:
    by_corr = _requests(6000, seed=11, tenant="acme")
    planned = _plan(by_corr, "acme")
    spans = [s for ss in planned.values() for s in ss]
    roots = assert_trees(from_planned(spans))
    # one trace per request that reached the model (telemetry); its id is the one the hub gives its events
    with_telemetry = {c for c, evs in by_corr.items() if any(e["event_type"] == "telemetry" for e in evs)}
    assert len(roots) == len(with_telemetry) > 1000
    for corr in with_telemetry:
        assert planned[corr][0].trace_id == int(hashlib.md5(f"acme/{corr}".encode()).hexdigest(), 16)
        assert planned[corr][0].parent_id is None and planned[corr][0].attributes["hub.correlation_id"] == corr
    assert {s.kind for s in spans} == {"SERVER", "CLIENT", "INTERNAL"}
    # a span per module call, under the module's own service.name: every event of the request has its span
    for corr in with_telemetry:
        servers = _by_event(planned[corr])
        for ev in by_corr[corr]:
            if ev["event_type"] == "metadata":  # registry updates are not part of the request
                continue
            assert servers[ev["event_id"]].service == ev["source_module"], ev
    assert {s.service for s in spans} == {GATEWAY, "llm-observatory", "llm-costops", "llm-policy-engine",
                                          "llm-sentinel", "llm-governance"}  # fmt: skip


def test_span_times_follow_the_events_and_latencies() -> None:
    by_corr = _requests(4000, seed=12)
    planned = _plan(by_corr, None)
    seen: set[str] = set()
    for corr, evs in by_corr.items():
        tel = next((e for e in evs if e["event_type"] == "telemetry"), None)
        if tel is None:
            continue
        spans = planned[corr]
        model = next(s for s in spans if s.name.startswith("chat "))
        t_end = timestamp_ns(tel["timestamp"])
        # the model call ends at the telemetry's timestamp and lasts its latency (ms or s)
        assert model.end_ns == t_end and model.end_ns - model.start_ns == latency_ns(tel["payload"])
        servers = _by_event(spans)
        for ev in evs:
            if ev["event_type"] in ("telemetry", "metadata"):
                continue
            span = servers[ev["event_id"]]
            seen.add(ev["event_type"])
            offset = timestamp_ns(ev["timestamp"]) - t_end  # what the native events say: a few ms around T
            if ev["event_type"] in ("cost", "governance"):
                # after the call: the module's span ends at its event's timestamp
                assert span.end_ns == timestamp_ns(ev["timestamp"]) and span.start_ns > model.end_ns
            else:
                # before the call: the same offset from the call's start, and done before it
                assert offset in (C.OFFSET_MS_POLICY * MS, C.OFFSET_MS_SECURITY * MS)
                assert span.end_ns == model.start_ns + offset and span.end_ns < model.start_ns
            if ev["event_type"] == "policy":  # it takes the evaluation time it reports
                took = round(ev["payload"]["evaluation_time"] * MS)
                assert span.end_ns - span.start_ns == took
                rules = [s for s in spans if s.parent_id == span.span_id]
                assert [s.kind for s in rules] == ["INTERNAL"] * len(ev["payload"]["rule_ids"])
        # the module calls follow the platform's order: policy, security, model, cost, governance
        order = [s.service for s in spans if s.kind == "SERVER" and s.service != GATEWAY]
        rank = {"llm-policy-engine": 0, "llm-sentinel": 1, "llm-observatory": 2, "llm-costops": 3,
                "llm-governance": 4}  # fmt: skip
        starts = sorted((s.start_ns, rank[s.service]) for s in spans if s.kind == "SERVER" and s.service in rank)
        assert [r for _t, r in starts] == sorted(rank[s] for s in order)
    assert seen >= {"cost", "policy", "governance"}


def test_genai_attributes_and_errors_on_the_model_span() -> None:
    by_corr = _requests(8000, seed=13)
    planned = _plan(by_corr, None)
    errors = 0
    for corr, evs in by_corr.items():
        tel = next((e for e in evs if e["event_type"] == "telemetry"), None)
        if tel is None:
            continue
        p = tel["payload"]
        spans = planned[corr]
        model = next(s for s in spans if s.name.startswith("chat "))
        assert model.kind == "CLIENT" and model.service == "llm-observatory" and model.name == f"chat {p['model']}"
        a = model.attributes
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == p["provider"]
        assert a["gen_ai.request.model"] == p["model"] and a["gen_ai.response.model"] == p["model"]
        assert a["gen_ai.usage.input_tokens"] == p["input_tokens"]
        assert a["gen_ai.usage.output_tokens"] == p["output_tokens"]
        if p.get("error_type"):
            errors += 1
            assert a["error.type"] == p["error_type"] and model.error == p["error_type"]
            # the failure reaches the root: the gateway answers with the matching HTTP status
            root = spans[0]
            assert root.error == p["error_type"]
            assert root.attributes["http.response.status_code"] == {"rate_limited": 429, "timeout": 504,
                                                                    "server_error": 502}[p["error_type"]]  # fmt: skip
            assert not any(s.error for s in spans if s.service not in (GATEWAY, "llm-observatory"))
        else:
            assert "error.type" not in a and not any(s.error for s in spans)
            assert spans[0].attributes["http.response.status_code"] == 200
    assert errors > 10


def test_trace_ids_and_times_match_the_hubs_spans_of_the_events() -> None:
    """The hub maps events sharing a correlation id onto spans of one trace (``events_to_spans.sql``): the
    simulated trace has that trace id, and its model span is the telemetry event's span, to the µs."""
    t0 = float(int(time.time()) - 600)
    by_corr = _requests(1500, seed=14, tenant="t9", t0=t0)
    planned = _plan(by_corr, "t9")
    events = [e for evs in by_corr.values() for e in evs]
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], tenant_id="t9", now_us=int(time.time() * 1e6))  # fmt: skip
    assert not res.rejected, res.rejected[:3]
    con = duckdb.connect()
    try:
        mapped = run_mapping(con, EVENTS_TO_SPANS_SQL, res.columns)
    finally:
        con.close()
    model_spans = {f"{s.trace_id:032x}": s for ss in planned.values() for s in ss if s.name.startswith("chat ")}
    matched = 0
    for tid, name, start, end in zip(mapped["trace_id"], mapped["name"], mapped["start_ts"], mapped["end_ts"],
                                     strict=True):  # fmt: skip
        if not name.startswith("telemetry"):
            continue
        s = model_spans[tid]
        assert (start, end) == (s.start_ns // 1000, s.end_ns // 1000)
        matched += 1
    assert matched == len(model_spans) > 100


def test_a_trace_needs_the_requests_telemetry_and_keeps_to_its_correlation_id() -> None:
    rng = random.Random(1)
    by_corr = _requests(300, seed=15)
    corr, evs = next((c, e) for c, e in by_corr.items() if len(e) >= 2)
    others = [e for c, es in by_corr.items() if c != corr for e in es]
    assert request_spans([e for e in evs if e["event_type"] != "telemetry"], tenant=None, rng=rng) == []
    no_corr = [{k: v for k, v in e.items() if k != "correlation_id"} for e in evs]
    assert request_spans(no_corr, tenant=None, rng=rng) == []
    assert request_spans([], tenant=None, rng=rng) == []
    # another request's events in the list do not join this request's tree
    mixed = request_spans(evs + others[:20], tenant=None, rng=rng)
    alone = request_spans(evs, tenant=None, rng=random.Random(1))
    assert len(mixed) == len(alone) and {s.attributes.get("hub.event_id") for s in mixed} <= (
        {e["event_id"] for e in evs} | {None}
    )
    # no tenant: the hub's default tenant
    assert trace_id_for(None, corr) == trace_id_for("default", corr)


@pytest.mark.parametrize(("unit", "value", "ns"), [("ms", 250.0, 250 * MS), ("s", 1.5, 1500 * MS),
                                                   ("ms", 0.0, 1000)])  # fmt: skip
def test_latency_units(unit: str, value: float, ns: int) -> None:
    payload: dict[str, Any] = {"value": value, "unit": unit}
    assert latency_ns(payload) == ns


def test_each_events_traceparent_names_a_planned_span_that_holds_it() -> None:
    """An event's ``traceparent`` (what ``hub simulate --otlp`` tags a traced request's events with) is in its
    request's trace and names one of the request's spans whose time range holds the event's instant: its
    module's SERVER span for telemetry, cost and governance, the gateway's root for a policy check or scan."""
    from hub.simulate.spans import traceparent

    by_corr = _requests(3000, seed=12, tenant="acme")
    plans = _plan(by_corr, "acme")
    seen: set[str] = set()
    for corr, evs in by_corr.items():
        spans = {s.span_id: s for s in plans[corr]}
        for ev in evs:
            tp = traceparent("acme", ev)
            if not spans:  # no telemetry event (a scenario's finding): no spans, and nothing names them
                continue
            assert tp is not None
            version, tid, parent_id, flags = tp.split("-")
            assert (version, flags, int(tid, 16)) == ("00", "01", trace_id_for("acme", corr))
            parent = spans[int(parent_id, 16)]
            at = timestamp_ns(ev["timestamp"])
            assert parent.start_ns <= at <= parent.end_ns, (ev["event_type"], parent)
            expected = "llm-gateway" if ev["event_type"] in ("policy", "security") else ev["source_module"]
            assert parent.service == expected and parent.kind == "SERVER"
            seen.add(ev["event_type"])
    assert seen == {"telemetry", "cost", "policy", "security", "governance"}
    assert traceparent("acme", {"event_id": "x", "event_type": "metadata"}) is None  # no correlation id
