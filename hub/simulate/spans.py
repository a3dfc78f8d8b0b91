"""One simulated request's native events → the spans of one trace, as a platform's OTel SDKs would send them.

A request enters the platform at a gateway (``llm-gateway``, the root ``SERVER`` span) which calls each module
that reported on the request: for every module call a ``CLIENT`` span of the gateway and, as its child, the
module's ``SERVER`` span (the pair Tempo's service graph and the hub's ``/dependencies`` draw an edge from).
The model call goes through llm-observatory, whose ``SERVER`` span holds the GenAI inference span
(``CLIENT``, ``chat {model}``, the OpenTelemetry GenAI semantic conventions); a policy evaluation holds one
``INTERNAL`` span per rule. Every span carries its module as ``service.name``; a failed model call is an
``ERROR`` on the inference span and on every span above it.

Times follow the events: the telemetry event's timestamp ``T`` is the end of the model call (the hub maps a
telemetry event onto a span ending at its timestamp), which lasts the event's latency, so it runs
``[T - latency, T]``. The native events put the whole request at one instant, the other modules a few ms
around it (``catalog.OFFSET_MS_*``); the spans keep those offsets from the edge of the call they are on the
side of: the policy check ends 4 ms and the security scan 2 ms before the call starts, the cost record ends
1 ms and the governance record 2 ms after it ends (exactly at their events' timestamps). Every child lies
inside its parent.

The trace id is the one the hub derives from the events' ``correlation_id`` (``hubcore/mapping/
events_to_spans.sql``: the first 16 bytes of ``md5(tenant/correlation_id)``), so that a request's spans and
its events' spans are one trace, in Tempo and in the embedded store's ``all_spans``. The gateway's root span
and each module's ``SERVER`` span have ids derived from the trace id and the event, so an event can name its
parent span before the request's spans are built: :func:`traceparent` is the W3C ``traceparent`` tag the
simulator gives the events of a traced request, which puts each event's span in the request's tree
(:func:`event_parent_id`: under the span of the module that emitted it, or the gateway's root) instead of
under the hub's synthetic ``correlation`` root — one tree per request.

    >>> import random
    >>> tel = {"event_id": "e1", "timestamp": "2026-01-01T00:00:01.000Z", "source_module": "llm-observatory",
    ...        "event_type": "telemetry", "correlation_id": "c1", "tags": {"team": "t", "project": "p"},
    ...        "payload": {"value": 500, "unit": "ms", "model": "gpt-4o", "provider": "openai",
    ...                    "operation": "chat", "input_tokens": 10, "output_tokens": 5}}
    >>> spans = request_spans([tel], tenant="acme", rng=random.Random(1))
    >>> [(s.service, s.kind, s.name) for s in spans]  # doctest: +NORMALIZE_WHITESPACE
    [('llm-gateway', 'SERVER', 'POST /v1/chat/completions'), ('llm-gateway', 'CLIENT', 'POST /v1/chat/completions'),
     ('llm-observatory', 'SERVER', 'POST /v1/chat/completions'), ('llm-observatory', 'CLIENT', 'chat gpt-4o')]
    >>> spans[-1].end_ns - spans[-1].start_ns, trace_id_for("acme", "c1") == spans[0].trace_id
    (500000000, True)
    >>> traceparent("acme", tel) == f"00-{spans[0].trace_id:032x}-{spans[2].span_id:016x}-01"
    True
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from hub.simulate import catalog as C

GATEWAY: Final = "llm-gateway"
CHAT_ROUTE: Final = "/v1/chat/completions"
DEFAULT_TENANT: Final = "default"  # the hub's default tenant (hubcore.config.NativeEventsConfig.default_tenant)

_MS: Final = 1_000_000  # ns
_HOP_NS: Final = 100_000  # 0.1 ms: a CLIENT span starts this much before its SERVER span and ends this much after
_EDGE_NS: Final = 500_000  # the gateway's own work before its first call and after its last
_SCAN_NS: Final = 1_500_000  # a security scan (the finding's event gives no duration)
_RECORD_NS: Final = 600_000  # a cost or governance record (ends at its event's timestamp)
#: the HTTP status a gateway answers a failed model call with, by the telemetry's error_type
HTTP_STATUS: Final = {"rate_limited": 429, "timeout": 504, "server_error": 502}
#: event type -> (route the gateway calls, offset of the event from the model call in ms: < 0 before its start)
_MODULE_CALLS: Final = {
    "policy": ("/v1/policies/evaluate", C.OFFSET_MS_POLICY),
    "security": ("/v1/scan", C.OFFSET_MS_SECURITY),
    "cost": ("/v1/costs", C.OFFSET_MS_COST),
    "governance": ("/v1/audit", C.OFFSET_MS_GOVERNANCE),
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PlannedSpan:
    """One span to send: ids as integers (128-bit trace, 64-bit span), times in ns since the epoch."""

    service: str
    trace_id: int
    span_id: int
    parent_id: int | None
    name: str
    kind: str  # SERVER, CLIENT or INTERNAL
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the status message of an ERROR span; None: status UNSET


def trace_id_for(tenant: str | None, correlation_id: str) -> int:
    """The trace id the hub gives the events of ``correlation_id`` (``hubcore/mapping/events_to_spans.sql``).

    >>> f"{trace_id_for('acme', 'c1'):032x}" == hashlib.md5(b"acme/c1").hexdigest()
    True
    """
    digest = hashlib.md5(f"{tenant or DEFAULT_TENANT}/{correlation_id}".encode(), usedforsecurity=False)
    return int.from_bytes(digest.digest(), "big")


def _derived_id(*parts: str) -> int:
    """A 64-bit span id: the first 8 bytes of ``md5("/".join(parts))`` (never 0)."""
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") or 1


def root_span_id(trace_id: int) -> int:
    """The span id of the gateway's root ``SERVER`` span of trace ``trace_id``."""
    return _derived_id("root", f"{trace_id:032x}")


def server_span_id(trace_id: int, event_id: str) -> int:
    """The span id of the module's ``SERVER`` span, in trace ``trace_id``, that handled the event ``event_id``."""
    return _derived_id("server", f"{trace_id:032x}", event_id)


def event_parent_id(trace_id: int, event: Mapping[str, Any]) -> int:
    """The span id, in its request's trace ``trace_id``, of the span that ``event``'s span belongs under: the
    ``SERVER`` span of the module that emitted it for a telemetry, cost or governance event (its instant lies
    inside that span), else the gateway's root span — also for a policy or security event, whose module's
    span is over before the model call starts while the event is stamped a few ms before the call ends.

    >>> tid = trace_id_for("acme", "c1")
    >>> event_parent_id(tid, {"event_type": "cost", "event_id": "e2"}) == server_span_id(tid, "e2")
    True
    >>> [event_parent_id(tid, {"event_type": t, "event_id": "e3"}) == root_span_id(tid) for t in ("policy", "metadata")]
    [True, True]
    """
    etype = event.get("event_type")
    if etype == "telemetry" or (etype in _MODULE_CALLS and _MODULE_CALLS[str(etype)][1] >= 0):
        return server_span_id(trace_id, str(event.get("event_id", "")))
    return root_span_id(trace_id)


def traceparent(tenant: str | None, event: Mapping[str, Any]) -> str | None:
    """The W3C ``traceparent`` (``00-<trace id>-<span id>-01``) of a traced request's ``event``: its request's
    trace (:func:`trace_id_for` its ``correlation_id``) and its parent span there (:func:`event_parent_id`);
    ``None`` for an event without a ``correlation_id``.

    >>> traceparent("acme", {"event_type": "metadata", "event_id": "e3"}) is None
    True
    """
    corr = event.get("correlation_id")
    if not corr:
        return None
    tid = trace_id_for(tenant, str(corr))
    return f"00-{tid:032x}-{event_parent_id(tid, event):016x}-01"


def timestamp_ns(text: str) -> int:
    """An event's ISO-8601 timestamp (``...Z``) in ns since the epoch, exact to the microsecond.

    >>> timestamp_ns("1970-01-01T00:00:01.250Z")
    1250000000
    """
    delta = datetime.fromisoformat(text.replace("Z", "+00:00")) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def latency_ns(payload: Mapping[str, Any]) -> int:
    """A telemetry payload's duration (``value`` in ``ms`` or ``s``) in ns: whole µs, rounded as the hub
    rounds it (half away from zero), at least 1 µs.

    >>> latency_ns({"value": 1.2345675, "unit": "ms"}), latency_ns({"value": 2, "unit": "s"})
    (1235000, 2000000000)
    """
    us = float(payload["value"]) * (1e6 if payload.get("unit") == "s" else 1e3)
    return max(1, math.floor(us + 0.5)) * 1000


class _Trace:
    def __init__(self, trace_id: int, rng: random.Random) -> None:
        self.trace_id, self.rng, self.spans = trace_id, rng, list[PlannedSpan]()

    def add(self, service: str, parent: int | None, name: str, kind: str, start: int, end: int,
            attributes: dict[str, Any], error: str | None = None, span_id: int | None = None) -> int:  # fmt: skip
        if span_id is None:
            span_id = self.rng.getrandbits(64) or 1
        self.spans.append(PlannedSpan(service, self.trace_id, span_id, parent, name, kind, start, end,
                                      attributes, error))  # fmt: skip
        return span_id

    def call(self, root: int, module: str, route: str, start: int, end: int, status: int,
             attributes: dict[str, Any], server_id: int, error: str | None = None) -> int:  # fmt: skip
        """The gateway's CLIENT span around the module's SERVER span ``[start, end]`` (id ``server_id``)."""
        client = self.add(GATEWAY, root, f"POST {route}", "CLIENT", start - _HOP_NS, end + _HOP_NS,
                          {"http.request.method": "POST", "server.address": module, "url.path": route,
                           "http.response.status_code": status}, error)  # fmt: skip
        return self.add(module, client, f"POST {route}", "SERVER", start, end,
                        {"http.request.method": "POST", "http.route": route, "http.response.status_code": status,
                         **attributes}, error, span_id=server_id)  # fmt: skip


def request_spans(events: Sequence[Mapping[str, Any]], *, tenant: str | None, rng: random.Random) -> list[PlannedSpan]:
    """The spans of one request: ``events`` are its native events (its telemetry event and any of its cost,
    policy, security and governance events, in any order); no telemetry event, no spans. The root comes
    first; a parent always comes before its children."""
    tel = next((e for e in events if e.get("event_type") == "telemetry"), None)
    if tel is None or not tel.get("correlation_id"):
        return []
    corr = str(tel["correlation_id"])
    p = tel["payload"]
    end = timestamp_ns(tel["timestamp"])  # T: the model call ends
    start = end - latency_ns(p)
    model, provider, operation = p["model"], p["provider"], p.get("operation", "chat")
    error = p.get("error_type") or ("error" if p.get("status") == "error" else None)
    status = HTTP_STATUS.get(str(error), 500) if error else 200

    # each module's SERVER span [s, e]: before the call its event's instant is offset from the call's start,
    # after it from the call's end; the span ends there (a module reports when it is done)
    calls: list[tuple[int, int, Mapping[str, Any]]] = []
    for ev in events:
        call = _MODULE_CALLS.get(str(ev.get("event_type")))
        if call is None or ev.get("correlation_id") != corr:
            continue
        at = (start if call[1] < 0 else end) + call[1] * _MS
        if ev["event_type"] == "policy":
            unit = 1e9 if ev["payload"].get("evaluation_time_unit") == "s" else 1e6
            took = round(float(ev["payload"].get("evaluation_time") or 0.0) * unit)
        elif ev["event_type"] == "security":
            took = _SCAN_NS
        else:
            took = _RECORD_NS
        if call[1] < 0:  # a check before the call is over before the gateway starts calling the model
            took = min(took, -call[1] * _MS - 2 * _HOP_NS)
        took = max(1000, took)
        calls.append((at - took, at, ev))
    calls.sort(key=lambda c: c[0])

    first = min([start - _HOP_NS, *(s - _HOP_NS for s, _e, _ev in calls)]) - _EDGE_NS
    last = max([end + _HOP_NS, *(e + _HOP_NS for _s, e, _ev in calls)]) + _EDGE_NS
    tags = tel.get("tags") or {}
    tr = _Trace(trace_id_for(tenant, corr), rng)
    root = tr.add(GATEWAY, None, f"POST {CHAT_ROUTE}", "SERVER", first, last,
                  {"http.request.method": "POST", "http.route": CHAT_ROUTE, "http.response.status_code": status,
                   "hub.correlation_id": corr, "hub.team": tags.get("team", ""),
                   "hub.project": tags.get("project", ""), "user.id": tags.get("user_id", "")},
                  error, span_id=root_span_id(tr.trace_id))  # fmt: skip
    before = [(s, e, ev) for s, e, ev in calls if s < start]
    after = [(s, e, ev) for s, e, ev in calls if s >= start]
    for s, e, ev in before:
        _module_call(tr, root, s, e, ev)
    gen_ai = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
              "gen_ai.request.model": model, "gen_ai.response.model": model,
              "gen_ai.usage.input_tokens": int(p.get("input_tokens") or 0),
              "gen_ai.usage.output_tokens": int(p.get("output_tokens") or 0)}  # fmt: skip
    if error:
        gen_ai["error.type"] = error
    else:
        gen_ai["gen_ai.response.finish_reasons"] = ["stop"]
    server = tr.call(root, "llm-observatory", CHAT_ROUTE, start - _HOP_NS, end + _HOP_NS, status,
                     {"hub.event_id": tel.get("event_id", "")}, server_span_id(tr.trace_id, str(tel.get("event_id", ""))), error)  # fmt: skip
    tr.add("llm-observatory", server, f"{operation} {model}", "CLIENT", start, end, gen_ai, error)
    for s, e, ev in after:
        _module_call(tr, root, s, e, ev)
    return tr.spans


def _module_call(tr: _Trace, root: int, start: int, end: int, ev: Mapping[str, Any]) -> None:
    etype = str(ev["event_type"])
    route = _MODULE_CALLS[etype][0]
    p = ev.get("payload") or {}
    attrs: dict[str, Any] = {"hub.event_id": ev.get("event_id", ""), "hub.event_type": etype}
    if etype == "policy":
        attrs.update({"hub.policy.id": p.get("policy_id", ""), "hub.policy.result": p.get("result", "")})
    elif etype == "security":
        attrs.update({"hub.threat.type": p.get("threat_type", ""), "hub.threat.level": p.get("threat_level", ""),
                      "hub.action_taken": p.get("action_taken", "")})  # fmt: skip
    elif etype == "cost":
        attrs.update({"hub.cost.amount": float(p.get("amount") or 0.0), "hub.cost.currency": p.get("currency", "")})
    else:
        attrs.update({"hub.governance.action": p.get("action", ""), "hub.governance.policy_id": p.get("policy_id", "")})
    server = tr.call(root, str(ev["source_module"]), route, start, end, 200, attrs,
                     server_span_id(tr.trace_id, str(ev.get("event_id", ""))))
    rules = [str(r) for r in p.get("rule_ids") or []] if etype == "policy" else []
    if rules:  # the engine evaluates the policy's rules one after the other
        step = (end - start) // len(rules)
        for k, rule in enumerate(rules):
            tr.add(str(ev["source_module"]), server, f"evaluate rule {rule}", "INTERNAL", start + k * step,
                   start + (k + 1) * step, {"hub.policy.id": p.get("policy_id", ""), "hub.policy.rule_id": rule})  # fmt: skip
