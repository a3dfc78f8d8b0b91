"""Checks that spans form one well-formed tree per trace, whatever they were read from: the simulator's
plan, an OTLP request on the wire, or the hub's ``GET /api/v1/traces/{trace_id}`` answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from hub.simulate.spans import PlannedSpan

_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT"}


class WireSpan(NamedTuple):
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any]


def from_planned(spans: Iterable[PlannedSpan]) -> list[WireSpan]:
    return [WireSpan(f"{s.trace_id:032x}", f"{s.span_id:016x}", None if s.parent_id is None else f"{s.parent_id:016x}",
                     s.name, s.kind, s.service, s.start_ns, s.end_ns, s.error is not None, dict(s.attributes))
            for s in spans]  # fmt: skip


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def wire_spans(req: Any) -> list[WireSpan]:
    """The spans of an ``ExportTraceServiceRequest``, each with its resource's ``service.name``."""
    out = []
    for rs in req.resource_spans:
        res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for sp in ss.spans:
                out.append(WireSpan(
                    sp.trace_id.hex(), sp.span_id.hex(), sp.parent_span_id.hex() or None, sp.name,
                    _KINDS.get(sp.kind, str(sp.kind)), str(res.get("service.name")), sp.start_time_unix_nano,
                    sp.end_time_unix_nano, sp.status.code == 2, {kv.key: _value(kv.value) for kv in sp.attributes},
                ))  # fmt: skip
    return out


def _ns(iso: str) -> int:
    delta = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_api(spans: Iterable[Mapping[str, Any]]) -> list[WireSpan]:
    """The spans of a ``GET /api/v1/traces/{trace_id}`` answer (times exact to the µs)."""
    return [WireSpan(s["trace_id"], s["span_id"], s["parent_span_id"], s["name"], s["kind"], s["service_name"],
                     _ns(s["start_time"]), _ns(s["end_time"]), s["status_code"] == "ERROR", s["attributes"])
            for s in spans]  # fmt: skip


def assert_trees(spans: list[WireSpan]) -> dict[str, WireSpan]:
    """Every trace has exactly one root, every parent exists in the same trace, every child lies within its
    parent's time range, the kinds pair up (a CLIENT's children are SERVER spans of another service) and an
    error reaches the root. Returns each trace's root."""
    by_trace: dict[str, dict[str, WireSpan]] = {}
    for s in spans:
        assert s.start_ns <= s.end_ns, s
        by_trace.setdefault(s.trace_id, {})
        assert s.span_id not in by_trace[s.trace_id], f"span id used twice in trace {s.trace_id}"
        by_trace[s.trace_id][s.span_id] = s
    roots = {}
    for tid, members in by_trace.items():
        tree_roots = [s for s in members.values() if s.parent_id is None]
        assert len(tree_roots) == 1, (tid, tree_roots)
        root = roots[tid] = tree_roots[0]
        assert root.kind == "SERVER" and root.service == "llm-gateway", root
        for s in members.values():
            if s.parent_id is None:
                continue
            assert s.parent_id in members, f"{s.name} ({s.service}): parent {s.parent_id} not in trace {tid}"
            parent = members[s.parent_id]
            assert parent.start_ns <= s.start_ns and s.end_ns <= parent.end_ns, (parent, s)
            if s.kind == "SERVER":
                assert parent.kind == "CLIENT" and parent.service != s.service, (parent, s)
            if s.error:
                assert parent.error, (parent, s)
            # the ancestors chain ends at the root
            seen, cur = 0, s
            while cur.parent_id is not None:
                cur = members[cur.parent_id]
                seen += 1
                assert seen <= len(members)
            assert cur is root
    return roots
