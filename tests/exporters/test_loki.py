"""The Loki exporter at the wire level: a local endpoint decodes exactly what was pushed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cramjam
import msgspec
import pytest

from exporters.loki import LokiExporter, LokiExporterConfig
from exporters.loki.protos import logproto_pb2
from exporters.loki.push import parse_labels
from hubcore.config import NativeEventsConfig
from processors.native_events import NativeEventsProcessor
from tests.exporters._server import RecordingServer, Request
from tests.exporters._util import FAST_RETRY, queue_in, wait_for
from tests.helpers.events import make_event, now_iso


def events_for(tenant: str, events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    res = NativeEventsProcessor(NativeEventsConfig()).process(
        [msgspec.json.encode(e) for e in events], tenant_id=tenant
    )
    assert not res.rejected
    return res.columns


def decode(req: Request) -> list[tuple[dict[str, str], list[tuple[int, str]]]]:
    """(labels, [(ns, line)]) per stream, for either encoding."""
    if req.headers["content-type"] == "application/x-protobuf":
        push = logproto_pb2.PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(req.body)))
        return [
            (parse_labels(s.labels), [(e.timestamp.seconds * 10**9 + e.timestamp.nanos, e.line) for e in s.entries])
            for s in push.streams
        ]
    body = json.loads(req.body)
    return [(s["stream"], [(int(ts), line) for ts, line in s["values"]]) for s in body["streams"]]


def logql_json(line: str) -> dict[str, Any]:
    """What LogQL's ``| json`` stage extracts: nested keys joined with ``_``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}_{k}" if prefix else k, v)
        elif not isinstance(value, list):
            out[prefix] = value

    walk("", json.loads(line))
    return out


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_events_and_logs_reach_loki_as_sent(tmp_path: Path, encoding: str) -> None:
    fail = [(429, {"Retry-After": "0"}), (503, {})]
    with RecordingServer(fail=fail) as srv:
        cfg = LokiExporterConfig(
            endpoint=srv.url,
            encoding=encoding,
            flush_interval=0.05,  # type: ignore[arg-type]
            sending_queue=queue_in(tmp_path / "q"),
            retry_on_failure=FAST_RETRY,
        )
        ex = LokiExporter(cfg)
        ex.start()
        late = make_event("security", timestamp=now_iso(-30), payload={"source_ip": "10.9.9.9"})
        early = make_event("security", timestamp=now_iso(-60))
        t1 = events_for("t1", [make_event("cost"), late, early])
        t2 = events_for("t2", [make_event("telemetry", correlation_id="c-1")])
        ex.export("events", t1)
        ex.export("events", t2)
        ex.export(
            "logs",
            {
                "tenant_id": ["t1"],
                "ts": [t1["ts"][0]],
                "observed_ts": [None],
                "service_name": ["chat-api"],
                "severity_number": [17],
                "severity_text": [None],
                "body": ["boom"],
                "trace_id": ["ab" * 16],
                "span_id": ["cd" * 8],
                "attributes": ['{"http.route": "/x"}'],
                "resource": ['{"service.name": "chat-api", "deployment.environment.name": "staging"}'],
            },
        )
        assert ex.flush(10)
        ex.shutdown(5)
    assert len(srv.requests) == len(srv.accepted) + 2  # the 429 and the 503 were retried
    assert {r.headers["x-scope-orgid"] for r in srv.accepted} == {"t1", "t2"}
    by_tenant: dict[str, list[tuple[dict[str, str], list[tuple[int, str]]]]] = {}
    for r in srv.accepted:  # the three exports may take one flush or several
        decoded = decode(r)
        first_ts = [values[0][0] for _labels, values in decoded]
        assert first_ts == sorted(first_ts)  # streams ordered by their first entry
        by_tenant.setdefault(r.headers["x-scope-orgid"], []).extend(decoded)
    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    for labels, values in by_tenant["t1"]:
        streams.setdefault(tuple(sorted(labels.items())), []).extend(values)
    sec = streams[(("environment", "production"), ("event_type", "security"), ("severity", "warning"),
                   ("source_module", "llm-sentinel"), ("tenant_id", "t1"))]  # fmt: skip
    assert [ts for ts, _ in sec] == sorted(ts for ts, _ in sec)  # time order within the stream
    assert [ts for ts, _ in sec] == sorted(
        t * 1000 for t, e in zip(t1["ts"], t1["event_type"], strict=True) if e == "security"
    )
    fields = logql_json(sec[1][1])
    assert fields["payload_threat_type"] == "prompt_injection" and fields["payload_source_ip"] == "10.9.9.9"
    assert fields["tags_team"] == "search" and fields["event_id"] == late["event_id"]
    assert "tenant_id" not in fields and "event_type" not in fields  # stream labels are not repeated
    log_stream = streams[(("environment", "staging"), ("service_name", "chat-api"), ("severity", "error"),
                          ("tenant_id", "t1"))]  # fmt: skip
    line = logql_json(log_stream[0][1])
    assert line["body"] == "boom" and line["trace_id"] == "ab" * 16 and line["attributes_http.route"] == "/x"
    ((labels, values),) = by_tenant["t2"]
    assert labels["event_type"] == "telemetry" and logql_json(values[0][1])["correlation_id"] == "c-1"


def test_permanent_error_is_dead_lettered_with_reason(tmp_path: Path) -> None:
    with RecordingServer(fail=[(400, {})]) as srv:
        cfg = LokiExporterConfig(endpoint=srv.url, flush_interval=0.05, sending_queue=queue_in(tmp_path / "q"))
        ex = LokiExporter(cfg)
        ex.start()
        ex.export("events", events_for("t1", [make_event("cost")]))
        assert ex.flush(10)
        ex.export("events", events_for("t1", [make_event("cost")]))
        assert ex.flush(10)
        ex.shutdown(5)
    dead = ex.dead_letter.entries()
    assert len(dead) == 1 and dead[0]["status"] == 400 and "HTTP 400" in dead[0]["reason"]
    assert dead[0]["exporter"] == "loki" and dead[0]["body_b64"]
    assert dead[0]["records"] == 1
    assert len(srv.requests) == 2 and len(srv.accepted) == 1  # not retried; the next batch goes on


def _tenants(reqs: list[Request]) -> set[str]:
    return {r.headers.get("x-scope-orgid", "") for r in reqs}


def test_a_throttled_tenant_does_not_hold_the_others_back(tmp_path: Path) -> None:
    throttled = {"noisy"}

    def per_tenant(req: Request) -> tuple[int, dict[str, str]] | None:
        return (429, {"Retry-After": "0"}) if req.headers.get("x-scope-orgid") in throttled else None

    good = [f"good{i}" for i in range(5)]
    with RecordingServer(decide=per_tenant) as srv:
        cfg = LokiExporterConfig(
            endpoint=srv.url, flush_interval=0.05, sending_queue=queue_in(tmp_path / "q"), retry_on_failure=FAST_RETRY
        )
        ex = LokiExporter(cfg)
        ex.start()
        ex.export("events", events_for("noisy", [make_event("cost")]))
        assert wait_for(lambda: _tenants(srv.requests), lambda t: "noisy" in t) == {"noisy"}
        for tenant in good[:2]:  # in the same flush as noisy's (held) rows, or alone: either way
            ex.export("events", events_for(tenant, [make_event("cost")]))
        mixed = events_for("noisy", [make_event("security")])  # one batch with rows of two tenants
        for key, values in events_for("good2", [make_event("cost")]).items():
            mixed[key] = mixed[key] + values
        ex.export("events", mixed)
        for tenant in good[3:]:
            ex.export("events", events_for(tenant, [make_event("cost")]))
        delivered = wait_for(lambda: _tenants(srv.accepted), lambda t: t >= set(good), timeout=15)
        assert delivered == set(good)  # noisy is still refused and nobody waited for it
        stats = ex.delivery_stats
        assert stats is not None and stats.records == len(good) and stats.retries >= 1
        assert ex.queue_depth >= 1  # noisy's rows wait in the queue, not in memory
        throttled.clear()  # the rate limit is lifted: noisy's rows were kept
        assert ex.flush(15)
        ex.shutdown(5)
    noisy = [line for r in srv.accepted if _tenants([r]) == {"noisy"} for _l, vs in decode(r) for _t, line in vs]
    assert len(noisy) == 2 and len({json.loads(line)["event_id"] for line in noisy}) == 2
    assert not ex.dead_letter.entries() and stats.dead_lettered == 0 and stats.records == len(good) + 2
    assert ex.entries_sent == len(good) + 2


def test_a_throttled_tenant_is_retried_in_place_when_the_queue_has_no_room(tmp_path: Path) -> None:
    throttled = {"noisy"}

    def per_tenant(req: Request) -> tuple[int, dict[str, str]] | None:
        if req.headers.get("x-scope-orgid") not in throttled:
            return None
        if len([r for r in srv.requests if r.headers.get("x-scope-orgid") == "noisy"]) >= 3:
            throttled.clear()  # lifted after a few tries
        return (429, {})

    with RecordingServer(decide=per_tenant) as srv:
        queue = msgspec.structs.replace(queue_in(tmp_path / "q"), max_batches=1)
        cfg = LokiExporterConfig(
            endpoint=srv.url, flush_interval=0.05, sending_queue=queue, retry_on_failure=FAST_RETRY
        )
        ex = LokiExporter(cfg)
        ex.start()
        both = events_for("noisy", [make_event("cost")])
        for key, values in events_for("good", [make_event("cost")]).items():
            both[key] = both[key] + values
        ex.export("events", both)  # the queue's only slot: noisy's rows are held in it, nowhere to move them
        assert ex.flush(15)
        ex.shutdown(5)
    assert [_tenants([r]) for r in srv.accepted] == [{"good"}, {"noisy"}]  # good first, noisy not lost
    assert not ex.dead_letter.entries()


def _lines(reqs: list[Request], tenant: str) -> list[str]:
    return [line for r in reqs if _tenants([r]) == {tenant} for _l, vs in decode(r) for _t, line in vs]


def test_a_throttled_tenants_rows_stay_in_place_and_a_restart_sends_them_once(tmp_path: Path) -> None:
    throttled = {"noisy"}

    def per_tenant(req: Request) -> tuple[int, dict[str, str]] | None:
        return (429, {"Retry-After": "0"}) if req.headers.get("x-scope-orgid") in throttled else None

    def config(url: str) -> LokiExporterConfig:
        return LokiExporterConfig(
            endpoint=url, flush_interval=0.05, sending_queue=queue_in(tmp_path / "q"), retry_on_failure=FAST_RETRY
        )

    noisy: list[str] = []
    good = [f"good{i}" for i in range(8)]
    exports = 0
    with RecordingServer(decide=per_tenant) as srv:
        ex = LokiExporter(config(srv.url))
        ex.start()
        for i, tenant in enumerate(good):
            if i % 3 == 0:  # noisy's rows now and then, in their own batches and in one shared with others
                event = make_event("security")
                noisy.append(event["event_id"])
                cols = events_for("noisy", [event])
                if i == 6:
                    for key, values in events_for("good-mixed", [make_event("cost")]).items():
                        cols[key] = cols[key] + values
                ex.export("events", cols)
                exports += 1
            ex.export("events", events_for(tenant, [make_event("cost")]))
            exports += 1
            wait_for(lambda: _tenants(srv.accepted), lambda t, tenant=tenant: tenant in t)
        assert wait_for(lambda: _tenants(srv.accepted), lambda t: "good-mixed" in t) == {*good, "good-mixed"}
        queue = ex._queue
        assert queue is not None
        assert wait_for(lambda: queue.cursor, lambda c: c == exports) == exports  # every batch was read
        assert len(_tenants([r for r in srv.requests if _tenants([r]) == {"noisy"}])) == 1  # tried, refused
        # noisy's rows were not rewritten to the queue (before: once per flush that delivered others)...
        assert queue._wal.last_seq == exports
        # ...they wait where they are; what was delivered around them is recorded with the acknowledgement
        assert queue.held == {"noisy": 1} and queue.acked_seq == 0 and queue.depth == exports
        ex.shutdown(0.5)  # noisy is still refused: its rows stay queued for the next start
    assert not _lines(srv.accepted, "noisy")
    throttled.clear()
    with RecordingServer(decide=per_tenant) as srv2:  # restart, the rate limit lifted
        ex2 = LokiExporter(config(srv2.url))
        ex2.start()
        assert ex2.flush(15)
        ex2.shutdown(5)
    assert _tenants(srv2.accepted) == {"noisy"}  # the others, delivered before the restart, are not sent again
    sent = [json.loads(line)["event_id"] for line in _lines(srv2.accepted, "noisy")]
    assert sent == noisy  # each once, in order
    assert not ex2.dead_letter.entries() and ex2.entries_sent == len(noisy)
    assert ex2._queue is not None and ex2._queue.held == {} and ex2._queue.depth == 0


def test_rows_held_for_long_are_moved_once_in_a_while_so_the_queue_does_not_fill(tmp_path: Path) -> None:
    throttled = {"noisy"}

    def per_tenant(req: Request) -> tuple[int, dict[str, str]] | None:
        return (429, {}) if req.headers.get("x-scope-orgid") in throttled else None

    with RecordingServer(decide=per_tenant) as srv:
        queue_cfg = msgspec.structs.replace(queue_in(tmp_path / "q"), max_batches=40)
        cfg = LokiExporterConfig(
            endpoint=srv.url, flush_interval=0.02, sending_queue=queue_cfg, retry_on_failure=FAST_RETRY
        )
        ex = LokiExporter(cfg)
        ex.start()
        noisy = [make_event("security"), make_event("security")]
        ex.export("events", events_for("noisy", noisy[:1]))
        good = [f"good{i}" for i in range(60)]  # more batches than the queue holds: it must be trimmed
        for i, tenant in enumerate(good):
            if i == 30:
                ex.export("events", events_for("noisy", noisy[1:]))
            ex.export("events", events_for(tenant, [make_event("cost")]))  # QueueFullError if never trimmed
            wait_for(lambda: _tenants(srv.accepted), lambda t, tenant=tenant: tenant in t, interval=0.01)
        queue = ex._queue
        assert queue is not None
        moved = queue._wal.last_seq - (len(good) + 2)  # batches written to move noisy's rows
        assert 1 <= moved <= 8  # once per ten or so batches delivered, not once per flush
        throttled.clear()
        assert ex.flush(15)
        ex.shutdown(5)
    sent = [json.loads(line)["event_id"] for line in _lines(srv.accepted, "noisy")]
    assert sent == [e["event_id"] for e in noisy]  # not lost, not duplicated, in order
    assert _tenants(srv.accepted) == {*good, "noisy"} and ex.entries_sent == len(good) + 2
