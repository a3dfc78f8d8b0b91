"""Incident injection with ground truth, for evaluation and benchmarks.

Each scenario is one of the specification's example incidents. It returns native events (schema 1.0.0
dicts, ready for the native-events processor) and its ground truth: which events are linked, by which
correlation type, and the root cause's event id. Timing, sizes and dimension values are random.

    >>> import numpy as np
    >>> inj = SCENARIOS["security_chain"](np.random.default_rng(1), 1.7e9, Dims.pick(np.random.default_rng(1), 0))
    >>> inj.truth.ctype, len(inj.truth.event_ids), inj.truth.root_event_id == inj.truth.event_ids[0]
    ('causal_chain', 4, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from hub.simulate import catalog as C

Event = dict[str, Any]
SERVICES: Final = ("vector-db", "llm-gateway", "api-gateway")


@dataclass
class Truth:
    scenario: str
    ctype: str
    event_ids: list[str]
    root_event_id: str
    start: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "type": self.ctype, "event_ids": self.event_ids,
                "root_event_id": self.root_event_id, "start": self.start}  # fmt: skip


@dataclass
class Injected:
    events: list[Event]
    truth: Truth


@dataclass
class Dims:
    """Dimension values reserved for one incident (so concurrent incidents do not share them)."""

    project: str
    team: str
    model: str
    provider: str
    asset_id: str
    users: list[str]
    ip: str
    key: str

    @classmethod
    def pick(cls, rng: np.random.Generator, k: int, model: int | None = None) -> Dims:
        """Project ``k``; model number ``model`` (random if None: give concurrent incidents distinct ones)."""
        p = C.PROJECTS[k % len(C.PROJECTS)]
        m = C.MODELS[(model if model is not None else int(rng.integers(len(C.MODELS)))) % len(C.MODELS)]
        users = [f"user-{p.name}-{int(u)}" for u in rng.choice(C.USERS_PER_PROJECT, 3, replace=False)]
        ip = f"198.51.{int(rng.integers(256))}.{int(rng.integers(1, 255))}"
        return cls(p.name, p.team, m.name, m.provider, m.asset_id, users, ip, f"key-{p.name}-leaked-{k}")


@dataclass
class _Builder:
    rng: np.random.Generator
    dims: Dims
    events: list[Event] = field(default_factory=list)

    def uid(self) -> str:
        b = bytearray(self.rng.bytes(16))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def add(self, module: str, etype: str, t: float, payload: dict[str, Any], *, corr: str | None = None,
            severity: str = "info", user: str | None = None, service: str | None = None) -> str:  # fmt: skip
        d = self.dims
        tags = {"team": d.team, "project": d.project, "user_id": user or d.users[0]}
        if service:
            tags["service"] = service
        ev: Event = {"event_id": self.uid(), "timestamp": iso(t), "source_module": module, "event_type": etype,
                     "schema_version": "1.0.0", "severity": severity, "environment": "production", "tags": tags,
                     "payload": payload}  # fmt: skip
        if corr:
            ev["correlation_id"] = corr
        self.events.append(ev)
        return str(ev["event_id"])

    def telemetry(self, t: float, ms: float, *, corr: str | None = None, error: str | None = None,
                  metric: str = "gen_ai.client.operation.duration", severity: str | None = None,
                  user: str | None = None, service: str | None = None, model: str | None = None) -> str:  # fmt: skip
        p: dict[str, Any] = {"metric_name": metric, "value": round(ms, 3), "unit": "ms",
                             "model": model or self.dims.model, "provider": self.dims.provider}  # fmt: skip
        if error:
            p["status"] = "error"
            p["error_type"] = error
        sev = severity or ("error" if error else "info")
        return self.add("llm-observatory", "telemetry", t, p, corr=corr, severity=sev, user=user, service=service)

    def cost(self, t: float, usd: float, *, corr: str | None = None) -> str:
        d = self.dims
        p = {"cost_type": "token", "amount": round(usd, 8), "model": d.model, "provider": d.provider,
             "asset_id": d.asset_id, "project": d.project, "team": d.team, "input_tokens": 2000, "output_tokens": 400}  # fmt: skip
        return self.add("llm-costops", "cost", t, p, corr=corr)

    def policy(self, t: float, policy_id: str, result: str, *, corr: str | None = None, user: str | None = None) -> str:
        p = {"policy_id": policy_id, "result": result, "evaluation_time": 1.2, "model": self.dims.model,
             "resource": f"project/{self.dims.project}", "subject": user or self.dims.users[0]}  # fmt: skip
        return self.add("llm-policy-engine", "policy", t, p, corr=corr, severity="warning", user=user)

    def violation(self, t: float, policy_id: str, *, corr: str | None = None, user: str | None = None) -> str:
        p = {"action": "violation", "policy_id": policy_id, "compliant": False, "regulation": "SOC2",
             "user_id": user or self.dims.users[0], "model": self.dims.model}  # fmt: skip
        return self.add("llm-governance", "governance", t, p, corr=corr, severity="error", user=user)

    def security(self, t: float, threat: str, *, corr: str | None = None, user: str | None = None,
                 ip: str | None = None, key: str | None = None, level: str = "high") -> str:  # fmt: skip
        p: dict[str, Any] = {"threat_type": threat, "threat_level": level, "confidence": 0.95, "action_taken": "blocked",
                             "model": self.dims.model, "user_id": user or self.dims.users[0],
                             "source_ip": ip or self.dims.ip}  # fmt: skip
        if key:
            p["api_key_id"] = key
        sev = "critical" if level == "critical" else "error"
        return self.add("llm-sentinel", "security", t, p, corr=corr, severity=sev, user=user)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def security_chain(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """A prompt injection → access-control violation → policy fail → the request errors (one request)."""
    b = _Builder(rng, dims)
    corr = b.uid()
    ids = [b.security(t, "prompt_injection", corr=corr)]
    t += _u(rng, 0.3, 5)
    ids.append(b.violation(t, "gov-access-control", corr=corr))
    t += _u(rng, 0.3, 5)
    ids.append(b.policy(t, "pol-content-safety", "fail", corr=corr))
    t += _u(rng, 0.3, 10)
    ids.append(b.telemetry(t, _u(rng, 50, 300), corr=corr, error="blocked_by_policy"))
    return Injected(b.events, Truth("security_chain", "causal_chain", ids, ids[0]))


def provider_outage(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """A provider's 503s rise and fall; lagged, requests fall back to a model the allow-list refuses."""
    b = _Builder(rng, dims)
    length, lag, peak = _u(rng, 25, 40), _u(rng, 2, 6), _u(rng, 3, 6)
    ids: list[str] = []
    grid = np.arange(0.0, length, 0.25)
    bump = np.sin(np.pi * grid / length) ** 2 * peak * 0.25
    for k, lam in zip(grid, bump, strict=True):
        for _ in range(int(rng.poisson(lam))):
            user = dims.users[int(rng.integers(3))]
            ids.append(b.telemetry(t + k + _u(rng, 0, 0.25), _u(rng, 20, 200), corr=b.uid(),
                                   error="service_unavailable", user=user))  # fmt: skip
        for _ in range(int(rng.poisson(lam * 0.6))):
            ids.append(b.policy(t + k + lag + _u(rng, 0, 0.25), "pol-model-allowlist", "fail", corr=b.uid()))
    when = {ev["event_id"]: ev["timestamp"] for ev in b.events}
    ids.sort(key=when.__getitem__)
    root = min((ev for ev in b.events if ev["event_type"] == "telemetry"), key=lambda ev: ev["timestamp"])
    return Injected(b.events, Truth("provider_outage", "temporal", ids, str(root["event_id"])))


def retry_storm(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """error → retry → timeout → circuit breaker, repeated on several requests of one service."""
    b = _Builder(rng, dims)
    ids: list[str] = []
    starts = np.sort(rng.uniform(0, 25, int(rng.integers(4, 8))))
    starts[0] = 0.0
    for s in starts:
        corr, tt = b.uid(), t + float(s)
        ids.append(b.telemetry(tt, _u(rng, 100, 900), corr=corr, error="server_error", service="chat-api"))
        tt += _u(rng, 0.2, 1.0)
        ids.append(
            b.telemetry(tt, 1, corr=corr, metric="http.client.retry.count", severity="warning", service="chat-api")
        )
        tt += _u(rng, 1, 5)
        ids.append(b.telemetry(tt, 30_000, corr=corr, error="timeout", service="chat-api"))
        tt += _u(rng, 0.1, 1)
        ids.append(b.telemetry(tt, 1, corr=corr, metric="circuit_breaker.state", error="circuit_open",
                               severity="critical", service="chat-api"))  # fmt: skip
    return Injected(b.events, Truth("retry_storm", "pattern", ids, ids[0]))


def model_rollout(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """A model update, then its latency, cost and token-budget warnings go anomalous together."""
    b = _Builder(rng, dims)
    meta = {"asset_id": dims.asset_id, "asset_type": "model", "name": dims.model, "action": "updated",
            "version": "rollout-2", "provider": dims.provider}  # fmt: skip
    ids = [b.add("llm-registry", "metadata", t, meta)]
    t0 = t + _u(rng, 2, 8)
    for s in np.sort(rng.uniform(0, 20, int(rng.integers(10, 18)))):
        corr = b.uid()
        user = dims.users[int(rng.integers(3))]
        ids.append(b.telemetry(t0 + s, _u(rng, 60_000, 150_000), corr=corr, severity="warning", user=user))
        ids.append(b.cost(t0 + s + 0.01, _u(rng, 3.0, 8.0), corr=corr))
    for s in np.sort(rng.uniform(0, 20, int(rng.integers(4, 7)))):
        ids.append(b.policy(t0 + s, "pol-token-budget", "warn", corr=b.uid()))
    return Injected(b.events, Truth("model_rollout", "anomaly", ids, ids[0]))


def failed_billing(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """Requests that failed (timeouts, context overflow) were billed anyway: wasted spend."""
    b = _Builder(rng, dims)
    ids: list[str] = []
    starts = np.sort(rng.uniform(0, 20, int(rng.integers(4, 10))))
    starts[0] = 0.0
    for s in starts:
        corr = b.uid()
        err = "timeout" if rng.random() < 0.5 else "context_length_exceeded"
        ids.append(b.telemetry(t + s, _u(rng, 5_000, 30_000), corr=corr, error=err))
        ids.append(b.cost(t + s + 0.05, _u(rng, 0.05, 0.6), corr=corr))
    return Injected(b.events, Truth("failed_billing", "cost_impact", ids, ids[0]))


def attack_campaign(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """One IP with a leaked key attacks several users; their accounts then trip access-control policy."""
    b = _Builder(rng, dims)
    ids: list[str] = []
    threats = ("prompt_injection", "jailbreak", "prompt_injection")
    starts = np.sort(rng.uniform(0, 40, int(rng.integers(5, 10))))
    starts[0] = 0.0
    for k, s in enumerate(starts):
        ids.append(b.security(t + s, threats[k % 3], corr=b.uid(), user=dims.users[k % 2], key=dims.key,
                              level="critical" if k % 4 == 3 else "high"))  # fmt: skip
    ids.append(b.security(t + float(starts[-1]) + _u(rng, 1, 8), "pii_leak", user=dims.users[0], ip="10.0.0.9",
                          key=dims.key))  # fmt: skip
    for k in range(2):
        ids.append(b.violation(t + _u(rng, 5, 40), "gov-access-control", corr=b.uid(), user=dims.users[k]))
    return Injected(b.events, Truth("attack_campaign", "security_incident", ids, ids[0]))


def rate_limit_cascade(rng: np.random.Generator, t: float, dims: Dims) -> Injected:
    """Rate-limit violations → a retry storm → the project's budget policy is violated."""
    b = _Builder(rng, dims)
    ids: list[str] = []
    for k, s in enumerate(np.sort(rng.uniform(0, 10, int(rng.integers(4, 8))))):
        ids.append(b.policy(t + (0.0 if k == 0 else float(s)), "pol-rate-limit", "fail", corr=b.uid()))
    for s in np.sort(rng.uniform(2, 20, int(rng.integers(8, 14)))):
        corr = b.uid()
        ids.append(b.telemetry(t + s, _u(rng, 20, 200), corr=corr, error="rate_limited"))
        ids.append(b.telemetry(t + s + 0.3, 1, corr=corr, metric="http.client.retry.count", severity="warning"))
    for s in np.sort(rng.uniform(15, 30, int(rng.integers(3, 6)))):
        ids.append(b.violation(t + s, "gov-budget-cap", corr=b.uid()))
    return Injected(b.events, Truth("rate_limit_cascade", "compliance_cascade", ids, ids[0]))


def service_traffic(
    rng: np.random.Generator, t0: float, t1: float, rate: float, slowdown: tuple[float, float] | None = None,
) -> Injected:  # fmt: skip
    """Normal api-gateway → vector-db → llm-gateway requests; with ``slowdown=(start, length)`` the
    vector DB slows, then the API's latency grows, the LLM calls time out and the API's errors spike."""
    dims = Dims("semantic-search", "search", "gpt-4o-mini", "openai", "asset-gpt-4o-mini", ["svc-user"], "", "")
    b = _Builder(rng, dims)
    ids: list[str] = []
    n = int(rng.poisson(rate * (t1 - t0)))
    for s in np.sort(rng.uniform(t0, t1, n)):
        corr = b.uid()
        slow = slowdown is not None and slowdown[0] <= s < slowdown[0] + slowdown[1]
        since = s - slowdown[0] if slow and slowdown else -1.0
        db = _u(rng, 8, 25) * (12 if slow else 1)
        e1 = b.telemetry(s, db, corr=corr, metric="db.client.operation.duration", service="vector-db")
        llm_t = s + db / 1000 + 0.01
        timeout = slow and since > 6 and rng.random() < 0.6
        llm = 30_000.0 if timeout else _u(rng, 400, 1200)
        e2 = b.telemetry(
            llm_t + llm / 1000, llm, corr=corr, service="llm-gateway", error="timeout" if timeout else None
        )
        api = db + llm + _u(rng, 5, 20)
        e3 = b.telemetry(s + api / 1000 + 0.02, api, corr=corr, metric="http.server.request.duration",
                         service="api-gateway", error="gateway_timeout" if timeout else None)  # fmt: skip
        if slow:  # linked: the slow DB call, and the LLM / API calls that failed because of it
            ids.extend([e1, e2, e3] if timeout else [e1])
    root = ids[0] if ids else ""
    if ids:
        order = {ev["event_id"]: ev["timestamp"] for ev in b.events}
        ids.sort(key=order.__getitem__)
        root = ids[0]
    return Injected(b.events, Truth("db_slowdown", "performance_degradation", ids, root))


def busy_independent_traffic(
    rng: np.random.Generator, t0: float, t1: float, rate: float = 20.0, p_error: float = 0.25, p_fail: float = 0.25,
) -> Injected:  # fmt: skip
    """Requests (policy check, then the model call) from two busy modules that fail independently: the
    model call errors with probability ``p_error``, the policy check fails with ``p_fail``, whatever the
    other did. Some requests have both by chance (``p_error * p_fail`` of them) and no incident is
    injected: the truth is empty, and a causal chain found here is a coincidence."""
    dims = Dims("busy", "busy-team", "gpt-4o-mini", "openai", "asset-gpt-4o-mini", ["busy-user"], "", "")
    b = _Builder(rng, dims)
    for s in np.sort(rng.uniform(t0, t1, int(rng.poisson(rate * (t1 - t0))))):
        corr = b.uid()
        user = f"busy-user-{int(rng.integers(50))}"
        b.policy(float(s), "pol-content-safety", "fail" if rng.random() < p_fail else "pass", corr=corr, user=user)
        err = "server_error" if rng.random() < p_error else None
        b.telemetry(float(s) + _u(rng, 0.05, 0.5), _u(rng, 300, 900), corr=corr, error=err, user=user)
    return Injected(b.events, Truth("busy_independent", "causal_chain", [], ""))


def lagged_dependent_traffic(
    rng: np.random.Generator, t0: float, t1: float, rate: float = 20.0, p_fail: float = 0.05,
    p_error: float = 0.02,
) -> Injected:  # fmt: skip
    """Like :func:`busy_independent_traffic`, but a failed policy check makes the model call fail 0.2 to 3 s
    later (a real, lagged dependence); other calls fail at ``p_error``. The truth holds the chained requests'
    abnormal events, rooted at the first policy failure."""
    dims = Dims("lagged", "lagged-team", "gpt-4o-mini", "openai", "asset-gpt-4o-mini", ["lagged-user"], "", "")
    b = _Builder(rng, dims)
    ids: list[str] = []
    for s in np.sort(rng.uniform(t0, t1, int(rng.poisson(rate * (t1 - t0))))):
        corr = b.uid()
        failed = rng.random() < p_fail
        pid = b.policy(float(s), "pol-content-safety", "fail" if failed else "pass", corr=corr)
        err = "blocked_by_policy" if failed else ("server_error" if rng.random() < p_error else None)
        tid = b.telemetry(float(s) + (_u(rng, 0.2, 3.0) if failed else _u(rng, 0.05, 0.5)), _u(rng, 300, 900),
                          corr=corr, error=err)  # fmt: skip
        if failed:
            ids.extend([pid, tid])
    return Injected(b.events, Truth("lagged_dependent", "causal_chain", ids, ids[0] if ids else ""))


SCENARIOS: Final[dict[str, Callable[[np.random.Generator, float, Dims], Injected]]] = {
    "security_chain": security_chain,
    "provider_outage": provider_outage,
    "retry_storm": retry_storm,
    "model_rollout": model_rollout,
    "failed_billing": failed_billing,
    "attack_campaign": attack_campaign,
    "rate_limit_cascade": rate_limit_cascade,
}
ALL_SCENARIOS: Final = (*SCENARIOS, "db_slowdown")
